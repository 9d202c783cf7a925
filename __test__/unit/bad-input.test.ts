// Bad input that used to get through (issue 9, item 5): every case is a
// TypeError with a code, thrown or rejected BEFORE anything is written — each
// test checks that the store (real Redis under a private prefix, a recording
// JS store, or the directory) holds nothing afterwards.
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest'
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'
import path from 'node:path'
import { createMapStore } from '../helpers/map-store'

const require = createRequire(import.meta.url)
const lib = require('../../index.js')
const { createKVCache, createRedisStore, createFileStore, createFileCache, createStatePersistence, createHydratingCache, createMemoryCache, ok, escapeGlob } =
  lib

const base = `bad-input:${process.pid}:${Date.now()}:`
const redis = createRedisStore()

/** Every Redis key under `prefix` (one of ours), owner markers included. */
async function ours(prefix = base): Promise<string[]> {
  return redis.keys(`${escapeGlob(prefix)}*`)
}

afterAll(async () => {
  for (const k of await ours()) await redis.delete(k)
  await redis.close()
})

async function rejection(p: unknown): Promise<any> {
  try {
    await p
  } catch (e) {
    return e
  }
  throw new Error('expected a rejection')
}

function thrown(f: () => unknown): any {
  try {
    f()
  } catch (e) {
    return e
  }
  throw new Error('expected a throw')
}

function expectInvalidArg(e: any, what: string, pattern?: RegExp) {
  expect(e, what).toBeInstanceOf(TypeError)
  expect(e.code, what).toBe('ERR_INVALID_ARG')
  if (pattern) expect(e.message, what).toMatch(pattern)
}

/** A JS KeyValueStore that records every call (none may happen for bad input). */
function recordingStore() {
  const inner = createMapStore()
  const calls: string[] = []
  const rec =
    (m: 'get' | 'set' | 'delete' | 'exists' | 'keys') =>
    (...a: any[]) => {
      calls.push(`${m} ${a[0]}`)
      return (inner as any)[m](...a)
    }
  return { calls, inner, get: rec('get'), set: rec('set'), delete: rec('delete'), exists: rec('exists'), keys: rec('keys') }
}

const BAD_KEYS: unknown[] = [1, undefined, null, {}, ['k'], true, Symbol('s'), 1n]

const circular = () => {
  const o: any = { a: 1 }
  o.self = o
  return o
}

describe('KV cache: a non-string key is rejected by every method before any store call', () => {
  for (const memoryMaxSize of [undefined, 0]) {
    it(`over native Redis (memoryMaxSize ${memoryMaxSize ?? 'default'}): nothing is written, no owner key either`, async () => {
      const prefix = `${base}keys-${memoryMaxSize ?? 'd'}:`
      const cache = createKVCache({ store: redis, prefix, memoryMaxSize })
      for (const key of BAD_KEYS) {
        const what = `${String(key)} / ${memoryMaxSize}`
        for (const m of ['getAsync', 'hasAsync', 'deleteAsync'] as const) {
          expectInvalidArg(await rejection(cache[m](key)), `${m}(${what})`, /key must be a string/)
        }
        expectInvalidArg(await rejection(cache.setAsync(key, ok(1))), `setAsync(${what})`, /key must be a string/)
        for (const m of ['get', 'has', 'delete'] as const) {
          expectInvalidArg(thrown(() => cache[m](key)), `${m}(${what})`, /key must be a string/)
        }
        expectInvalidArg(thrown(() => cache.set(key, ok(1))), `set(${what})`, /key must be a string/)
      }
      // `prefix:1`, `prefix:undefined`, `prefix:null`, `prefix:[object Object]` were written before
      expect(await ours(prefix)).toEqual([])
      // the cache still works for a string key
      await cache.setAsync('1', ok(1))
      expect(await cache.getAsync('1')).toEqual(ok(1))
      // the entry, and the cache's owner marker inside its prefix (written with its first write)
      expect((await redis.keys(`${escapeGlob(prefix)}*`)).sort()).toEqual([`${prefix}1`, `${prefix}__awaitly:owner:cache`])
      expect(await cache.deleteAsync('1')).toBe(true)
    })
  }

  it('over a JS store: no store method is even called', async () => {
    const store = recordingStore()
    const cache = createKVCache({ store, prefix: 'p:', memoryMaxSize: 0 })
    for (const key of BAD_KEYS) {
      for (const m of ['getAsync', 'hasAsync', 'deleteAsync'] as const) {
        expectInvalidArg(await rejection(cache[m](key)), `${m}(${String(key)})`)
      }
      expectInvalidArg(await rejection(cache.setAsync(key, ok(1))), `setAsync(${String(key)})`)
    }
    expect(store.calls).toEqual([])
  })

  it('the memory and file caches take keys the same way (one check, one message)', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'bad-input-fc-'))
    try {
      const caches = [createMemoryCache(), createFileCache({ directory: dir }), createFileCache({ directory: dir, memoryMaxSize: 0 })]
      for (const c of caches) {
        for (const m of ['get', 'has', 'delete'] as const) {
          expect(thrown(() => c[m](1)).message).toBe('key must be a string, got a number')
        }
        expect(thrown(() => c.set(null, ok(1))).message).toBe('key must be a string, got null')
      }
      expect((await rejection(caches[1].getAsync(1))).message).toBe('key must be a string, got a number')
      expect(readdirSync(dir)).toEqual([])
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('KV cache setAsync: the value is checked as the file cache checks it, before any write', () => {
  const notResults: [string, unknown][] = [
    ['{}', {}],
    ['null', null],
    ['5', 5],
    ['"ok"', 'ok'],
    ['[]', []],
    ['{ ok: 1 }', { ok: 1 }],
  ]

  it('a non-Result is a TypeError (it stored {"ok":false}), over Redis and a JS store', async () => {
    const prefix = `${base}result:`
    const js = recordingStore()
    const dir = mkdtempSync(path.join(os.tmpdir(), 'bad-input-fc-'))
    try {
      const file = createFileCache({ directory: dir })
      for (const cache of [createKVCache({ store: redis, prefix }), createKVCache({ store: js, prefix })]) {
        for (const [what, value] of notResults) {
          const e = await rejection(cache.setAsync('k', value))
          expectInvalidArg(e, what, /^result for key "k" must be a Result \(\{ ok: true, value \} or \{ ok: false, error \}\), got /)
          // the same check, the same message as the file cache
          expect((await rejection(file.setAsync('k', value))).message, what).toBe(e.message)
          expect(cache.get('k'), what).toBeUndefined()
        }
      }
      expect(readdirSync(dir)).toEqual([])
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
    expect(js.calls).toEqual([])
    expect(await ours(prefix)).toEqual([])
  })

  it('circular and BigInt values: TypeError ERR_INVALID_ARG naming the key (V8 error as cause), nothing written', async () => {
    const prefix = `${base}json:`
    const js = recordingStore()
    const dir = mkdtempSync(path.join(os.tmpdir(), 'bad-input-fc-'))
    try {
      const caches = [createKVCache({ store: redis, prefix }), createKVCache({ store: js, prefix, memoryMaxSize: 0 }), createFileCache({ directory: dir })]
      for (const cache of caches) {
        for (const [what, value] of [
          ['circular value', ok(circular())],
          ['BigInt value', ok({ n: 1n })],
          ['circular error', { ok: false, error: circular() }],
        ] as const) {
          const e = await rejection(cache.setAsync('step:1', value))
          expectInvalidArg(e, what, /^result for key "step:1" cannot be stored as JSON: /)
          expect(e.cause, what).toBeInstanceOf(TypeError)
          expect(e.cause.code, what).toBeUndefined()
        }
        // too deep: RangeError with code, naming the key
        let deep: any = 1
        for (let i = 0; i < 20_000; i++) deep = [deep]
        const e = await rejection(cache.setAsync('step:1', ok(deep)))
        expect(e).toBeInstanceOf(RangeError)
        expect(e.code).toBe('ERR_OUT_OF_RANGE')
        expect(e.message).toMatch(/^result for key "step:1" is too deep/)
        // an error thrown by the user's own toJSON is not ours: it passes through untouched
        const own = new Error('mine')
        expect(await rejection(cache.setAsync('step:1', ok({ toJSON: () => { throw own } })))).toBe(own)
      }
      expect(readdirSync(dir)).toEqual([])
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
    expect(js.calls).toEqual([])
    expect(await ours(prefix)).toEqual([])
  })
})

describe('hydrate() over a persistence whose load returns a non-state', () => {
  function memory() {
    const m = new Map<string, any>()
    return { m, get: (k: string) => m.get(k), set: (k: string, v: any) => void m.set(k, v), has: (k: string) => m.has(k), delete: (k: string) => m.delete(k), clear: () => m.clear() }
  }
  const cases: [string, unknown, RegExp][] = [
    ['{}', {}, /steps must be a Map, got undefined/],
    ['{ steps: 5 }', { steps: 5 }, /steps must be a Map, got a number/],
    ['{ steps: null }', { steps: null }, /steps must be a Map, got null/],
    ['5', 5, /the state must be an object like \{ steps: Map \}, got a number/],
    ['"state"', 'state', /the state must be an object/],
    ['false', false, /got a boolean/],
    ['an entry that is null', { steps: new Map<string, any>([['a', { result: ok(1) }], ['b', null]]) }, /steps\.get\("b"\) must be an entry \{ result, meta\? \}, got null/],
    ['a result that is not a Result', { steps: new Map([['a', { result: ok(1) }], ['b', { result: { value: 1 } }]]) }, /steps\.get\("b"\)\.result must be a Result, got an object/],
    ['a non-string key', { steps: new Map<any, any>([[1, { result: ok(1) }]]) }, /a step key must be a string, got a number/],
    ['steps items that are not pairs', { steps: [5] }, /each step must be a \[key, entry\] pair, got a number/],
  ]
  for (const [what, loaded, message] of cases) {
    it(`${what}: TypeError ERR_INVALID_DOCUMENT naming the run and the problem; nothing is set`, async () => {
      const mem = memory()
      const cache = createHydratingCache(mem, { load: async () => loaded }, 'run-7')
      const e = await rejection(cache.hydrate())
      expect(e).toBeInstanceOf(TypeError)
      expect(e.code).toBe('ERR_INVALID_DOCUMENT')
      expect(e.message).toMatch(/^hydrate: persistence\.load\("run-7"\) did not return a ResumeState: /)
      expect(e.message).toMatch(message)
      expect(e.message).not.toMatch(/is not iterable/)
      expect(mem.m.size).toBe(0)
    })
  }

  it('undefined and null mean nothing saved; a failed hydrate can be retried', async () => {
    let answer: unknown = {}
    const mem = memory()
    const cache = createHydratingCache(mem, { load: async () => answer }, 'r')
    expect((await rejection(cache.hydrate())).code).toBe('ERR_INVALID_DOCUMENT')
    answer = { steps: new Map([['a', { result: ok(1) }]]) }
    await cache.hydrate()
    expect(cache.get('a')).toEqual(ok(1))
    for (const nothing of [undefined, null]) {
      const c = createHydratingCache(memory(), { load: async () => nothing }, 'r')
      await expect(c.hydrate()).resolves.toBeUndefined()
    }
  })
})

describe('file store set options are validated exactly as the Redis store validates them', () => {
  let root: string
  beforeEach(() => {
    root = mkdtempSync(path.join(os.tmpdir(), 'bad-input-fs-'))
  })
  afterEach(() => rmSync(root, { recursive: true, force: true }))

  const badOptions: [string, unknown][] = [
    ['5', 5],
    ['"60"', '60'],
    ['{ ttl: 1.5 }', { ttl: 1.5 }],
    ['{ ttl: -1 }', { ttl: -1 }],
    ['{ ttl: NaN }', { ttl: NaN }],
    ['{ ttl: Infinity }', { ttl: Infinity }],
    ['{ ttl: "5" }', { ttl: '5' }],
    ['{ ttl: 2 ** 32 }', { ttl: 2 ** 32 }],
  ]

  it('the same TypeError (class, code, message) as createRedisStore, and no file', async () => {
    const dir = path.join(root, 'store')
    const store = createFileStore({ directory: dir })
    const key = `${base}opts`
    for (const [what, opts] of badOptions) {
      const fromFile = await rejection(store.set(key, 'v', opts))
      const fromRedis = await rejection(redis.set(key, 'v', opts))
      expectInvalidArg(fromFile, what)
      expectInvalidArg(fromRedis, what)
      expect(fromFile.message, what).toBe(fromRedis.message)
    }
    expect(existsSync(dir) ? readdirSync(dir) : []).toEqual([])
    expect(await ours(key)).toEqual([])
    // accepted by both: absent, null, {}, { ttl: 0 }, { ttl: null }, whole seconds
    for (const opts of [undefined, null, {}, { ttl: 0 }, { ttl: null }, { ttl: 60 }]) {
      await store.set('ok', 'v', opts)
    }
    expect(await store.keys('*')).toEqual(['ok'])
  })
})

describe('state persistence save: metadata is absent or an object', () => {
  const state = { steps: new Map([['a', { result: ok(1) }]]) }
  const bad: [string, unknown, string][] = [
    ['5', 5, 'a number'],
    ['null', null, 'null'],
    ['an array', [1], 'an array'],
    ['a string', 'm', 'a string'],
    ['a function', () => 1, 'a function'],
    ['true', true, 'a boolean'],
  ]

  it('anything else is a TypeError ERR_INVALID_ARG before anything is written (Redis: no key, no owner key)', async () => {
    const prefix = `${base}state:`
    const js = recordingStore()
    for (const p of [createStatePersistence(redis, prefix), createStatePersistence(js, prefix)]) {
      for (const [what, metadata, got] of bad) {
        const e = await rejection(p.save('run-1', state, metadata))
        expectInvalidArg(e, what)
        expect(e.message, what).toBe(`save: metadata must be an object (Record<string, unknown>) or absent, got ${got}`)
      }
    }
    expect(js.calls).toEqual([])
    expect(await ours(prefix)).toEqual([])
    // absent and objects are saved, and the metadata is stored as given
    const p = createStatePersistence(js, prefix)
    await p.save('run-1', state)
    await p.save('run-2', state, { user: 'u1', nested: { n: 1 } })
    expect(JSON.parse(await js.inner.get(`${prefix}run-2`)).metadata).toEqual({ user: 'u1', nested: { n: 1 } })
  })
})
