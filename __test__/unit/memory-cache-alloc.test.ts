// Memory of memory caches follows what they hold (issue 9, item 7). The
// native registry keeps a cache's typed arrays until its finalizer runs,
// which is after a GC *and* a turn of the event loop; they used to be
// allocated at full size up front (16 KB of metadata + 4 KB of hit ring), so
// 200,000 caches made in one synchronous loop peaked at ~4 GB RSS. Now a
// cache allocates them at its first set / first recorded hit, small, and
// grows them; the same loop peaks at ~0.37 GB (debug and release builds).
import { describe, expect, it } from 'vitest'
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const { createMemoryCache } = require('../../index.js')
const root = fileURLToPath(new URL('../..', import.meta.url))

/** Peak RSS (VmHWM, MB) of a child that runs `body` once, synchronously. */
function peakRssMb(body: string): { peakMb: number; out: unknown } {
  const script = `
    const { createMemoryCache } = require('./index.js')
    const out = (() => { ${body} })()
    const hwm = /VmHWM:\\s+(\\d+) kB/.exec(require('fs').readFileSync('/proc/self/status', 'utf8'))
    process.stdout.write(JSON.stringify({ peakMb: Math.round(Number(hwm[1]) / 1024), out }))
  `
  return JSON.parse(execFileSync(process.execPath, ['-e', script], { cwd: root, encoding: 'utf8', maxBuffer: 1 << 20 }))
}

describe('createMemoryCache: memory proportional to what is live', () => {
  it('200,000 caches in one synchronous loop, each with one set and get, peak under 600 MB RSS (was ~4 GB)', () => {
    for (const options of ['undefined', '{ maxSize: 1000, ttl: 60000 }']) {
      const { peakMb, out } = peakRssMb(`
        let hits = 0
        for (let i = 0; i < 200000; i++) {
          const c = createMemoryCache(${options})
          c.set('k', { ok: true, value: i })
          if (c.get('k').value === i) hits++
        }
        return hits
      `)
      expect(out, options).toBe(200_000)
      expect(peakMb, options).toBeLessThan(600)
    }
  }, 120_000)

  it('a cache that grows from empty through every metadata and hit-ring size keeps the exact LRU order', () => {
    // reference: a Map in recency order (oldest first)
    for (const maxSize of [1, 3, 50, 700]) {
      const c = createMemoryCache({ maxSize })
      const ref = new Map<string, number>()
      const touch = (k: string) => {
        const v = ref.get(k)!
        ref.delete(k)
        ref.set(k, v)
      }
      let seed = 12345 + maxSize
      const rnd = (n: number) => {
        seed = (seed * 1103515245 + 12345) & 0x7fffffff
        return seed % n
      }
      const keys = Array.from({ length: maxSize * 2 + 3 }, (_, i) => `k${i}`)
      for (let op = 0; op < 30_000; op++) {
        const k = keys[rnd(keys.length)]
        const r = rnd(10)
        if (r < 6) {
          const got = c.get(k)
          if (ref.has(k)) {
            touch(k)
            expect(got).toEqual({ ok: true, value: ref.get(k) })
          } else expect(got).toBeUndefined()
        } else if (r < 7) {
          expect(c.has(k)).toBe(ref.has(k))
          if (ref.has(k)) touch(k)
        } else if (r < 9) {
          c.set(k, { ok: true, value: op })
          if (ref.has(k)) ref.delete(k)
          else if (ref.size === maxSize) ref.delete(ref.keys().next().value!)
          ref.set(k, op)
        } else {
          expect(c.delete(k)).toBe(ref.delete(k))
        }
      }
      expect(c.size).toBe(ref.size)
      // the eviction order left is the reference's: fill with new keys and watch who goes first
      const order = [...ref.keys()]
      for (let i = 0; i < order.length; i++) {
        c.set(`new${i}`, { ok: true, value: -1 })
        if (ref.size === maxSize) expect(c.has(order[i]), `${maxSize}: ${order[i]}`).toBe(false)
      }
    }
  })
})
