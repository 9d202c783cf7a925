// Redis keys and values are byte strings; JavaScript strings are UTF-16 and
// may hold lone surrogates (issue 9). Well-formed strings are stored as their
// UTF-8, byte for byte what the npm client writes; lone surrogates as WTF-8,
// so every JS string round-trips and distinct keys stay distinct.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const { createRedisStore, createKVCache, createStatePersistence, escapeGlob, globMatch, ok } = require('../../index.js')
const { createClient, RESP_TYPES } = require('redis')

const prefix = `test:strings:${process.pid}:`
let store: any
let npm: any

beforeAll(async () => {
  store = createRedisStore({ url: 'redis://127.0.0.1:6379' })
  npm = createClient({ url: 'redis://127.0.0.1:6379' })
  await npm.connect()
})

afterAll(async () => {
  // through our store: the npm client reads lone-surrogate keys lossily and could not delete them
  for (const k of await store.keys(`${escapeGlob(prefix)}*`)) await store.delete(k)
  await npm.quit()
  await store.close()
})

const rawClient = () => npm.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer })

describe('native Redis store: exact strings', () => {
  it('lone surrogates in keys and values round-trip, and distinct keys stay distinct', async () => {
    const lone = ['\uD800', '\uDBFF', '\uDC00', '\uDFFF', 'a\uD83Db', '\uDE80\uD83D', '\uFFFD']
    await Promise.all(lone.map((s, i) => store.set(prefix + s, `v${i}:${s}`)))
    for (const [i, s] of lone.entries()) expect(await store.get(prefix + s)).toBe(`v${i}:${s}`)
    const keys = (await store.keys(`${escapeGlob(prefix)}*`)).sort()
    expect(keys).toEqual(lone.map((s) => prefix + s).sort())
    for (const s of lone) expect(await store.exists(prefix + s)).toBe(true)
    for (const s of lone) expect(await store.delete(prefix + s)).toBe(true)
    expect(await store.keys(`${escapeGlob(prefix)}*`)).toEqual([])
  })

  it('well-formed strings are stored byte for byte as the npm client stores them', async () => {
    const samples = ['plain', 'é', '日本語', '🚀 emoji', 'mixed ascii + ü + 😀', '\u0000nul', '\u{10FFFF}']
    for (const [i, s] of samples.entries()) {
      await store.set(`${prefix}ours:${s}`, s)
      await npm.set(`${prefix}npm:${s}`, s)
      const raw = rawClient()
      const oursBytes: Buffer = await raw.get(`${prefix}ours:${s}`)
      const npmBytes: Buffer = await raw.get(`${prefix}npm:${s}`)
      expect(oursBytes.equals(npmBytes), `sample ${i}`).toBe(true)
      expect(oursBytes.equals(Buffer.from(s, 'utf8'))).toBe(true)
      // each reads the other's
      expect(await store.get(`${prefix}npm:${s}`)).toBe(s)
      expect(await npm.get(`${prefix}ours:${s}`)).toBe(s)
    }
  })

  it('a value no JS string maps to is reported as ERR_CORRUPT, never a silent miss', async () => {
    await npm.set(`${prefix}garbage`, Buffer.from([0x66, 0xff, 0xfe]))
    await expect(store.get(`${prefix}garbage`)).rejects.toMatchObject({ code: 'ERR_CORRUPT' })
  })

  it('prefixes and globs with lone surrogates match exactly', async () => {
    expect(globMatch('a\uD800', 'a\uDBFF')).toBe(false)
    expect(globMatch('a\uD800*', 'a\uD800b')).toBe(true)
    expect(globMatch(escapeGlob('*\uD800') + '*', '*\uD800x')).toBe(true)
    const states = createStatePersistence(store, `${prefix}p:\uD800:`)
    const other = createStatePersistence(store, `${prefix}p:\uDBFF:`)
    await states.save('r1', { steps: new Map() })
    await other.save('r2', { steps: new Map() })
    expect(await states.list()).toEqual(['r1'])
    expect(await other.list()).toEqual(['r2'])
    await states.delete('r1')
    await other.delete('r2')
  })

  it('the KV cache and state persistence keep lone-surrogate keys apart', async () => {
    const cache = createKVCache({ store, prefix: `${prefix}c:` })
    await cache.setAsync('\uD800', ok(1))
    await cache.setAsync('\uDBFF', ok(2))
    expect((await cache.getAsync('\uD800')).value).toBe(1)
    expect((await cache.getAsync('\uDBFF')).value).toBe(2)
    const states = createStatePersistence(store, `${prefix}s:`)
    await states.save('run\uD800', { steps: new Map() })
    await states.save('run\uDBFF', { steps: new Map() })
    expect((await states.list()).sort()).toEqual(['run\uD800', 'run\uDBFF'].sort())
    await cache.clearAsync()
    expect(await cache.getAsync('\uD800')).toBeUndefined()
    await states.delete('run\uD800')
    await states.delete('run\uDBFF')
  })
})
