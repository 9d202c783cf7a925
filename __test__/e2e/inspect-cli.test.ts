// The inspector's command line (cli/bin.js) against real stores: a temp
// directory (native file store), a private redis-server, a local Redis
// Cluster and a private schema on the shared PostgreSQL, each holding runs written by awaitly's own durable.run in child
// processes (__test__/fixtures/inspect-child.cjs):
// - `idem:order-done`: a completed run (what durable.run keeps after success
//   with an idempotency key);
// - `order-killed`: SIGKILLed in step 3, its 1 s lease expired: stuck;
// - `order-held`: a worker still running step 3, renewing its lease;
// - `order-<img src=x onerror=alert(1)>`: step 2 returned an error with a cause;
// - `broken`: a value that is not a snapshot (corrupt);
// - `legacy-1`: a 1.0 resume state saved by createStatePersistence.
// Asserts the table and --json, the filters, show, leases, and that delete
// and release act only after confirmation; then usage, errors and ids that
// try to leave a store directory.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ChildProcess } from 'node:child_process'
import { mkdtempSync, mkdirSync, rmSync, readdirSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'
import path from 'node:path'
import { startPrivateRedis, type PrivateRedis } from '../helpers/redis-server'
import { startCluster, type LocalCluster } from '../helpers/redis-cluster'
import { cli, jsonLines, seedRuns, PREFIX, XSS, type Cli } from '../helpers/inspect'
import { PG, privateSchema, dropSchema } from '../helpers/postgres'

const require = createRequire(import.meta.url)
const { createRedisStore, createFileStore, createSnapshotStore, createPostgresStore } = require('../../index.js')
const backends = [
  { name: 'file store', kind: 'file' },
  { name: 'private redis-server', kind: 'redis' },
  { name: 'local Redis Cluster', kind: 'cluster' },
  { name: 'PostgreSQL store (a private schema)', kind: 'postgres' },
] as const

describe.each(backends)('inspector CLI on a $name', ({ kind }) => {
  let source: string[] = []
  let held: ChildProcess
  let kv: any
  let dir = ''
  let redis: PrivateRedis | undefined
  let cluster: LocalCluster | undefined
  let schema = ''
  // PostgreSQL lease rows are listed, their expiry is not read
  const leaseTimed = kind !== 'postgres'

  beforeAll(async () => {
    let target: string
    if (kind === 'file') {
      dir = mkdtempSync(path.join(os.tmpdir(), 'inspect-cli-'))
      target = dir
      source = ['--dir', dir]
      kv = createFileStore({ directory: dir })
    } else if (kind === 'redis') {
      redis = await startPrivateRedis()
      target = redis.url
      source = ['--redis', redis.url]
      kv = createRedisStore({ url: redis.url })
    } else if (kind === 'postgres') {
      schema = privateSchema('inspect')
      const opts = { ...PG, schema }
      target = JSON.stringify(opts)
      source = ['--postgres', `postgres://${PG.user}@${PG.host}:${PG.port}/${PG.database}`, '--pg-schema', schema]
      kv = createPostgresStore(opts)
    } else {
      cluster = await startCluster({ primaries: 3, replicas: 0 })
      target = cluster.nodes.join(',')
      source = ['--cluster', cluster.ports.map((p) => `127.0.0.1:${p}`).join(',')]
      kv = createRedisStore({ cluster: { nodes: cluster.nodes } })
    }
    held = await seedRuns(kind, target, kv)
  }, 90_000)

  afterAll(async () => {
    held?.kill('SIGKILL')
    await kv?.close?.()
    await redis?.kill()
    await cluster?.stop()
    if (schema) await dropSchema(schema)
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  const runs = (...args: string[]) => cli(['runs', ...source, '--stuck-after', '500ms', ...args])

  it('runs --json: one line per run, newest first, every field', () => {
    const r = runs('--json')
    expect(r.code, r.err).toBe(0)
    const rows = jsonLines(r.out)
    const byId = Object.fromEntries(rows.map((x: any) => [x.id, x]))
    expect(Object.keys(byId).sort()).toEqual(['broken', 'idem:order-done', 'legacy-1', XSS, 'order-held', 'order-killed'].sort())
    expect(byId['idem:order-done']).toMatchObject({ kind: 'snapshot', format: '1.35', status: 'completed', stuck: false, lease: { state: 'none' } })
    expect(byId['order-killed']).toMatchObject({ kind: 'snapshot', status: 'running', stepsDone: 2, lastStep: 'ship', stuck: true })
    // Redis lease keys vanish on expiry; a file record stays, expired
    expect(byId['order-killed'].lease.state).toBe(kind === 'file' ? 'expired' : 'none')
    expect(byId['order-held']).toMatchObject({ status: 'running', stuck: false, lease: { state: 'held' } })
    if (leaseTimed) expect(byId['order-held'].lease.expiresInMs).toBeGreaterThan(30_000)
    else expect(byId['order-held'].lease.expiresInMs).toBeNull()
    expect(byId[XSS]).toMatchObject({ stepsDone: 2, stepsFailed: 1, lastStep: 'charge', key: `${PREFIX}${XSS}` })
    expect(byId.broken).toMatchObject({ kind: 'corrupt', key: `${PREFIX}broken`, status: null })
    expect(byId.broken.error).toMatch(/formatVersion/)
    expect(byId['legacy-1']).toMatchObject({ kind: 'resume-state', format: '1.0', prefix: 'workflow:state:', stepsDone: 1, lastStep: 'fetch', updatedAt: null })
    for (const x of rows) {
      expect(Object.keys(x).sort()).toEqual(
        ['ageMs', 'error', 'format', 'id', 'key', 'kind', 'lastStep', 'lease', 'prefix', 'size', 'status', 'stepsDone', 'stepsFailed', 'stuck', 'updatedAt'].sort(),
      )
      expect(x.size).toBeGreaterThan(0)
    }
    // newest first; runs with no time last
    const timed = rows.filter((x: any) => x.updatedAt !== null).map((x: any) => x.updatedAt)
    expect(timed).toEqual([...timed].sort().reverse())
    expect(rows.slice(-1)[0].updatedAt).toBeNull()
  })

  it('runs: the table names every run, flags the stuck one and lists the corrupt one by key', () => {
    const r = runs()
    expect(r.code, r.err).toBe(0)
    const lines = r.out.trim().split('\n')
    expect(lines[0]).toMatch(/^ID\s+KIND\s+STATUS\s+STEPS\s+LAST STEP\s+UPDATED\s+AGE\s+SIZE\s+LEASE\s+STUCK$/)
    expect(lines).toHaveLength(7)
    expect(lines.find((l) => l.startsWith('order-killed '))).toMatch(/snapshot 1\.35\s+running\s+2\s+ship\s.*STUCK$/)
    expect(lines.find((l) => l.startsWith('order-held '))).toMatch(leaseTimed ? /held \d+s$/ : /held$/)
    expect(lines.find((l) => l.startsWith('broken '))).toMatch(/corrupt\s+corrupt\s+-\s+awaitly:snapshot:broken/)
    expect(lines.find((l) => l.startsWith('idem:order-done '))).toMatch(/completed/)
    expect(lines.find((l) => l.startsWith('legacy-1 '))).toMatch(/resume 1\.0/)
  })

  it('filters: --status, --stuck, --older-than, --limit', () => {
    const ids = (r: Cli) => jsonLines(r.out).map((x: any) => x.id).sort()
    expect(ids(runs('--json', '--status', 'completed'))).toEqual(['idem:order-done'])
    expect(ids(runs('--json', '--status', 'corrupt'))).toEqual(['broken'])
    // the failed run released its lease and is not updated either: stuck too
    expect(ids(runs('--json', '--stuck'))).toEqual([XSS, 'order-killed'].sort())
    expect(ids(runs('--json', '--status', 'running'))).toEqual([XSS, 'order-held', 'order-killed'].sort())
    expect(ids(runs('--json', '--stuck', '--stuck-after', '1h'))).toEqual([])
    const none = runs('--older-than', '1h')
    expect(none.code).toBe(0)
    expect(none.out).toBe('')
    expect(none.err).toMatch(/no runs/)
    expect(ids(runs('--json', '--older-than', '1ms')).length).toBe(4) // the timed snapshots
    const two = jsonLines(runs('--json', '--limit', '2').out)
    expect(two.map((x: any) => x.id)).toEqual(jsonLines(runs('--json').out).slice(0, 2).map((x: any) => x.id))
    expect(ids(runs('--json', '--order', 'none'))).toHaveLength(6)
    expect(runs('--status', 'sleeping').code).toBe(2)
    expect(runs('--older-than', 'soon').code).toBe(2)
    expect(runs('--limit', '0').code).toBe(2)
  })

  it('show: steps in order with ok/error, the error and its cause chain, metadata', () => {
    const r = cli(['show', XSS, ...source])
    expect(r.code, r.err).toBe(0)
    expect(r.out).toContain(`run       ${XSS}`)
    expect(r.out).toMatch(/1\. ok\s+reserve\s+\{"reserved":3,"at":"warehouse-7"\}/)
    expect(r.out).toMatch(/2\. ERROR charge/)
    expect(r.out).toContain('error: "PAYMENT_DECLINED"')
    expect(r.out).toContain('cause: Error: card expired <- Error: issuer said no')
    expect(r.out).toMatch(/version\s+1/)
    const j = JSON.parse(cli(['show', XSS, ...source, '--json']).out)
    expect(j.steps.map((s: any) => [s.name, s.ok])).toEqual([
      ['reserve', true],
      ['charge', false],
    ])
    expect(j.steps[1]).toMatchObject({ error: 'PAYMENT_DECLINED', cause: 'Error: card expired <- Error: issuer said no' })
    expect(j.metadata).toMatchObject({ version: 1, customer: 'c-17', lastStepKey: 'charge' })
    const broken = cli(['show', 'broken', ...source, '--json'])
    expect(JSON.parse(broken.out)).toMatchObject({ kind: 'corrupt', key: `${PREFIX}broken`, steps: [] })
    const missing = cli(['show', 'nope', ...source])
    expect(missing.code).toBe(1)
    expect(missing.err).toMatch(/no run "nope"/)
    expect(missing.err).not.toMatch(/\n\s+at /) // no stack trace
    expect(cli(['show', ...source]).code).toBe(2)
  })

  it('leases: the live one with its expiry', () => {
    const r = cli(['leases', ...source, '--json'])
    expect(r.code, r.err).toBe(0)
    const l = jsonLines(r.out)
    const heldLease = l.find((x: any) => x.id === 'order-held')
    expect(heldLease).toMatchObject({ state: 'held', prefix: PREFIX })
    if (leaseTimed) expect(heldLease.expiresInMs).toBeGreaterThan(30_000)
    else expect(heldLease.expiresInMs).toBeNull()
    expect(l.filter((x: any) => x.state === 'held')).toHaveLength(1)
    const t = cli(['leases', ...source])
    expect(t.out).toMatch(/^ID\s+STATE\s+EXPIRES IN/)
    expect(t.out).toMatch(leaseTimed ? /order-held\s+held\s+\d+s/ : /order-held\s+held\s+-/)
  })

  it('delete acts only after confirmation, and says what it did', () => {
    const no = cli(['delete', 'order-killed', ...source], 'n\n')
    expect(no.code).toBe(1)
    expect(no.err).toContain(`About to delete 1 saved run:\n  ${PREFIX}order-killed`)
    expect(no.err).toMatch(/nothing deleted/)
    expect(jsonLines(runs('--json').out).some((x: any) => x.id === 'order-killed')).toBe(true)
    const eof = cli(['delete', 'order-killed', ...source], '')
    expect(eof.code).toBe(1)
    expect(jsonLines(runs('--json').out).some((x: any) => x.id === 'order-killed')).toBe(true)
    const yes = cli(['delete', 'order-killed', ...source], 'y\n')
    expect(yes.code, yes.err).toBe(0)
    expect(yes.err).toContain(`deleted ${PREFIX}order-killed`)
    expect(jsonLines(runs('--json').out).some((x: any) => x.id === 'order-killed')).toBe(false)
    const script = cli(['delete', 'broken', 'legacy-1', 'ghost', ...source, '--yes', '--json'])
    expect(script.code, script.err).toBe(0)
    expect(jsonLines(script.out)).toEqual([
      { id: 'broken', key: `${PREFIX}broken`, deleted: true },
      { id: 'legacy-1', key: 'workflow:state:legacy-1', deleted: true },
    ])
    expect(script.err).toMatch(/no run "ghost"/)
    expect(jsonLines(runs('--json').out).map((x: any) => x.id).sort()).toEqual(['idem:order-done', XSS, 'order-held'].sort())
  })

  it('release acts only after confirmation; the run is then free for another worker', () => {
    const no = cli(['release', 'order-held', ...source], 'no\n')
    expect(no.code).toBe(1)
    expect(no.err).toMatch(leaseTimed ? /order-held has a live lease \(expires in \d+s\)/ : /order-held has a live lease;/)
    expect(no.err).toMatch(/nothing released/)
    expect(jsonLines(cli(['leases', ...source, '--json']).out).some((x: any) => x.id === 'order-held' && x.state === 'held')).toBe(true)
    const yes = cli(['release', 'order-held', ...source, '--yes', '--json'])
    expect(yes.code, yes.err).toBe(0)
    expect(JSON.parse(yes.out)).toMatchObject({ id: 'order-held', released: true, wasLive: true })
    const after = jsonLines(cli(['leases', ...source, '--json']).out)
    expect(after.some((x: any) => x.id === 'order-held')).toBe(false)
    expect(cli(['release', 'order-held', ...source, '--yes']).code).toBe(1) // nothing left to release
  })
})

describe('inspector CLI: usage and errors', () => {
  it('--help on every command, exit codes 0 / 1 / 2, one-line errors', () => {
    for (const c of ['runs', 'show', 'leases', 'delete', 'release', 'serve']) {
      const r = cli([c, '--help'])
      expect(r.code).toBe(0)
      expect(r.out).toMatch(new RegExp(`^Usage: npx awaitly-persistence-native ${c}`))
      expect(r.out).toContain('--json')
    }
    expect(cli(['--help']).code).toBe(0)
    expect(cli([]).code).toBe(2)
    const unknown = cli(['nap'])
    expect(unknown.code).toBe(2)
    expect(unknown.err).toMatch(/unknown command "nap"/)
    expect(cli(['runs']).err).toMatch(/no source/)
    expect(cli(['runs', '--dir', '/x', '--redis', 'redis://a']).code).toBe(2)
    expect(cli(['runs', '--dir', '/no/such/dir']).code).toBe(1)
    const down = cli(['runs', '--redis', 'redis://127.0.0.1:1'])
    expect(down.code).toBe(1)
    expect(down.err).toMatch(/^awaitly-persistence-native: ERR_STORE_UNAVAILABLE: /)
    expect(down.err.trim().split('\n')).toHaveLength(1)
    const j = cli(['runs', '--redis', 'redis://127.0.0.1:1', '--json'])
    expect(JSON.parse(j.err).error.code).toBe('ERR_STORE_UNAVAILABLE')
    expect(cli(['serve', '--dir', '/tmp', '--host', '0.0.0.0']).err).toMatch(/--allow-remote/)
  })
  it('ids cannot reach outside a store directory', () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'inspect-traversal-'))
    try {
      const store = path.join(root, 'store')
      mkdirSync(store)
      for (const name of ['victim', 'victim.kv.json', 'awaitly:snapshot:victim.kv.json']) writeFileSync(path.join(root, name), '{"updatedAt":"x","snapshot":{}}')
      for (const id of ['../victim', '../../victim', `..${path.sep}victim.kv.json`, path.join(root, 'victim'), '..', '.', '%2e%2e%2fvictim']) {
        const r = cli(['show', id, '--dir', store])
        expect(r.code).toBe(1)
        expect(r.err).toMatch(/no run/)
        expect(cli(['delete', id, '--dir', store, '--yes']).code).toBe(1)
      }
      expect(readdirSync(root).sort()).toEqual(['awaitly:snapshot:victim.kv.json', 'store', 'victim', 'victim.kv.json'])
    } finally {
      rmSync(root, { recursive: true, force: true })
    }
  })

  it('kinds: a 4.x snapshot (steps in stepOrder), a 1.35 ResumeState saved through createSnapshotStore; control characters escaped', async () => {
    const root = mkdtempSync(path.join(os.tmpdir(), 'inspect-kinds-'))
    try {
      const kv = createFileStore({ directory: root })
      const store = createSnapshotStore({ store: kv })
      // the metadata awaitly 4.x adds: stepOrder and stepArgs
      await store.save('v4-run', {
        formatVersion: 1,
        steps: { b: { ok: true, value: 2 }, a: { ok: true, value: 1 } },
        execution: { status: 'running', lastUpdated: new Date().toISOString() },
        metadata: { version: 3, stepOrder: ['a', 'b'], stepArgs: [null, null], lastStepKey: 'b' },
      })
      await store.save('resume-run', { steps: new Map([['fetch', { result: { ok: false, error: 'E', cause: new Error('boom') } }]]) })
      const rows = jsonLines(cli(['runs', '--dir', root, '--json']).out)
      expect(rows.find((r: any) => r.id === 'v4-run')).toMatchObject({ kind: 'snapshot', format: '4.x', stepsDone: 2, lastStep: 'b' })
      expect(rows.find((r: any) => r.id === 'resume-run')).toMatchObject({ kind: 'resume-state', format: '1.35', stepsDone: 1, stepsFailed: 1, status: null })
      const v4 = cli(['show', 'v4-run', '--dir', root])
      expect(v4.out).toMatch(/kind\s+snapshot 4\.x/)
      expect(v4.out).toMatch(/version\s+3\nstepOrder a, b/)
      expect(v4.out).toMatch(/1\. ok\s+a\s+1\n\s+2\. ok\s+b\s+2/)
      const resume = JSON.parse(cli(['show', 'resume-run', '--dir', root, '--json']).out)
      expect(resume.steps).toEqual([{ name: 'fetch', ok: false, error: 'E', cause: 'Error: boom' }])
      // stored text never drives the terminal: control characters are shown escaped
      await store.save('evil\u001b[2J\u0007', { formatVersion: 1, steps: {}, execution: { status: 'running', lastUpdated: new Date().toISOString() } })
      const table = cli(['runs', '--dir', root]).out
      expect(table).not.toMatch(/[\u0000-\u0008\u001b]/)
      expect(table).toContain('evil\\x1b[2J\\x07')
      expect(jsonLines(cli(['runs', '--dir', root, '--json']).out).some((r: any) => r.id === 'evil\u001b[2J\u0007')).toBe(true)
    } finally {
      rmSync(root, { recursive: true, force: true })
    }
  })
})
