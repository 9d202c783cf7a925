// createPostgresStore against a private PostgreSQL cluster of this test
// (helpers/private-postgres.ts: initdb + pg_ctl on a spare port) that accepts
// TCP connections over TLS only (hostssl; hostnossl rejected), with a CA made
// for the run:
// - `tls: { ca }` connects, and the server's pg_stat_ssl shows our sessions
//   encrypted; a CA that did not sign the server's certificate, and no TLS at
//   all, are refused with a code, quickly, not a hang;
// - client certificates (pg_hba `cert` for one user): tls.cert + tls.key
//   connect (X.509 v3 and v1) and the server sees the certificate; refused
//   without them (the server's FATAL: ERR_STORE), with one of another CA (the
//   handshake: ERR_STORE_UNAVAILABLE) or naming another user (ERR_STORE); a
//   key not of the certificate is a TypeError;
// - tls.servername, tls.rejectUnauthorized: false, sslmode=verify-full;
// - the server restarted (`pg_ctl restart -m fast`) with calls in flight:
//   every call settles, the failed ones with ERR_STORE_UNAVAILABLE or
//   ERR_STORE_TIMEOUT, and the store then works again on its own (data and
//   leases) without being recreated.
import { execFileSync } from 'node:child_process'
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { giveToServer, startPrivatePostgres, type PrivatePostgres } from '../helpers/private-postgres'

const require = createRequire(import.meta.url)
const { createPostgresStore, createSnapshotStore } = require('../../index.js')

let server: PrivatePostgres
let ca: string
let otherCa: string
const clientCerts: Record<string, { cert: string; key: string }> = {}

function ossl(dir: string, ...args: string[]) {
  execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' })
}

beforeAll(async () => {
  server = await startPrivatePostgres({
    // certuser must show a client certificate of the run's CA naming it
    hba: ['hostssl all certuser 127.0.0.1/32 cert', 'hostssl all all 127.0.0.1/32 trust', 'hostnossl all all 127.0.0.1/32 reject'],
    settings: { ssl: 'on', ssl_cert_file: 'server.pem', ssl_key_file: 'server.key', ssl_ca_file: 'root.pem' },
    // a CA made for the run signs the server's certificate (SAN 127.0.0.1); a second CA signs nothing of it
    prepare: (dir, data) => {
      ossl(dir, 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=test-ca', '-keyout', 'ca.key', '-out', 'ca.pem')
      ossl(dir, 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=other-ca', '-keyout', 'other.key', '-out', 'other.pem')
      ossl(dir, 'req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', 'srv.key', '-out', 'srv.csr')
      writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n')
      ossl(dir, 'x509', '-req', '-in', 'srv.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '1', '-extfile', 'ext.cnf', '-out', 'srv.pem')
      // client certificates: for certuser, X.509 v3 of the run's CA and of the other CA, and
      // an X.509 v1 one of the run's CA (what `openssl x509 -req` makes without extensions);
      // one of the run's CA for another user
      writeFileSync(join(dir, 'client.cnf'), 'extendedKeyUsage=clientAuth\n')
      for (const [name, signer, v3, cn] of [
        ['client', 'ca', true, 'certuser'],
        ['foreign', 'other', true, 'certuser'],
        ['legacy', 'ca', false, 'certuser'],
        ['stranger', 'ca', true, 'someone-else'],
      ] as const) {
        ossl(dir, 'req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${cn}`, '-keyout', `${name}.key`, '-out', `${name}.csr`)
        ossl(dir, 'x509', '-req', '-in', `${name}.csr`, '-CA', `${signer}.pem`, '-CAkey', `${signer}.key`, '-CAcreateserial', '-days', '1',
          ...(v3 ? ['-extfile', 'client.cnf'] : []), '-out', `${name}.pem`)
        clientCerts[name] = { cert: readFileSync(join(dir, `${name}.pem`), 'utf8'), key: readFileSync(join(dir, `${name}.key`), 'utf8') }
      }
      for (const [from, to] of [
        ['srv.pem', 'server.pem'],
        ['srv.key', 'server.key'],
        ['ca.pem', 'root.pem'],
      ]) {
        copyFileSync(join(dir, from), join(data, to))
        giveToServer(join(data, to), 0o600)
      }
      ca = readFileSync(join(dir, 'ca.pem'), 'utf8')
      otherCa = readFileSync(join(dir, 'other.pem'), 'utf8')
    },
  }).catch((e) => {
    throw new Error(`private PostgreSQL did not start: ${e.stderr ?? e.message}`)
  })
}, 120_000)

afterAll(() => {
  server?.stop()
})

const options = (extra: object) => ({ host: '127.0.0.1', port: server.port, user: 'postgres', database: 'postgres', connectTimeout: 3000, commandTimeout: 3000, ...extra })

/** An admin session over the unix socket (trust, no TLS). */
async function admin() {
  const c = new pg.Client({ host: server.socketDir, port: server.port, user: 'postgres', database: 'postgres' })
  await c.connect()
  return c
}

async function rejection(p: Promise<unknown>) {
  const e = await p.then(
    () => null,
    (x) => x,
  )
  expect(e, 'expected a rejection').toBeInstanceOf(Error)
  return e
}

describe('createPostgresStore over TLS (a private server that refuses plain TCP)', () => {
  it('tls: { ca } connects, and the server sees our sessions encrypted', async () => {
    const store = createPostgresStore(options({ tls: { ca }, schema: 'tls_ok', poolSize: 2 }))
    try {
      await store.set('k', 'über \u0000 value')
      expect(await store.get('k')).toBe('über \u0000 value')
      const a = await admin()
      try {
        const { rows } = await a.query(
          `SELECT s.ssl, s.version FROM pg_stat_ssl s JOIN pg_stat_activity x USING (pid)
           WHERE x.client_addr IS NOT NULL AND x.datname = 'postgres'`,
        )
        expect(rows.length).toBeGreaterThanOrEqual(1)
        for (const r of rows) expect(r.ssl).toBe(true)
        expect(rows[0].version).toMatch(/^TLSv1\.[23]$/)
      } finally {
        await a.end()
      }
    } finally {
      await store.close()
    }
  })

  it('a CA that did not sign the server certificate is refused with a code, not a hang', async () => {
    const store = createPostgresStore(options({ tls: { ca: otherCa } }))
    const started = Date.now()
    const e = await rejection(store.ping())
    expect(e.code).toBe('ERR_STORE_UNAVAILABLE')
    expect(e.message).toMatch(/certificate|UnknownIssuer/i)
    expect(Date.now() - started).toBeLessThan(3000)
    await store.close()
  })

  it('no TLS against a TLS-only server: refused by the server (pg_hba), a code', async () => {
    const store = createPostgresStore(options({}))
    const e = await rejection(store.ping())
    expect(['ERR_STORE', 'ERR_STORE_UNAVAILABLE']).toContain(e.code)
    expect(e.message).toMatch(/pg_hba|no encryption|SSL off|rejects/i)
    await store.close()
  })

  async function works(extra: object) {
    const store = createPostgresStore(options({ schema: 'tls_opts', poolSize: 1, ...extra }))
    try {
      await store.set('k', 'v')
      return await store.get('k')
    } catch (e) {
      return e as any
    } finally {
      await store.close()
    }
  }

  describe('client certificates (pg_hba `cert` for certuser: a certificate of the run\'s CA with CN certuser)', () => {
    beforeAll(async () => {
      const a = await admin()
      try {
        await a.query('CREATE ROLE certuser LOGIN SUPERUSER')
      } finally {
        await a.end()
      }
    })

    const as = (tls: object) => createPostgresStore(options({ user: 'certuser', schema: 'tls_cert', poolSize: 1, tls }))

    it('tls.cert + tls.key connect: set, get, delete work, and the server saw the certificate', async () => {
      for (const material of [clientCerts.client, clientCerts.legacy]) {
        const store = as({ ca, ...material })
        try {
          await store.set('k', 'v')
          expect(await store.get('k')).toBe('v')
          expect(await store.delete('k')).toBe(true)
          expect(await store.get('k')).toBeNull()
        } finally {
          await store.close()
        }
      }
      const a = await admin()
      const store = as({ ca, ...clientCerts.client })
      try {
        await store.ping()
        const { rows } = await a.query(
          `SELECT s.client_dn, s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity x USING (pid) WHERE x.usename = 'certuser'`,
        )
        expect(rows).toEqual([{ client_dn: '/CN=certuser', ssl: true }])
      } finally {
        await store.close()
        await a.end()
      }
    })

    it('without a client certificate: refused by the server, every call rejects with ERR_STORE naming the cause', async () => {
      const store = as({ ca })
      try {
        for (const call of [() => store.get('k'), () => store.set('k', 'v'), () => store.delete('k'), () => store.ping()]) {
          const e = await rejection(call())
          expect(e.code).toBe('ERR_STORE')
          expect(e.message).toBe('store error: connection requires a valid client certificate (28000)')
        }
      } finally {
        await store.close()
      }
    })

    it('a certificate of another CA: the server ends the handshake, ERR_STORE_UNAVAILABLE naming the alert', async () => {
      const store = as({ ca, ...clientCerts.foreign })
      try {
        const e = await rejection(store.set('k', 'v'))
        expect(e.code).toBe('ERR_STORE_UNAVAILABLE')
        expect(e.message).toMatch(/received fatal alert: UnknownCA$/)
      } finally {
        await store.close()
      }
    })

    it("a certificate of the run's CA naming another user: refused by the server, ERR_STORE", async () => {
      const store = as({ ca, ...clientCerts.stranger })
      try {
        const e = await rejection(store.get('k'))
        expect(e.code).toBe('ERR_STORE')
        expect(e.message).toBe('store error: certificate authentication failed for user "certuser" (28000)')
      } finally {
        await store.close()
      }
      // the same certificate is the server's to accept where pg_hba asks for none
      const trusted = createPostgresStore(options({ schema: 'tls_cert', poolSize: 1, tls: { ca, ...clientCerts.stranger } }))
      try {
        await trusted.set('k', 'v')
        expect(await trusted.get('k')).toBe('v')
      } finally {
        await trusted.close()
      }
    })

    it('a key that is not the certificate\'s: a TypeError at createPostgresStore, before any connection', () => {
      let e: any = null
      try {
        as({ ca, cert: clientCerts.client.cert, key: clientCerts.foreign.key })
      } catch (x) {
        e = x
      }
      expect(e).toBeInstanceOf(TypeError)
      expect(e.code).toBe('ERR_INVALID_ARG')
      expect(e.message).toMatch(/^createPostgresStore: tls\.key: does not belong to the certificate in tls\.cert/)
    })
  })

  it('tls.servername is the name verified in place of the host; a wrong one is refused', async () => {
    // the certificate names localhost and 127.0.0.1, not db.internal
    expect(await works({ tls: { ca, servername: 'localhost' } })).toBe('v')
    const e = await works({ tls: { ca, servername: 'db.internal' } })
    expect(e.code).toBe('ERR_STORE_UNAVAILABLE')
    expect(e.message).toMatch(/certificate|NotValidForName/i)
  })

  it('tls.rejectUnauthorized: false accepts a certificate no given CA vouches for', async () => {
    expect(await works({ tls: { rejectUnauthorized: false } })).toBe('v')
    expect(await works({ tls: { ca: otherCa, rejectUnauthorized: false } })).toBe('v')
    expect((await works({ tls: true })).code).toBe('ERR_STORE_UNAVAILABLE')
  })

  it("libpq's sslmode=verify-full in the connection string means TLS, verified", async () => {
    const url = `postgres://postgres@127.0.0.1:${server.port}/postgres?sslmode=verify-full`
    expect(await works({ host: undefined, port: undefined, user: undefined, database: undefined, connectionString: url, tls: { ca } })).toBe('v')
    const e = await works({ host: undefined, port: undefined, user: undefined, database: undefined, connectionString: url })
    expect(e.code).toBe('ERR_STORE_UNAVAILABLE') // the web PKI roots do not hold the run's CA
  })
})

describe('createPostgresStore: the server restarted with calls in flight', () => {
  it('every call settles (failures ERR_STORE_UNAVAILABLE / ERR_STORE_TIMEOUT), then the same store works again, leases too', async () => {
    const store = createPostgresStore(options({ tls: { ca }, schema: 'restart', poolSize: 4 }))
    const snapshots = createSnapshotStore({ store, prefix: 'run:' })
    try {
      await store.set('before', 'x')
      let stop = false
      const codes = new Map<string, number>()
      let ok = 0
      // four loops of calls that run through the restart
      const loops = Array.from({ length: 4 }, async (_, w) => {
        for (let i = 0; !stop; i++) {
          const key = `k${w}:${i % 50}`
          const calls = [store.set(key, `v${i}`), store.get(key), store.exists(key)]
          const settled = await Promise.allSettled(calls)
          for (const s of settled) {
            if (s.status === 'fulfilled') ok++
            else codes.set(s.reason.code, (codes.get(s.reason.code) ?? 0) + 1)
          }
          if (settled.some((s) => s.status === 'rejected')) await new Promise((r) => setTimeout(r, 20))
        }
      })
      await new Promise((r) => setTimeout(r, 300))
      const okBefore = ok
      await server.restart('fast')
      await new Promise((r) => setTimeout(r, 300))
      stop = true
      await Promise.all(loops)
      expect(okBefore).toBeGreaterThan(0)
      // the restart was seen: some calls failed, and only with the outage codes
      const failed = [...codes.values()].reduce((a, b) => a + b, 0)
      expect(failed, `codes: ${JSON.stringify([...codes])}`).toBeGreaterThan(0)
      for (const code of codes.keys()) expect(['ERR_STORE_UNAVAILABLE', 'ERR_STORE_TIMEOUT']).toContain(code)
      // the same store, reconnected on its own: data written before is there, writes work, leases work
      let back = false
      for (let i = 0; i < 50 && !back; i++) {
        back = await store.get('before').then(
          (v: string | null) => v === 'x',
          () => false,
        )
        if (!back) await new Promise((r) => setTimeout(r, 100))
      }
      expect(back).toBe(true)
      await store.set('after', 'y')
      expect(await store.get('after')).toBe('y')
      const lease = await snapshots.tryAcquire('order-1', { ttlMs: 5000 })
      expect(lease).not.toBeNull()
      expect(await snapshots.tryAcquire('order-1', { ttlMs: 5000 })).toBeNull()
      // a save while holding the lease: fenced, on the reconnected store
      await snapshots.save('order-1', {
        formatVersion: 1,
        workflowName: 'wf',
        steps: { a: { ok: true, value: 1 } },
        execution: { status: 'running', lastUpdated: new Date().toISOString(), currentStepId: 'a' },
        metadata: { version: 1, lastStepKey: 'a' },
      })
      expect((await snapshots.load('order-1')).steps.a).toEqual({ ok: true, value: 1 })
      await snapshots.release('order-1', lease.ownerToken)
      expect(store.connectionsOpened).toBeGreaterThan(4)
    } finally {
      await store.close()
    }
  }, 60_000)
})
