// The connection on the JS thread (src/redis/direct/): which stores
// get it, what it does that the tokio transport also did (AUTH, SELECT, large
// values written over many socket writes, calls in flight at close()), and
// that a process holding one exits by itself, or mid-call, without a crash.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { execFileSync, spawnSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { startPrivateRedis, withTransport, type PrivateRedis } from '../helpers/redis-server'

const require = createRequire(import.meta.url)
const { createRedisStore } = require('../../index.js')
const INDEX = require.resolve('../../index.js')

let server: PrivateRedis
beforeAll(async () => {
  server = await startPrivateRedis()
})
afterAll(async () => {
  await server?.kill()
})

function cli(...args: string[]) {
  return execFileSync('redis-cli', ['-p', String(server.port), ...args], { encoding: 'utf8' }).trim()
}

describe('the direct transport', () => {
  it("is what a store uses by default, one server or a cluster; transport: 'tokio' keeps tokio", async () => {
    const direct = createRedisStore({ url: server.url })
    const tokio = createRedisStore({ url: server.url, transport: 'tokio' })
    expect(direct.transport).toBe('direct')
    expect(tokio.transport).toBe('tokio')
    await direct.set('t:a', '1')
    expect(await direct.get('t:a')).toBe('1')
    expect(direct.batchesSent).toBe(2)
    expect(await tokio.get('t:a')).toBe('1')
    expect(tokio.batchesSent).toBe(1)
    const cluster = createRedisStore({ cluster: { nodes: ['redis://127.0.0.1:1'] } })
    expect(cluster.transport).toBe('direct')
    expect(createRedisStore({ cluster: { nodes: ['redis://127.0.0.1:1'] }, transport: 'tokio' }).transport).toBe('tokio')
    expect(() => createRedisStore({ url: server.url, transport: 'fast' })).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG', message: expect.stringMatching(/transport must be 'auto' or 'tokio'/) }),
    )
    await Promise.all([direct.close(), tokio.close(), cluster.close()])
  })

  it('runs keys, clearing and leases on its one connection (no second connection opens)', async () => {
    const { createKVCache } = require('../../index.js')
    const { createSnapshotStore } = require('../../snapshot.js')
    const s = createRedisStore({ url: server.url })
    const p = `t:one:${process.pid}:`
    await Promise.all([s.set(`${p}a`, '1'), s.set(`${p}b`, '2')])
    expect((await s.keys(`${p}*`)).sort()).toEqual([`${p}a`, `${p}b`])
    const cache = createKVCache({ store: s, prefix: `${p}cache:` })
    await cache.setAsync('x', { ok: true, value: 1 })
    await cache.clearAsync()
    expect(await cache.getAsync('x')).toBeUndefined()
    const snaps = createSnapshotStore({ store: s, prefix: `${p}snap:` })
    const lease = await snaps.tryAcquire('run-1', { ttlMs: 10_000 })
    expect(lease).not.toBeNull()
    expect(await snaps.tryAcquire('run-1', { ttlMs: 10_000 })).toBeNull()
    await snaps.release('run-1', lease!.ownerToken)
    expect(await snaps.tryAcquire('run-1', { ttlMs: 10_000 })).not.toBeNull()
    expect(s.connectionsOpened).toBe(1)
    expect(cli('CLIENT', 'LIST').split('\n').filter((l) => !l.includes('cmd=client')).length).toBe(1)
    await s.close()
  })

  for (const transport of ['direct', 'tokio'] as const) {
    it(`sends lease scripts by body (EVAL): a flushed script cache changes nothing, ${transport} transport`, async () => {
      const { createSnapshotStore } = require('../../snapshot.js')
      const s = createRedisStore(withTransport(transport, { url: server.url }))
      expect(s.transport).toBe(transport)
      const stat = (cmd: string) => {
        const m = new RegExp(`cmdstat_${cmd}:calls=(\\d+),.*failed_calls=(\\d+)`).exec(cli('INFO', 'commandstats'))
        return { calls: Number(m?.[1] ?? 0), failed: Number(m?.[2] ?? 0) }
      }
      const before = { evalsha: stat('evalsha'), eval: stat('eval') }
      const snaps = createSnapshotStore({ store: s, prefix: `t:noscript:${transport}:${process.pid}:` })
      const a = await snaps.tryAcquire('run', { ttlMs: 10_000 })
      cli('SCRIPT', 'FLUSH')
      await snaps.release('run', a!.ownerToken)
      const b = await snaps.tryAcquire('run', { ttlMs: 10_000 })
      expect(b).not.toBeNull()
      cli('SCRIPT', 'FLUSH')
      // a stale token: the script still refuses it
      expect(await snaps.release('run', a!.ownerToken)).toBe(undefined)
      expect(await snaps.tryAcquire('run', { ttlMs: 10_000 })).toBeNull()
      cli('SCRIPT', 'FLUSH')
      expect(await snaps.renew('run', b!.ownerToken, { ttlMs: 10_000 })).toBe(true)
      await snaps.release('run', b!.ownerToken)
      expect(await snaps.tryAcquire('run', { ttlMs: 10_000 })).not.toBeNull()
      // one EVAL per script call (release, stale release, renew, release),
      // none failed, nothing by SHA
      expect(stat('evalsha').calls - before.evalsha.calls).toBe(0)
      expect(stat('eval').calls - before.eval.calls).toBe(4)
      expect(stat('eval').failed - before.eval.failed).toBe(0)
      await s.close()
    })
  }

  it('ping() opens the data connection: the next call needs no connect', async () => {
    const s = createRedisStore({ url: server.url })
    expect(s.connectionsOpened).toBe(0)
    await s.ping()
    expect(s.connectionsOpened).toBe(1)
    await s.get('t:a')
    expect(s.connectionsOpened).toBe(1)
    await s.close()
  })

  it('SELECTs the database of the URL and AUTHs with its credentials (both transports)', async () => {
    cli('ACL', 'SETUSER', 'direct-user', 'on', '>secret', '~*', '+@all')
    for (const transport of ['direct', 'tokio'] as const) {
      const s = createRedisStore(
        withTransport(transport, { url: `redis://direct-user:secret@127.0.0.1:${server.port}/3` }),
      )
      expect(s.transport).toBe(transport)
      await s.set(`t:db3:${transport}`, 'in three')
      expect(cli('-n', '3', 'GET', `t:db3:${transport}`)).toBe('in three')
      expect(cli('-n', '0', 'EXISTS', `t:db3:${transport}`)).toBe('0')
      await s.close()
      const wrong = createRedisStore(withTransport(transport, { url: `redis://direct-user:nope@127.0.0.1:${server.port}` }))
      const e = await wrong.get('x').then(
        () => null,
        (err: any) => err,
      )
      expect(e?.code).toBe('ERR_STORE')
      expect(String(e?.message)).toMatch(/WRONGPASS|[Pp]assword authentication/)
      await wrong.close()
    }
  })

  it('values of many MB (written over many socket writes) and many batches in flight arrive intact and in order', async () => {
    const s = createRedisStore({ url: server.url, maxBatch: 4 })
    const big = (i: number) => String.fromCharCode(0x41 + (i % 26)).repeat(3_000_000 + i) + 'é😀'
    await Promise.all(Array.from({ length: 6 }, (_, i) => s.set(`t:big${i}`, big(i))))
    const got = await Promise.all(Array.from({ length: 6 }, (_, i) => s.get(`t:big${i}`)))
    got.forEach((v, i) => expect(v === big(i)).toBe(true))
    // 2,000 calls of mixed kinds in one tick: 500 batches of 4 in flight
    const results = await Promise.all(
      Array.from({ length: 2000 }, (_, i) =>
        i % 4 === 0 ? s.set(`t:m${i}`, `v${i}`) : i % 4 === 1 ? s.get(`t:m${i - 1}`) : i % 4 === 2 ? s.exists(`t:m${i - 2}`) : s.delete(`t:m${i - 3}`),
      ),
    )
    results.forEach((r, i) => expect(r).toBe([undefined, `v${i - 1}`, true, true][i % 4]))
    await s.close()
  })

  it('a JS thread that blocked for longer than commandTimeout does not time out the calls made after it', async () => {
    const s = createRedisStore({ url: server.url, commandTimeout: 300 })
    await s.ping()
    const until = Date.now() + 500
    while (Date.now() < until); // a sync stretch: the loop's cached clock is now 500 ms behind
    const got = await Promise.all(Array.from({ length: 50 }, () => s.get('t:a')))
    expect(got).toEqual(Array(50).fill('1'))
    await s.close()
  })

  it('close() lets the calls already made complete, then later calls reject with ERR_STORE_CLOSED', async () => {
    const s = createRedisStore({ url: server.url })
    await s.set('t:c', 'x')
    const pending = Array.from({ length: 300 }, () => s.get('t:c'))
    await s.close()
    expect(await Promise.all(pending)).toEqual(Array(300).fill('x'))
    await expect(s.get('t:c')).rejects.toMatchObject({ code: 'ERR_STORE_CLOSED' })
  })

  const child = (body: string, timeout = 10_000) =>
    spawnSync(process.execPath, ['--expose-gc', '-e', `const m = require(${JSON.stringify(INDEX)}); (async () => { ${body} })()`], {
      encoding: 'utf8',
      timeout,
    })

  it('a process whose store is connected but idle (never closed) exits by itself', () => {
    const t0 = Date.now()
    const r = child(`const s = m.createRedisStore({ url: '${server.url}' }); await s.set('t:idle', '1'); console.log(await s.get('t:idle'))`)
    expect(r.error).toBeUndefined()
    expect(r.signal).toBeNull()
    expect(r.status).toBe(0)
    expect(r.stdout.trim()).toBe('1')
    expect(Date.now() - t0).toBeLessThan(8000)
  })

  it('process.exit() with hundreds of calls in flight, and an uncaught throw from a continuation, end the process cleanly', () => {
    const exit = child(
      `const s = m.createRedisStore({ url: '${server.url}' }); await s.ping();
       for (let i = 0; i < 500; i++) s.set('t:exit' + i, 'v'.repeat(1000)).then(() => { if (i === 100) process.exit(7) })
       setTimeout(() => process.exit(9), 5000)`,
    )
    expect(exit.signal).toBeNull()
    expect(exit.status).toBe(7)
    const thrown = child(
      `const s = m.createRedisStore({ url: '${server.url}' });
       s.get('t:nothing').then(() => { throw new Error('boom from a continuation') })`,
    )
    expect(thrown.signal).toBeNull()
    expect(thrown.status).toBe(1)
    expect(thrown.stderr).toMatch(/boom from a continuation/)
  })

  it('a store dropped without close() is collected with its connection, and the process lives on', () => {
    const r = child(
      `const before = Number(require('node:child_process').execFileSync('redis-cli', ['-p', '${server.port}', 'INFO', 'clients']).toString().match(/connected_clients:(\\d+)/)[1]);
       for (let i = 0; i < 50; i++) { const s = m.createRedisStore({ url: '${server.url}' }); await s.get('t:gc') }
       for (let i = 0; i < 20; i++) { global.gc(); await new Promise((r) => setTimeout(r, 50)) }
       const after = Number(require('node:child_process').execFileSync('redis-cli', ['-p', '${server.port}', 'INFO', 'clients']).toString().match(/connected_clients:(\\d+)/)[1]);
       console.log(after - before)`,
    )
    expect(r.signal).toBeNull()
    expect(r.stderr).toBe('')
    // 50 stores made and dropped: their sockets were closed by the collector
    expect(Number(r.stdout.trim())).toBeLessThan(10)
  })
})
