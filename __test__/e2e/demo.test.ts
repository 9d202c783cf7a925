// `npm run demo` (examples/crash-resume): the worker is killed with SIGKILL
// partway, run again, skips the steps already done (same values: they come
// from the saved state), finishes and deletes the state. Once on the native
// file store, once on the native Redis store (127.0.0.1:6379, own prefix),
// once on the native PostgreSQL store (DATABASE_URL, a private schema).
import { afterAll, describe, expect, it } from 'vitest'
import { execFile } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createClient } from 'redis'
import { adminClient, dropSchema, privateSchema } from '../helpers/postgres'

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..')
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
const prefix = `test:demo:${process.pid}-${Date.now().toString(36)}:`

function demo(env: Record<string, string | undefined>) {
  return new Promise<{ code: number; out: string }>((resolve) => {
    const childEnv = { ...process.env, ...env }
    for (const [k, v] of Object.entries(env)) if (v === undefined) delete childEnv[k]
    execFile(npm, ['run', 'demo'], { cwd: root, env: childEnv, encoding: 'utf8', timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, out: `${stdout}\n${stderr}` })
    })
  })
}

// Both runs start at once; each test awaits its own.
const pgSchema = privateSchema('demo')
const onFile = demo({ REDIS_URL: undefined, DATABASE_URL: undefined, DEMO_PREFIX: undefined, DEMO_DIR: undefined })
const onRedis = demo({ REDIS_URL: 'redis://127.0.0.1:6379', DATABASE_URL: undefined, DEMO_PREFIX: prefix, DEMO_DIR: undefined })
const onPostgres = demo({
  DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/test',
  DEMO_PG_SCHEMA: pgSchema,
  REDIS_URL: undefined,
  DEMO_PREFIX: undefined,
  DEMO_DIR: undefined,
})

// Every key of the Redis run holds its own prefix: its state keys
// (`${prefix}<order>`) and the owner marker of that prefix
// (`${prefix}__awaitly:owner:state`). The demo must leave none of them; any
// found are removed here, then reported.
async function demoKeysInRedis(): Promise<string[]> {
  const client = createClient({ url: 'redis://127.0.0.1:6379' })
  await client.connect()
  try {
    const found: string[] = []
    for await (const keys of client.scanIterator({ MATCH: `*${prefix}*`, COUNT: 1000 })) found.push(...([] as string[]).concat(keys))
    if (found.length) await client.del(found)
    return found.sort()
  } finally {
    await client.quit()
  }
}

afterAll(async () => {
  await onRedis
  await demoKeysInRedis()
  await onPostgres
  await dropSchema(pgSchema)
})

const STEPS = ['validate-order', 'reserve-inventory', 'charge-payment', 'create-shipment', 'send-confirmation']

function checkOutput(code: number, out: string) {
  expect(out, out).toMatch(/run 1 was killed with SIGKILL during step "create-shipment"/)
  const line = (run: number, step: string) =>
    out.split('\n').filter((l) => l.includes(`[run ${run}] step `) && l.includes(` ${step} `) && !l.includes('running'))
  // Run 1: steps 1-3 ran, then the kill: no line for 4 or 5.
  for (const s of STEPS.slice(0, 3)) expect(line(1, s), s).toEqual([expect.stringMatching(/ ran /)])
  for (const s of STEPS.slice(3)) expect(line(1, s), s).toEqual([])
  expect(out).toMatch(/saved state after the crash: 3 steps done/)
  // Run 2: 1-3 skipped with the values run 1 computed, 4-5 ran.
  for (const s of STEPS.slice(0, 3)) {
    const [l2] = line(2, s)
    expect(l2, s).toMatch(/skipped \(from saved state\)/)
    const [l1] = line(1, s)
    expect(l2.split(/skipped \(from saved state\)\s+/)[1]).toBe(l1.split(/ ran\s+/)[1])
  }
  for (const s of STEPS.slice(3)) expect(line(2, s), s).toEqual([expect.stringMatching(/ ran /)])
  expect(out).toMatch(/\[run 2\] order \S+ complete \(2 steps ran, 3 skipped\); saved state deleted/)
  expect(out).toMatch(/✓ resumed after the crash/)
  expect(out).not.toMatch(/✗/)
  // after the crash the inspector's table shows the saved run; the demo ends with the command
  expect(out).toMatch(/\n {2}ord-\S+\s+resume 1\.0\s+-\s+3\s+charge-payment\s/)
  expect(out.trimEnd().split('\n').pop()).toMatch(/^ {2}npx awaitly-persistence-native runs --(dir|redis|postgres) \S+( --pg-schema \S+)? --kind state --state-prefix \S+$/)
  expect(code).toBe(0)
}

describe('npm run demo', () => {
  it('kills, resumes and completes on the native file store', async () => {
    const { code, out } = await onFile
    expect(out).toMatch(/state store: the native file store at /)
    checkOutput(code, out)
  }, 60_000)

  it('kills, resumes and completes on the native Redis store (REDIS_URL)', async () => {
    const { code, out } = await onRedis
    expect(out).toContain(`state store: Redis redis://127.0.0.1:6379 (prefix ${prefix})`)
    checkOutput(code, out)
    expect(out).toMatch(/Nothing of the demo is left in the store/)
  }, 60_000)

  it('kills, resumes and completes on the native PostgreSQL store (DATABASE_URL), leaving no row but the version row', async () => {
    const { code, out } = await onPostgres
    expect(out).toContain(`state store: PostgreSQL postgres://postgres@127.0.0.1:5432/test (table ${pgSchema}.awaitly_kv`)
    checkOutput(code, out)
    expect(out).toMatch(/Nothing of the demo is left in the store/)
    const admin = await adminClient()
    try {
      const rows = await admin.query(`SELECT get_byte(k, 0) AS b FROM "${pgSchema}".awaitly_kv`)
      expect(rows.rows).toEqual([{ b: 255 }])
    } finally {
      await admin.end()
    }
  }, 60_000)

  it('leaves no key of its own in Redis: no state, no owner-registry key', async () => {
    await onRedis
    expect(await demoKeysInRedis()).toEqual([])
  }, 60_000)
})
