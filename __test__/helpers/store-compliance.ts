// The KeyValueStore compliance suite, written once and run against every
// store we ship or document: call defineStoreCompliance(name, makeStore) from
// a test file. makeStore may be async; `close` tears the store down.
// Each run works under its own key prefix and removes what it wrote
// (including the owner markers of its prefixes).
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const lib = require('../../index.js')
const { escapeGlob, createKVCache, createStatePersistence, ok, err } = lib

export interface KeyValueStore {
  get(key: string): Promise<string | null>
  set(key: string, value: string, options?: { ttl?: number }): Promise<void>
  delete(key: string): Promise<boolean>
  exists(key: string): Promise<boolean>
  keys(pattern: string): Promise<string[]>
}

export interface ComplianceOptions<S extends KeyValueStore> {
  close?: (store: S) => Promise<void> | void
  /**
   * The store is private to this run (nothing else uses it): the suite may
   * also use the JS module's literal default prefixes `workflow:` and
   * `workflow:state:`.
   */
  isolated?: boolean
  /** The store keeps owner markers out of its keys (the native file store: hidden files). */
  hiddenOwners?: boolean
}

const sorted = (a: string[]) => [...a].sort()
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export function defineStoreCompliance<S extends KeyValueStore>(
  name: string,
  makeStore: () => S | Promise<S>,
  options: ComplianceOptions<S> = {},
) {
  describe(`KeyValueStore compliance: ${name}`, () => {
    let store: S
    const base = `cmp:${name.replace(/[^A-Za-z0-9]/g, '_')}:${process.pid}:${Date.now()}:`
    const k = (s: string) => `${base}${s}`
    const under = (s = '') => `${escapeGlob(base + s)}*`

    beforeAll(async () => {
      store = await makeStore()
    })

    afterAll(async () => {
      if (!store) return
      const mine = await store.keys(under())
      const rest = options.isolated ? await store.keys('workflow:*') : []
      for (const key of [...mine, ...rest]) await store.delete(key)
      expect(await store.keys(under())).toEqual([])
      await options.close?.(store)
    })

    it('get/set/delete/exists round trip', async () => {
      expect(await store.get(k('missing'))).toBeNull()
      expect(await store.exists(k('missing'))).toBe(false)
      expect(await store.delete(k('missing'))).toBe(false)
      await store.set(k('a'), 'one')
      expect(await store.get(k('a'))).toBe('one')
      expect(await store.exists(k('a'))).toBe(true)
      await store.set(k('a'), 'two')
      expect(await store.get(k('a'))).toBe('two')
      expect(await store.delete(k('a'))).toBe(true)
      expect(await store.delete(k('a'))).toBe(false)
      expect(await store.get(k('a'))).toBeNull()
      expect(await store.exists(k('a'))).toBe(false)
    })

    it('keeps values exactly: unicode, 1 KB, empty string, JSON', async () => {
      const values = ['', 'héllo wörld ✓ 🚀', 'x'.repeat(1024), JSON.stringify({ ok: true, value: [1, 'a', null] })]
      await Promise.all(values.map((v, i) => store.set(k(`v${i}`), v)))
      expect(await Promise.all(values.map((_, i) => store.get(k(`v${i}`))))).toEqual(values)
      await Promise.all(values.map((_, i) => store.delete(k(`v${i}`))))
      // non-ASCII keys, mixed in one batch with ASCII ones
      const keys = ['ключ', 'clé-✓', '🚀:x', 'plain']
      await Promise.all(keys.map((key, i) => store.set(k(key), `${key}=${i}é`)))
      expect(await Promise.all(keys.map((key) => store.get(k(key))))).toEqual(keys.map((key, i) => `${key}=${i}é`))
      const listed = await store.keys(`${escapeGlob(k(''))}*`)
      expect(sorted(listed.filter((x) => keys.includes(x.slice(base.length))))).toEqual(sorted(keys.map(k)))
      expect(await store.keys(escapeGlob(k('🚀:x')))).toEqual([k('🚀:x')])
      await Promise.all(keys.map((key) => store.delete(k(key))))
    })

    it('keys(pattern) follows Redis globs, with escaped metacharacters matching themselves', async () => {
      const names = ['a1', 'a2', 'b1', 'a*x', 'aYx', 'a%y', 'aQy', 'a_z', 'aQz', '[q]', 'q', 'back\\slash']
      await Promise.all(names.map((n) => store.set(k(`g:${n}`), n)))
      const g = (p: string) => `${escapeGlob(k('g:'))}${p}`
      const got = async (p: string) => sorted((await store.keys(g(p))).map((x) => x.slice(k('g:').length)))
      expect(await got('*')).toEqual(sorted(names))
      expect(await got('a?')).toEqual(['a1', 'a2'])
      expect(await got('a*')).toEqual(sorted(['a1', 'a2', 'a*x', 'aYx', 'a%y', 'aQy', 'a_z', 'aQz']))
      expect(await got('a\\*x')).toEqual(['a*x'])
      expect(await got('a%y')).toEqual(['a%y'])
      expect(await got('a_z')).toEqual(['a_z'])
      expect(await got('[ab]1')).toEqual(['a1', 'b1'])
      expect(await got(escapeGlob('[q]'))).toEqual(['[q]'])
      expect(await got(escapeGlob('back\\slash'))).toEqual(['back\\slash'])
      expect(await got('nothing*')).toEqual([])
      // a prefix full of metacharacters, escaped, matches only itself
      await store.set(k('m*[x]?:1'), '1')
      await store.set(k('mZ[x]?:1'), '1')
      await store.set(k('mZx?:1'), '1')
      expect(await store.keys(under('m*[x]?:'))).toEqual([k('m*[x]?:1')])
      await Promise.all([...names.map((n) => store.delete(k(`g:${n}`))), store.delete(k('m*[x]?:1')), store.delete(k('mZ[x]?:1')), store.delete(k('mZx?:1'))])
    })

    it('ttl (seconds) expires entries; absent or 0 never does', async () => {
      await store.set(k('t:short'), 's', { ttl: 1 })
      await store.set(k('t:none'), 'n')
      await store.set(k('t:zero'), 'z', { ttl: 0 })
      expect(await store.get(k('t:short'))).toBe('s')
      expect(await store.exists(k('t:short'))).toBe(true)
      await sleep(2100)
      expect(await store.get(k('t:short'))).toBeNull()
      expect(await store.exists(k('t:short'))).toBe(false)
      expect(sorted(await store.keys(under('t:')))).toEqual([k('t:none'), k('t:zero')])
      expect(await store.get(k('t:none'))).toBe('n')
      expect(await store.get(k('t:zero'))).toBe('z')
      await store.delete(k('t:none'))
      await store.delete(k('t:zero'))
    })

    it('clear isolation: caches and a state persistence sharing the store keep to their own keys', async () => {
      const P = k('iso:')
      const outer = createKVCache({ store, prefix: `${P}workflow:` })
      const inner = createKVCache({ store, prefix: `${P}workflow:a:` })
      const glob = createKVCache({ store, prefix: `${P}c*:` })
      const states = createStatePersistence(store, `${P}workflow:state:`)
      const state = { steps: new Map([['s1', { result: ok({ n: 1 }) }]]) }
      await outer.setAsync('o1', ok(1))
      await outer.setAsync('o2', err('E', { cause: new Error('boom') }))
      await inner.setAsync('i1', ok('inner'))
      await glob.setAsync('g1', ok('glob'))
      await states.save('run-1', state, { who: 'test' })
      // a value written by the JS module (same key layout, no registry entry)
      await store.set(`${P}workflow:legacy`, JSON.stringify({ ok: true, value: 'old' }))
      // keys an unescaped `${P}c*:*` pattern would have caught
      await store.set(`${P}cX:1`, 'foreign')
      await store.set(k('outside'), 'foreign')

      expect(await outer.getAsync('legacy')).toEqual(ok('old'))
      await outer.clearAsync()
      expect(await outer.getAsync('o1')).toBeUndefined()
      expect(await outer.getAsync('legacy')).toBeUndefined()
      expect(outer.get('o1')).toBeUndefined()
      expect(await states.list()).toEqual(['run-1'])
      expect((await states.load('run-1'))?.steps.get('s1')).toEqual({ result: ok({ n: 1 }) })
      expect(await inner.getAsync('i1')).toEqual(ok('inner'))
      await glob.clearAsync()
      expect(await glob.getAsync('g1')).toBeUndefined()
      expect(await store.get(`${P}cX:1`)).toBe('foreign')
      await inner.clearAsync()
      expect(await inner.getAsync('i1')).toBeUndefined()
      expect(await states.list()).toEqual(['run-1'])
      expect(await store.get(k('outside'))).toBe('foreign')
      expect(await states.delete('run-1')).toBe(true)
      await store.delete(`${P}cX:1`)
      await store.delete(k('outside'))
      // every owner record lies inside its own prefix (ACL `~<prefix>*`), none in a shared key space
      expect((await store.keys('__awaitly:owner:*')).filter((r) => r.includes(base))).toEqual([])
    })

    it('write-behind: sync set/delete, flush(), then load() in a new cache; clear() in the background', async () => {
      const P = k('wb:')
      const cache = createKVCache({ store, prefix: P })
      cache.set('a', ok(1))
      cache.set('b', ok(2))
      cache.delete('b')
      await cache.flush()
      const again = createKVCache({ store, prefix: P })
      expect(await again.load()).toBe(1)
      expect(again.get('a')).toEqual(ok(1))
      again.clear()
      await again.flush()
      expect(sorted(await store.keys(under('wb:')))).toEqual([`${P}__awaitly:owner:cache`].filter(() => !options.hiddenOwners))
    })

    it('keys and run ids shaped like owner markers are rejected before anything is written', async () => {
      const P = k('reserved:')
      const cache = createKVCache({ store, prefix: P, writeBehind: false })
      const states = createStatePersistence(store, P)
      for (const bad of ['__awaitly:owner:cache', 'x__awaitly:owner:state']) {
        await expect(cache.setAsync(bad, ok(1))).rejects.toMatchObject({ name: 'TypeError', code: 'ERR_INVALID_ARG' })
        await expect(cache.getAsync(bad)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG' })
        await expect(states.save(bad, { steps: new Map() })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG' })
        await expect(states.load(bad)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG' })
      }
      expect(await store.keys(under('reserved:'))).toEqual([])
    })

    if (options.isolated) {
      it("the JS module's defaults: cache 'workflow:' never clears 'workflow:state:' (even unregistered states)", async () => {
        const cache = createKVCache({ store })
        const states = createStatePersistence(store)
        const sub = createKVCache({ store, prefix: 'workflow:a:' })
        await cache.setAsync('step-1', ok(1))
        await sub.setAsync('step-2', ok(2))
        await states.save('run-a', { steps: new Map([['x', { result: ok(1) }]]) })
        // a state written by the old JS module: no registry entry anywhere
        await store.set('workflow:state:legacy-run', '{"version":1,"entries":{}}')
        await cache.clearAsync()
        expect(await cache.getAsync('step-1')).toBeUndefined()
        expect(sorted(await states.list())).toEqual(['legacy-run', 'run-a'])
        expect(await sub.getAsync('step-2')).toEqual(ok(2))
        expect((await states.load('legacy-run'))?.steps.size).toBe(0)
      })
    }
  })
}
