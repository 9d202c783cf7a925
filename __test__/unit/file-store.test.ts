import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'
import path from 'node:path'

const require = createRequire(import.meta.url)
const { createFileStore, escapeGlob } = require('../../index.js')

let root: string
let dir: string
beforeEach(() => {
  root = mkdtempSync(path.join(os.tmpdir(), 'awaitly-fstore-'))
  dir = path.join(root, 'nested', 'store') // created on first use
})
afterEach(() => {
  vi.useRealTimers()
  rmSync(root, { recursive: true, force: true })
})

const rejection = async (p: Promise<unknown>) => {
  try {
    await p
  } catch (e) {
    return e as any
  }
  throw new Error('expected a rejection')
}

describe('createFileStore (KeyValueStore on local files)', () => {
  it('get/set/delete/exists, persisted across instances', async () => {
    const store = createFileStore({ directory: dir })
    expect(await store.get('workflow:state:run_1')).toBeNull()
    expect(await store.exists('workflow:state:run_1')).toBe(false)
    await store.set('workflow:state:run_1', '{"version":1,"entries":{}}')
    await store.set('plain', 'x')
    expect(await store.get('workflow:state:run_1')).toBe('{"version":1,"entries":{}}')
    expect(await store.exists('workflow:state:run_1')).toBe(true)
    const again = createFileStore({ directory: dir })
    expect(await again.get('plain')).toBe('x')
    expect(await again.delete('plain')).toBe(true)
    expect(await again.delete('plain')).toBe(false)
    expect(await store.get('plain')).toBeNull()
    // the envelope is our format; the key is recorded in it
    const files = readdirSync(dir).filter((n) => !n.startsWith('.'))
    expect(files).toHaveLength(1)
    expect(JSON.parse(readFileSync(path.join(dir, files[0]), 'utf8'))).toEqual({
      key: 'workflow:state:run_1',
      value: '{"version":1,"entries":{}}',
      expiresAt: null,
    })
  })

  it('values and keys survive exactly: unicode, lone surrogates, 1 MB', async () => {
    const store = createFileStore({ directory: dir })
    const big = 'é😀'.repeat(250_000)
    const cases: [string, string][] = [
      ['k\ud800', 'v\udc00'],
      ['日本', big],
      ['', ''],
      ['q"\\\n', 'line\nbreak "quoted"'],
    ]
    for (const [k, v] of cases) await store.set(k, v)
    for (const [k, v] of cases) expect(await store.get(k)).toBe(v)
    expect((await store.keys('*')).sort()).toEqual(cases.map(([k]) => k).sort())
  })

  it('ttl is in seconds; expired entries read as null and are not listed', async () => {
    vi.useFakeTimers({ toFake: ['Date'] })
    vi.setSystemTime(new Date('2030-01-01T00:00:00Z'))
    const store = createFileStore({ directory: dir })
    await store.set('short', 'a', { ttl: 2 })
    await store.set('long', 'b', { ttl: 3600 })
    await store.set('forever', 'c')
    vi.setSystemTime(new Date('2030-01-01T00:00:01.500Z'))
    expect(await store.get('short')).toBe('a')
    vi.setSystemTime(new Date('2030-01-01T00:00:02.001Z'))
    expect(await store.get('short')).toBeNull()
    expect(await store.exists('short')).toBe(false)
    expect(await store.get('long')).toBe('b')
    expect((await store.keys('*')).sort()).toEqual(['forever', 'long'])
    expect(await store.delete('short')).toBe(false) // expired: nothing live removed
    vi.setSystemTime(new Date('2030-01-02T00:00:00Z'))
    expect(await store.get('long')).toBeNull()
    expect(await store.get('forever')).toBe('c')
    // a later set without ttl clears the expiry
    await store.set('long', 'b2')
    expect(await store.get('long')).toBe('b2')
  })

  it('keys(pattern): Redis globs, escaped ids, prefix listing as createStatePersistence uses it', async () => {
    const store = createFileStore({ directory: dir })
    const ids = ['run_1', 'run_2', 'run*3', 'run[4]', 'run?5', 'other']
    for (const id of ids) await store.set(`workflow:state:${id}`, id)
    await store.set('workflow:cache:x', 'c')
    await store.set('workflow:stateX', 'not in prefix')
    const prefix = 'workflow:state:'
    const listed = (await store.keys(`${prefix}*`)).map((k: string) => k.slice(prefix.length)).sort()
    expect(listed).toEqual([...ids].sort())
    expect(await store.keys(`${escapeGlob(`${prefix}run*`)}*`)).toEqual([`${prefix}run*3`])
    expect((await store.keys(`${prefix}run_?`)).sort()).toEqual([`${prefix}run_1`, `${prefix}run_2`])
    expect(await store.keys(`${escapeGlob(`${prefix}run[4]`)}`)).toEqual([`${prefix}run[4]`])
    expect(await store.keys('nothing*')).toEqual([])
  })

  it('concurrent sets of one key: last call wins; set then delete in one tick deletes', async () => {
    const store = createFileStore({ directory: dir })
    await Promise.all(Array.from({ length: 100 }, (_, i) => store.set('hot', `v${i}`)))
    expect(await store.get('hot')).toBe('v99')
    const [, removed] = await Promise.all([store.set('t', '1'), store.delete('t')])
    expect(removed).toBe(true)
    expect(await store.get('t')).toBeNull()
    expect(readdirSync(dir).filter((n) => n.startsWith('.awaitly-tmp.') && !n.includes(String(process.pid)))).toEqual([])
  })

  it('a corrupt entry rejects with ERR_CORRUPT, in keys() too (never skipped); delete removes it and says true', async () => {
    const store = createFileStore({ directory: dir })
    await store.set('good', 'g')
    writeFileSync(path.join(dir, 'bad.kv.json'), '{"key":"bad","value":"tor')
    writeFileSync(path.join(dir, 'liar.kv.json'), '{"key":"someone-else","value":"x","expiresAt":null}')
    expect((await rejection(store.get('bad'))).code).toBe('ERR_CORRUPT')
    expect((await rejection(store.get('liar'))).code).toBe('ERR_CORRUPT')
    expect((await rejection(store.exists('bad'))).code).toBe('ERR_CORRUPT')
    expect((await rejection(store.keys('*'))).code).toBe('ERR_CORRUPT')
    expect(await store.keys('g*')).toEqual(['good'])
    expect(await store.delete('bad')).toBe(true)
    expect(await store.get('bad')).toBeNull()
    expect((await rejection(store.keys('*'))).message).toContain('liar.kv.json')
    expect(await store.delete('liar')).toBe(true)
    expect(await store.keys('*')).toEqual(['good'])
  })

  it('rejects bad arguments with TypeError', async () => {
    expect(() => createFileStore({})).toThrow(TypeError)
    expect(() => createFileStore({ directory: dir, extension: '../x' })).toThrow(TypeError)
    const store = createFileStore({ directory: dir })
    expect(await rejection(store.get(1 as any))).toBeInstanceOf(TypeError)
    expect(await rejection(store.set('k', 5 as any))).toBeInstanceOf(TypeError)
    expect(await rejection(store.set('k', 'v', { ttl: '5' as any }))).toBeInstanceOf(TypeError)
    for (const ttl of [-1, NaN, Infinity]) {
      const bad = await rejection(store.set('k', 'v', { ttl }))
      expect(bad, String(ttl)).toBeInstanceOf(TypeError)
      expect(bad.code).toBe('ERR_INVALID_ARG')
    }
    // ttl 0 means no expiry, as for every KeyValueStore
    await store.set('k0', 'v', { ttl: 0 })
    expect(await store.get('k0')).toBe('v')
    expect(await rejection(store.keys(undefined as any))).toBeInstanceOf(TypeError)
  })
})
