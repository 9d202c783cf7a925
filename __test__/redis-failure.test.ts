// Redis going away and coming back: a private redis-server that this test
// starts, pauses, kills and restarts. Every pending and new call must reject
// within the configured timeout with a code saying why; the same store works
// again once Redis is back.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { execFileSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { startPrivateRedis, withTransport, type PrivateRedis } from './helpers/redis-server'

const require = createRequire(import.meta.url)
const { createRedisStore, createKVCache, ok } = require('../index.js')
const { createSnapshotStore } = require('../snapshot.js')

const TIMEOUT = 400

async function settle<T>(p: Promise<T>) {
  const t0 = performance.now()
  try {
    const value = await p
    return { ok: true as const, value, ms: performance.now() - t0 }
  } catch (error: any) {
    return { ok: false as const, error, ms: performance.now() - t0 }
  }
}

// both transports: the JS-thread socket (the default) and tokio (TLS, clusters)
for (const transport of ['direct', 'tokio'] as const)
describe(`native Redis store (${transport} transport): outage and recovery`, () => {
  let server: PrivateRedis
  let store: any
  beforeAll(async () => {
    server = await startPrivateRedis()
    store = createRedisStore(
      withTransport(transport, { url: server.url, connectTimeout: TIMEOUT, commandTimeout: TIMEOUT }),
    )
    expect(store.transport).toBe(transport)
  })
  afterAll(async () => {
    await store?.close()
    await server?.kill()
  })

  it('works, over one connection', async () => {
    await Promise.all(Array.from({ length: 50 }, (_, i) => store.set(`k${i}`, `v${i}`)))
    expect(await store.get('k7')).toBe('v7')
    expect(store.connectionsOpened).toBe(1)
  })

  it('a server that does not answer: pending calls reject with ERR_STORE_TIMEOUT within commandTimeout', async () => {
    execFileSync('redis-cli', ['-p', String(server.port), 'CLIENT', 'PAUSE', '900', 'ALL'])
    const snaps = createSnapshotStore({ store, prefix: 's:' })
    const results = await Promise.all([
      ...Array.from({ length: 20 }, (_, i) => settle(store.get(`k${i}`))),
      // calls made of several batches (SCAN, lease scripts) too
      settle(store.keys('k*')),
      settle(snaps.tryAcquire('run', { ttlMs: 1000 })),
      settle(snaps.release('run', 'x'.repeat(32))),
    ])
    for (const r of results) {
      expect(r.ok).toBe(false)
      expect(r.ok ? undefined : r.error.code).toBe('ERR_STORE_TIMEOUT')
      expect(r.ms).toBeLessThan(2 * TIMEOUT + 600) // connect + command timeout, plus slack for a loaded CI machine
    }
    // the pause ends by itself; the timed-out connection was replaced
    await new Promise((r) => setTimeout(r, 600))
    expect(await store.get('k1')).toBe('v1')
  })

  it('killed mid-run: every pending call rejects with ERR_STORE_UNAVAILABLE, new calls too, quickly', async () => {
    // hold our commands in the server so they are in flight when it dies
    execFileSync('redis-cli', ['-p', String(server.port), 'CLIENT', 'PAUSE', '5000', 'ALL'])
    const snaps = createSnapshotStore({ store, prefix: 's:' })
    const pending = [
      ...Array.from({ length: 100 }, (_, i) => settle(store.get(`k${i % 50}`))),
      settle(store.keys('k*')),
      settle(snaps.tryAcquire('run', { ttlMs: 1000 })),
    ]
    await new Promise((r) => setTimeout(r, 50))
    await server.kill()
    const results = await Promise.all(pending)
    for (const r of results) {
      expect(r.ok).toBe(false)
      expect(['ERR_STORE_UNAVAILABLE']).toContain(r.ok ? 'resolved' : r.error.code)
      expect(r.ms).toBeLessThan(2 * TIMEOUT + 600) // connect + command timeout, plus slack for a loaded CI machine
    }
    // while it is down: every call (all kinds) rejects, within the timeout
    const cache = createKVCache({ store, prefix: 'c:' })
    const down = await Promise.all([
      settle(store.get('x')),
      settle(store.set('x', 'y')),
      settle(store.delete('x')),
      settle(store.exists('x')),
      settle(store.keys('*')),
      settle(cache.setAsync('a', ok(1))),
      settle(cache.clearAsync()),
    ])
    for (const r of down) {
      expect(r.ok).toBe(false)
      expect(['ERR_STORE_UNAVAILABLE', 'ERR_STORE_TIMEOUT']).toContain(r.ok ? 'resolved' : r.error.code)
      expect(r.ms).toBeLessThan(2 * TIMEOUT + 600) // connect + command timeout, plus slack for a loaded CI machine
      expect(r.ok ? null : r.error).toBeInstanceOf(Error)
    }
  })

  it('comes back: the same store succeeds again once Redis is restarted', async () => {
    const before = store.connectionsOpened
    await server.start()
    // the server restarted empty (no persistence)
    expect(await store.get('k1')).toBeNull()
    await store.set('after', 'yes')
    expect(await store.get('after')).toBe('yes')
    expect(store.connectionsOpened).toBe(before + 1)
    const cache = createKVCache({ store, prefix: 'c:' })
    await cache.setAsync('a', ok(1))
    expect(await cache.getAsync('a')).toEqual(ok(1))
  })

  it('a refused connection at start is ERR_STORE_UNAVAILABLE, not a crash; close() then ERR_STORE_CLOSED', async () => {
    const dead = createRedisStore({ url: 'redis://127.0.0.1:1', connectTimeout: TIMEOUT, commandTimeout: TIMEOUT })
    const r = await settle(dead.ping())
    expect(r.ok ? 'resolved' : r.error.code).toBe('ERR_STORE_UNAVAILABLE')
    await dead.close()
    const c = await settle(dead.get('x'))
    expect(c.ok ? 'resolved' : c.error.code).toBe('ERR_STORE_CLOSED')
  })
})
