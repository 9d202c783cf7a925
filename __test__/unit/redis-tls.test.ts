// rediss:// against private TLS redis-servers with a CA made for this run (one
// that does not ask for client certificates, one that requires them): both
// transports, the tls options (ca, cert/key, servername, rejectUnauthorized),
// bad material, outages, the inspector over TLS.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import net from 'node:net'
import { createRequire } from 'node:module'
import { sparePort, withTransport } from '../helpers/redis-server'

const require = createRequire(import.meta.url)
const { createRedisStore } = require('../../index.js')

let dir: string
let child: ChildProcess
let port: number
// a second server that requires a client certificate of the run's CA
let mtlsChild: ChildProcess
let mtlsPort: number
const ossl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' })

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kv-tls-'))
  ossl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=test-ca', '-keyout', 'ca.key', '-out', 'ca.pem')
  ossl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-keyout', 'srv.key', '-out', 'srv.csr')
  require('node:fs').writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=DNS:localhost,DNS:redis.internal\n')
  ossl('x509', '-req', '-in', 'srv.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '1', '-extfile', 'ext.cnf', '-out', 'srv.pem')
  require('node:fs').writeFileSync(join(dir, 'client.cnf'), 'extendedKeyUsage=clientAuth\n')
  ossl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=client', '-keyout', 'client.key', '-out', 'client.csr')
  ossl('x509', '-req', '-in', 'client.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '1', '-extfile', 'client.cnf', '-out', 'client.pem')
  const start = async (authClients: 'yes' | 'no') => {
    const p = await sparePort()
    const c = spawn(
      'redis-server',
      ['--port', '0', '--tls-port', String(p), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
        '--tls-cert-file', join(dir, 'srv.pem'), '--tls-key-file', join(dir, 'srv.key'), '--tls-ca-cert-file', join(dir, 'ca.pem'), '--tls-auth-clients', authClients],
      { stdio: 'ignore' },
    )
    for (let i = 0; i < 200; i++) {
      const up = await new Promise((r) => {
        const s = net.connect(p, '127.0.0.1')
        s.once('connect', () => (s.destroy(), r(true)))
        s.once('error', () => r(false))
      })
      if (up) return { p, c }
      await new Promise((r) => setTimeout(r, 25))
    }
    c.kill('SIGKILL')
    throw new Error('TLS redis-server did not start')
  }
  ;({ p: port, c: child } = await start('no'))
  ;({ p: mtlsPort, c: mtlsChild } = await start('yes'))
})

afterAll(() => {
  child?.kill('SIGKILL')
  mtlsChild?.kill('SIGKILL')
  if (dir) rmSync(dir, { recursive: true, force: true })
})

describe('native Redis store over TLS (rediss://)', () => {
  for (const transport of ['direct', 'tokio'] as const) {
    it(`connects with a CA given as PEM, and round-trips (${transport} transport)`, async () => {
      const store = createRedisStore(
        withTransport(transport, {
          url: `rediss://localhost:${port}`,
          tls: { ca: readFileSync(join(dir, 'ca.pem'), 'utf8') },
          connectTimeout: 2000,
        }),
      )
      expect(store.transport).toBe(transport)
      await store.set(`k:${transport}`, 'v', { ttl: 60 })
      expect(await store.get(`k:${transport}`)).toBe('v')
      expect(await store.keys(`k:${transport}`)).toEqual([`k:${transport}`])
      // large values cross many TLS records, many batches in flight
      const big = 'é'.repeat(3 * 1024 * 1024)
      await store.set(`big:${transport}`, big)
      const many = await Promise.all(
        Array.from({ length: 300 }, (_, i) => store.set(`n:${transport}:${i}`, String(i)).then(() => store.get(`n:${transport}:${i}`))),
      )
      expect(many).toEqual(Array.from({ length: 300 }, (_, i) => String(i)))
      expect(await store.get(`big:${transport}`)).toBe(big)
      // leases and snapshots on the same connection
      const { createSnapshotStore } = require('../../snapshot.js')
      const snaps = createSnapshotStore({ store, prefix: `snap:${transport}:` })
      const lease = await snaps.tryAcquire('run', { ttlMs: 10_000 })
      expect(lease).not.toBeNull()
      expect(await snaps.tryAcquire('run', { ttlMs: 10_000 })).toBeNull()
      await snaps.release('run', lease.ownerToken)
      expect(store.connectionsOpened).toBe(1)
      await store.close()
    })
  }

  it('a server that goes away fails the calls in flight with ERR_STORE_UNAVAILABLE, and the next call reconnects', async () => {
    const store = createRedisStore({
      url: `rediss://localhost:${port}`,
      tls: { ca: readFileSync(join(dir, 'ca.pem'), 'utf8') },
      connectTimeout: 2000,
    })
    expect(store.transport).toBe('direct')
    await store.set('gone', '1')
    const { execFileSync: run } = require('node:child_process')
    // the server drops every client connection (ours included)
    run('redis-cli', ['--tls', '--cacert', join(dir, 'ca.pem'), '-h', 'localhost', '-p', String(port), 'CLIENT', 'KILL', 'TYPE', 'normal'], { stdio: 'ignore' })
    const e = await store.get('gone').then(() => null, (x: any) => x)
    expect(e?.code).toBe('ERR_STORE_UNAVAILABLE')
    expect(await store.get('gone')).toBe('1')
    expect(store.connectionsOpened).toBe(2)
    await store.close()
  })

  it('refuses a server whose certificate it cannot verify (no CA given)', async () => {
    const store = createRedisStore({ url: `rediss://localhost:${port}`, connectTimeout: 2000 })
    const e = await store.ping().then(() => null, (x: any) => x)
    expect(e).toBeInstanceOf(Error)
    expect(['ERR_STORE_UNAVAILABLE', 'ERR_STORE']).toContain(e.code)
    await store.close()
  })

  it('the inspector lists runs over rediss:// with --tls-ca, and names the problem without it', async () => {
    const { createSnapshotStore } = require('../../index.js')
    const { cli, jsonLines } = await import('../helpers/inspect')
    const kv = createRedisStore({ url: `rediss://localhost:${port}`, tls: { ca: readFileSync(join(dir, 'ca.pem'), 'utf8') } })
    await createSnapshotStore({ store: kv }).save('tls-run', { formatVersion: 1, steps: { a: { ok: true, value: 1 } }, execution: { status: 'running', lastUpdated: new Date().toISOString() } })
    await kv.close()
    const url = `rediss://localhost:${port}`
    const r = cli(['runs', '--redis', url, '--tls-ca', join(dir, 'ca.pem'), '--json'])
    expect(r.code, r.err).toBe(0)
    expect(jsonLines(r.out).map((x: any) => [x.id, x.stepsDone])).toEqual([['tls-run', 1]])
    const unverified = cli(['runs', '--redis', url])
    expect(unverified.code).toBe(1)
    expect(unverified.err).toMatch(/^awaitly-persistence-native: ERR_STORE(_UNAVAILABLE)?: /)
    expect(cli(['runs', '--redis', url, '--tls-ca', join(dir, 'missing.pem')]).err).toMatch(/cannot read --tls-ca/)
  })

  it('tls options without rediss:// are a TypeError', () => {
    expect(() => createRedisStore({ url: 'redis://127.0.0.1:1', tls: { ca: 'x' } })).toThrow(TypeError)
    expect(() => createRedisStore({ url: 'redis://127.0.0.1:1', tls: { rejectUnauthorized: false } })).toThrow(TypeError)
  })

  // The server's certificate names localhost and redis.internal, not 127.0.0.1.
  for (const transport of ['direct', 'tokio'] as const) {
    const ca = () => readFileSync(join(dir, 'ca.pem'), 'utf8')
    const attempt = async (url: string, tls: object) => {
      const store = createRedisStore(withTransport(transport, { url, tls, connectTimeout: 2000 }))
      expect(store.transport).toBe(transport)
      try {
        await store.set(`sni:${transport}`, 'v')
        return (await store.get(`sni:${transport}`)) as string
      } catch (e: any) {
        return e
      } finally {
        await store.close()
      }
    }

    it(`tls.servername: the name sent and verified in place of the host (${transport} transport)`, async () => {
      const byIp = await attempt(`rediss://127.0.0.1:${port}`, { ca: ca() })
      expect(byIp.code).toBe('ERR_STORE_UNAVAILABLE')
      expect(byIp.message).toMatch(/certificate/i)
      expect(await attempt(`rediss://127.0.0.1:${port}`, { ca: ca(), servername: 'redis.internal' })).toBe('v')
      const wrongName = await attempt(`rediss://localhost:${port}`, { ca: ca(), servername: 'other.internal' })
      expect(wrongName.code).toBe('ERR_STORE_UNAVAILABLE')
      expect(wrongName.message).toMatch(/certificate/i)
    })

    it(`tls.rejectUnauthorized: false (or rediss://…#insecure) accepts a certificate no CA given vouches for (${transport} transport)`, async () => {
      const refused = await attempt(`rediss://127.0.0.1:${port}`, {})
      expect(refused.code).toBe('ERR_STORE_UNAVAILABLE')
      expect(await attempt(`rediss://127.0.0.1:${port}`, { rejectUnauthorized: false })).toBe('v')
      expect(await attempt(`rediss://127.0.0.1:${port}/#insecure`, {})).toBe('v')
      // a client certificate still goes with it
      const pem = (f: string) => readFileSync(join(dir, f), 'utf8')
      expect(await attempt(`rediss://localhost:${port}`, { rejectUnauthorized: false, cert: pem('srv.pem'), key: pem('srv.key') })).toBe('v')
    })
  }

  for (const transport of ['direct', 'tokio'] as const) {
    it(`mutual TLS: a server that requires client certificates takes tls.cert + tls.key, and refuses a client without one (${transport} transport)`, async () => {
      const pem = (f: string) => readFileSync(join(dir, f), 'utf8')
      const store = createRedisStore(withTransport(transport, { url: `rediss://localhost:${mtlsPort}`, tls: { ca: pem('ca.pem'), cert: pem('client.pem'), key: pem('client.key') }, connectTimeout: 2000 }))
      await store.set('m', '1')
      expect(await store.get('m')).toBe('1')
      await store.close()
      const anonymous = createRedisStore(withTransport(transport, { url: `rediss://localhost:${mtlsPort}`, tls: { ca: pem('ca.pem') }, connectTimeout: 2000, commandTimeout: 2000 }))
      const t0 = Date.now()
      const e = await anonymous.get('m').then(
        () => null,
        (x: any) => x,
      )
      expect(e?.code).toBe('ERR_STORE_UNAVAILABLE')
      expect(Date.now() - t0).toBeLessThan(2500)
      await anonymous.close()
    })
  }

  it('tls options of the wrong type, or unknown, are a TypeError ERR_INVALID_ARG naming the field', () => {
    const url = `rediss://localhost:${port}`
    for (const [tls, message] of [
      [{ servername: '' }, /^createRedisStore: tls\.servername must be a non-empty string/],
      [{ servername: 42 }, /^createRedisStore: tls\.servername must be a non-empty string/],
      [{ servername: 'not a name' }, /^createRedisStore: tls\.servername: "not a name" is not a DNS name or IP address/],
      [{ rejectUnauthorized: 'no' }, /^createRedisStore: tls\.rejectUnauthorized must be a boolean/],
      [{ ca: Buffer.from('x') }, /^createRedisStore: tls\.ca must be a PEM string/],
      [{ cafile: '/etc/ca.pem' }, /^createRedisStore: tls\.cafile is not an option/],
      [[], /^createRedisStore: tls must be an object/],
    ] as const) {
      let e: any = null
      try {
        createRedisStore({ url, tls })
      } catch (x) {
        e = x
      }
      expect(e, JSON.stringify(tls)).toBeInstanceOf(TypeError)
      expect(e.code).toBe('ERR_INVALID_ARG')
      expect(e.message).toMatch(message)
    }
  })

  // Bad PEM material is a TypeError naming the option when the store is
  // created (it was accepted, and every call then failed or timed out at
  // connect time without naming it).
  describe('bad PEM material is a TypeError ERR_INVALID_ARG at creation, naming tls.ca / tls.cert / tls.key', () => {
    const pem = (f: string) => readFileSync(join(dir, f), 'utf8')
    const block = (label: string, body: string) => `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`
    const created = (tls: object) => {
      try {
        createRedisStore({ url: `rediss://127.0.0.1:${port}`, tls, connectTimeout: 500 })
      } catch (e) {
        return e as any
      }
      return null
    }
    it('tls.ca: no certificate in it, broken base64, or a block that is not a certificate', () => {
      const notACert = block('CERTIFICATE', Buffer.from('not a certificate at all').toString('base64'))
      for (const [what, ca, why] of [
        ['garbage', 'garbage', /no certificate found/],
        ['empty', '', /no certificate found/],
        ['a private key', pem('ca.key'), /no certificate found/],
        ['broken base64', block('CERTIFICATE', '!!!not base64!!!'), /not valid PEM/],
        ['DER that is no certificate', notACert, /not a usable CA certificate/],
        ['a good CA then a bad one', pem('ca.pem') + notACert, /not a usable CA certificate/],
      ] as const) {
        const e = created({ ca })
        expect(e, what).toBeInstanceOf(TypeError)
        expect(e.code, what).toBe('ERR_INVALID_ARG')
        expect(e.message, what).toMatch(/^createRedisStore: tls\.ca: /)
        expect(e.message, what).toMatch(why)
      }
    })

    it('tls.cert and tls.key: unreadable, not a key, or a key of another certificate', () => {
      const cases: [string, object, RegExp][] = [
        ['cert garbage', { cert: 'garbage', key: pem('srv.key') }, /^createRedisStore: tls\.cert: no certificate found/],
        ['cert is a key', { cert: pem('srv.key'), key: pem('srv.key') }, /^createRedisStore: tls\.cert: no certificate found/],
        ['key garbage', { cert: pem('srv.pem'), key: 'garbage' }, /^createRedisStore: tls\.key: no private key found/],
        ['key is a certificate', { cert: pem('srv.pem'), key: pem('srv.pem') }, /^createRedisStore: tls\.key: no private key found/],
        ['key of another certificate', { cert: pem('srv.pem'), key: pem('ca.key') }, /^createRedisStore: tls\.key: does not belong to the certificate in tls\.cert/],
      ]
      for (const [what, tls, message] of cases) {
        const e = created({ ca: pem('ca.pem'), ...tls })
        expect(e, what).toBeInstanceOf(TypeError)
        expect(e.code, what).toBe('ERR_INVALID_ARG')
        expect(e.message, what).toMatch(message)
      }
    })

    it('good material is accepted (a CA bundle, a matching certificate and key)', async () => {
      expect(created({ ca: pem('ca.pem') + pem('ca.pem') })).toBeNull()
      expect(created({ ca: pem('ca.pem'), cert: pem('srv.pem'), key: pem('srv.key') })).toBeNull()
      const store = createRedisStore({ url: `rediss://localhost:${port}`, tls: { ca: pem('ca.pem'), cert: pem('srv.pem'), key: pem('srv.key') }, connectTimeout: 2000 })
      await store.ping()
      await store.close()
    })
  })
})
