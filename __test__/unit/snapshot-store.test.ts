// createSnapshotStore (issue 14) in one process, on the shared Redis (unique
// prefix, cleaned up), a native file store, the shared PostgreSQL (a private
// schema, dropped) and a plain JS Map store:
// awaitly's SnapshotStore contract (1.35 under `npm test`, 4.5.1 in CI's
// awaitly 4 run: helpers/awaitly.ts), the stored format, list semantics,
// ResumeState round trips, corrupt values, bad input, and the leases
// (foreign tokens, expiry takeover, heartbeat, lease loss) under awaitly's
// own durable.run. Multi-process claims: snapshot-multi-process.test.ts.
import { afterAll, describe, expect, it } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'
import path from 'node:path'
import { createMapStore } from '../helpers/map-store'
import { durable, createWorkflow, createResumeStateCollector, serializeResumeState, deserializeResumeState, ok, err } from '../helpers/awaitly'
import { PG, dropSchema, privateSchema } from '../helpers/postgres'

const require = createRequire(import.meta.url)
const { createSnapshotStore, createRedisStore, createFileStore, createPostgresStore, escapeGlob } = require('../../index.js')

const STRESS = process.env.AWAITLY_STRESS === '1'
const RUN = `snaptest:${process.pid}:${Date.now()}:`
const redisKv = createRedisStore()
const dir = mkdtempSync(path.join(os.tmpdir(), 'snapshot-store-'))
const fileKv = createFileStore({ directory: dir })
const pgSchema = privateSchema('snap')
const pgKv = createPostgresStore({ ...PG, schema: pgSchema })
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

afterAll(async () => {
  for (const k of await redisKv.keys(`${escapeGlob(RUN)}*`)) await redisKv.delete(k)
  await redisKv.close()
  await pgKv.close()
  await dropSchema(pgSchema)
  rmSync(dir, { recursive: true, force: true })
})

let n = 0
const fresh = (tag: string) => `${RUN}${tag}:${n++}:`

function snapshot(steps = 2) {
  const s: Record<string, unknown> = {}
  for (let i = 0; i < steps; i++) s[`step-${i}`] = { ok: true, value: { i, name: `n${i}`, tags: ['a', 'b'] } }
  s.failed = { ok: false, error: 'NOPE', cause: { type: 'error', name: 'Error', message: 'boom' }, meta: { origin: 'result' } }
  return {
    formatVersion: 1 as const,
    workflowName: 'wf',
    steps: s,
    execution: { status: 'running' as const, lastUpdated: new Date().toISOString(), currentStepId: 'failed' },
    metadata: { version: 1, lastStepKey: 'failed' },
  }
}

const backends = [
  { name: 'redis', kv: redisKv, native: true, fenced: true },
  { name: 'file', kv: fileKv, native: true, fenced: true },
  { name: 'postgres', kv: pgKv, native: true, fenced: true },
  { name: 'map', kv: createMapStore(), native: false, fenced: false },
]

async function rejectsWith(p: Promise<unknown>, code: string, cls: ErrorConstructor = Error) {
  const e = await p.then(
    () => null,
    (x) => x,
  )
  expect(e, `expected a rejection with ${code}`).toBeInstanceOf(cls)
  expect(e.code).toBe(code)
  return e
}

describe.each(backends)('createSnapshotStore over $name', ({ kv, native, fenced }) => {
  it('saves and loads a WorkflowSnapshot as the JSON awaitly-postgres stores, with updatedAt', async () => {
    const prefix = fresh('rt')
    const store = createSnapshotStore({ store: kv, prefix })
    const snap = snapshot()
    await store.save('wf-1', snap)
    expect(await store.load('wf-1')).toEqual(snap)
    const raw = JSON.parse(await kv.get(`${prefix}wf-1`))
    expect(Object.keys(raw)).toEqual(['updatedAt', 'snapshot'])
    expect(raw.snapshot).toEqual(JSON.parse(JSON.stringify(snap)))
    expect(new Date(raw.updatedAt).toISOString()).toBe(raw.updatedAt)
    expect(await store.load('missing')).toBeNull()
    expect(await store.loadResumeState('wf-1')).toBeNull() // a snapshot is not a ResumeState
    await store.delete('wf-1')
    expect(await store.load('wf-1')).toBeNull()
    await store.close()
  })

  it("round-trips a ResumeState exactly as awaitly's deserializeResumeState(serializeResumeState(x))", async () => {
    const prefix = fresh('rs')
    const store = createSnapshotStore({ store: kv, prefix })
    const collector = createResumeStateCollector()
    const wf = createWorkflow('rs', { a: async () => ok({ x: 1 }), b: async () => err('NO', { cause: new TypeError('inner') }) }, { onEvent: collector.handleEvent })
    await wf.run(async ({ step, deps }: any) => {
      await step('a', () => deps.a(), { key: 'a' })
      await step('b', () => deps.b(), { key: 'b' })
    })
    const state = collector.getResumeState()
    expect(state.steps.size).toBe(2)
    await store.save('r-1', state)
    const expected = deserializeResumeState(serializeResumeState(state))
    const loaded = await store.load('r-1')
    expect(loaded.steps).toBeInstanceOf(Map)
    expect(loaded).toEqual(expected)
    expect(await store.loadResumeState('r-1')).toEqual(expected)
    // stored in serializeResumeState's form, inside our envelope
    const raw = JSON.parse(await kv.get(`${prefix}r-1`))
    expect(raw.snapshot).toEqual(JSON.parse(JSON.stringify(serializeResumeState(state))))
    expect(raw.snapshot.kind).toBe('ResumeState')
  })

  it('list: prefix is literal text (glob, LIKE, escapes), prefixes of each other, newest first, limit', async () => {
    const store = createSnapshotStore({ store: kv, prefix: fresh('list') })
    const ids = ['a', 'a*', 'a?', 'a[1]', 'a\\b', 'a%', 'a_', 'ab', 'a:b', 'a:b:c', 'b']
    for (const id of ids) {
      await store.save(id, snapshot(1))
      await sleep(3) // distinct updatedAt
    }
    const newestFirst = [...ids].reverse()
    const list = async (o?: object) => (await store.list(o)).map((e: { id: string }) => e.id)
    expect(await list()).toEqual(newestFirst)
    expect(await list({ prefix: 'a*' })).toEqual(['a*'])
    expect(await list({ prefix: 'a?' })).toEqual(['a?'])
    expect(await list({ prefix: 'a[' })).toEqual(['a[1]'])
    expect(await list({ prefix: 'a\\' })).toEqual(['a\\b'])
    expect(await list({ prefix: 'a%' })).toEqual(['a%'])
    expect(await list({ prefix: 'a_' })).toEqual(['a_'])
    expect(await list({ prefix: 'a:b' })).toEqual(['a:b:c', 'a:b'])
    expect(await list({ prefix: 'a' })).toEqual(newestFirst.filter((i) => i.startsWith('a')))
    expect(await list({ limit: 3 })).toEqual(newestFirst.slice(0, 3))
    expect(await list({ prefix: 'zzz' })).toEqual([])
    const entries = await store.list({ limit: 1 })
    expect(entries[0].id).toBe('b')
    expect(new Date(entries[0].updatedAt).toISOString()).toBe(entries[0].updatedAt)
    if (native) {
      // a held lease is never listed, nor mistaken for a snapshot id
      const lease = await store.tryAcquire('a', { ttlMs: 5000 })
      expect(lease).not.toBeNull()
      expect(await list()).toEqual(newestFirst)
      await store.release('a', lease.ownerToken)
    }
  })

  it('a corrupt stored snapshot is ERR_CORRUPT (load, list, and durable.run reports it instead of starting afresh)', async () => {
    const prefix = fresh('corrupt')
    const store = createSnapshotStore({ store: kv, prefix })
    await kv.set(`${prefix}torn`, '{"updatedAt":"2026-01-01T00:00:00.000Z","snapsh')
    await rejectsWith(store.load('torn'), 'ERR_CORRUPT')
    await kv.set(`${prefix}alien`, '{"hello":"world"}')
    await rejectsWith(store.load('alien'), 'ERR_CORRUPT')
    await kv.set(`${prefix}badsnap`, '{"updatedAt":"2026-01-01T00:00:00.000Z","snapshot":{"formatVersion":7}}')
    await rejectsWith(store.load('badsnap'), 'ERR_CORRUPT')
    await rejectsWith(store.list(), 'ERR_CORRUPT')
    let calls = 0
    const r = await durable.run(
      { a: async () => ok(++calls) },
      async ({ step, deps }: any) => step('a', () => deps.a(), { key: 'a' }),
      { id: 'torn', store },
    )
    expect(r.ok).toBe(false)
    expect(r.error.type).toBe('PERSISTENCE_ERROR')
    expect(r.error.cause.code).toBe('ERR_CORRUPT')
    expect(calls).toBe(0)
  })

  it('bad input is a TypeError with a code, before anything is written', async () => {
    const prefix = fresh('bad')
    const store = createSnapshotStore({ store: kv, prefix })
    const cyclic: any = snapshot(1)
    cyclic.steps['step-0'].value.self = cyclic.steps['step-0'].value
    const bad: Array<Promise<unknown>> = [
      store.save(42, snapshot()),
      store.save('', snapshot()),
      store.save('\u0000lease:x', snapshot()),
      store.save('x', { steps: {} }),
      store.save('x', { ...snapshot(), formatVersion: 2 }),
      store.save('x', { ...snapshot(), execution: { status: 'paused', lastUpdated: 'x' } }),
      store.save('x', { ...snapshot(), steps: { s: { ok: false, error: 'E' } } }),
      store.save('x', cyclic),
      store.save('x', null),
      store.load(null),
      store.delete(undefined),
      store.list({ limit: -1 }),
      store.list({ prefix: 5 }),
    ]
    if (native) {
      bad.push(
        store.tryAcquire('x', { ttlMs: 0 }),
        store.tryAcquire('x', { ttlMs: 1.5 }),
        store.tryAcquire('x', { ttlMs: '100' }),
        store.tryAcquire('x', { ttlMs: 2 ** 31 }),
        store.tryAcquire('', { ttlMs: 100 }),
        store.release('x', 42),
        store.renew('x', '', { ttlMs: 100 }),
        store.renew('x', 'tok', { ttlMs: -5 }),
      )
    }
    for (const p of bad) await rejectsWith(p, 'ERR_INVALID_ARG', TypeError)
    expect(await kv.keys(`${escapeGlob(prefix)}*`)).toEqual([])
    if (native) {
      // no lease was taken by the rejected calls
      const lease = await store.tryAcquire('x', { ttlMs: 1000 })
      expect(lease).not.toBeNull()
      await store.release('x', lease.ownerToken)
    }
    expect(() => createSnapshotStore({ store: {} })).toThrow(TypeError)
    expect(() => createSnapshotStore({ store: kv, prefix: 3 })).toThrow(TypeError)
    expect(() => createSnapshotStore(null)).toThrow(TypeError)
  })

  if (!native) {
    it('over a store of ours-unknown there are no lock methods, and durable.run runs unlocked', async () => {
      const store = createSnapshotStore({ store: kv, prefix: fresh('nolock') })
      expect('tryAcquire' in store || 'release' in store || 'renew' in store).toBe(false)
      const r = await durable.run({ a: async () => ok(7) }, async ({ step, deps }: any) => step('a', () => deps.a(), { key: 'a' }), { id: 'x', store })
      expect(r).toEqual({ ok: true, value: 7 })
    })
    return
  }

  it('leases: one owner; foreign and stale tokens never release or renew; expired leases are taken over', async () => {
    const prefix = fresh('lease')
    const a = createSnapshotStore({ store: kv, prefix })
    const b = createSnapshotStore({ store: kv, prefix })
    const la = await a.tryAcquire('job', { ttlMs: 150 })
    expect(la.ownerToken).toMatch(/^[0-9a-f]{32}$/)
    expect(await b.tryAcquire('job', { ttlMs: 150 })).toBeNull()
    await b.release('job', 'f'.repeat(32)) // foreign token: nothing happens
    expect(await b.renew('job', 'f'.repeat(32), { ttlMs: 150 })).toBe(false)
    expect(await b.tryAcquire('job', { ttlMs: 150 })).toBeNull()
    expect(await a.renew('job', la.ownerToken, { ttlMs: 150 })).toBe(true)
    await sleep(300)
    const lb = await b.tryAcquire('job', { ttlMs: 5000 })
    expect(lb).not.toBeNull()
    expect(lb.ownerToken).not.toBe(la.ownerToken)
    expect(await a.renew('job', la.ownerToken, { ttlMs: 5000 })).toBe(false) // stale
    await a.release('job', la.ownerToken) // stale: must not free b's lease
    expect(await a.tryAcquire('job', { ttlMs: 5000 })).toBeNull()
    await b.release('job', lb.ownerToken)
    const again = await a.tryAcquire('job')
    expect(again).not.toBeNull()
    await a.release('job', again.ownerToken)
  })

  if (fenced)
    it('fenced checkpoints: while a store holds the lease its saves and deletes land only if the lease is still its own', async () => {
      const prefix = fresh('fence')
      const a = createSnapshotStore({ store: kv, prefix })
      const b = createSnapshotStore({ store: kv, prefix })
      const plain = createSnapshotStore({ store: kv, prefix })
      const la = await a.tryAcquire('run', { ttlMs: 1000 }) // room for a loaded host
      await a.save('run', snapshot(1)) // held: written
      expect(Object.keys((await b.load('run')).steps)).toEqual(['step-0', 'failed'])
      await sleep(1300)
      // expired, nobody took it: no longer a's either
      await rejectsWith(a.save('run', snapshot(2)), 'ERR_LEASE_LOST')
      expect(await a.renew('run', la.ownerToken, { ttlMs: 1000 })).toBe(false)
      const lb = await b.tryAcquire('run', { ttlMs: 5000 })
      await b.save('run', snapshot(3))
      const bText = await kv.get(`${prefix}run`)
      // a lost lease stays fenced: neither save nor delete touches b's state
      await rejectsWith(a.save('run', snapshot(4)), 'ERR_LEASE_LOST')
      await rejectsWith(a.delete('run'), 'ERR_LEASE_LOST')
      expect(await kv.get(`${prefix}run`)).toBe(bText)
      // a store without a lease on the id writes as before (no locking, allowConcurrent)
      await plain.save('other', snapshot(1))
      expect(await plain.load('other')).not.toBeNull()
      await plain.delete('other')
      expect(await plain.load('other')).toBeNull()
      // the owner's delete lands; after release a's store writes unfenced again
      await b.delete('run')
      expect(await kv.get(`${prefix}run`) ?? null).toBeNull()
      await b.release('run', lb.ownerToken)
      await a.release('run', la.ownerToken)
      await a.save('run', snapshot(1))
      expect(await a.load('run')).not.toBeNull()
      await a.delete('run')
    })


  it('leases live under the prefix: stores with other prefixes never collide (nor with ids that look alike)', async () => {
    const base = fresh('scope')
    const s1 = createSnapshotStore({ store: kv, prefix: `${base}a:` })
    const s2 = createSnapshotStore({ store: kv, prefix: `${base}a:b:` })
    const l1 = await s1.tryAcquire('b:x', { ttlMs: 5000 })
    const l2 = await s2.tryAcquire('x', { ttlMs: 5000 })
    const l3 = await s1.tryAcquire('lease:b:x', { ttlMs: 5000 })
    expect([l1, l2, l3].every((l) => l !== null)).toBe(true)
    await s1.release('b:x', l1.ownerToken)
    await s2.release('x', l2.ownerToken)
    await s1.release('lease:b:x', l3.ownerToken)
  })
})

/** A durable run of `seconds` one-second steps; `during` runs alongside it. */
async function longRun(store: any, id: string, seconds: number, opts: object, during: () => Promise<unknown>) {
  let calls = 0
  const wait = async () => {
    await sleep(1000)
    return ok(++calls)
  }
  const [r, seen] = await Promise.all([
    durable.run(
      { wait },
      async ({ step, deps }: any) => {
        for (let i = 0; i < seconds; i++) await step(`s${i}`, () => deps.wait(), { key: `s${i}` })
        return calls
      },
      { id, store, ...opts },
    ),
    during(),
  ])
  return { r, seen, calls }
}

describe('leases under durable.run (redis, file and postgres at once)', () => {
  const natives = backends.filter((b) => b.native)

  it(`a heartbeat keeps a ${STRESS ? 10 : 3} s run alive on lockTtlMs: 1000`, async () => {
    const secs = STRESS ? 10 : 3
    const outs = await Promise.all(
      natives.map(async ({ kv }) => {
        const prefix = fresh('hb')
        const store = createSnapshotStore({ store: kv, prefix })
        const rival = createSnapshotStore({ store: kv, prefix })
        return longRun(store, 'long', secs, { lockTtlMs: 1000 }, async () => {
          const refused = []
          // well past the first 1000 ms: only renewals keep the lease
          for (let t = 1500; t < secs * 1000 - 200; t += 700) {
            await sleep(700)
            refused.push((await rival.tryAcquire('long', { ttlMs: 1000 })) === null)
          }
          return refused
        })
      }),
    )
    for (const { r, seen, calls } of outs) {
      expect(r).toEqual({ ok: true, value: secs })
      expect(calls).toBe(secs)
      expect(seen.length).toBeGreaterThan(0)
      expect(seen.every(Boolean)).toBe(true)
    }
  }, 60_000)

  it('a lease taken over mid-run aborts the run (LEASE_EXPIRED, abortOnLeaseLoss)', async () => {
    const outs = await Promise.all(
      natives.map(async ({ kv }) => {
        const prefix = fresh('lost')
        const store = createSnapshotStore({ store: kv, prefix })
        const rival = createSnapshotStore({ store: kv, prefix })
        // the first renewal comes after the lease expired: the rival takes it first
        return longRun(store, 'victim', 4, { lockTtlMs: 400, heartbeatIntervalMs: 1200 }, async () => {
          await sleep(700)
          return rival.tryAcquire('victim', { ttlMs: 10_000 })
        })
      }),
    )
    for (const { r, seen, calls } of outs) {
      expect(seen).not.toBeNull()
      expect(r.ok).toBe(false)
      expect(r.error.type).toBe('LEASE_EXPIRED')
      expect(calls).toBeLessThan(4)
    }
  }, 60_000)

  it.each([
    ['redis', redisKv],
    ['postgres', pgKv],
  ])('a deleted lease key aborts the run too (%s)', async (_name, kv) => {
    const prefix = fresh('deleted')
    const store = createSnapshotStore({ store: kv, prefix })
    const { r } = await longRun(store, 'gone', 3, { lockTtlMs: 900 }, async () => {
      await sleep(400)
      // the one lease key under the prefix (Redis: named in src/redis/lease.rs)
      const leaseKeys = await kv.keys(`${escapeGlob(`${prefix}\u0000lease`)}*`)
      expect(leaseKeys).toHaveLength(1)
      expect(await kv.delete(leaseKeys[0])).toBe(true)
    })
    expect(r.ok).toBe(false)
    expect(r.error.type).toBe('LEASE_EXPIRED')
  }, 30_000)
})

describe('Redis leases on a private server', () => {
  it('scripts survive SCRIPT FLUSH (EVALSHA falls back to EVAL); a dead server is an error, not a free lease', async () => {
    const { startPrivateRedis } = await import('../helpers/redis-server')
    const { createClient } = require('redis')
    const server = await startPrivateRedis()
    await server.start()
    const kv = createRedisStore({ url: server.url, connectTimeout: 500, commandTimeout: 500 })
    const admin = createClient({ url: server.url })
    try {
      await admin.connect()
      const store = createSnapshotStore({ store: kv, prefix: 'p:' })
      const a = await store.tryAcquire('x', { ttlMs: 10_000 })
      const leaseKeys = await admin.keys('p:\u0000lease*')
      expect(leaseKeys).toHaveLength(1)
      expect(await store.renew('x', a.ownerToken, { ttlMs: 10_000 })).toBe(true) // the server has filed the scripts now
      expect(await admin.sendCommand(['SCRIPT', 'FLUSH'])).toBe('OK')
      expect(await store.renew('x', a.ownerToken, { ttlMs: 10_000 })).toBe(true)
      expect(await store.renew('x', 'f'.repeat(32), { ttlMs: 10_000 })).toBe(false)
      // a fenced save and delete after a flush: scripts go by body
      await admin.sendCommand(['SCRIPT', 'FLUSH'])
      await store.save('x', snapshot())
      expect(await admin.exists('p:x')).toBe(1)
      await admin.sendCommand(['SCRIPT', 'FLUSH'])
      await store.delete('x')
      expect(await admin.exists('p:x')).toBe(0)
      await admin.sendCommand(['SCRIPT', 'FLUSH'])
      await store.release('x', a.ownerToken)
      expect(await admin.exists(leaseKeys[0])).toBe(0)
      await admin.quit()
      await server.kill()
      await rejectsWith(store.tryAcquire('x', { ttlMs: 1000 }), 'ERR_STORE_UNAVAILABLE')
      const r = await durable.run({ a: async () => ok(1) }, async ({ step, deps }: any) => step('a', () => deps.a(), { key: 'a' }), { id: 'x', store })
      expect(r.ok).toBe(false)
      expect(r.error.type).toBe('PERSISTENCE_ERROR')
    } finally {
      await kv.close()
      await server.kill()
    }
  }, 30_000)
})
