import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'
import path from 'node:path'
// @ts-expect-error plain ESM fixture without types
import { specFs } from '../fixtures/spec-file-cache.mjs'

const require = createRequire(import.meta.url)
const { createFileCache, ok, err, serializeResult } = require('../../index.js')

let root: string
let dir: string
beforeEach(() => {
  root = mkdtempSync(path.join(os.tmpdir(), 'awaitly-fc-'))
  dir = path.join(root, 'cache')
})
afterEach(() => rmSync(root, { recursive: true, force: true }))

const files = (d = dir) => readdirSync(d).filter((n) => !n.startsWith('.awaitly-tmp.')).sort()
const rejection = async (p: Promise<unknown>) => {
  try {
    await p
  } catch (e) {
    return e as any
  }
  throw new Error('expected a rejection')
}

for (const mode of ['native', 'fs'] as const) {
  const make = (opts: Record<string, unknown> = {}) =>
    createFileCache({ directory: dir, ...(mode === 'fs' ? { fs: specFs } : {}), ...opts })

  describe(`createFileCache (${mode} I/O)`, () => {
    it('init creates the directory; results round-trip in the JS module format', async () => {
      const cache = make()
      await cache.init()
      expect(existsSync(dir)).toBe(true)
      const a = ok({ id: 1, tags: ['x'], nested: { é: '😀' } })
      const cause = new TypeError('boom')
      const b = err('FETCH_FAILED', { cause })
      await cache.setAsync('user-1', a)
      await cache.setAsync('user_2', b)
      expect(readFileSync(path.join(dir, 'user-1.json'), 'utf8')).toBe(JSON.stringify(serializeResult(a), null, 2))
      expect(readFileSync(path.join(dir, 'user_2.json'), 'utf8')).toBe(JSON.stringify(serializeResult(b), null, 2))
      const fresh = make()
      expect(await fresh.getAsync('user-1')).toEqual(a)
      const back = await fresh.getAsync('user_2')
      expect(back.ok).toBe(false)
      expect(back.error).toBe('FETCH_FAILED')
      expect(back.cause).toBeInstanceOf(Error)
      expect(back.cause.name).toBe('TypeError')
      expect(back.cause.message).toBe('boom')
      expect(back.cause.stack).toBe(cause.stack)
      expect(await fresh.getAsync('missing')).toBeUndefined()
      // getAsync fills the in-process layer
      expect(fresh.get('user-1')).toEqual(a)
      expect(fresh.has('user-1')).toBe(true)
    })

    it('with writeBehind: false, sync methods work on the in-process layer only, bounded LRU', async () => {
      const cache = make({ memoryMaxSize: 2, writeBehind: false })
      await cache.init()
      cache.set('a', ok(1))
      cache.set('b', ok(2))
      expect(cache.get('a')).toEqual(ok(1)) // refreshes a
      cache.set('c', ok(3)) // evicts b, the least recently used
      expect(cache.has('b')).toBe(false)
      expect(cache.has('a')).toBe(true)
      expect(cache.has('c')).toBe(true)
      expect(cache.delete('a')).toBe(true)
      expect(cache.delete('a')).toBe(false)
      cache.clear()
      expect(cache.has('c')).toBe(false)
      expect(files()).toEqual([]) // nothing reached the disk
      const off = make({ memoryMaxSize: 0 })
      await off.setAsync('k', ok(1))
      expect(off.has('k')).toBe(false)
      expect(await off.getAsync('k')).toEqual(ok(1))
    })

    it('keys that the JS module merged get distinct files inside the directory', async () => {
      const cache = make()
      await cache.init()
      const keys = ['user:1', 'user/1', 'user.1', 'user_1', 'user\\1', '../user1', '/etc/user1', 'a\0b', 'CON', 'nul', 'Abc', 'abc']
      for (const k of keys) await cache.setAsync(k, ok(k))
      for (const k of keys) expect(await cache.getAsync(k)).toEqual(ok(k))
      const names = files()
      expect(names.length).toBe(keys.length)
      expect(readdirSync(root)).toEqual(['cache']) // nothing escaped
      for (const n of names) {
        expect(Buffer.byteLength(n)).toBeLessThanOrEqual(255)
        expect(n).not.toMatch(/[/\\\0]/)
      }
      expect(names).toContain('user_1.json')
      expect(names).toContain('Abc.json')
    })

    it('a corrupt file rejects with ERR_CORRUPT; onCorrupt "miss" moves it aside', async () => {
      const cache = make()
      await cache.init()
      writeFileSync(path.join(dir, 'torn.json'), '{\n  "ok": true,\n  "val')
      writeFileSync(path.join(dir, 'empty.json'), '')
      writeFileSync(path.join(dir, 'shape.json'), '[1,2]')
      // parses and has a boolean ok, but its cause is not a serialized cause
      writeFileSync(path.join(dir, 'cause.json'), '{"ok":false,"error":"E","cause":"boom"}')
      for (const k of ['torn', 'empty', 'shape', 'cause']) {
        const e = await rejection(cache.getAsync(k))
        expect(e.code, k).toBe('ERR_CORRUPT')
        expect(e.message).toContain(`${k}.json`)
      }
      expect(files()).toEqual(['cause.json', 'empty.json', 'shape.json', 'torn.json']) // nothing deleted
      const miss = make({ onCorrupt: 'miss' })
      expect(await miss.getAsync('cause')).toBeUndefined()
      expect(await miss.getAsync('torn')).toBeUndefined()
      expect(files()).toEqual(['cause.json.corrupt', 'empty.json', 'shape.json', 'torn.json.corrupt'])
      writeFileSync(path.join(dir, 'torn.json'), 'again{')
      expect(await miss.getAsync('torn')).toBeUndefined()
      expect(files()).toContain('torn.json.1.corrupt')
      expect(readFileSync(path.join(dir, 'torn.json.corrupt'), 'utf8')).toBe('{\n  "ok": true,\n  "val')
    })

    it('clearAsync removes only this cache’s files', async () => {
      const cache = make()
      await cache.init()
      await cache.setAsync('simple', ok(1))
      await cache.setAsync('not:simple', ok(2))
      const others = ['notes.txt', 'a.b.json', 'x.json.corrupt', 'other.kv.json.bak', 'README', 'k.JSON']
      for (const o of others) writeFileSync(path.join(dir, o), 'keep')
      mkdirSync(path.join(dir, 'sub.json'))
      cache.set('mem', ok(3))
      await cache.clearAsync()
      expect(cache.has('mem')).toBe(false)
      expect(files()).toEqual([...others, 'sub.json'].sort())
      expect(await cache.getAsync('simple')).toBeUndefined()
    })

    it('clearAsync lands after the writes queued before it', async () => {
      const cache = make()
      await cache.init()
      const writes = [cache.setAsync('a', ok(1)), cache.setAsync('b:x', ok(2))]
      await cache.clearAsync()
      await Promise.all(writes)
      expect(files()).toEqual([])
      expect(await cache.getAsync('a')).toBeUndefined()
    })

    it('deleteAsync reports whether a file existed', async () => {
      const cache = make()
      await cache.init()
      await cache.setAsync('a:b', ok(1))
      expect(cache.has('a:b')).toBe(true)
      expect(await cache.deleteAsync('a:b')).toBe(true)
      expect(cache.has('a:b')).toBe(false)
      expect(await cache.deleteAsync('a:b')).toBe(false)
      expect(await cache.getAsync('a:b')).toBeUndefined()
    })

    it('concurrent setAsync of one key: the last call wins, the file is intact', async () => {
      const cache = make({ memoryMaxSize: 0 })
      await cache.init()
      const ops = []
      for (let i = 0; i < 100; i++) ops.push(cache.setAsync('hot:key', ok({ i, pad: 'p'.repeat(i * 50) })))
      await Promise.all(ops)
      expect((await cache.getAsync('hot:key')).value.i).toBe(99)
      // a delete after writes of the same tick applies after them, and vice versa
      const a = cache.setAsync('k', ok('x'))
      const d = cache.deleteAsync('k')
      await Promise.all([a, d])
      expect(await cache.getAsync('k')).toBeUndefined()
      const d2 = cache.deleteAsync('k2')
      const a2 = cache.setAsync('k2', ok('y'))
      await Promise.all([a2, d2])
      expect(await cache.getAsync('k2')).toEqual(ok('y'))
    })

    it('an old JS-module file is read only when it provably holds the key', async () => {
      const cache = make()
      await cache.init()
      // the JS module's name for "a:b" is a_b.json: another key's file
      writeFileSync(path.join(dir, 'a_b.json'), JSON.stringify({ ok: true, value: 'written for a_b' }, null, 2))
      expect(await cache.getAsync('a:b')).toBeUndefined()
      expect(await cache.getAsync('a_b')).toEqual(ok('written for a_b'))
      if (process.platform !== 'win32') {
        // CON is hashed now, but only the key CON can have written CON.json
        writeFileSync(path.join(dir, 'CON.json'), JSON.stringify({ ok: true, value: 'old' }, null, 2))
        expect(await cache.getAsync('CON')).toEqual(ok('old'))
        await cache.setAsync('CON', ok('new'))
        expect(await make().getAsync('CON')).toEqual(ok('new'))
        expect(await cache.deleteAsync('CON')).toBe(true)
        expect(files().filter((n) => n.startsWith('CON'))).toEqual([])
      }
    })

    it('rejects bad options and arguments with TypeErrors', async () => {
      expect(() => createFileCache({})).toThrow(TypeError)
      expect(() => createFileCache({ directory: dir, extension: '/x' })).toThrow(TypeError)
      expect(() => createFileCache({ directory: dir, extension: 'a\\b' })).toThrow(TypeError)
      expect(() => createFileCache({ directory: dir, memoryMaxSize: -1 })).toThrow(TypeError)
      expect(() => createFileCache({ directory: dir, onCorrupt: 'ignore' })).toThrow(TypeError)
      expect(() => createFileCache({ directory: dir, fs: { readFile() {} } })).toThrow(/fs\.writeFile/)
      const cache = make()
      await cache.init()
      const e = await rejection(cache.setAsync(42 as any, ok(1)))
      expect(e).toBeInstanceOf(TypeError)
      expect(e.code).toBe('ERR_INVALID_ARG')
      expect(await rejection(cache.setAsync('k', 'nope' as any))).toBeInstanceOf(TypeError)
    })

    it('a custom extension names and clears only its own files', async () => {
      const cache = make({ extension: '.cache' })
      await cache.init()
      await cache.setAsync('k', ok(1))
      await cache.setAsync('k:2', ok(2))
      writeFileSync(path.join(dir, 'k.json'), '{}')
      expect(files()).toContain('k.cache')
      await cache.clearAsync()
      expect(files()).toEqual(['k.json'])
    })
  })
}

describe('createFileCache native-only behaviour', () => {
  it('reuseFiles: replaced files are pooled for reuse while writes keep coming (by default), unlinked when off or idle', async () => {
    const pooled = (d: string) => readdirSync(d).filter((n) => n.startsWith('.awaitly-tmp.'))
    for (const reuseFiles of [true, false]) {
      const d = path.join(root, `reuse-${reuseFiles}`)
      const cache = createFileCache({ directory: d, reuseFiles })
      await cache.init()
      // writes 60 ms apart: past the 50 ms reuse grace, within the 100 ms idle drain
      let most = 0
      for (let i = 0; i < 10; i++) {
        await cache.setAsync('a', ok(i))
        most = Math.max(most, pooled(d).length)
        await new Promise((r) => setTimeout(r, 60))
      }
      await new Promise((r) => setTimeout(r, 300)) // idle: the pool is unlinked; off: the reaper thread unlinks off the write path
      expect(await cache.getAsync('a')).toEqual(ok(9))
      if (reuseFiles) expect(most, 'pooled').toBeGreaterThan(0)
      expect(pooled(d), 'nothing left').toEqual([])
    }
    expect(() => createFileCache({ directory: dir, reuseFiles: 'yes' })).toThrow(TypeError)
  })

  it('init removes temporaries of dead processes and nothing else', async () => {
    mkdirSync(dir)
    writeFileSync(path.join(dir, '.awaitly-tmp.999999999.7'), 'torn')
    writeFileSync(path.join(dir, 'keep.txt'), 'x')
    const cache = createFileCache({ directory: dir })
    await cache.init()
    expect(readdirSync(dir)).toEqual(['keep.txt'])
  })

  it('durable: false still writes whole files', async () => {
    const cache = createFileCache({ directory: dir, durable: false })
    await cache.init()
    await cache.setAsync('k', ok('v'))
    expect(await createFileCache({ directory: dir }).getAsync('k')).toEqual(ok('v'))
  })

  it('I/O failures reject with ERR_IO, never a silent miss', async () => {
    const cache = createFileCache({ directory: path.join(root, 'never-created') })
    const e = await rejection(cache.setAsync('k', ok(1)))
    expect(e.code).toBe('ERR_IO')
    mkdirSync(dir)
    mkdirSync(path.join(dir, 'isdir.json'))
    const c2 = createFileCache({ directory: dir })
    const e2 = await rejection(c2.getAsync('isdir'))
    expect(['ERR_IO', 'ERR_CORRUPT']).toContain(e2.code)
  })

  it('reads racing writes of the same keys always see one whole value', async () => {
    const cache = createFileCache({ directory: dir, memoryMaxSize: 0 })
    await cache.init()
    const keys = ['r0', 'r:1', 'r2']
    for (const k of keys) await cache.setAsync(k, ok({ size: 1, body: 'a' }))
    for (let round = 0; round < 30; round++) {
      const ops: Promise<any>[] = []
      for (let i = 0; i < 24; i++) {
        const k = keys[i % keys.length]
        const size = (round * 24 + i) % 2 ? 3 : 20_000 + i * 997
        ops.push(cache.setAsync(k, ok({ size, body: 'b'.repeat(size) })))
        ops.push(
          cache.getAsync(k).then((r: any) => {
            expect(r.value.body.length).toBe(r.value.size)
          }),
        )
      }
      await Promise.all(ops)
      if (round % 10 === 9) await new Promise((r) => setTimeout(r, 60)) // let replaced files become reusable
    }
  })

  it('a file of invalid UTF-8 is corrupt', async () => {
    mkdirSync(dir)
    writeFileSync(path.join(dir, 'bin.json'), Buffer.from([0xff, 0xfe, 0x7b]))
    const e = await rejection(createFileCache({ directory: dir }).getAsync('bin'))
    expect(e.code).toBe('ERR_CORRUPT')
  })
})
