// Memory: values the cache no longer holds (evicted, deleted, overwritten,
// expired, cleared) and whole dropped caches are collectable. Runs a child
// `node --expose-gc` so `global.gc()` is real, without changing the vitest
// config for every other file.
import { describe, expect, it } from 'vitest'
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))

const script = String.raw`
const { createMemoryCache } = require('./index.js')
const tick = () => new Promise((r) => setTimeout(r, 0))
async function collect() {
  for (let i = 0; i < 6; i++) { await tick(); global.gc() }
  await tick()
}
const refs = {}
const track = (name, v) => { refs[name] = new WeakRef(v); return v }
const val = (name) => track(name, { ok: true, value: { name, pad: new Array(64).fill(name) } })

async function main() {
  let now = 1_000_000
  Date.now = () => now
  const c = createMemoryCache({ maxSize: 100, ttl: 1000 })
  for (let i = 0; i < 300; i++) c.set('k' + i, val('k' + i)) // k0..k199 evicted
  for (let i = 0; i < 3000; i++) c.get('k' + (200 + (i % 100))) // hits through several flushes
  c.delete('k250')
  c.set('k260', val('k260-new'))     // overwrite drops the old k260 value
  c.set('short', val('short'), { ttl: 10 })
  now += 11
  if (c.get('short') !== undefined) throw new Error('short should be expired')

  const cleared = createMemoryCache()
  for (let i = 0; i < 50; i++) cleared.set('c' + i, val('cleared' + i))
  cleared.clear()

  let dropped = createMemoryCache({ maxSize: 10 })
  dropped.set('x', val('dropped'))
  track('droppedCache', dropped)
  dropped = null

  // Destructured methods keep the cache (and its native state) alive.
  await collect()
  const liveBefore = require('./binding.js').__internal.memoryCacheLiveCount()
  let { get, set } = createMemoryCache()
  await collect()
  set('d', val('destructured'))
  const destructuredWorks = get('d') === refs.destructured.deref()
  const liveWithMethods = require('./binding.js').__internal.memoryCacheLiveCount() - liveBefore
  get = set = null

  const stale = createMemoryCache({ ttl: 5 })
  for (let i = 0; i < 20; i++) stale.set('s' + i, val('stale' + i))
  now += 6
  stale.purgeStale()

  await collect()
  const alive = (n) => refs[n].deref() !== undefined
  const out = {
    evicted: Array.from({ length: 200 }, (_, i) => alive('k' + i)).filter(Boolean).length,
    deleted: alive('k250'),
    overwritten: alive('k260'),
    expired: alive('short'),
    cleared: Array.from({ length: 50 }, (_, i) => alive('cleared' + i)).filter(Boolean).length,
    purged: Array.from({ length: 20 }, (_, i) => alive('stale' + i)).filter(Boolean).length,
    droppedCache: alive('droppedCache'),
    droppedValue: alive('dropped'),
    // still cached: must stay alive
    kept: Array.from({ length: 100 }, (_, i) => 200 + i).filter((i) => i !== 250 && alive(i === 260 ? 'k260-new' : 'k' + i)).length,
    keptValueReadable: c.get('k299').value.name,
    destructuredWorks,
    liveWithMethods,
    destructuredValue: alive('destructured'),
    // native registry entries of dropped caches are freed by their finalizer:
    // only c, cleared and stale remain
    liveCaches: require('./binding.js').__internal.memoryCacheLiveCount(),
  }
  process.stdout.write(JSON.stringify(out))
}
main().catch((e) => { console.error(e); process.exit(1) })
`

describe('memory cache releases what it no longer holds (--expose-gc)', () => {
  it('evicted, deleted, overwritten, expired, purged and cleared values, and dropped caches, are collected', () => {
    const out = JSON.parse(
      execFileSync(process.execPath, ['--expose-gc', '-e', script], { cwd: root, encoding: 'utf8', timeout: 20_000 }),
    )
    expect(out).toEqual({
      evicted: 0,
      deleted: false,
      overwritten: false,
      expired: false,
      cleared: 0,
      purged: 0,
      droppedCache: false,
      droppedValue: false,
      kept: 99,
      keptValueReadable: 'k299',
      destructuredWorks: true,
      liveWithMethods: 1,
      destructuredValue: false,
      liveCaches: 3,
    })
  })
})
