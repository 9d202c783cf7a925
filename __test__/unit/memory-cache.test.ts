import { afterEach, describe, expect, it, vi } from 'vitest'
import { createRequire } from 'node:module'
import { createWorkflow } from 'awaitly/workflow'
import { createMemoryCache as createJsMemoryCache } from 'awaitly/persistence'
import { ok, err } from 'awaitly'
import { createMemoryCache as esmCreateMemoryCache } from '../../index.mjs'

const require = createRequire(import.meta.url)
const { createMemoryCache } = require('../../index.js') as typeof import('../../index.js')

const r = (value: unknown) => ({ ok: true as const, value })

function thrown(fn: () => unknown): any {
  try {
    fn()
  } catch (e) {
    return e
  }
  throw new Error('expected a throw')
}

afterEach(() => {
  vi.useRealTimers()
})

describe('createMemoryCache: StepCache contract', () => {
  it('is exported from both entry points', () => {
    expect(esmCreateMemoryCache).toBe(createMemoryCache)
  })

  it('get/set/has/delete/clear', () => {
    const c = createMemoryCache()
    expect(c.get('a')).toBeUndefined()
    expect(c.get('a')).not.toBeNull()
    expect(c.has('a')).toBe(false)
    const a = r(1)
    expect(c.set('a', a)).toBeUndefined()
    expect(c.get('a')).toBe(a)
    expect(c.has('a')).toBe(true)
    const a2 = err('E', { cause: new Error('x') })
    c.set('a', a2)
    expect(c.get('a')).toBe(a2)
    c.set('b', r(2))
    expect(c.delete('a')).toBe(true)
    expect(c.delete('a')).toBe(false)
    expect(c.get('a')).toBeUndefined()
    expect(c.has('b')).toBe(true)
    c.clear()
    expect(c.has('b')).toBe(false)
    expect(c.size).toBe(0)
    c.set('b', r(3))
    expect(c.get('b')).toEqual(r(3))
  })

  it('returns the very object stored: Dates, class instances, functions, Maps stay usable', () => {
    class User {
      constructor(public name: string) {}
      greet() {
        return `hi ${this.name}`
      }
    }
    const fn = (x: number) => x * 2
    const value = { when: new Date(1234), user: new User('ann'), fn, map: new Map([[1, 2]]), big: 10n, sym: Symbol('s') }
    const res = ok(value)
    const c = createMemoryCache({ maxSize: 10, ttl: 1000 })
    c.set('k', res)
    const got = c.get('k') as any
    expect(got).toBe(res)
    expect(got.value.when.getTime()).toBe(1234)
    expect(got.value.user).toBeInstanceOf(User)
    expect(got.value.user.greet()).toBe('hi ann')
    expect(got.value.fn(21)).toBe(42)
    expect(got.value.map.get(1)).toBe(2)
    expect(got.value.big).toBe(10n)
    const e = new TypeError('boom')
    c.set('e', err('FAILED', { cause: e }))
    expect((c.get('e') as any).cause).toBe(e)
  })

  it('keys are strings: a non-string key is a TypeError from every method (never a silent miss)', () => {
    const c = createMemoryCache()
    c.set('1', r(1))
    for (const m of ['get', 'set', 'has', 'delete'] as const) {
      const e = thrown(() => (c as any)[m](1, r(1)))
      expect(e, m).toBeInstanceOf(TypeError)
      expect(e.code).toBe('ERR_INVALID_ARG')
      expect(e.message).toBe('key must be a string, got a number')
    }
    expect(thrown(() => c.get(null as any)).message).toBe('key must be a string, got null')
    expect(thrown(() => c.has({} as any)).message).toBe('key must be a string, got an object')
    expect(c.get('1')).toEqual(r(1))
    expect(c.size).toBe(1)
    expect(c.stats().misses).toBe(0)
  })

  it('two instances of the glue in one thread (re-evaluated module) share the native registers', () => {
    const path = require.resolve('../../lib/caches/memory.js')
    const first = require(path).createMemoryCache
    delete require.cache[path]
    const second = require(path).createMemoryCache
    expect(second).not.toBe(first)
    const a = first({ maxSize: 2 })
    const b = second({ maxSize: 2 })
    for (let i = 0; i < 2000; i++) {
      a.set(`a${i % 5}`, r(i))
      b.set(`b${i % 7}`, r(-i))
      expect(a.get(`a${i % 5}`)).toEqual(r(i))
      expect(b.get(`b${i % 7}`)).toEqual(r(-i))
      expect(b.has(`a${i % 5}`)).toBe(false)
    }
    expect(a.size).toBe(2)
    expect(b.size).toBe(2)
    expect(a.stats().evictions).toBe(1998)
    expect(b.stats().evictions).toBe(1998)
  })

  it('works in worker threads (one native registry per thread)', async () => {
    const { Worker } = await import('node:worker_threads')
    const entry = require.resolve('../../index.js')
    const code = `
      const { parentPort, workerData } = require('node:worker_threads')
      const { createMemoryCache } = require(workerData.entry)
      const c = createMemoryCache({ maxSize: 3 })
      for (let i = 0; i < 10; i++) { c.set('k' + i, { ok: true, value: i }); c.get('k' + (i - 1)) }
      parentPort.postMessage({ size: c.size, last: c.get('k9').value, stats: c.stats() })
    `
    const main = createMemoryCache({ maxSize: 3 })
    main.set('m', r('main'))
    const results = await Promise.all(
      [0, 1].map(
        () =>
          new Promise((resolve, reject) => {
            const w = new Worker(code, { eval: true, workerData: { entry } })
            w.once('message', resolve)
            w.once('error', reject)
          }),
      ),
    )
    for (const res of results) {
      expect(res).toEqual({ size: 3, last: 9, stats: { hits: 10, misses: 1, evictions: 7, expirations: 0 } })
    }
    expect(main.get('m')).toEqual(r('main'))
  })

  it('grows past its initial allocation when unbounded or large', () => {
    for (const opts of [undefined, { maxSize: 100_000 }, { maxSize: 0, ttl: 0 }]) {
      const c = createMemoryCache(opts)
      const vals: object[] = []
      for (let i = 0; i < 5000; i++) {
        vals.push({ i })
        c.set(`k${i}`, r(vals[i]))
      }
      expect(c.size).toBe(5000)
      for (let i = 0; i < 5000; i += 7) expect((c.get(`k${i}`) as any).value).toBe(vals[i])
      expect(c.stats().evictions).toBe(0)
    }
  })
})

describe('LRU eviction', () => {
  it('evicts the least recently used entry; get, has and set refresh', () => {
    const c = createMemoryCache({ maxSize: 3 })
    c.set('a', r('a'))
    c.set('b', r('b'))
    c.set('c', r('c'))
    c.get('a') // order (MRU first): a c b
    c.set('d', r('d')) // evicts b
    expect(c.has('b')).toBe(false)
    expect(c.has('c')).toBe(true) // order: c d a
    c.set('e', r('e')) // evicts a
    expect(c.get('a')).toBeUndefined()
    c.set('d', r('d2')) // overwrite refreshes: d e c
    c.set('f', r('f')) // evicts c
    expect(c.has('c')).toBe(false)
    expect(c.get('d')).toEqual(r('d2'))
    expect(c.get('e')).toEqual(r('e'))
    expect(c.get('f')).toEqual(r('f'))
    expect(c.size).toBe(3)
    expect(c.stats().evictions).toBe(3)
  })

  it('differs from the JS module on purpose: that one evicts the oldest insertion', () => {
    const js = createJsMemoryCache({ maxSize: 2 })
    const native = createMemoryCache({ maxSize: 2 })
    vi.useFakeTimers()
    for (const c of [js, native]) {
      c.set('a', r(1))
      vi.advanceTimersByTime(1)
      c.set('b', r(2))
      vi.advanceTimersByTime(1)
      c.get('a')
      c.set('c', r(3))
    }
    expect(js.has('a')).toBe(false)
    expect(js.has('b')).toBe(true)
    expect(native.has('a')).toBe(true)
    expect(native.has('b')).toBe(false)
  })

  it('matches a reference LRU model over random operations (more hits than one flush batch)', () => {
    let seed = 42
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff
      return seed % n
    }
    const max = 50
    const c = createMemoryCache({ maxSize: max })
    const model = new Map<string, unknown>() // insertion order = recency (last = MRU)
    for (let i = 0; i < 30_000; i++) {
      const k = `k${rnd(120)}`
      const op = rnd(10)
      if (op < 6) {
        const want = model.get(k)
        if (want !== undefined) {
          model.delete(k)
          model.set(k, want)
        }
        expect(c.get(k)).toBe(want)
      } else if (op < 7) {
        const want = model.has(k)
        if (want) {
          const v = model.get(k)
          model.delete(k)
          model.set(k, v)
        }
        expect(c.has(k)).toBe(want)
      } else if (op < 9) {
        const v = r(i)
        if (model.has(k)) model.delete(k)
        else if (model.size === max) model.delete(model.keys().next().value!)
        model.set(k, v)
        c.set(k, v)
      } else {
        expect(c.delete(k)).toBe(model.delete(k))
      }
    }
    expect(c.size).toBe(model.size)
    for (const [k, v] of model) expect(c.get(k)).toBe(v)
  })
})

describe('TTL with the JavaScript clock (fake timers)', () => {
  it('expires after ttl ms exactly as the JS module (now - storedAt > ttl)', () => {
    vi.useFakeTimers()
    const native = createMemoryCache({ ttl: 100 })
    const js = createJsMemoryCache({ ttl: 100 })
    for (const c of [native, js]) c.set('a', r(1))
    vi.advanceTimersByTime(100)
    expect(native.get('a')).toEqual(r(1))
    expect(js.get('a')).toEqual(r(1))
    vi.advanceTimersByTime(1)
    expect(native.get('a')).toBeUndefined()
    expect(js.get('a')).toBeUndefined()
    expect(native.has('a')).toBe(false)
    expect(native.stats().expirations).toBe(1)
  })

  it('per-entry ttl overrides the default; 0 means never, like awaitly 1.35', () => {
    vi.useFakeTimers()
    const native = createMemoryCache({ ttl: 100 })
    const js = createJsMemoryCache({ ttl: 100 })
    for (const c of [native, js]) {
      c.set('short', r('s'), { ttl: 10 })
      c.set('long', r('l'), { ttl: 1000 })
      c.set('never', r('n'), { ttl: 0 })
      c.set('default', r('d'))
      c.set('undef', r('u'), { ttl: undefined })
      c.set('noopts', r('x'), {})
    }
    const live = (c: typeof native) => ['short', 'long', 'never', 'default', 'undef', 'noopts'].filter((k) => c.has(k))
    vi.advanceTimersByTime(11)
    expect(live(native)).toEqual(['long', 'never', 'default', 'undef', 'noopts'])
    expect(live(js)).toEqual(live(native))
    vi.advanceTimersByTime(100)
    expect(live(native)).toEqual(['long', 'never'])
    expect(live(js)).toEqual(live(native))
    vi.advanceTimersByTime(10_000_000)
    expect(live(native)).toEqual(['never'])
    expect(live(js)).toEqual(live(native))
  })

  it('a cache without default ttl expires entries given one', () => {
    vi.useFakeTimers()
    const c = createMemoryCache({ maxSize: 5 })
    c.set('a', r(1), { ttl: 50 })
    c.set('b', r(2))
    vi.advanceTimersByTime(51)
    expect(c.get('a')).toBeUndefined()
    expect(c.get('b')).toEqual(r(2))
  })

  it('without any ttl nothing expires, however far the clock moves', () => {
    vi.useFakeTimers()
    const c = createMemoryCache({ maxSize: 10 })
    c.set('a', r(1))
    c.set('b', r(2), { ttl: 0 })
    vi.advanceTimersByTime(1e12)
    expect(c.get('a')).toEqual(r(1))
    expect(c.get('b')).toEqual(r(2))
    expect(c.purgeStale()).toBe(false)
    expect(c.size).toBe(2)
  })

  it('hits do not extend the ttl; overwrites restart it', () => {
    vi.useFakeTimers()
    const c = createMemoryCache({ ttl: 100 })
    c.set('hit', r(1))
    c.set('rewritten', r(1))
    vi.advanceTimersByTime(60)
    expect(c.get('hit')).toEqual(r(1))
    c.set('rewritten', r(2))
    vi.advanceTimersByTime(60)
    expect(c.get('hit')).toBeUndefined()
    expect(c.get('rewritten')).toEqual(r(2))
  })

  it('vi.setSystemTime moves expiry too', () => {
    vi.useFakeTimers()
    vi.setSystemTime(new Date('2030-01-01T00:00:00Z'))
    const c = createMemoryCache({ ttl: 60_000 })
    c.set('a', r(1))
    vi.setSystemTime(new Date('2030-01-01T00:01:00Z'))
    expect(c.has('a')).toBe(true)
    vi.setSystemTime(new Date('2030-01-01T00:01:00.001Z'))
    expect(c.has('a')).toBe(false)
  })

  it('expired entries are never returned, and delete of one reports false', () => {
    vi.useFakeTimers()
    const c = createMemoryCache({ ttl: 10 })
    c.set('a', r(1))
    c.set('b', r(2))
    vi.advanceTimersByTime(11)
    expect(c.delete('a')).toBe(false)
    expect(c.get('b')).toBeUndefined()
    expect(c.stats()).toEqual({ hits: 0, misses: 1, evictions: 0, expirations: 2 })
  })

  it('when full, an expired LRU entry is reclaimed and counted as an expiration', () => {
    vi.useFakeTimers()
    const c = createMemoryCache({ maxSize: 2, ttl: 10 })
    c.set('a', r(1))
    c.set('b', r(2), { ttl: 1000 })
    vi.advanceTimersByTime(20)
    c.set('c', r(3))
    expect(c.stats()).toMatchObject({ evictions: 0, expirations: 1 })
    expect(c.get('b')).toEqual(r(2))
    c.set('d', r(4)) // c is LRU now, and live
    expect(c.stats()).toMatchObject({ evictions: 1, expirations: 1 })
    expect(c.has('c')).toBe(false)
  })
})

describe('size, stats, purgeStale', () => {
  it('size counts live entries only; purgeStale removes expired ones', () => {
    vi.useFakeTimers()
    const c = createMemoryCache({ maxSize: 100, ttl: 100 })
    for (let i = 0; i < 10; i++) c.set(`a${i}`, r(i))
    vi.advanceTimersByTime(50)
    for (let i = 0; i < 5; i++) c.set(`b${i}`, r(i))
    expect(c.size).toBe(15)
    expect(c.purgeStale()).toBe(false)
    vi.advanceTimersByTime(51)
    expect(c.size).toBe(5)
    expect(c.stats().expirations).toBe(10)
    vi.advanceTimersByTime(50)
    expect(c.purgeStale()).toBe(true)
    expect(c.size).toBe(0)
    expect(c.stats().expirations).toBe(15)
    // the slots are reused
    c.set('z', r('z'))
    expect(c.get('z')).toEqual(r('z'))
    expect(c.get('a0')).toBeUndefined()
  })

  it('stats counts get hits and misses (has does not), evictions and expirations', () => {
    const c = createMemoryCache({ maxSize: 1 })
    expect(c.stats()).toEqual({ hits: 0, misses: 0, evictions: 0, expirations: 0 })
    c.get('x')
    c.set('a', r(1))
    c.get('a')
    c.get('a')
    c.has('a')
    c.has('zz')
    c.set('b', r(2))
    c.clear()
    expect(c.stats()).toEqual({ hits: 2, misses: 1, evictions: 1, expirations: 0 })
  })
})

describe('invalid options', () => {
  const cases: [unknown, string][] = [
    [{ maxSize: -1 }, 'maxSize must be a non-negative integer (entries), got -1'],
    [{ maxSize: 1.5 }, 'maxSize must be a non-negative integer (entries), got 1.5'],
    [{ maxSize: NaN }, 'maxSize must be a non-negative integer (entries), got NaN'],
    [{ maxSize: '10' }, 'maxSize must be a non-negative integer (entries), got a string'],
    [{ maxSize: null }, 'maxSize must be a non-negative integer (entries), got null'],
    [{ ttl: -5 }, 'ttl must be a non-negative number of milliseconds, got -5'],
    [{ ttl: NaN }, 'ttl must be a non-negative number of milliseconds, got NaN'],
    [{ ttl: '1s' }, 'ttl must be a non-negative number of milliseconds, got a string'],
    [{ ttl: {} }, 'ttl must be a non-negative number of milliseconds, got an object'],
    [null, 'options must be an object, got null'],
    [5, 'options must be an object, got a number'],
  ]
  for (const [opts, message] of cases) {
    it(`${JSON.stringify(opts) ?? String(opts)} → TypeError`, () => {
      const e = thrown(() => createMemoryCache(opts as any))
      expect(e).toBeInstanceOf(TypeError)
      expect(e.code).toBe('ERR_INVALID_ARG')
      expect(e.message).toBe(message)
    })
  }

  it('accepts absent, 0 and Infinity as "no limit" / "no expiry"', () => {
    for (const opts of [undefined, {}, { maxSize: 0, ttl: 0 }, { maxSize: Infinity, ttl: Infinity }]) {
      const c = createMemoryCache(opts as any)
      c.set('a', r(1))
      expect(c.get('a')).toEqual(r(1))
    }
  })

  it('set options are validated too, and a bad call changes nothing', () => {
    const c = createMemoryCache({ maxSize: 2 })
    c.set('a', r(1))
    for (const [opts, message] of [
      [{ ttl: -1 }, 'options.ttl must be a non-negative number of milliseconds, got -1'],
      [{ ttl: NaN }, 'options.ttl must be a non-negative number of milliseconds, got NaN'],
      [{ ttl: '5' }, 'options.ttl must be a non-negative number of milliseconds, got a string'],
      [{ ttl: null }, 'options.ttl must be a non-negative number of milliseconds, got null'],
      [7, 'options must be an object, got a number'],
    ] as const) {
      for (const key of ['a', 'new']) {
        const e = thrown(() => c.set(key, r(2), opts as any))
        expect(e).toBeInstanceOf(TypeError)
        expect(e.code).toBe('ERR_INVALID_ARG')
        expect(e.message).toBe(message)
      }
    }
    expect(c.get('a')).toEqual(r(1))
    expect(c.has('new')).toBe(false)
    expect(c.size).toBe(1)
  })
})

describe("awaitly's engine", () => {
  it('createWorkflow with the native cache skips a cached step on the second run', async () => {
    const cache = createMemoryCache({ maxSize: 100, ttl: 60_000 })
    let calls = 0
    const fetchUser = async (id: string) => {
      calls++
      return ok({ id, at: new Date(0) })
    }
    const wf = createWorkflow('users', { fetchUser }, { cache })
    const body = async ({ step, deps }: any) => step('fetchUser', () => deps.fetchUser('1'), { key: 'user:1' })
    const first = await wf.run(body)
    const second = await wf.run(body)
    expect(calls).toBe(1)
    expect(first).toEqual({ ok: true, value: { id: '1', at: new Date(0) } })
    expect(second).toEqual(first)
    expect((second as any).value.at).toBeInstanceOf(Date)
    expect(cache.has('user:1')).toBe(true)
  })

  it('a cached error is replayed and the step ttl reaches the cache', async () => {
    vi.useFakeTimers()
    const cache = createMemoryCache()
    let calls = 0
    const load = async () => {
      calls++
      return err('NOPE' as const)
    }
    const wf = createWorkflow('errs', { load }, { cache })
    const body = async ({ step, deps }: any) => step('load', () => deps.load(), { key: 'load', ttl: 1000 })
    const a = await wf.run(body)
    const b = await wf.run(body)
    expect(a.ok).toBe(false)
    expect((b as any).error).toBe('NOPE')
    expect(calls).toBe(1)
    vi.advanceTimersByTime(1001)
    await wf.run(body)
    expect(calls).toBe(2)
  })
})
