// createStatePersistence: round trips of the conformance vectors' states
// through the native Redis store and a plain JS store; corrupt values are
// reported with ERR_CORRUPT, never turned into a fresh start.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createRequire } from 'node:module'
import { readFileSync } from 'node:fs'
import { createMapStore } from '../helpers/map-store'

const require = createRequire(import.meta.url)
const { createRedisStore, createStatePersistence, parseState, stringifyState, escapeGlob } = require('../../index.js')

const vectors = JSON.parse(readFileSync(new URL('../fixtures/vectors.json', import.meta.url), 'utf8')).vectors as any[]

// states as the JS module stored them: every stringifyState vector with an expected string
const stored = vectors.filter((v) => v.kind === 'stringify' && typeof v.expected?.string === 'string')
// text that is not a state document (parseState throws on it)
const notStates = vectors.filter((v) => v.fn === 'parseState' && v.expected?.throws).map((v) => v.args[0])

const stores: [string, () => any][] = [
  ['native-redis', () => createRedisStore()],
  ['js-map', () => createMapStore()],
]

for (const [name, make] of stores) {
  describe(`createStatePersistence over ${name}`, () => {
    const prefix = `state-test:${name}:${process.pid}:${Date.now()}:`
    let store: any
    let p: any
    beforeAll(() => {
      store = make()
      p = createStatePersistence(store, prefix)
    })
    afterAll(async () => {
      for (const k of await store.keys(`${escapeGlob(prefix)}*`)) await store.delete(k)
      await store.close?.()
    })

    it('has enough vectors to mean something', () => {
      expect(stored.length).toBeGreaterThanOrEqual(10)
      expect(notStates.length).toBeGreaterThanOrEqual(5)
    })

    it('save/load/list/delete round-trip the vectors’ states; stored text is stringifyState’s', async () => {
      const ids: string[] = []
      await Promise.all(
        stored.map(async (v, i) => {
          const doc = JSON.parse(v.expected.string)
          const state = parseState(v.expected.string)
          const runId = `run-${i}:${v.id}`
          ids.push(runId)
          await p.save(runId, state, doc.metadata)
          const raw = await store.get(`${prefix}${runId}`)
          expect(raw).toBe(stringifyState(state, doc.metadata))
          const loaded = await p.load(runId)
          expect([...loaded.steps.keys()]).toEqual([...state.steps.keys()])
          expect(loaded).toEqual(state)
        }),
      )
      expect((await p.list()).sort()).toEqual(ids.sort())
      for (const id of ids) expect(await p.delete(id)).toBe(true)
      expect(await p.delete(ids[0])).toBe(false)
      expect(await p.list()).toEqual([])
    })

    it('load resolves undefined only when nothing is stored', async () => {
      expect(await p.load('never-saved')).toBeUndefined()
    })

    it('a stored value that is not a state rejects with ERR_CORRUPT', async () => {
      const bad = [...notStates, '', 'null', '[]', '{"version":1}', '{"version":1,"entries":{"a":5}}', '{"version":2,"entries":{}}']
      for (const [i, text] of bad.entries()) {
        await store.set(`${prefix}bad-${i}`, text)
        const e = await p.load(`bad-${i}`).then(
          () => null,
          (x: any) => x,
        )
        expect(e, JSON.stringify(text)).toBeInstanceOf(Error)
        expect(e.code).toBe('ERR_CORRUPT')
        expect(e.message).toContain(`${prefix}bad-${i}`)
        await store.delete(`${prefix}bad-${i}`)
      }
    })

    it('list() escapes glob characters in the prefix', async () => {
      const odd = createStatePersistence(store, `${prefix}o*[x]?:`)
      await odd.save('r1', parseState('{"version":1,"entries":{}}'))
      await store.set(`${prefix}oZ[x]?:r2`, 'x')
      await store.set(`${prefix}oZx?:r3`, 'x')
      expect(await odd.list()).toEqual(['r1'])
      await store.delete(`${prefix}oZ[x]?:r2`)
      await store.delete(`${prefix}oZx?:r3`)
      await odd.delete('r1')
      await store.delete(`${prefix}o*[x]?:__awaitly:owner:state`)
    })

    it('rejects bad arguments with a TypeError', () => {
      expect(() => createStatePersistence(store, 5)).toThrow(TypeError)
      expect(() => createStatePersistence({ get() {} })).toThrow(TypeError)
    })
  })
}
