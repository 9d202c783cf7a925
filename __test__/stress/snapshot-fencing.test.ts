// Fenced checkpoints across real processes (issue 21), on our native Redis
// store (the shared server), a local Redis Cluster, the PostgreSQL store (a
// private schema of the shared server) and the file store:
// worker A runs awaitly 1.35's durable.run (5 steps, lockTtlMs 1000) and is
// SIGSTOPped inside step 3 for 3 s; its lease expires and worker B takes the
// run over, then either finishes steps 3-5 (the state is deleted) or is gone
// after step 4 (the state holds steps 1-4). Then A gets SIGCONT and completes
// its step 3. Asserted:
// - every save and delete A attempts after the pause is rejected
//   (ERR_LEASE_LOST), and A's run reports the run lost: LEASE_EXPIRED, or a
//   PERSISTENCE_ERROR of the delete (never a success);
// - B's final state (its stored bytes), or its absence, is intact;
// - per-step call counters: every side effect ran at most twice (once in A's
//   paused attempt, once in B), steps 1-2 once.
// CI: 2 rounds per store; `npm run stress` (AWAITLY_STRESS=1): 20.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'
import path from 'node:path'
import { startCluster, type LocalCluster } from '../helpers/redis-cluster'
import { PG, dropSchema, privateSchema } from '../helpers/postgres'

const require = createRequire(import.meta.url)
const { createRedisStore, createFileStore, createPostgresStore, createSnapshotStore, escapeGlob } = require('../../index.js')
const worker = path.join(__dirname, '..', 'fixtures', 'fencing-worker.cjs')
const STRESS = process.env.AWAITLY_STRESS === '1'
const ROUNDS = STRESS ? 20 : 2
const REDIS = 'redis://127.0.0.1:6379'
const RUN = `fencing:${process.pid}:${Date.now()}:`
const dirs: string[] = []
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

function tmp(tag: string) {
  const d = mkdtempSync(path.join(os.tmpdir(), `fencing-${tag}-`))
  dirs.push(d)
  return d
}

let cluster: LocalCluster | undefined
const fileDir = tmp('store')
const pgSchema = privateSchema('fencing')

beforeAll(async () => {
  cluster = await startCluster()
}, 120_000)

afterAll(async () => {
  const kv = createRedisStore({ url: REDIS })
  for (const k of await kv.keys(`${escapeGlob(RUN)}*`)) await kv.delete(k)
  await kv.close()
  await cluster?.stop()
  await dropSchema(pgSchema)
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

interface Worker {
  proc: ChildProcess
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string; err: string }>
  saw(line: string): Promise<void>
}

function start(args: string[]): Worker {
  const proc = spawn(process.execPath, [worker, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  const waiters: Array<[string, () => void]> = []
  proc.stdout!.on('data', (d) => {
    out += d
    for (const [l, r] of waiters) if (out.split('\n').includes(l)) r()
  })
  proc.stderr!.on('data', (d) => (err += d))
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string; err: string }>((resolve) =>
    proc.on('exit', (code, signal) => resolve({ code, signal, out, err })),
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

/** The last stdout line of a finished worker, as JSON. */
function report(r: { code: number | null; out: string; err: string }) {
  const lines = r.out.trim().split('\n')
  try {
    return JSON.parse(lines[lines.length - 1])
  } catch {
    throw new Error(`worker exited ${r.code} without a report: ${r.err}`)
  }
}

/** Who ran each step's side effect, per step (A / B, in call order). */
const calls = (dir: string) =>
  [1, 2, 3, 4, 5].map((i) => {
    const f = path.join(dir, `step${i}`)
    return existsSync(f) ? readFileSync(f, 'utf8').split('\n').filter(Boolean) : []
  })

type Kind = 'redis' | 'cluster' | 'postgres' | 'file'
const targetOf = (kind: Kind) =>
  kind === 'redis' ? REDIS : kind === 'cluster' ? cluster!.nodes.join(',') : kind === 'postgres' ? pgSchema : fileDir
const kvOf = (kind: Kind) =>
  kind === 'redis'
    ? createRedisStore({ url: REDIS })
    : kind === 'cluster'
      ? createRedisStore({ cluster: { nodes: cluster!.nodes } })
      : kind === 'postgres'
        ? createPostgresStore({ ...PG, schema: pgSchema })
        : createFileStore({ directory: fileDir })

/** One takeover: A paused in step 3, B finishes (`finish`) or is gone after step 4 (`stop-after-4`), A resumes. */
async function takeover(kind: Kind, round: number, bMode: 'finish' | 'stop-after-4') {
  // the lease key shares the state key's hash slot: through a tag in the
  // prefix (finish), or one it adds itself (stop-after-4, no braces)
  const prefix = bMode === 'finish' ? `${RUN}${kind}:{r${round}}:finish:` : `${RUN}${kind}:r${round}:stop:`
  const id = `order-${round}`
  const counters = tmp('counters')
  const args = (role: string, mode: string) => [kind, targetOf(kind), prefix, id, counters, role, mode]
  const kv = kvOf(kind)
  const stateKey = prefix + id
  try {
    const a = start(args('A', 'pause'))
    await a.saw('in-step-3')
    a.proc.kill('SIGSTOP')
    const stoppedAt = Date.now()
    // A's lease (1 s, last renewed before the stop) expires; B takes the run over
    await sleep(1200)
    // B, again while A's lease has not expired yet (a loaded host)
    let b: any
    for (let tries = 0; ; tries++) {
      const end = await start(args('B', bMode)).done
      if (bMode === 'stop-after-4' && end.code === 3) break // gone when step 5 began
      b = report(end)
      if (b.ok || b.error?.type !== 'CONCURRENT_EXECUTION' || tries >= 20) break
      await sleep(200)
    }
    if (bMode === 'finish') expect(b).toMatchObject({ ok: true, value: 'A1,A2,B3,B4,B5' })
    else expect(b, 'B exits (code 3) when step 5 begins').toBeUndefined()
    const stateAfterB = await kv.get(stateKey)
    await sleep(Math.max(0, stoppedAt + 3000 - Date.now()))
    a.proc.kill('SIGCONT')
    const aEnd = await a.done
    expect(aEnd.code, aEnd.err).toBe(0)
    const ra = report(aEnd)

    // A: its checkpoints before the pause landed, every write after it was fenced off
    const ok = ra.events.filter((e: any) => e.type === 'persist_success').map((e: any) => e.stepKey)
    const lost = ra.events.filter((e: any) => e.type === 'persist_error')
    expect(ok).toEqual(['s1', 's2'])
    expect(lost.length).toBeGreaterThanOrEqual(1)
    expect(lost[0].stepKey).toBe('s3')
    for (const e of lost) expect(e.code).toBe('ERR_LEASE_LOST')
    // ... and the run is reported lost, never finished over B's state
    expect(ra.ok).toBe(false)
    if (ra.error.type === 'PERSISTENCE_ERROR') expect(ra.error).toMatchObject({ operation: 'delete', code: 'ERR_LEASE_LOST' })
    else expect(ra.error.type).toBe('LEASE_EXPIRED')

    // B's final state, byte for byte (or its absence)
    const finalState = await kv.get(stateKey)
    if (bMode === 'finish') {
      expect(stateAfterB ?? null).toBeNull()
      expect(finalState ?? null).toBeNull()
    } else {
      expect(typeof stateAfterB).toBe('string')
      expect(finalState).toBe(stateAfterB)
      const snap = await createSnapshotStore({ store: kv, prefix }).load(id)
      expect(Object.keys(snap.steps).sort()).toEqual(['s1', 's2', 's3', 's4'])
      expect(Object.values(snap.steps).map((s: any) => s.value)).toEqual(expect.arrayContaining(['A1', 'A2', 'B3', 'B4']))
    }

    // side effects: steps 1-2 once (A), step 3 twice (A paused, then B), steps 4-5 at most twice
    const c = calls(counters)
    expect(c[0]).toEqual(['A'])
    expect(c[1]).toEqual(['A'])
    expect(c[2]).toEqual(['A', 'B'])
    expect(c[3].filter((r) => r === 'B')).toEqual(['B'])
    expect(c[4].filter((r) => r === 'B')).toEqual(bMode === 'finish' ? ['B'] : [])
    for (const step of c) expect(step.length).toBeLessThanOrEqual(2)
  } finally {
    if (kv.close) await kv.close()
  }
}

describe.each(['redis', 'cluster', 'postgres', 'file'] as const)('fenced checkpoints across processes: %s', (kind) => {
  for (let round = 0; round < ROUNDS; round++) {
    it(`round ${round + 1}/${ROUNDS}: A paused in step 3 for 3 s, B takes over (finishes / gone after step 4), A wakes up fenced off`, async () => {
      await Promise.all([takeover(kind, round, 'finish'), takeover(kind, round, 'stop-after-4')])
    }, 60_000)
  }
})
