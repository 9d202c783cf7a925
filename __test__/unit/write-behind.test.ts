// Write-behind of createFileCache and createKVCache (issue 10): the sync
// set/delete/clear that awaitly's engine calls persist in the background;
// flush() reports when (and whether) they are durable. End to end with
// awaitly's createWorkflow in child processes (fixtures/write-behind-child.cjs):
// what process 1 cached, process 2 does not run again. Needs Redis on
// 127.0.0.1:6379 (fails, never skips, if it is not there).
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { spawn } from 'node:child_process'
import { mkdtempSync, readdirSync, rmSync, utimesSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ok } from 'awaitly'
import * as native from '../../index.js'
import { createMapStore } from '../helpers/map-store'
import { startPrivateRedis } from '../helpers/redis-server'

const { createFileCache, createKVCache, createRedisStore, escapeGlob } = native as any

const CHILD = join(__dirname, '..', 'fixtures', 'write-behind-child.cjs')
const base = `wb-test:${process.pid}-${Date.now().toString(36)}:`
let dir: string
let redis: any

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'awaitly-wb-'))
  redis = createRedisStore({ url: 'redis://127.0.0.1:6379' })
})
afterAll(async () => {
  const doomed = await redis.keys(`${escapeGlob(base)}*`)
  for (const k of doomed) await redis.delete(k)
  expect(await redis.keys(`*${escapeGlob(base)}*`)).toEqual([])
  await redis.close()
  // tens of thousands of files: over 30 s on a busy shared disk
  rmSync(dir, { recursive: true, force: true })
}, 180_000)

type ChildOut = { code: number | null; signal: string | null; line: any; stderr: string }
function child(...args: string[]): Promise<ChildOut> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [CHILD, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    p.stdout.on('data', (d) => (out += d))
    p.stderr.on('data', (d) => (err += d))
    p.on('error', reject)
    p.on('close', (code, signal) => {
      const first = out.split('\n').find((l) => l.startsWith('{'))
      resolve({ code, signal, line: first ? JSON.parse(first) : undefined, stderr: err })
    })
  })
}

const RAN = { user: 1, charge: 1, ship: 1 }
const SKIPPED = { user: 0, charge: 0, ship: 0 }

describe('write-behind end to end with awaitly createWorkflow, two processes', () => {
  for (const [kind, where] of [
    ['file', () => join(dir, 'e2e-file')],
    ['kv', () => `${base}e2e:`],
  ] as const) {
    it(`${kind}: process 1 ends normally right after the run (nothing flushed); process 2 runs no cached step`, async () => {
      const loc = where()
      const one = await child(kind, loc, 'write', 'normal')
      expect(one.code, one.stderr).toBe(0)
      expect(one.line.calls).toEqual(RAN)
      expect(one.line.statsAtEnd.pendingWrites).toBe(3) // still queued when the script's last line ran
      expect(one.line.unhandled).toEqual([])
      const two = await child(kind, loc, 'read', 'normal')
      expect(two.code, two.stderr).toBe(0)
      expect(two.line.calls).toEqual(SKIPPED)
      expect(two.line.value).toEqual(one.line.value)
    })

    it(`${kind}: SIGKILL right after flush() resolved loses nothing`, async () => {
      const loc = `${where()}-kill`
      const one = await child(kind, loc, 'write', 'sigkill')
      expect(one.signal).toBe('SIGKILL')
      expect(one.line.calls).toEqual(RAN)
      expect(typeof one.line.flushMs).toBe('number')
      const two = await child(kind, loc, 'read', 'normal')
      expect(two.code, two.stderr).toBe(0)
      expect(two.line.calls).toEqual(SKIPPED)
    })
  }

  it('file: process.exit() in the same job as a sync set still writes it (and everything before)', async () => {
    const loc = join(dir, 'e2e-exit')
    const one = await child('file', loc, 'write', 'exit')
    expect(one.code, one.stderr).toBe(0)
    expect(one.line.calls).toEqual(RAN)
    expect(await createFileCache({ directory: loc }).getAsync('late:u1')).toEqual(ok('late'))
    const two = await child('file', loc, 'read', 'normal')
    expect(two.line.calls).toEqual(SKIPPED)
  })

  it('a store whose set rejects: onError sees each failure, flush() rejects with them, no unhandled rejection, process stays up', async () => {
    const r = await child('kv', `${base}failing:`, 'write', 'failing')
    expect(r.code, r.stderr).toBe(0)
    expect(r.line.alive).toBe(true)
    expect(r.line.calls).toEqual(RAN) // the workflow itself is unaffected
    expect(r.line.seen.map((s: string[]) => s[0])).toEqual(['user:u1', 'charge:u1', 'ship:u1'])
    expect(r.line.seen.every((s: string[]) => s[1] === 'ERR_STORE')).toBe(true)
    expect(r.line.flush.name).toBe('AggregateError')
    expect(r.line.flush.code).toBe('ERR_STORE')
    expect(r.line.flush.errors).toHaveLength(3)
    expect(r.line.stats.writeErrors).toBe(3)
    expect(r.line.unhandled).toEqual([])
  })
})

describe('write-behind in process', () => {
  it('file: sync set/delete/clear reach the disk in call order, also mixed with async calls', async () => {
    const directory = join(dir, 'order')
    const c = createFileCache({ directory })
    await c.init()
    c.set('a', ok(1))
    const p = c.setAsync('a', ok(2))
    c.set('a', ok(3))
    c.set('b', ok('b'))
    c.delete('b')
    await p
    await c.flush()
    expect(c.get('a')).toEqual(ok(3)) // the in-process layer agrees with the last call
    const fresh = createFileCache({ directory })
    expect(await fresh.getAsync('a')).toEqual(ok(3))
    expect(await fresh.getAsync('b')).toBeUndefined()
    c.set('x', ok('x'))
    c.clear()
    c.set('y', ok('y'))
    await c.flush()
    expect(await fresh.getAsync('a')).toBeUndefined()
    expect(await fresh.getAsync('x')).toBeUndefined()
    expect(await fresh.getAsync('y')).toEqual(ok('y'))
    expect(c.stats()).toMatchObject({ writeErrors: 0, pendingWrites: 0 })
  })

  it('file with an fs object (node:fs/promises): a clear never removes what was set after it', async () => {
    const fsp = await import('node:fs/promises')
    const fs = {
      readFile: (p: string) => fsp.readFile(p, 'utf8'),
      writeFile: (p: string, d: string) => fsp.writeFile(p, d),
      unlink: (p: string) => fsp.unlink(p),
      exists: (p: string) => fsp.access(p).then(() => true, () => false),
      readdir: (p: string) => fsp.readdir(p),
      mkdir: (p: string, o?: { recursive?: boolean }) => fsp.mkdir(p, o).then(() => undefined),
    }
    const directory = join(dir, 'fs-iface')
    const c = createFileCache({ directory, fs })
    await c.init()
    for (let i = 0; i < 50; i++) c.set(`x${i}`, ok(i))
    c.clear()
    for (let i = 0; i < 50; i++) c.set(`y${i}`, ok(i))
    c.set('x0', ok('again'))
    await c.flush()
    const names = readdirSync(directory).sort()
    expect(names).toEqual([...Array.from({ length: 50 }, (_, i) => `y${i}.json`), 'x0.json'].sort())
    expect(await createFileCache({ directory, fs }).getAsync('x0')).toEqual(ok('again'))
  })

  for (const [name, make] of [
    ['native-redis', () => redis],
    ['js-map', () => createMapStore()],
  ] as const) {
    it(`kv ${name}: sync set/delete/clear reach the store in call order; load() fills a new cache`, async () => {
      const store: any = make()
      const prefix = `${base}order-${name}:`
      const c = createKVCache({ store, prefix })
      c.set('a', ok(1))
      const p = c.setAsync('a', ok(2))
      c.set('a', ok(3))
      c.set('b', ok('b'))
      c.delete('b')
      await p
      await c.flush()
      expect(await store.get(`${prefix}a`)).toBe('{"ok":true,"value":3}')
      expect(await store.get(`${prefix}b`)).toBeNull()
      c.set('x', ok('x'))
      c.clear()
      c.set('y', ok('y'))
      await c.flush()
      expect(await store.get(`${prefix}a`)).toBeNull()
      expect(await store.get(`${prefix}x`)).toBeNull()
      expect(await store.get(`${prefix}y`)).toBe('{"ok":true,"value":"y"}')
      // one key written in 200 consecutive ticks (separate pipelines): the last call wins
      for (let i = 0; i < 200; i++) {
        c.set('t', ok(i))
        if (i % 3 === 0) c.delete('t')
        await new Promise((r) => setImmediate(r))
      }
      await c.flush()
      expect(await store.get(`${prefix}t`)).toBe('{"ok":true,"value":199}')
      c.delete('t')
      await c.flush()
      const fresh = createKVCache({ store, prefix })
      expect(await fresh.load()).toBe(1)
      expect(fresh.get('y')).toEqual(ok('y'))
      await c.clearAsync()
    })
  }

  it('file: 25,000 sync sets in one loop (more than the 20,000 open files allowed here) all become durable', async () => {
    const directory = join(dir, 'many')
    const c = createFileCache({ directory, durable: false, memoryMaxSize: 0 })
    await c.init()
    for (let i = 0; i < 25_000; i++) c.set(`m${i}`, ok(i))
    expect(c.stats().pendingWrites).toBe(25_000)
    await c.flush()
    expect(c.stats()).toMatchObject({ writeErrors: 0, pendingWrites: 0 })
    expect(readdirSync(directory).filter((n) => n.endsWith('.json'))).toHaveLength(25_000)
  }, 60_000)

  it('writeBehind: false: nothing reaches the store from the sync methods', async () => {
    const store = createMapStore()
    const c = createKVCache({ store, prefix: 'p:', writeBehind: false })
    c.set('a', ok(1))
    await c.flush()
    expect(store.map.size).toBe(0)
    expect(c.get('a')).toEqual(ok(1))
    const directory = join(dir, 'off')
    const f = createFileCache({ directory, writeBehind: false })
    await f.init()
    f.set('a', ok(1))
    await f.flush()
    expect(readdirSync(directory)).toEqual([])
  })

  it('a failing store in this process: onError per failure, flush() rejects once, no unhandled rejection', async () => {
    const unhandled: unknown[] = []
    const onUnhandled = (e: unknown) => unhandled.push(e)
    process.on('unhandledRejection', onUnhandled)
    try {
      const store = {
        ...createMapStore(),
        set: async () => {
          const e: any = new Error('read-only replica')
          e.code = 'ERR_STORE'
          throw e
        },
      }
      const seen: [string, string][] = []
      const c = createKVCache({ store, prefix: 'f:', onError: (e: any, key: string) => seen.push([key, e.code]) })
      c.set('a', ok(1))
      c.set('b', ok(2))
      const e: any = await c.flush().catch((x: unknown) => x)
      expect(e).toBeInstanceOf(AggregateError)
      expect(e.code).toBe('ERR_STORE')
      expect(e.errors).toHaveLength(2)
      expect(seen).toEqual([
        ['a', 'ERR_STORE'],
        ['b', 'ERR_STORE'],
      ])
      await expect(c.flush()).resolves.toBeUndefined() // failures are reported once
      expect(c.get('a')).toEqual(ok(1)) // the in-process layer keeps serving
      // with no flush() for a long time, at most 1000 failures are kept (all are counted)
      for (let i = 0; i < 1500; i++) c.set(`many${i}`, ok(i))
      const many: any = await c.flush().catch((x: unknown) => x)
      expect(many.errors).toHaveLength(1000)
      expect(many.message).toMatch(/^createKVCache: 1500 write-behind operations failed/)
      expect(c.stats().writeErrors).toBe(1502)
      await new Promise((r) => setTimeout(r, 20))
      expect(unhandled).toEqual([])
    } finally {
      process.off('unhandledRejection', onUnhandled)
    }
  })

  it('native Redis stopped mid-run: onError sees each failed write, flush() rejects, nothing unhandled; after a restart writes land again', async () => {
    const unhandled: unknown[] = []
    const onUnhandled = (e: unknown) => unhandled.push(e)
    process.on('unhandledRejection', onUnhandled)
    const server = await startPrivateRedis()
    const store = createRedisStore({ url: server.url, connectTimeout: 300, commandTimeout: 300 })
    try {
      const seen: [string, string][] = []
      const c = createKVCache({ store, prefix: 'stop:', onError: (e: any, key: string) => seen.push([key, e.code]) })
      c.set('before', ok(1))
      await c.flush()
      expect(await store.get('stop:before')).toBe('{"ok":true,"value":1}')
      await server.kill()
      c.set('during-1', ok(2))
      c.set('during-2', ok(3))
      const e: any = await c.flush().catch((x: unknown) => x)
      expect(e).toBeInstanceOf(AggregateError)
      expect(e.errors).toHaveLength(2)
      expect(seen.map((s) => s[0])).toEqual(['during-1', 'during-2'])
      for (const [, code] of seen) expect(['ERR_STORE_UNAVAILABLE', 'ERR_STORE_TIMEOUT']).toContain(code)
      expect(c.get('during-2')).toEqual(ok(3)) // the in-process layer keeps serving
      expect(c.stats().writeErrors).toBe(2)
      await server.start()
      c.set('after', ok(4))
      await c.flush()
      expect(await store.get('stop:after')).toBe('{"ok":true,"value":4}')
      await new Promise((r) => setTimeout(r, 20))
      expect(unhandled).toEqual([])
    } finally {
      process.off('unhandledRejection', onUnhandled)
      await store.close()
      await server.kill()
    }
  })

  it('validates writeBehind and onError (TypeError ERR_INVALID_ARG)', () => {
    for (const bad of [{ writeBehind: 'yes' }, { writeBehind: 1 }, { onError: 'log' }, { onError: {} }]) {
      for (const make of [
        () => createFileCache({ directory: join(dir, 'v'), ...bad }),
        () => createKVCache({ store: createMapStore(), ...bad }),
      ]) {
        let e: any
        try {
          make()
        } catch (x) {
          e = x
        }
        expect(e).toBeInstanceOf(TypeError)
        expect(e.code).toBe('ERR_INVALID_ARG')
      }
    }
  })
})

describe('preload', () => {
  // the figures (100,000 into 10,000) under AWAITLY_STRESS=1; CI: 20,000 into 1000
  const STRESS = process.env.AWAITLY_STRESS === '1'
  const N = STRESS ? 100_000 : 20_000
  const LIMIT = STRESS ? 10_000 : 1000
  it(`file init(): ${N} entries into a memoryMaxSize ${LIMIT} layer keep the ${LIMIT} newest, and no more`, async () => {
    const directory = join(dir, 'preload')
    const w = createFileCache({ directory, durable: false, memoryMaxSize: 0 })
    await w.init()
    for (let i = 0; i < N; i += 1000) {
      await Promise.all(Array.from({ length: 1000 }, (_, j) => w.setAsync(`k${i + j}`, ok(i + j))))
    }
    // mtimes: k<i> is i seconds after the epoch start, so higher i = newer
    const t0 = Date.now() / 1000 - N
    for (let i = 0; i < N; i++) utimesSync(join(directory, `k${i}.json`), t0 + i, t0 + i)
    const c = createFileCache({ directory, memoryMaxSize: LIMIT })
    const start = performance.now()
    await c.init()
    const ms = performance.now() - start
    console.log(`preload: ${N} files listed, ${LIMIT} loaded in ${ms.toFixed(0)} ms`)
    let inLayer = 0
    for (let i = 0; i < N - LIMIT; i++) if (c.has(`k${i}`)) inLayer++
    expect(inLayer).toBe(0)
    for (let i = N - LIMIT; i < N; i++) expect(c.get(`k${i}`)).toEqual(ok(i))
  }, STRESS ? 600_000 : 60_000)

  it('file init(): hashed names (keys like user:1) are preloaded from the key their file holds; plain names keep the JS format', async () => {
    const directory = join(dir, 'preload-hashed')
    const w = createFileCache({ directory })
    await w.init()
    await w.setAsync('user:1', ok('u'))
    await w.setAsync('plain', ok('p'))
    const { readFileSync, writeFileSync } = await import('node:fs')
    const hashed = readdirSync(directory).find((n) => n.includes('~'))!
    expect(JSON.parse(readFileSync(join(directory, hashed), 'utf8'))).toEqual({ key: 'user:1', ok: true, value: 'u' })
    expect(readFileSync(join(directory, 'plain.json'), 'utf8')).toBe(JSON.stringify({ ok: true, value: 'p' }, null, 2))
    const c = createFileCache({ directory })
    await c.init()
    expect(c.get('user:1')).toEqual(ok('u'))
    expect(c.get('plain')).toEqual(ok('p'))
    // a hashed file from before this version (no key in it): not preloaded, still read by getAsync
    writeFileSync(join(directory, hashed), JSON.stringify({ ok: true, value: 'old' }, null, 2))
    const d = createFileCache({ directory })
    await d.init()
    expect(d.has('user:1')).toBe(false)
    expect(await d.getAsync('user:1')).toEqual(ok('old'))
  })

  it('file init(): a corrupt file follows onCorrupt', async () => {
    const directory = join(dir, 'preload-corrupt')
    const w = createFileCache({ directory })
    await w.init()
    await w.setAsync('good', ok(1))
    await w.setAsync('bad', ok(2))
    const { writeFileSync } = await import('node:fs')
    writeFileSync(join(directory, 'bad.json'), '{ torn')
    const strict = createFileCache({ directory })
    await expect(strict.init()).rejects.toMatchObject({ code: 'ERR_CORRUPT' })
    expect(strict.get('good')).toEqual(ok(1)) // the others are loaded
    const lenient = createFileCache({ directory, onCorrupt: 'miss' })
    await lenient.init()
    expect(lenient.get('good')).toEqual(ok(1))
    expect(lenient.has('bad')).toBe(false)
    expect(readdirSync(directory).sort()).toEqual(['bad.json.corrupt', 'good.json'])
  })
})
