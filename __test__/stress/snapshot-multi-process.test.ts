// createSnapshotStore's run leases across real processes (issue 14), on our
// native Redis store (the shared server, a unique prefix), file store and
// PostgreSQL store (the shared server, a private schema per test, dropped):
// - awaitly 1.35's own durable.run: a worker SIGKILLed in step 3 of 4; a
//   second process gets ConcurrentExecutionError while the lease lives, a
//   third resumes after it expired, skips steps 1-2 (call counters in files)
//   and completes;
// - N processes race tryAcquire on one id with 200 ms leases: the intervals
//   each certainly owned the lease never intersect. On PostgreSQL 20
//   processes (they also create the schema at once), two of them with
//   Date.now() shifted by +5 and -5 minutes.
// CI: 10 processes x 3 rounds (PostgreSQL 20 x 2); `npm run stress`
// (AWAITLY_STRESS=1): 50 x 20.
import { afterAll, describe, expect, it } from 'vitest'
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'
import path from 'node:path'
import { dropSchema, privateSchema } from '../helpers/postgres'

const require = createRequire(import.meta.url)
const { createRedisStore, createSnapshotStore, escapeGlob } = require('../../index.js')
const child = path.join(__dirname, '..', 'fixtures', 'snapshot-child.cjs')
const STRESS = process.env.AWAITLY_STRESS === '1'
const PROCS = STRESS ? 50 : 10
const ROUNDS = STRESS ? 20 : 3
const REDIS = 'redis://127.0.0.1:6379'
const RUN = `snapmp:${process.pid}:${Date.now()}:`
const dirs: string[] = []
const schemas: string[] = []

afterAll(async () => {
  const kv = createRedisStore()
  for (const k of await kv.keys(`${escapeGlob(RUN)}*`)) await kv.delete(k)
  await kv.close()
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
  await dropSchema(...schemas)
})

function schema(tag: string) {
  const s = privateSchema(tag)
  schemas.push(s)
  return s
}

function tmp(tag: string) {
  const d = mkdtempSync(path.join(os.tmpdir(), `snapmp-${tag}-`))
  dirs.push(d)
  return d
}

interface Run {
  proc: ChildProcess
  /** resolves with stdout lines once the process exits (code, signal) */
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; lines: string[]; err: string }>
  /** resolves when stdout has printed `line` */
  saw(line: string): Promise<void>
}

function start(args: string[]): Run {
  const proc = spawn(process.execPath, [child, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  const waiters: Array<[string, () => void]> = []
  proc.stdout!.on('data', (d) => {
    out += d
    for (const [l, r] of waiters) if (out.split('\n').includes(l)) r()
  })
  proc.stderr!.on('data', (d) => (err += d))
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; lines: string[]; err: string }>((resolve) =>
    proc.on('exit', (code, signal) => resolve({ code, signal, lines: out.trim().split('\n'), err })),
  )
  return {
    proc,
    done,
    saw: (line) =>
      new Promise<void>((resolve, reject) => {
        if (out.split('\n').includes(line)) return resolve()
        waiters.push([line, resolve])
        void done.then((r) => reject(new Error(`exited (${r.code ?? r.signal}) before "${line}": ${r.err}`)))
      }),
  }
}

async function result(args: string[]) {
  const r = await start(args).done
  if (r.code !== 0) throw new Error(`child exited ${r.code ?? r.signal}: ${r.err}`)
  return JSON.parse(r.lines[r.lines.length - 1])
}

const counts = (dir: string) =>
  [1, 2, 3, 4].map((i) => {
    const f = path.join(dir, `step${i}`)
    return existsSync(f) ? readFileSync(f, 'utf8').split('\n').filter(Boolean).length : 0
  })

const MINUTES_5 = 5 * 60_000
const backends = [
  { kind: 'redis', target: () => REDIS, procs: PROCS, rounds: ROUNDS, shifts: [] as number[] },
  { kind: 'file', target: () => tmp('store'), procs: PROCS, rounds: ROUNDS, shifts: [] as number[] },
  { kind: 'postgres', target: () => schema('mp'), procs: STRESS ? 50 : 20, rounds: STRESS ? 20 : 2, shifts: [MINUTES_5, -MINUTES_5] },
]

describe.each(backends)('snapshot leases across processes: $kind', ({ kind, target, procs, rounds, shifts }) => {
  it('durable.run: SIGKILLed worker; a second gets ConcurrentExecutionError, a third resumes after expiry and skips steps 1-2', async () => {
    const where = target()
    const prefix = `${RUN}${kind}:durable:`
    const counters = tmp('counters')
    const id = 'order-42'
    const ttl = '3000' // heartbeat every 1 s: the lease outlives the kill by 2-3 s
    const first = start(['durable', kind, where, prefix, id, counters, ttl, '1'])
    await first.saw('in-step-3')
    first.proc.kill('SIGKILL')
    const killed = await first.done
    expect(killed.signal).toBe('SIGKILL')
    const killedAt = Date.now()
    expect(counts(counters)).toEqual([1, 1, 1, 0])

    // the lease lives on after its holder died
    const second = await result(['durable', kind, where, prefix, id, counters, ttl, '0'])
    expect(second.ok).toBe(false)
    expect(second.error.type).toBe('CONCURRENT_EXECUTION')
    expect(second.error.reason).toBe('cross-process')
    expect(counts(counters)).toEqual([1, 1, 1, 0])

    // once it expired, a worker resumes from the snapshot: steps 1-2 are not called again
    await new Promise((r) => setTimeout(r, Math.max(0, killedAt + 3100 - Date.now())))
    const third = await result(['durable', kind, where, prefix, id, counters, ttl, '0'])
    expect(third).toEqual({ ok: true, value: 100 })
    expect(counts(counters)).toEqual([1, 1, 2, 1])

    // success deletes the snapshot and releases the lease
    const { createFileStore, createPostgresStore } = require('../../index.js')
    const kv =
      kind === 'redis'
        ? createRedisStore()
        : kind === 'postgres'
          ? createPostgresStore({ host: '127.0.0.1', user: 'postgres', database: 'test', schema: where })
          : createFileStore({ directory: where })
    const store = createSnapshotStore({ store: kv, prefix })
    expect(await store.load(id)).toBeNull()
    const lease = await store.tryAcquire(id, { ttlMs: 1000 })
    expect(lease).not.toBeNull()
    await store.release(id, lease.ownerToken)
    if (kv.close) await kv.close()
  }, 60_000)

  it(`${procs} processes race tryAcquire (200 ms leases, ${rounds} rounds each${shifts.length ? ', clocks of two shifted by minutes' : ''}): no two holders overlap`, async () => {
    const where = target()
    const prefix = `${RUN}${kind}:race:`
    const outs = await Promise.all(
      Array.from({ length: procs }, (_, i) => result(['race', kind, where, prefix, 'the-one', String(rounds), '200', String(shifts[i] ?? 0)])),
    )
    const all: Array<[number, number]> = outs.flatMap((o) => o.intervals)
    expect(all.length).toBe(procs * rounds)
    // the shifted racers held the lease too: their clock changed nothing
    for (let i = 0; i < shifts.length; i++) expect(outs[i].intervals.length).toBe(rounds)
    // A racer descheduled past its lease before it saw the reply owned it
    // certainly for no time at all (its interval ends before it starts):
    // another racer may rightly hold the lease by then. Only non-empty
    // intervals are holdings.
    const held = all.filter(([from, to]) => to > from).sort((a, b) => a[0] - b[0])
    expect(held.length).toBeGreaterThan(all.length / 2)
    let ended = -Infinity
    for (let i = 0; i < held.length; i++) {
      // each interval starts after every earlier one ended
      expect(held[i][0], `interval ${i} starts inside an earlier one`).toBeGreaterThanOrEqual(ended)
      ended = Math.max(ended, held[i][1])
    }
    // contention was real: processes were refused while another held the lease
    const tries = outs.reduce((n, o) => n + o.tries, 0)
    expect(tries).toBeGreaterThan(procs * rounds)
  }, STRESS ? 600_000 : 90_000)
})
