// awaitly's own durable.run over createSnapshotStore on every native store
// (the shared Redis, a local Redis Cluster, a file store, PostgreSQL), with awaitly 1.35
// under `npm test` and 4.5.1 in CI's awaitly 4 run (helpers/awaitly.ts):
// - resume: a run cancelled after step 2 of 3 resumes from our store, the
//   completed steps are not run again, success deletes the snapshot and frees
//   the lease; every snapshot awaitly saved is what our store loads back,
//   byte for byte as JSON (4.x: with its stepOrder/stepArgs metadata);
// - idempotency keys: the `idem:<key>` record in our store returns the stored
//   result without running anything, and a different input is
//   IDEMPOTENCY_CONFLICT;
// - shape drift (4.x): a resume whose steps were reordered, or called with
//   other arguments, is rejected from the stepOrder/stepArgs our store kept,
//   before any step runs;
// - leases on the cluster: a heartbeat keeps a run alive past its lockTtlMs,
//   a lease taken over mid-run aborts it (Redis and files: snapshot-store.test.ts).
// Leases across processes: snapshot-multi-process.test.ts.
import { describe, expect, it } from 'vitest'
import { createRequire } from 'node:module'
import { durable, ok, awaitlyVersion, WorkflowShapeDriftError } from '../helpers/awaitly'
import { useNativeStores } from '../helpers/native-stores'

const require = createRequire(import.meta.url)
const { createSnapshotStore } = require('../../index.js')

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const { stores, prefix } = useNativeStores('durable-awaitly')
let n = 0
const fresh = (tag: string) => `${prefix}${tag}:${n++}:`

/** The snapshot store, and every snapshot awaitly handed to its save(), as JSON. */
function recording(kv: any, tag: string) {
  const store = createSnapshotStore({ store: kv, prefix: fresh(tag) })
  const saved: Array<[string, string]> = []
  const save = store.save.bind(store)
  store.save = async (id: string, snapshot: unknown) => {
    saved.push([id, JSON.stringify(snapshot)])
    return save(id, snapshot)
  }
  return { store, saved }
}

/** Three steps a, b, c; `pauseAfterB` aborts the run's signal inside b, so c never starts. */
function order(pauseAfterB?: AbortController) {
  const calls = { a: 0, b: 0, c: 0 }
  const deps = {
    a: async () => (calls.a++, ok(1)),
    b: async (x: number) => {
      calls.b++
      pauseAfterB?.abort(new Error('paused'))
      return ok(x + 1)
    },
    c: async (x: number) => (calls.c++, ok(x * 10)),
  }
  const fn = async ({ step, deps: d }: any) => {
    const a = await step('a', () => d.a(), { key: 'a' })
    const b = await step('b', () => d.b(a), { key: 'b' })
    return step('c', () => d.c(b), { key: 'c' })
  }
  return { calls, deps, fn }
}

describe.each(stores)(`durable.run (awaitly ${awaitlyVersion}) on a native $name store`, ({ open }) => {
  it('resumes a cancelled run from the store: completed steps are not run again; success deletes the snapshot and frees the lease', async () => {
    const kv = open()
    const { store, saved } = recording(kv, 'resume')
    const pause = new AbortController()
    const first = order(pause)
    const r1 = await durable.run(first.deps, first.fn, { id: 'o-1', store, signal: pause.signal, lockTtlMs: 5000 })
    expect(r1.ok).toBe(false)
    expect(first.calls).toEqual({ a: 1, b: 1, c: 0 })

    // what awaitly saved last is what the store holds
    const [lastId, lastJson] = saved[saved.length - 1]
    expect(lastId).toBe('o-1')
    const held = await store.load('o-1')
    expect(JSON.stringify(held)).toBe(lastJson)
    expect(Object.keys(held.steps)).toEqual(['a', 'b'])
    expect(held.metadata.lastStepKey).toBe('b')
    if (WorkflowShapeDriftError) {
      // 4.x records the executed order and argument fingerprints for drift checks
      expect(held.metadata.stepOrder).toEqual(['a', 'b'])
      expect(held.metadata.stepArgs).toHaveLength(2)
    }
    // the cancelled run released its lease
    const probe = await store.tryAcquire('o-1', { ttlMs: 1000 })
    expect(probe).not.toBeNull()
    await store.release('o-1', probe.ownerToken)

    const second = order()
    const r2 = await durable.run(second.deps, second.fn, { id: 'o-1', store, lockTtlMs: 5000 })
    expect(r2).toEqual({ ok: true, value: 20 })
    expect(second.calls).toEqual({ a: 0, b: 0, c: 1 })
    expect(await store.load('o-1')).toBeNull()
    expect(await store.list()).toEqual([])
    const after = await store.tryAcquire('o-1', { ttlMs: 1000 })
    expect(after).not.toBeNull()
    await store.release('o-1', after.ownerToken)
  })

  it('idempotency keys: the stored record answers a repeat without running it; another input is IDEMPOTENCY_CONFLICT', async () => {
    const kv = open()
    const { store, saved } = recording(kv, 'idem')
    const w = order()
    const r1 = await durable.run(w.deps, w.fn, { id: 'pay-1', store, idempotencyKey: 'k-1', input: { amount: 5 } })
    expect(r1).toEqual({ ok: true, value: 20 })
    expect(w.calls).toEqual({ a: 1, b: 1, c: 1 })

    // the completed record lives in our store under awaitly's id
    const record = await store.load('idem:k-1')
    expect(JSON.stringify(record)).toBe(saved.filter(([id]) => id === 'idem:k-1').pop()![1])
    expect(record.execution.status).toBe('completed')
    expect(record.metadata).toMatchObject({ idempotencyKey: 'k-1', input: { amount: 5 }, finalResult: { ok: true, value: 20 } })
    expect((await store.list()).map((e: { id: string }) => e.id)).toEqual(['idem:k-1'])

    // another run id with the same key and input: the stored result, nothing runs
    const r2 = await durable.run(w.deps, w.fn, { id: 'pay-2', store, idempotencyKey: 'k-1', input: { amount: 5 } })
    expect(r2).toEqual({ ok: true, value: 20 })
    expect(w.calls).toEqual({ a: 1, b: 1, c: 1 })

    const r3 = await durable.run(w.deps, w.fn, { id: 'pay-3', store, idempotencyKey: 'k-1', input: { amount: 6 } })
    expect(r3.ok).toBe(false)
    expect(r3.error).toMatchObject({ type: 'IDEMPOTENCY_CONFLICT', idempotencyKey: 'k-1', workflowId: 'pay-3' })
    expect(w.calls).toEqual({ a: 1, b: 1, c: 1 })
    await store.delete('idem:k-1')
    expect(await store.list()).toEqual([])
  })

  // awaitly 1.35 records no step order (nothing to detect drift with): 4.x only.
  if (WorkflowShapeDriftError) {
    describe('shape drift (stepOrder / stepArgs kept by our store)', () => {
      /** Cancelled inside `b`: the store holds a checkpoint of [a(), b(x)]. */
      async function checkpoint(store: any, id: string, x: number) {
        const pause = new AbortController()
        const deps = {
          a: async () => ok(1),
          b: async (v: number) => (pause.abort(new Error('paused')), ok(v)),
        }
        const r = await durable.run(deps, async ({ steps }: any) => [await steps.a(), await steps.b(x)], { id, store, signal: pause.signal })
        expect(r.ok).toBe(false)
        const held = await store.load(id)
        expect(held.metadata.stepOrder).toEqual(['a', 'b'])
        expect(held.metadata.stepArgs.every((f: unknown) => typeof f === 'string')).toBe(true)
      }

      it('a resume whose steps were reordered is rejected before any step runs', async () => {
        const { store } = recording(open(), 'drift-order')
        await checkpoint(store, 'd-1', 5)
        const calls: string[] = []
        const deps = { a: async () => (calls.push('a'), ok(1)), b: async (v: number) => (calls.push('b'), ok(v)) }
        const r = await durable.run(deps, async ({ steps }: any) => [await steps.b(5), await steps.a()], { id: 'd-1', store })
        expect(r.ok).toBe(false)
        expect(r.error.type).toBe('PERSISTENCE_ERROR')
        expect(r.error.cause).toBeInstanceOf(WorkflowShapeDriftError)
        expect(r.error.cause).toMatchObject({ stepIndex: 0, expectedStepKey: 'a', actualStepKey: 'b' })
        expect(calls).toEqual([])
        expect((await store.load('d-1')).metadata.stepOrder).toEqual(['a', 'b']) // the checkpoint is kept
      })

      it('a resume that calls a step with other arguments is rejected; the same arguments resume', async () => {
        const { store } = recording(open(), 'drift-args')
        await checkpoint(store, 'd-2', 5)
        const calls: string[] = []
        const deps = { a: async () => (calls.push('a'), ok(1)), b: async (v: number) => (calls.push('b'), ok(v)) }
        const drifted = await durable.run(deps, async ({ steps }: any) => [await steps.a(), await steps.b(6)], { id: 'd-2', store })
        expect(drifted.ok).toBe(false)
        expect(drifted.error.cause).toBeInstanceOf(WorkflowShapeDriftError)
        expect(drifted.error.cause.stepIndex).toBe(1)
        expect(calls).toEqual([])
        const resumed = await durable.run(deps, async ({ steps }: any) => [await steps.a(), await steps.b(5)], { id: 'd-2', store })
        expect(resumed).toEqual({ ok: true, value: [1, 5] })
        expect(calls).toEqual([])
        expect(await store.load('d-2')).toBeNull()
      })
    })
  }
})

describe(`leases under durable.run (awaitly ${awaitlyVersion}) on the cluster store`, () => {
  const cluster = stores.find((s) => s.name === 'cluster')!

  /** `count` steps of `ms` each; `during` runs alongside. */
  async function longRun(store: any, id: string, count: number, ms: number, opts: object, during: () => Promise<unknown>) {
    let calls = 0
    const wait = async () => (await sleep(ms), ok(++calls))
    const [r, seen] = await Promise.all([
      durable.run(
        { wait },
        async ({ step, deps }: any) => {
          for (let i = 0; i < count; i++) await step(`s${i}`, () => deps.wait(), { key: `s${i}` })
          return calls
        },
        { id, store, ...opts },
      ),
      during(),
    ])
    return { r, seen, calls }
  }

  it('a heartbeat keeps a 3 s run alive on lockTtlMs: 1000; a rival is refused throughout', async () => {
    const kv = cluster.open()
    const p = fresh('hb')
    const store = createSnapshotStore({ store: kv, prefix: p })
    const rival = createSnapshotStore({ store: kv, prefix: p })
    const { r, seen, calls } = await longRun(store, 'long', 3, 1000, { lockTtlMs: 1000 }, async () => {
      const refused = []
      for (let t = 1500; t < 2800; t += 600) {
        await sleep(600)
        refused.push((await rival.tryAcquire('long', { ttlMs: 1000 })) === null)
      }
      return refused
    })
    expect(r).toEqual({ ok: true, value: 3 })
    expect(calls).toBe(3)
    expect(seen.length).toBeGreaterThan(0)
    expect(seen.every(Boolean)).toBe(true)
  }, 30_000)

  it('a lease taken over mid-run aborts the run with LEASE_EXPIRED', async () => {
    const kv = cluster.open()
    const p = fresh('lost')
    const store = createSnapshotStore({ store: kv, prefix: p })
    const rival = createSnapshotStore({ store: kv, prefix: p })
    const { r, seen, calls } = await longRun(store, 'victim', 4, 500, { lockTtlMs: 400, heartbeatIntervalMs: 1200 }, async () => {
      await sleep(700)
      return rival.tryAcquire('victim', { ttlMs: 10_000 })
    })
    expect(seen).not.toBeNull()
    expect(r.ok).toBe(false)
    expect(r.error.type).toBe('LEASE_EXPIRED')
    expect(calls).toBeLessThan(4)
    await rival.release('victim', (seen as any).ownerToken)
  }, 30_000)
})
