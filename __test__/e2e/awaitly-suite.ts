// The awaitly end-to-end suite, defined once and run by e2e-awaitly.test.ts
// (one Redis server), e2e-awaitly-cluster.test.ts (a Redis Cluster) and
// e2e-awaitly-postgres.test.ts (PostgreSQL): the server store is the one
// thing that differs. With awaitly's real engine
// (createWorkflow(name, deps, { cache }).run(fn); awaitly 1.35 under `npm
// test`, 4.5.1 in CI's awaitly 4 run, see helpers/awaitly.ts) for every cache
// and store we ship:
//  - a step cached by `key` is not run again (same cache; and, for the
//    persistent caches, a new cache instance that loaded the entry from disk /
//    Redis);
//  - a run resumed from saved state skips the completed steps and reproduces
//    their values and errors (parseState(stringifyState(...)) in memory, and
//    createStatePersistence on the native file store and the native Redis store).
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createWorkflow, createResumeStateCollector, ok, err } from '../helpers/awaitly'
import * as native from '../../index.js'

const {
  createMemoryCache,
  createFileCache,
  createFileStore,
  createKVCache,
  createStatePersistence,
  createHydratingCache,
  stringifyState,
  parseState,
  escapeGlob,
} = native as any

/**
 * Defines the suite over one server store kind: `server.open()` opens a store
 * (called when a test opens one), `server.name` names it in the test names.
 */
export function defineAwaitlyE2E(server: { name: string; open: () => any }) {
  const unique = `e2e-awaitly:${process.pid}-${Date.now().toString(36)}:`
  let dir: string
  const serverStores: { close(): Promise<void> }[] = []
  const cleanups: (() => Promise<unknown>)[] = []

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'awaitly-e2e-'))
  })
  afterAll(async () => {
    for (const c of cleanups) await c()
    // The clears left only the owner markers of the caches and persistences (inside their prefixes); remove them.
    if (serverStores.length) {
      const store = serverStores[0] as any
      const left: string[] = await store.keys(`*${escapeGlob(unique)}*`)
      expect(left.filter((k) => !/__awaitly:owner:(cache|state)$/.test(k))).toEqual([])
      for (const k of left) await store.delete(k)
      expect(await store.keys(`*${escapeGlob(unique)}*`)).toEqual([])
    }
    for (const s of serverStores) await s.close()
    rmSync(dir, { recursive: true, force: true })
  })

  // The server store under test, as the calling file opens it.
  function serverStore() {
    const store = server.open()
    serverStores.push(store)
    return store
  }

  // ---------------------------------------------------------------------------
  // The order workflow under test: three keyed steps; `charge` fails with an err
  // carrying an Error cause, or (mode 'throw') throws.
  // ---------------------------------------------------------------------------
  function makeOrder(mode: 'ok' | 'err' | 'throw' = 'ok') {
    const calls = { user: 0, charge: 0, ship: 0 }
    const deps = {
      fetchUser: async (id: string) => {
        calls.user++
        return ok({ id, name: 'Ada', tags: ['vip', 'beta'], nested: { score: 4.5, n: null } })
      },
      charge: async (amount: number) => {
        calls.charge++
        if (mode === 'err') return err('CARD_DECLINED' as const, { cause: new Error('insufficient funds') })
        if (mode === 'throw') throw new TypeError('gateway exploded')
        return ok({ chargeId: 'ch_1', amount })
      },
      ship: async (userId: string) => {
        calls.ship++
        return ok({ tracking: `trk-${userId}` })
      },
    }
    const run = async (options: { cache?: unknown; resumeState?: unknown } = {}) => {
      const collector = createResumeStateCollector()
      const workflow = createWorkflow('order', deps, {
        ...(options as object),
        onEvent: collector.handleEvent,
      } as any)
      const result = await workflow.run(async ({ step, deps }) => {
        const user = await step('user', () => deps.fetchUser('u1'), { key: 'user:u1' })
        const charge = await step('charge', () => deps.charge(42), { key: 'charge:u1' })
        const shipment = await step('ship', () => deps.ship(user.id), { key: 'ship:u1' })
        return { user, charge, shipment }
      })
      return { result, state: collector.getResumeState() }
    }
    return { calls, run }
  }

  // ---------------------------------------------------------------------------
  // Caches: a step cached by `key` is not run again
  // ---------------------------------------------------------------------------
  type CacheCase = {
    name: string
    make: () => Promise<any>
    // A second, independent cache instance over the same storage, loaded with
    // the given keys from it (undefined for caches with no storage).
    reopen?: (keys: string[], first: any) => Promise<any>
  }

  const fileCaches = new Map<unknown, string>()
  const kvFileCaches = new Map<unknown, string>()
  const cacheCases: CacheCase[] = [
    { name: 'createMemoryCache', make: async () => createMemoryCache({ maxSize: 100, ttl: 60_000 }) },
    {
      name: 'createFileCache (native I/O)',
      // a directory per cache: init() preloads what earlier caches wrote behind
      make: async () => {
        const directory = join(dir, `file-cache-${fileCaches.size}`)
        const cache = createFileCache({ directory })
        await cache.init()
        fileCaches.set(cache, directory)
        return cache
      },
      reopen: async (keys, first) => {
        for (const k of keys) await first.setAsync(k, first.get(k))
        const cache = createFileCache({ directory: fileCaches.get(first) })
        await cache.init()
        for (const k of keys) expect(await cache.getAsync(k)).toBeDefined()
        return cache
      },
    },
    {
      name: 'createKVCache on createFileStore',
      // a prefix per cache: the sync sets of earlier caches are written behind
      make: async () => {
        const prefix = `c${kvFileCaches.size}:`
        const cache = createKVCache({ store: createFileStore({ directory: join(dir, 'kv-file') }), prefix })
        kvFileCaches.set(cache, prefix)
        return cache
      },
      reopen: async (keys, first) => {
        for (const k of keys) await first.setAsync(k, first.get(k))
        const cache = createKVCache({ store: createFileStore({ directory: join(dir, 'kv-file') }), prefix: kvFileCaches.get(first) })
        for (const k of keys) expect(await cache.getAsync(k)).toBeDefined()
        return cache
      },
    },
    {
      name: `createKVCache on ${server.name}`,
      make: async () => {
        const prefix = `${unique}cache${kvFileCaches.size}:` // a prefix per cache, as above
        const cache = createKVCache({ store: serverStore(), prefix, ttl: 60 })
        kvFileCaches.set(cache, prefix)
        cleanups.push(() => cache.clearAsync())
        return cache
      },
      reopen: async (keys, first) => {
        for (const k of keys) await first.setAsync(k, first.get(k))
        const cache = createKVCache({ store: serverStore(), prefix: kvFileCaches.get(first), ttl: 60 })
        for (const k of keys) expect(await cache.getAsync(k)).toBeDefined()
        return cache
      },
    },
    {
      name: 'createHydratingCache over createStatePersistence(createFileStore)',
      make: async () => {
        const persistence = createStatePersistence(createFileStore({ directory: join(dir, 'hydrate') }))
        const cache = createHydratingCache(createMemoryCache(), persistence, 'run-hydrate')
        await cache.hydrate()
        return cache
      },
    },
  ]

  describe.each(cacheCases)('awaitly engine with $name', ({ make, reopen }) => {
    it('does not run a step cached by key again (ok and err results)', async () => {
      const cache = await make()
      const order = makeOrder('ok')
      const first = await order.run({ cache })
      expect(first.result.ok).toBe(true)
      expect(order.calls).toEqual({ user: 1, charge: 1, ship: 1 })
      expect(cache.has('user:u1')).toBe(true)

      const second = await order.run({ cache })
      expect(order.calls).toEqual({ user: 1, charge: 1, ship: 1 })
      expect(second.result).toEqual(first.result)

      const failing = makeOrder('err')
      const errCache = await make()
      const f1 = await failing.run({ cache: errCache })
      const f2 = await failing.run({ cache: errCache })
      expect(failing.calls).toEqual({ user: 1, charge: 1, ship: 0 })
      expect(f2.result.ok).toBe(false)
      expect((f2.result as any).error).toBe('CARD_DECLINED')
      expect(((f2.result as any).cause as Error).message).toBe((f1.result as any).cause.message)
    })

    if (reopen) {
      it('does not run a step again with a new cache instance loaded from storage', async () => {
        const cache = await make()
        const order = makeOrder('ok')
        const first = await order.run({ cache })
        const again = await reopen(['user:u1', 'charge:u1', 'ship:u1'], cache)
        const second = await order.run({ cache: again })
        expect(order.calls).toEqual({ user: 1, charge: 1, ship: 1 })
        expect(second.result).toEqual(first.result)
      })
    }
  })

  it('createHydratingCache: steps saved by a previous run are not run again', async () => {
    const persistence = createStatePersistence(createFileStore({ directory: join(dir, 'hydrate2') }), 'st:')
    const order = makeOrder('ok')
    const first = await order.run()
    await persistence.save('run-7', first.state)
    const cache = createHydratingCache(createMemoryCache(), persistence, 'run-7')
    await Promise.all([cache.hydrate(), cache.hydrate()])
    const second = await order.run({ cache })
    expect(order.calls).toEqual({ user: 1, charge: 1, ship: 1 })
    expect(second.result).toEqual(first.result)
  })

  // ---------------------------------------------------------------------------
  // Resume: skip completed steps, reproduce their values and errors
  // ---------------------------------------------------------------------------
  type Persist = { name: string; roundTrip: (state: unknown) => Promise<unknown> }

  const persists: Persist[] = [
    { name: 'parseState(stringifyState(state))', roundTrip: async (state) => parseState(stringifyState(state)) },
    {
      name: 'createStatePersistence on createFileStore',
      roundTrip: async (state) => {
        const p = createStatePersistence(createFileStore({ directory: join(dir, 'state') }), 'wf:state:')
        const runId = `run:${Math.random().toString(36).slice(2)}`
        await p.save(runId, state, { attempt: 1 })
        expect(await p.list()).toContain(runId)
        const loaded = await p.load(runId)
        expect(await p.delete(runId)).toBe(true)
        expect(await p.load(runId)).toBeUndefined()
        return loaded
      },
    },
    {
      name: `createStatePersistence on ${server.name}`,
      roundTrip: async (state) => {
        const p = createStatePersistence(serverStore(), `${unique}state:`)
        const runId = `run:${Math.random().toString(36).slice(2)}`
        await p.save(runId, state, { attempt: 1 })
        expect(await p.list()).toContain(runId)
        const loaded = await p.load(runId)
        expect(await p.delete(runId)).toBe(true)
        expect(await p.load(runId)).toBeUndefined()
        return loaded
      },
    },
  ]

  describe.each(persists)('resume through $name', ({ roundTrip }) => {
    it('skips completed steps and reproduces their values', async () => {
      const order = makeOrder('ok')
      const first = await order.run()
      expect(first.state.steps.size).toBe(3)
      const resumeState = await roundTrip(first.state)
      const second = await order.run({ resumeState })
      expect(order.calls).toEqual({ user: 1, charge: 1, ship: 1 })
      expect(second.result).toEqual(first.result)
    })

    it('resumes a partial run: only the missing step runs', async () => {
      const order = makeOrder('ok')
      const first = await order.run()
      const partial = { steps: new Map([...first.state.steps].filter(([k]) => k !== 'ship:u1')) }
      const resumeState = await roundTrip(partial)
      const second = await order.run({ resumeState })
      expect(order.calls).toEqual({ user: 1, charge: 1, ship: 2 })
      expect(second.result).toEqual(first.result)
    })

    it('reproduces an err result and its Error cause without running the step', async () => {
      const order = makeOrder('err')
      const first = await order.run()
      expect(first.result.ok).toBe(false)
      const resumeState = await roundTrip(first.state)
      const second = (await order.run({ resumeState })).result as any
      expect(order.calls).toEqual({ user: 1, charge: 1, ship: 0 })
      expect(second.ok).toBe(false)
      expect(second.error).toBe('CARD_DECLINED')
      expect(second.cause).toBeInstanceOf(Error)
      expect(second.cause.message).toBe('insufficient funds')
      expect(second.cause.name).toBe('Error')
    })

    it('reproduces a thrown step (origin throw) without running it', async () => {
      const order = makeOrder('throw')
      const run1 = await order.run()
      const first = run1.result as any
      expect(first.ok).toBe(false)
      const resumeState = await roundTrip(run1.state)
      const second = (await order.run({ resumeState })).result as any
      expect(order.calls).toEqual({ user: 1, charge: 1, ship: 0 })
      expect(second.ok).toBe(false)
      expect(second.error.code).toBe(first.error.code)
      expect(second.cause).toBeInstanceOf(Error)
      expect(second.cause.name).toBe('TypeError')
      expect(second.cause.message).toBe('gateway exploded')
    })
  })
}
