// createRedisStore({ cluster }) on a local Redis Cluster that speaks TLS only
// (3 primaries + 3 replicas; clients, the cluster bus and replication over
// TLS; a CA made for the run), on both transports: the shared compliance
// suite, every shard reached (10,000 keys, a 3 MB value, clearAsync, leases
// and snapshots), the tls options (servername, rejectUnauthorized, a wrong
// CA refused with a code within connectTimeout), and a primary SIGKILLed
// under load: calls settle with store codes and recover after the promotion
// on new TLS connections.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createRequire } from 'node:module'
import { defineStoreCompliance } from '../helpers/store-compliance'
import { expectFailoverOutcomes, startCluster, untilWritesSucceed, type LocalCluster, type Outcome } from '../helpers/redis-cluster'

const require = createRequire(import.meta.url)
const { createRedisStore, createSnapshotStore, createKVCache, escapeGlob } = require('../../index.js')

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const TRANSPORTS = ['direct', 'tokio'] as const

let cluster: LocalCluster
const stores: any[] = []
function tlsStore(transport: 'direct' | 'tokio', options: Record<string, unknown> = {}) {
  const s = createRedisStore({
    cluster: { nodes: cluster.nodes },
    tls: { ca: cluster.ca },
    transport: transport === 'direct' ? 'auto' : 'tokio',
    ...options,
  })
  stores.push(s)
  return s
}

beforeAll(async () => {
  cluster = await startCluster({ tls: true })
}, 90_000)
afterAll(async () => {
  for (const s of stores) await s.close()
  await cluster?.stop()
})

for (const transport of TRANSPORTS) {
  defineStoreCompliance(`native-redis-cluster over TLS (${transport})`, () => tlsStore(transport), { isolated: true })
}

describe('a TLS cluster: every shard, both transports', () => {
  for (const transport of TRANSPORTS) {
    it(`${transport}: 10,000 keys over all slots, a 3 MB value, clearAsync, leases and snapshots`, async () => {
      const store = tlsStore(transport)
      expect(store.transport).toBe(transport)
      const pre = `tlsc:${transport}:${process.pid}:`
      await Promise.all(Array.from({ length: 10_000 }, (_, i) => store.set(`${pre}${i}`, String(i))))
      const got = await Promise.all(Array.from({ length: 10_000 }, (_, i) => store.get(`${pre}${i}`)))
      expect(got.every((v: string, i: number) => v === String(i))).toBe(true)
      expect((await store.keys(`${escapeGlob(pre)}*`)).length).toBe(10_000)
      // every primary holds some of them
      for (const p of await cluster.primaryPorts()) {
        expect(Number((await cluster.cli(p, 'DBSIZE')).trim())).toBeGreaterThan(0)
      }
      const big = 'é'.repeat(3 * 1024 * 1024)
      await store.set(`${pre}big`, big)
      expect(await store.get(`${pre}big`)).toBe(big)

      const snaps = createSnapshotStore({ store, prefix: `${pre}snap:` })
      const ids = Array.from({ length: 30 }, (_, i) => `run-${i}`)
      const leases = await Promise.all(ids.map((id) => snaps.tryAcquire(id, { ttlMs: 10_000 })))
      expect(leases.every((l: unknown) => l !== null)).toBe(true)
      expect(await snaps.tryAcquire(ids[0], { ttlMs: 10_000 })).toBeNull()
      const doc = (i: number) => ({ formatVersion: 1, steps: { a: { ok: true, value: i } }, execution: { status: 'running', lastUpdated: new Date().toISOString() } })
      await Promise.all(ids.map((id, i) => snaps.save(id, doc(i))))
      expect((await snaps.load(ids[7]))?.steps.a.value).toBe(7)
      await Promise.all(ids.map((id, i) => snaps.release(id, leases[i].ownerToken)))

      const cache = createKVCache({ store, prefix: `${pre}cache:` })
      await Promise.all(Array.from({ length: 500 }, (_, i) => cache.setAsync(`s${i}`, { ok: true, value: i })))
      expect((await store.keys(`${escapeGlob(`${pre}cache:`)}*`)).length).toBeGreaterThanOrEqual(500)
      await cache.clearAsync()
      // the entries are gone from every shard (the cache's owner marker stays)
      const left = await store.keys(`${escapeGlob(`${pre}cache:`)}*`)
      expect(left.filter((k: string) => /:s\d+$/.test(k))).toEqual([])
      expect(left.length).toBeLessThanOrEqual(1)

      for (const k of await store.keys(`${escapeGlob(pre)}*`)) await store.delete(k)
      expect(await store.keys(`${escapeGlob(pre)}*`)).toEqual([])
    }, 60_000)

    it(`${transport}: a CA that signed nothing of the cluster is refused with a code within connectTimeout; rejectUnauthorized: false accepts it; a wrong servername is refused`, async () => {
      const other = createRedisStore({ cluster: { nodes: cluster.nodes }, tls: { ca: otherCa() }, connectTimeout: 1000, commandTimeout: 1000, transport: transport === 'direct' ? 'auto' : 'tokio' })
      stores.push(other)
      const t0 = Date.now()
      const e = await other.get('x').then(
        () => null,
        (x: any) => x,
      )
      expect(['ERR_STORE_UNAVAILABLE', 'ERR_STORE_TIMEOUT']).toContain(e?.code)
      expect(Date.now() - t0).toBeLessThan(3000)

      const lax = tlsStore(transport, { tls: { rejectUnauthorized: false } })
      await lax.set('lax', '1')
      expect(await lax.get('lax')).toBe('1')
      await lax.delete('lax')

      const named = tlsStore(transport, { tls: { ca: cluster.ca, servername: 'localhost' } })
      await named.set('named', '1')
      expect(await named.get('named')).toBe('1')
      await named.delete('named')
      const wrong = tlsStore(transport, { tls: { ca: cluster.ca, servername: 'redis.internal' }, connectTimeout: 1000, commandTimeout: 1000 })
      const w = await wrong.get('x').then(
        () => null,
        (x: any) => x,
      )
      expect(['ERR_STORE_UNAVAILABLE', 'ERR_STORE_TIMEOUT']).toContain(w?.code)
    })
  }
})

function otherCa() {
  const { execFileSync } = require('node:child_process')
  const { mkdtempSync, readFileSync, rmSync } = require('node:fs')
  const { join } = require('node:path')
  const dir = mkdtempSync(join(require('node:os').tmpdir(), 'other-ca-'))
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=other-ca', '-keyout', 'k', '-out', 'ca.pem'], { cwd: dir, stdio: 'ignore' })
    return readFileSync(join(dir, 'ca.pem'), 'utf8')
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

describe('a TLS cluster: a primary SIGKILLed under load', () => {
  it('every call settles with a store code within the timeouts; both transports work again after the promotion', async () => {
    const TIMEOUT = 1000
    const direct = tlsStore('direct', { connectTimeout: TIMEOUT, commandTimeout: TIMEOUT })
    const tokio = tlsStore('tokio', { connectTimeout: TIMEOUT, commandTimeout: TIMEOUT })
    const pre = `tlsfo:${process.pid}:`
    const outcomes: Outcome[] = []
    let stop = false
    let seq = 0
    const worker = async (w: number) => {
      while (!stop) {
        const n = seq++
        const s = w % 2 ? tokio : direct
        const t0 = performance.now()
        try {
          await (n % 2 ? s.set(`${pre}${n % 1000}`, String(n)) : s.get(`${pre}${n % 1000}`))
          outcomes.push({ ok: true, ms: performance.now() - t0 })
        } catch (e: any) {
          outcomes.push({ ok: false, ms: performance.now() - t0, code: e.code })
          await sleep(5)
        }
      }
    }
    const workers = Array.from({ length: 32 }, (_, w) => worker(w))
    try {
      await sleep(300)
      await cluster.kill((await cluster.primaryPorts())[0])
      await cluster.waitHealthy(30_000)
      await untilWritesSucceed([direct, tokio], pre, performance.now())
      await sleep(300)
    } finally {
      // the loops end whatever happened (else they would run on, filling `outcomes`)
      stop = true
      await Promise.all(workers)
    }
    await expectFailoverOutcomes(outcomes, TIMEOUT)
    for (const k of await direct.keys(`${escapeGlob(pre)}*`)) await direct.delete(k)
  }, 90_000)
})
