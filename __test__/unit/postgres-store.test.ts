// createPostgresStore (issue 22) against the real PostgreSQL on 127.0.0.1:5432,
// each store on a schema private to this file (created by the store on first
// use, dropped afterwards; the compliance suite runs in
// compliance/postgres-native-compliance.test.ts): bad options and
// arguments, exact strings (U+0000, lone surrogates, % _ \ * ? [) in keys,
// values, snapshot ids and prefixes, the table layout and version row,
// server-clock expiry and the sweep, 20 stores creating one schema at once,
// our connections terminated with calls in flight (codes, then recovery), and
// the process ending with calls in flight.
import { afterAll, describe, expect, it } from 'vitest'
import { createRequire } from 'node:module'
import { spawn } from 'node:child_process'
import path from 'node:path'
import { PG, adminClient, dropSchema, privateSchema } from '../helpers/postgres'

const require = createRequire(import.meta.url)
const { createPostgresStore, createSnapshotStore, escapeGlob } = require('../../index.js')

const schemas: string[] = []
const stores: any[] = []
function openStore(tag: string, extra: object = {}) {
  const schema = privateSchema(tag)
  schemas.push(schema)
  const store = createPostgresStore({ ...PG, schema, ...extra })
  stores.push(store)
  return { store, schema }
}
const open = openStore
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

afterAll(async () => {
  for (const s of stores) await s.close()
  await dropSchema(...schemas)
})

async function rejection(p: Promise<unknown>) {
  return p.then(
    () => null,
    (e) => e,
  )
}

describe('createPostgresStore: options and arguments', () => {
  it('bad options are a TypeError (ERR_INVALID_ARG) at creation, before any connection', () => {
    const bad: unknown[] = [
      null,
      'postgres://x',
      [],
      { table: 'a-b' },
      { table: 'drop table x;' },
      { table: '1abc' },
      { table: 'x'.repeat(53) },
      { table: 3 },
      { schema: 'a"b' },
      { schema: '' },
      { schema: 5 },
      { poolSize: 0 },
      { poolSize: 1.5 },
      { port: 70000 },
      { port: '5432' },
      { connectTimeout: -1 },
      { commandTimeout: 'fast' },
      { sweepInterval: 0 },
      { maxBatch: 0 },
      { host: '' },
      { user: 7 },
      { password: 7 },
      { connectionString: 'postgres://u@h:notaport/db' },
      { tls: 'yes' },
      { tls: { ca: 1 } },
      { tls: { ca: 'not pem' } },
      { tls: { cert: 'x' } },
      { tls: { verify: false } },
      { conectionString: 'postgres://typo' },
    ]
    for (const o of bad) {
      let e: any
      try {
        createPostgresStore(o)
      } catch (x) {
        e = x
      }
      expect(e, JSON.stringify(o)).toBeInstanceOf(TypeError)
      expect(e.code, JSON.stringify(o)).toBe('ERR_INVALID_ARG')
    }
  })

  it('bad arguments reject with a TypeError and nothing reaches the server', async () => {
    const { store } = open('args')
    const calls = [
      () => store.get(1),
      () => store.set('k', 1),
      () => store.set(null, 'v'),
      () => store.set('k', 'v', { ttl: -1 }),
      () => store.set('k', 'v', { ttl: 1.5 }),
      () => store.set('k', 'v', 'ttl'),
      () => store.delete({}),
      () => store.exists(undefined),
      () => store.keys(/x/),
    ]
    for (const c of calls) {
      const e = await rejection(c())
      expect(e).toBeInstanceOf(TypeError)
      expect(e.code).toBe('ERR_INVALID_ARG')
    }
    expect(store.connectionsOpened).toBe(0)
    const snap = createSnapshotStore({ store })
    await expect(snap.tryAcquire('', {})).rejects.toThrow(TypeError)
    await expect(snap.tryAcquire('x', { ttlMs: 0 })).rejects.toThrow(TypeError)
    await expect(snap.release('x', '')).rejects.toThrow(TypeError)
    expect(store.connectionsOpened).toBe(0)
  })
})

describe('createPostgresStore: exact strings', () => {
  const odd = ['%', '_', '\\', '*', '?', '[', ']', '\u0000', '\uD800', '\uDC00', '\uD83D\uDE00', 'é', "'", '"']

  it('keys and values with U+0000, lone surrogates and LIKE/glob characters round-trip and list exactly', async () => {
    const { store, schema } = open('exact')
    const prefix = `p${odd.join('')}:`
    const keys = odd.flatMap((a) => odd.map((b) => `${prefix}${a}x${b}`))
    keys.push(`${prefix}plain`, `${prefix}`)
    const value = (k: string) => `v:${k}:${odd.join('')}`
    await Promise.all(keys.map((k) => store.set(k, value(k))))
    const got = await Promise.all(keys.map((k) => store.get(k)))
    got.forEach((v, i) => expect(v, JSON.stringify(keys[i])).toBe(value(keys[i])))
    expect((await store.keys(`${escapeGlob(prefix)}*`)).sort()).toEqual([...keys].sort())
    // each key alone, by its escaped glob: % and _ are not wildcards
    for (const k of keys) expect(await store.keys(escapeGlob(k)), JSON.stringify(k)).toEqual([k])
    // ? is one character (a surrogate pair is one), classes are exact
    expect((await store.keys(`${escapeGlob(prefix)}?x?`)).length).toBe(odd.length * odd.length)
    expect((await store.keys(`${escapeGlob(prefix)}[%_]x[\\\\]`)).sort()).toEqual([`${prefix}%x\\`, `${prefix}_x\\`].sort())
    // a prefix that differs only by a LIKE wildcard lists nothing
    expect(await store.keys(`p${escapeGlob('_')}*`)).toEqual([])
    // stored as the WTF-8 bytes: a well-formed string is its UTF-8, U+0000 included
    const admin = await adminClient()
    try {
      const k = `${prefix}\u0000xé`
      const r = await admin.query(`SELECT v FROM "${schema}".awaitly_kv WHERE k = $1`, [Buffer.from(k, 'utf8')])
      expect(r.rows.length).toBe(1) // found by the key's UTF-8
      expect(r.rows[0].v.includes(Buffer.from([0]))).toBe(true)
      // a lone surrogate is stored as its WTF-8 (3 bytes), exact
      await store.set('lone', 'a\uD800b\u0000\uDFFF')
      const l = await admin.query(`SELECT v FROM "${schema}".awaitly_kv WHERE k = 'lone'::bytea`)
      expect([...l.rows[0].v]).toEqual([0x61, 0xed, 0xa0, 0x80, 0x62, 0x00, 0xed, 0xbf, 0xbf])
      expect(await store.get('lone')).toBe('a\uD800b\u0000\uDFFF')
    } finally {
      await admin.end()
    }
  })

  it('snapshot ids and prefixes with the same characters round-trip, list exactly and lease separately', async () => {
    const { store } = open('snapids')
    const prefix = `s${odd.join('')}:`
    const snaps = createSnapshotStore({ store, prefix })
    const other = createSnapshotStore({ store, prefix: `s${odd.join('')}_` })
    const snapshot = (i: number) => ({
      formatVersion: 1 as const,
      steps: { a: { ok: true, value: { i, s: `\u0000\uD800${odd.join('')}` } } },
      execution: { status: 'running' as const, lastUpdated: '2026-01-01T00:00:00.000Z' },
    })
    const ids = odd.filter((c) => c !== '\u0000').map((c, i) => `id${c}${i}`)
    ids.push('id\u0000mid')
    for (let i = 0; i < ids.length; i++) await snaps.save(ids[i], snapshot(i))
    await other.save('id%', snapshot(99))
    for (let i = 0; i < ids.length; i++) expect(await snaps.load(ids[i])).toEqual(snapshot(i))
    expect((await snaps.list({ limit: 1000 })).map((x: any) => x.id).sort()).toEqual([...ids].sort())
    expect((await snaps.list({ prefix: 'id%' })).map((x: any) => x.id)).toEqual(['id%0'])
    expect((await snaps.list({ prefix: 'id_' })).map((x: any) => x.id)).toEqual(['id_1'])
    expect((await other.list()).map((x: any) => x.id)).toEqual(['id%'])
    const l1 = await snaps.tryAcquire('id%0', { ttlMs: 5000 })
    const l2 = await other.tryAcquire('id%0', { ttlMs: 5000 })
    const l3 = await snaps.tryAcquire('id_0', { ttlMs: 5000 })
    expect([l1, l2, l3].every((l) => l !== null)).toBe(true)
    expect(await snaps.tryAcquire('id%0', { ttlMs: 5000 })).toBeNull()
  })
})

describe('createPostgresStore: table, expiry, schema creation', () => {
  it('one table of bytea rows with a version row and a partial expiry index', async () => {
    const { store, schema } = open('layout', { table: 'My_Kv' })
    await store.set('k', 'v')
    const admin = await adminClient()
    try {
      const cols = await admin.query(
        `SELECT column_name, data_type, is_nullable FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'My_Kv' ORDER BY ordinal_position`,
        [schema],
      )
      expect(cols.rows).toEqual([
        { column_name: 'k', data_type: 'bytea', is_nullable: 'NO' },
        { column_name: 'v', data_type: 'bytea', is_nullable: 'NO' },
        { column_name: 'expires_at', data_type: 'timestamp with time zone', is_nullable: 'YES' },
      ])
      const rows = await admin.query(`SELECT encode(k, 'escape') AS k, convert_from(v, 'UTF8') AS v FROM "${schema}"."My_Kv" ORDER BY get_byte(k, 0)`)
      expect(rows.rows).toEqual([
        { k: 'k', v: 'v' },
        { k: '\\377awaitly:schema-version', v: '1' },
      ])
      const idx = await admin.query(`SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND indexname = 'My_Kv_expires_at'`, [schema])
      expect(idx.rows[0].indexdef).toMatch(/\(expires_at\) WHERE \(expires_at IS NOT NULL\)/)
    } finally {
      await admin.end()
    }
    expect(await store.keys('*')).toEqual(['k'])
  })

  it('expiry is the server’s: expired rows are invisible at once and deleted by the sweep in the background', async () => {
    const { store, schema } = open('ttl', { sweepInterval: 300 })
    await store.set('short', 'x', { ttl: 1 })
    await store.set('long', 'y', { ttl: 100 })
    await store.set('forever', 'z')
    expect(await store.get('short')).toBe('x')
    const admin = await adminClient()
    try {
      // the server computed the expiry: now() + 1 s, whatever this process's clock says
      const r = await admin.query(`SELECT extract(epoch FROM expires_at - now()) AS left FROM "${schema}".awaitly_kv WHERE k = $1`, [Buffer.from('short')])
      expect(Number(r.rows[0].left)).toBeGreaterThan(0)
      expect(Number(r.rows[0].left)).toBeLessThanOrEqual(1)
      await sleep(1100)
      expect(await store.get('short')).toBeNull()
      expect(await store.exists('short')).toBe(false)
      expect(await store.delete('short')).toBe(false)
      await store.set('short2', 'x', { ttl: 1 })
      await sleep(1100)
      expect((await store.keys('*')).sort()).toEqual(['forever', 'long'])
      // the background sweep (every 300 ms here) deletes the expired row
      let left = -1
      for (let i = 0; i < 40 && left !== 0; i++) {
        await sleep(100)
        left = Number((await admin.query(`SELECT count(*) AS n FROM "${schema}".awaitly_kv WHERE expires_at <= now()`)).rows[0].n)
      }
      expect(left).toBe(0)
      expect(await store.get('long')).toBe('y')
    } finally {
      await admin.end()
    }
  })

  it('the sweep deletes in bounded batches (500 per statement) until none is left', async () => {
    const { store, schema } = open('sweep')
    await store.ping()
    const admin = await adminClient()
    try {
      await admin.query(
        `INSERT INTO "${schema}".awaitly_kv (k, v, expires_at) SELECT convert_to('e' || g, 'UTF8'), '\\x'::bytea, now() - interval '1 s' FROM generate_series(1, 1234) g`,
      )
      expect(await store.keys('e*')).toEqual([])
      expect(await store.sweep()).toBe(1234)
      expect(await store.sweep()).toBe(0)
    } finally {
      await admin.end()
    }
  })

  it('20 stores creating one schema at once: all succeed, one table, one version row', async () => {
    const schema = privateSchema('race')
    schemas.push(schema)
    const many = Array.from({ length: 20 }, () => createPostgresStore({ ...PG, schema, poolSize: 1 }))
    stores.push(...many)
    await Promise.all(many.map((s, i) => s.set(`k${i}`, 'v')))
    expect((await many[0].keys('k*')).length).toBe(20)
    const admin = await adminClient()
    try {
      const n = await admin.query(`SELECT count(*) AS n FROM "${schema}".awaitly_kv WHERE get_byte(k, 0) = 255`)
      expect(Number(n.rows[0].n)).toBe(1)
    } finally {
      await admin.end()
    }
  })
})

describe.each(['auto', 'tokio'])('createPostgresStore: which pooled connection a batch takes (transport %s)', (transport) => {
  it('one call at a time keeps to one connection; a batch while another is in flight takes an idle one', async () => {
    const { store, schema } = open('pool_pick', { transport, poolSize: 3 })
    for (let i = 0; i < 30; i++) {
      await store.set(`k${i}`, 'v')
      expect(await store.get(`k${i}`)).toBe('v')
    }
    expect(store.connectionsOpened).toBe(1)
    const locker = await adminClient()
    try {
      // a row lock held elsewhere keeps our write of 'hot' in flight on its connection
      await locker.query('BEGIN')
      await locker.query(`SELECT 1 FROM "${schema}".awaitly_kv WHERE k = $1 FOR UPDATE`, [Buffer.from('k0')])
      const blocked = store.set('k0', 'later')
      await sleep(100)
      // the next batches go to a connection with nothing on it, so they are not stuck behind the write
      expect(await store.get('k1')).toBe('v')
      await store.set('k2', 'w')
      expect(store.connectionsOpened).toBe(2)
      await locker.query('ROLLBACK')
      await blocked
      expect(await store.get('k0')).toBe('later')
    } finally {
      await locker.end()
    }
  })
})

describe('createPostgresStore: transport', () => {
  it("'auto' (the default) runs on the JS thread in Node, 'tokio' on tokio, leases included; anything else is a TypeError", async () => {
    const auto = open('tr_auto').store
    const tokio = open('tr_tokio', { transport: 'tokio' }).store
    expect(auto.transport).toBe('direct')
    expect(open('tr_auto2', { transport: 'auto' }).store.transport).toBe('direct')
    expect(tokio.transport).toBe('tokio')
    for (const s of [auto, tokio]) {
      await s.set('k', 'v')
      expect(await s.get('k')).toBe('v')
      // run leases and fenced writes travel in the same batches as the data calls
      const snaps = createSnapshotStore({ store: s, prefix: 'tr:' })
      const other = createSnapshotStore({ store: s, prefix: 'tr:' })
      const snap = { formatVersion: 1, workflowName: 'w', steps: {}, execution: { status: 'running', lastUpdated: '2026-01-01T00:00:00.000Z' } }
      const [lease, denied, plain] = await Promise.all([snaps.tryAcquire('run', { ttlMs: 10_000 }), other.tryAcquire('run', { ttlMs: 10_000 }), s.get('k')])
      expect(lease?.ownerToken).toMatch(/^[0-9a-f]{32}$/)
      expect(denied).toBeNull()
      expect(plain).toBe('v')
      await Promise.all([snaps.save('run', snap), s.set('k', 'w')])
      expect(await other.load('run')).toEqual(snap)
      expect(await s.get('k')).toBe('w')
      expect(await snaps.renew?.('run', lease!.ownerToken, { ttlMs: 10_000 })).toBe(true)
      await snaps.release('run', lease!.ownerToken)
      expect(await other.tryAcquire('run', { ttlMs: 10_000 })).not.toBeNull()
    }
    for (const bad of ['direct', '', 1, null]) {
      let e: any
      try {
        createPostgresStore({ ...PG, transport: bad })
      } catch (err) {
        e = err
      }
      expect(e).toBeInstanceOf(TypeError)
      expect(e.code).toBe('ERR_INVALID_ARG')
      expect(e.message).toMatch(/transport must be 'auto' or 'tokio'/)
    }
  })

  // a child process (--expose-gc): `body` runs with `m` (the package) and `schema`
  function child(schema: string, body: string) {
    return new Promise<{ code: number | null; out: string; err: string; ms: number }>((resolve) => {
      const started = Date.now()
      const c = spawn(process.execPath, ['--expose-gc', '-e', `const m = require(${JSON.stringify(path.join(__dirname, '..', '..', 'index.js'))}); const schema = ${JSON.stringify(schema)}; const PG = ${JSON.stringify(PG)}; (async () => { ${body} })().catch((e) => { console.error(e); process.exit(3) })`], { stdio: ['ignore', 'pipe', 'pipe'] })
      let out = ''
      let err = ''
      c.stdout.on('data', (d) => (out += d))
      c.stderr.on('data', (d) => (err += d))
      const timer = setTimeout(() => c.kill('SIGKILL'), 20_000)
      c.on('exit', (code) => {
        clearTimeout(timer)
        resolve({ code, out, err, ms: Date.now() - started })
      })
    })
  }

  it('an idle connected store lets the process end on its own (its sockets keep no loop alive)', async () => {
    const schema = privateSchema('idle')
    schemas.push(schema)
    const r = await child(schema, `const s = m.createPostgresStore({ ...PG, schema }); await s.set('a', 'v'); await s.get('a'); console.log(s.transport)`)
    expect(r).toMatchObject({ code: 0, out: 'direct\n', err: '' })
    expect(r.ms).toBeLessThan(10_000)
  }, 30_000)

  it('a store collected by GC closes its connections: the server sees them go', async () => {
    const schema = privateSchema('gc')
    schemas.push(schema)
    const r = await child(
      schema,
      `const pg = require('pg'); const admin = new pg.Client(PG); await admin.connect()
       const count = async () => Number((await admin.query("SELECT count(*) AS n FROM pg_stat_activity WHERE query LIKE $1 AND pid <> pg_backend_pid()", ['%"' + schema + '"%'])).rows[0].n)
       let opened = 0
       await (async () => {
         const s = m.createPostgresStore({ ...PG, schema, poolSize: 3 })
         // three batches in flight at once (one per tick): one connection each
         const calls = []
         for (let i = 0; i < 3; i++) { calls.push(s.set('k' + i, 'v')); await new Promise((r) => setImmediate(r)) }
         await Promise.all(calls)
         opened = s.connectionsOpened
       })()
       const before = await count()
       let after = before
       for (let i = 0; i < 50 && after > 0; i++) { global.gc(); await new Promise((r) => setTimeout(r, 100)); after = await count() }
       console.log(JSON.stringify({ opened, before, after }))
       await admin.end()`,
    )
    expect(r.err).toBe('')
    const seen = JSON.parse(r.out)
    expect(seen.opened).toBeGreaterThanOrEqual(1)
    expect(seen).toEqual({ opened: seen.opened, before: seen.opened, after: 0 })
  }, 30_000)
})

describe.each(['auto', 'tokio'])('createPostgresStore: connections terminated with calls in flight (transport %s)', (transport) => {
  const open = (tag: string, extra: object = {}) => openStore(tag, { transport, ...extra })
  it('blocked calls settle with ERR_STORE_UNAVAILABLE, later calls reconnect', async () => {
    const { store, schema } = open('kill', { poolSize: 2, commandTimeout: 4000 })
    await store.set('hot', 'v0')
    const opened = store.connectionsOpened
    const locker = await adminClient()
    const killer = await adminClient()
    try {
      // a row lock held elsewhere: our writes of 'hot' wait on the server, in flight
      await locker.query('BEGIN')
      await locker.query(`SELECT 1 FROM "${schema}".awaitly_kv WHERE k = $1 FOR UPDATE`, [Buffer.from('hot')])
      const lockerPid = (await locker.query('SELECT pg_backend_pid() AS p')).rows[0].p
      // settled as they end (a handler from the start: no unhandled rejection)
      const inflight: Promise<PromiseSettledResult<unknown>>[] = []
      const track = (p: Promise<unknown>) => inflight.push(Promise.allSettled([p]).then(([s]) => s))
      for (let t = 0; t < 4; t++) {
        for (let i = 0; i < 20; i++) track(store.set('hot', `v${t}.${i}`)), track(store.get(`cold${i}`))
        await sleep(30)
      }
      await sleep(300)
      const killed = await killer.query(
        `SELECT pg_terminate_backend(pid) AS t FROM pg_stat_activity WHERE query LIKE $1 AND pid <> $2 AND pid <> pg_backend_pid()`,
        [`%"${schema}"%`, lockerPid],
      )
      expect(killed.rows.length).toBeGreaterThan(0)
      const settled = await Promise.all(inflight)
      const codes = new Set(settled.filter((s) => s.status === 'rejected').map((s: any) => s.reason.code))
      const writes = settled.filter((_, i) => i % 2 === 0)
      // every write was blocked by the lock: none succeeded, each failed with a store code
      expect(writes.every((s) => s.status === 'rejected')).toBe(true)
      for (const c of codes) expect(['ERR_STORE_UNAVAILABLE', 'ERR_STORE_TIMEOUT']).toContain(c)
      expect(codes.has('ERR_STORE_UNAVAILABLE')).toBe(true)
      await locker.query('ROLLBACK')
      // the store reconnects on its own
      await store.set('hot', 'after')
      expect(await store.get('hot')).toBe('after')
      expect(store.connectionsOpened).toBeGreaterThan(opened)
    } finally {
      await locker.end().catch(() => {})
      await killer.end()
    }
  }, 30_000)

  it('a batch that outlives commandTimeout rejects with ERR_STORE_TIMEOUT; the store goes on', async () => {
    const { store, schema } = open('timeout', { poolSize: 1, commandTimeout: 400 })
    await store.set('hot', 'v0')
    const locker = await adminClient()
    try {
      await locker.query('BEGIN')
      await locker.query(`SELECT 1 FROM "${schema}".awaitly_kv WHERE k = $1 FOR UPDATE`, [Buffer.from('hot')])
      const started = Date.now()
      const e = await rejection(store.set('hot', 'blocked'))
      expect(e.code).toBe('ERR_STORE_TIMEOUT')
      expect(Date.now() - started).toBeGreaterThanOrEqual(350)
      await locker.query('ROLLBACK')
      await store.set('cold', 'x')
      expect(await store.get('cold')).toBe('x')
    } finally {
      await locker.end()
    }
  }, 30_000)

  it('under a steady load, terminating our connections twice: each call resolves or fails with a store code, then all succeed', async () => {
    const { store, schema } = open('load', { poolSize: 3 })
    await store.ping()
    const killer = await adminClient()
    let stop = false
    const failures: string[] = []
    let okCalls = 0
    const load = (async () => {
      for (let n = 0; !stop; n++) {
        const batch = []
        for (let i = 0; i < 50; i++) batch.push(store.set(`k${i}`, `v${n}`), store.get(`k${i}`))
        for (const s of await Promise.allSettled(batch)) {
          if (s.status === 'fulfilled') okCalls++
          else failures.push((s as any).reason.code)
        }
      }
    })()
    try {
      for (let i = 0; i < 2; i++) {
        await sleep(300)
        await killer.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE $1 AND pid <> pg_backend_pid()`, [`%"${schema}"%`])
      }
      await sleep(300)
    } finally {
      stop = true
      await load
      await killer.end()
    }
    expect(okCalls).toBeGreaterThan(0)
    for (const c of failures) expect(['ERR_STORE_UNAVAILABLE', 'ERR_STORE_TIMEOUT']).toContain(c)
    const after = await Promise.all(Array.from({ length: 100 }, (_, i) => store.set(`z${i}`, 'ok').then(() => store.get(`z${i}`))))
    expect(after.every((v) => v === 'ok')).toBe(true)
  }, 30_000)

  it.each(['exit', 'natural'])('process end (%s) with 2,000 calls in flight: status 0, no crash, no hang', async (mode) => {
    const schema = privateSchema('exit')
    schemas.push(schema)
    const child = spawn(process.execPath, [path.join(__dirname, '..', 'fixtures', 'postgres-exit.cjs'), schema, mode, transport], { stdio: ['ignore', 'ignore', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (d) => (stderr += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000)
    const [code, signal] = await new Promise<[number | null, string | null]>((r) => child.on('exit', (c, s) => r([c, s])))
    clearTimeout(timer)
    expect({ code, signal, stderr }).toEqual({ code: 0, signal: null, stderr: '' })
  }, 30_000)

  it('a server that is not there is ERR_STORE_UNAVAILABLE; a closed store ERR_STORE_CLOSED', async () => {
    const dead = createPostgresStore({ ...PG, port: 1, connectTimeout: 1000, transport })
    const e = await rejection(dead.get('k'))
    expect(e.code).toBe('ERR_STORE_UNAVAILABLE')
    const snap = createSnapshotStore({ store: dead })
    expect((await rejection(snap.tryAcquire('x'))).code).toBe('ERR_STORE_UNAVAILABLE')
    await dead.close()
    expect((await rejection(dead.get('k'))).code).toBe('ERR_STORE_CLOSED')
  })
})
