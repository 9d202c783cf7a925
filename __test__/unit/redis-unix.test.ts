// unix: / redis+unix: URLs against a private redis-server on a unix socket.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const { createRedisStore, createKVCache, ok } = require('../../index.js')

let dir: string
let sock: string
let child: ChildProcess

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kv-unix-'))
  sock = join(dir, 'redis.sock')
  child = spawn('redis-server', ['--port', '0', '--unixsocket', sock, '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
  for (let i = 0; i < 200 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 25))
  if (!existsSync(sock)) throw new Error('redis-server did not create its unix socket')
})

afterAll(() => {
  child?.kill('SIGKILL')
  if (dir) rmSync(dir, { recursive: true, force: true })
})

describe('native Redis store over a unix socket', () => {
  for (const scheme of ['unix://', 'redis+unix://']) {
    it(`${scheme}: round trip through a KV cache, on the JS-thread (direct) transport`, async () => {
      const store = createRedisStore({ url: `${scheme}${sock}` })
      expect(store.transport).toBe('direct')
      const cache = createKVCache({ store, prefix: `${scheme}:` })
      await cache.setAsync('a', ok(1))
      expect(await cache.getAsync('a')).toEqual(ok(1))
      await cache.clearAsync()
      expect(await cache.hasAsync('a')).toBe(false)
      expect(store.batchesSent).toBeGreaterThan(0)
      await store.close()
    })
  }

  it('rejects URLs it cannot use with a TypeError at creation', () => {
    for (const url of ['http://x', 'not a url', '']) {
      expect(() => createRedisStore({ url }), url).toThrow(TypeError)
    }
    expect(() => createRedisStore({ connectTimeout: -1 })).toThrow(TypeError)
    expect(() => createRedisStore({ commandTimeout: 1.5 })).toThrow(TypeError)
  })

  it('set() rejects a bad ttl with a TypeError instead of sending it (0 and absent mean no expiry)', async () => {
    const store = createRedisStore({ url: `unix://${sock}` })
    for (const ttl of [-1, 1.5, '5', NaN]) {
      const e = await store.set('t', 'v', { ttl }).then(() => null, (x: any) => x)
      expect(e, String(ttl)).toBeInstanceOf(TypeError)
      expect(e.code).toBe('ERR_INVALID_ARG')
    }
    await store.set('t', 'v', { ttl: 0 })
    await store.set('u', 'v')
    expect(await store.get('t')).toBe('v')
    const bad = await store.get(42 as any).then(() => null, (x: any) => x)
    expect(bad).toBeInstanceOf(TypeError)
    await store.close()
  })
})
