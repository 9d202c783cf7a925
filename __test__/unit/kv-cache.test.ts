import { afterAll, describe, expect, it } from 'vitest'
import { createRequire } from 'node:module'
import { createMapStore } from '../helpers/map-store'
import { withTransport } from '../helpers/redis-server'

const require = createRequire(import.meta.url)
const lib = require('../../index.js')
const { createKVCache, createRedisStore, ok, err, escapeGlob } = lib

const base = `kv-test:${process.pid}:${Date.now()}:`
const redis = createRedisStore()

afterAll(async () => {
  for (const k of await redis.keys(`${escapeGlob(base)}*`)) await redis.delete(k)
  await redis.close()
})

function recordingStore() {
  const inner = createMapStore()
  const calls: any[][] = []
  return {
    calls,
    get: (k: string) => (calls.push(['get', k]), inner.get(k)),
    set: (k: string, v: string, o?: any) => (calls.push(['set', k, o]), inner.set(k, v, o)),
    delete: (k: string) => (calls.push(['delete', k]), inner.delete(k)),
    exists: (k: string) => (calls.push(['exists', k]), inner.exists(k)),
    keys: (p: string) => (calls.push(['keys', p]), inner.keys(p)),
  }
}

describe('createKVCache options', () => {
  it('rejects bad ttl values with a TypeError at creation', () => {
    for (const ttl of [-1, 1.5, '10', NaN, Infinity, null, {}]) {
      let e: any
      try {
        createKVCache({ store: createMapStore(), ttl })
      } catch (x) {
        e = x
      }
      expect(e, String(ttl)).toBeInstanceOf(TypeError)
      expect(e.code).toBe('ERR_INVALID_ARG')
      expect(e.message).toMatch(/ttl/)
    }
    expect(() => createKVCache({ store: createMapStore(), ttl: 0 })).not.toThrow()
    expect(() => createKVCache({ store: createMapStore() })).not.toThrow()
  })

  it('rejects a store without the five methods, and bad prefixes', () => {
    expect(() => createKVCache({})).toThrow(TypeError)
    expect(() => createKVCache({ store: { get() {}, set() {}, delete() {}, exists() {} } })).toThrow(/keys/)
    expect(() => createKVCache({ store: createMapStore(), prefix: 3 })).toThrow(TypeError)
    expect(() => createKVCache({ store: createMapStore(), memoryMaxSize: -1 })).toThrow(TypeError)
  })

  it('ttl absent or 0 sends no ttl (never EX 0); a ttl is passed in seconds', async () => {
    for (const [ttl, expected] of [[undefined, undefined], [0, undefined], [30, { ttl: 30 }]] as const) {
      const s = recordingStore()
      const c = createKVCache({ store: s, prefix: 'p:', ttl })
      await c.setAsync('k', ok(1))
      const write = s.calls.find((x) => x[0] === 'set' && x[1] === 'p:k')
      expect(write?.[2]).toEqual(expected)
    }
  })

  it('on native Redis: ttl 0 leaves no expiry, ttl N sets EX N', async () => {
    const none = createKVCache({ store: redis, prefix: `${base}t0:`, ttl: 0 })
    const some = createKVCache({ store: redis, prefix: `${base}t1:`, ttl: 100 })
    await none.setAsync('a', ok(1))
    await some.setAsync('a', ok(1))
    const { createClient } = require('redis')
    const c = createClient({ url: 'redis://127.0.0.1:6379' })
    await c.connect()
    try {
      expect(await c.ttl(`${base}t0:a`)).toBe(-1)
      const t = await c.ttl(`${base}t1:a`)
      expect(t).toBeGreaterThan(90)
      expect(t).toBeLessThanOrEqual(100)
    } finally {
      await c.quit()
    }
  })
})

describe('createKVCache behaviour', () => {
  for (const [name, make] of [
    ['native-redis', () => redis],
    ['js-map', () => createMapStore()],
  ] as const) {
    it(`${name}: async methods store JS-module JSON at prefix+key; with writeBehind: false sync methods use the memory layer only`, async () => {
      const store: any = make()
      const prefix = `${base}${name}:`
      const c = createKVCache({ store, prefix, writeBehind: false })
      const failure = err('E', { cause: new Error('boom') })
      await c.setAsync('a', ok({ x: 1 }))
      await c.setAsync('b', failure)
      expect(await store.get(`${prefix}a`)).toBe('{"ok":true,"value":{"x":1}}')
      expect(c.get('a')).toEqual(ok({ x: 1 }))
      c.clear()
      expect(c.get('a')).toBeUndefined()
      expect(await c.getAsync('a')).toEqual(ok({ x: 1 }))
      expect(c.has('a')).toBe(true)
      const b = await c.getAsync('b')
      expect(b.ok).toBe(false)
      expect(b.error).toBe('E')
      expect(b.cause).toBeInstanceOf(Error)
      expect(b.cause.message).toBe('boom')
      expect(await c.hasAsync('a')).toBe(true)
      expect(await c.hasAsync('zz')).toBe(false)
      expect(await c.getAsync('zz')).toBeUndefined()
      expect(await c.deleteAsync('a')).toBe(true)
      expect(c.has('a')).toBe(false)
      expect(await c.deleteAsync('a')).toBe(false)
      c.set('sync-only', ok(2))
      expect(c.get('sync-only')).toEqual(ok(2))
      expect(await c.getAsync('sync-only')).toBeUndefined()
      // ids with glob characters are plain keys
      await c.setAsync('id*[?]', ok('g'))
      expect(await c.getAsync('id*[?]')).toEqual(ok('g'))
      await c.clearAsync()
      expect(await c.hasAsync('id*[?]')).toBe(false)
      expect(await c.hasAsync('b')).toBe(false)
    })

    it(`${name}: a corrupt stored value rejects with ERR_CORRUPT, not a miss`, async () => {
      const store: any = make()
      const prefix = `${base}${name}:corrupt:`
      const c = createKVCache({ store, prefix })
      for (const [i, text] of ['{not json', '42', '"str"', 'null', '{"value":1}', ''].entries()) {
        await store.set(`${prefix}k${i}`, text)
        const e = await c.getAsync(`k${i}`).then(
          () => null,
          (x: any) => x,
        )
        expect(e, text).toBeInstanceOf(Error)
        expect(e.code).toBe('ERR_CORRUPT')
        await store.delete(`${prefix}k${i}`)
      }
    })
  }

  it('the memory layer is bounded (LRU, memoryMaxSize, default 1000)', async () => {
    const c = createKVCache({ store: createMapStore(), memoryMaxSize: 3 })
    for (const k of ['a', 'b', 'c']) c.set(k, ok(k))
    expect(c.get('a')).toEqual(ok('a')) // refresh a
    c.set('d', ok('d'))
    expect(c.has('b')).toBe(false)
    expect(['a', 'c', 'd'].every((k) => c.has(k))).toBe(true)
    const d = createKVCache({ store: createMapStore() })
    for (let i = 0; i < 1500; i++) d.set(`k${i}`, ok(i))
    expect(d.has('k499')).toBe(false)
    expect(d.has('k500')).toBe(true)
    expect(d.has('k1499')).toBe(true)
    const off = createKVCache({ store: createMapStore(), memoryMaxSize: 0 })
    off.set('x', ok(1))
    expect(off.has('x')).toBe(false)
  })
})

describe('native store batching', () => {
  // both transports: the JS-thread socket and tokio; store.batchesSent counts
  // the native calls (one pipeline each), store.callsSent the calls they carried
  for (const transport of ['direct', 'tokio'] as const) {
    it(`the calls made in one tick go to Rust as pipelines of up to maxBatch (4, 8, 16... first on an idle JS-thread connection): ${transport}`, async () => {
      const open = (options: Record<string, unknown> = {}) => createRedisStore(withTransport(transport, options))
      const s = open({ maxBatch: 1000 })
      expect(s.transport).toBe(transport)
      const c = createKVCache({ store: s, prefix: `${base}batch:${transport}:` })
      await Promise.all(Array.from({ length: 100 }, (_, i) => c.setAsync(`k${i}`, ok(i))))
      // direct: 4 + 8 + 16 + 32 + 41; tokio: one pipeline of 101
      const ramped = transport === 'direct'
      expect(s.batchesSent).toBe(ramped ? 5 : 1)
      expect(s.callsSent).toBe(101) // 100 SETs + the owner registration
      const got = await Promise.all(Array.from({ length: 100 }, (_, i) => c.getAsync(`k${i}`)))
      expect(got.map((r: any) => r.value)).toEqual(Array.from({ length: 100 }, (_, i) => i))
      // each tick starts small again: 4 + 8 + 16 + 32 + 40
      const two = ramped ? 10 : 2
      expect(s.batchesSent).toBe(two)
      // sequential awaits: one call each
      await s.get(`${base}batch:${transport}:k1`)
      await s.get(`${base}batch:${transport}:k2`)
      expect(s.batchesSent).toBe(two + 2)
      // the default maxBatch (32) caps them: 4 + 8 + 16 + 32 + 32 + 8, or 32 + 32 + 32 + 4
      const d = open()
      await Promise.all(Array.from({ length: 100 }, (_, i) => d.get(`${base}batch:${transport}:k${i}`)))
      expect(d.batchesSent).toBe(ramped ? 6 : 4)
      expect(d.callsSent).toBe(100)
      // and so does the text: a pipeline is sent once its keys and values
      // reach 32K UTF-16 units (10 sets of 10,000 units: 4 + 4 + 2)
      const big = 'b'.repeat(10_000)
      await Promise.all(Array.from({ length: 10 }, (_, i) => s.set(`${base}batch:${transport}:big${i}`, big)))
      expect(s.batchesSent).toBe(two + 2 + 3)
      expect(await s.get(`${base}batch:${transport}:big9`)).toBe(big)
      await Promise.all(Array.from({ length: 10 }, (_, i) => s.delete(`${base}batch:${transport}:big${i}`)))
      await d.close()
      await c.clearAsync()
      await s.close()
    })
  }
})
