// isPersistenceError against the real errors: each code of README "Errors"
// raised by the real thing (native core, JS glue, V8, a file system, a Redis
// server, a silent TCP peer), checked for its class and accepted by the
// guard; errors of the wrong class or code, and non-errors, are refused.
import { afterAll, describe, expect, it } from 'vitest'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as esm from '../index.mjs'
import { sparePort } from './helpers/redis-server'

const require = createRequire(import.meta.url)
const lib = require('../index.js')
const native = require('../binding.js')
const { isPersistenceError } = lib

const dir = mkdtempSync(join(tmpdir(), 'awaitly-errors-'))
const sockets: net.Socket[] = []
const silent = net.createServer((s) => sockets.push(s)) // accepts, never answers
const key = `test:errors:${process.pid}-${Date.now().toString(36)}`

afterAll(async () => {
  rmSync(dir, { recursive: true, force: true })
  for (const s of sockets) s.destroy()
  await new Promise((r) => silent.close(r))
  execFileSync('redis-cli', ['-h', '127.0.0.1', '-p', '6379', 'DEL', key])
})

async function caught(f: () => unknown): Promise<any> {
  try {
    await f()
  } catch (e) {
    return e
  }
  throw new Error('expected a throw or a rejection')
}

const deep = () => {
  let v: any = 1
  for (let i = 0; i < 20_000; i++) v = [v]
  return v
}

const cases: Array<[string, typeof Error, () => unknown]> = [
  ['ERR_INVALID_ARG', TypeError, () => lib.createMemoryCache({ maxSize: 'many' })],
  ['ERR_INVALID_ARG', TypeError, () => lib.createKVCache({ store: {} })],
  ['ERR_INVALID_DOCUMENT', TypeError, () => lib.parseState('{"version":1,"entries":{"a":{"result":{"ok":"yes"}}}}')],
  ['ERR_JSON_SYNTAX', SyntaxError, () => lib.parseState('not json')],
  ['ERR_OUT_OF_RANGE', RangeError, () => lib.stringifyState({ steps: new Map([['s', { result: lib.ok(deep()) }]]) })],
  [
    'ERR_CORRUPT',
    Error,
    () => {
      const store = { get: async () => 'garbage', set: async () => {}, delete: async () => false, exists: async () => true, keys: async () => [] }
      return lib.createStatePersistence(store).load('run')
    },
  ],
  [
    'ERR_IO',
    Error,
    () => {
      writeFileSync(join(dir, 'a-file'), 'x')
      return lib.createFileStore({ directory: join(dir, 'a-file', 'sub') }).set('k', 'v')
    },
  ],
  ['ERR_STORE_UNAVAILABLE', Error, async () => {
    const store = lib.createRedisStore({ url: `redis://127.0.0.1:${await sparePort()}`, connectTimeout: 2000 })
    try {
      await store.get('k')
    } finally {
      await store.close()
    }
  }],
  ['ERR_STORE_TIMEOUT', Error, async () => {
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()))
    const { port } = silent.address() as net.AddressInfo
    const store = lib.createRedisStore({ url: `redis://127.0.0.1:${port}`, connectTimeout: 300, commandTimeout: 300 })
    try {
      await store.get('k')
    } finally {
      await store.close()
    }
  }],
  ['ERR_STORE', Error, async () => {
    // a list under the key: GET answers WRONGTYPE
    execFileSync('redis-cli', ['-h', '127.0.0.1', '-p', '6379', 'RPUSH', key, 'x'])
    const store = lib.createRedisStore({ url: 'redis://127.0.0.1:6379' })
    try {
      await store.get(key)
    } finally {
      await store.close()
    }
  }],
  ['ERR_STORE_CLOSED', Error, async () => {
    const store = lib.createRedisStore({ url: 'redis://127.0.0.1:6379' })
    await store.close()
    await store.get('k')
  }],
  ['ERR_INTERNAL', Error, () => native.__internal.panic()],
]

describe('isPersistenceError', () => {
  it('is exported from both entry points, one function', () => {
    expect(typeof isPersistenceError).toBe('function')
    expect(esm.isPersistenceError).toBe(isPersistenceError)
  })

  it.each(cases.map(([code, cls, raise]) => [code, cls.name, cls, raise] as const))('%s: raised as a %s and recognised', async (code, _name, cls, raise) => {
    const e = await caught(raise)
    expect(e.code, String(e)).toBe(code)
    expect(e).toBeInstanceOf(cls)
    // the class is exactly the documented one (TypeError is no RangeError, etc.)
    if (cls !== Error) expect(Object.getPrototypeOf(e)).toBe(cls.prototype)
    else for (const sub of [TypeError, RangeError, SyntaxError]) expect(e).not.toBeInstanceOf(sub)
    expect(isPersistenceError(e)).toBe(true)
  })

  it('ERR_NATIVE_BINDING_NOT_FOUND, as lib/native.js builds it, is recognised', () => {
    // raising it needs a missing platform package (pack.test.ts does that);
    // here, an error of the shape that code path makes
    const e = Object.assign(new Error('no native binary'), { code: 'ERR_NATIVE_BINDING_NOT_FOUND', platformPackage: 'x' })
    expect(isPersistenceError(e)).toBe(true)
  })

  it('refuses the wrong class for a code, foreign codes, non-errors', () => {
    const withCode = (e: Error, code: unknown) => Object.assign(e, { code })
    expect(isPersistenceError(withCode(new Error('x'), 'ERR_INVALID_ARG'))).toBe(false)
    expect(isPersistenceError(withCode(new TypeError('x'), 'ERR_JSON_SYNTAX'))).toBe(false)
    expect(isPersistenceError(withCode(new Error('x'), 'ERR_OUT_OF_RANGE'))).toBe(false)
    expect(isPersistenceError(withCode(new Error('x'), 'ENOENT'))).toBe(false)
    expect(isPersistenceError(withCode(new Error('x'), 'toString'))).toBe(false)
    expect(isPersistenceError(withCode(new Error('x'), undefined))).toBe(false)
    expect(isPersistenceError(new Error('plain'))).toBe(false)
    expect(isPersistenceError({ code: 'ERR_IO', message: 'not an Error' })).toBe(false)
    for (const v of [null, undefined, 'ERR_IO', 42]) expect(isPersistenceError(v)).toBe(false)
  })
})
