import { afterAll, describe, expect, it } from 'vitest'
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'
import path from 'node:path'

const require = createRequire(import.meta.url)
const { createFileCache, createFileStore, ok } = require('../../index.js')
const { NativeFileDir } = require('../../binding.js')

const root = mkdtempSync(path.join(os.tmpdir(), 'awaitly-keys-'))
afterAll(() => rmSync(root, { recursive: true, force: true }))

const DEVICE = /^(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?$/i

const corpus = [
  '',
  '.',
  '..',
  '../escape',
  '../../etc/passwd',
  '/absolute/path',
  'C:\\Windows\\System32',
  'a/b',
  'a\\b',
  'a\0b',
  'a:b',
  'a b',
  'a.b',
  'a_b',
  'a-b',
  'user:1',
  'user/1',
  'user.1',
  'user_1',
  'CON',
  'con',
  'Con.json',
  'NUL',
  'COM1',
  'lpt9',
  'AUX',
  'PRN',
  'Abc',
  'abc',
  'ABC',
  'ÄBC',
  'äbc',
  'é',
  'e\u0301', // é decomposed: a different key
  '日本語キー',
  '😀',
  '\ud800',
  '\udc00',
  '\ud800\udc00', // a valid pair (𐀀)
  '\udc00\ud800', // reversed: two lone halves
  '\ufffd', // what a lossy decoder turns a lone surrogate into
  'x'.repeat(1000),
  'é'.repeat(1000), // 2,000 UTF-8 bytes
  '😀'.repeat(1000), // 4,000 UTF-8 bytes
  'x'.repeat(250), // 255-byte name: the JS module's name still fits
  'x'.repeat(251), // 256 bytes: hashed
  '*?[]{}|<>"\'`$%&#@!~^=+;,',
  'trailing.',
  'trailing ',
  '\t\n\r',
  '~',
  'a~0000000000000000000000000000000000000000000000000000000000000000',
]

function assertSafe(name: string) {
  expect(name.length).toBeGreaterThan(0)
  expect(name).not.toBe('.')
  expect(name).not.toBe('..')
  expect(Buffer.byteLength(name, 'utf8')).toBeLessThanOrEqual(255)
  expect(name).not.toMatch(/[/\\\0]/)
  expect(name).toMatch(/^[A-Za-z0-9_~.-]+$/)
  expect(name.split('.')[0]).not.toMatch(DEVICE)
  expect(path.basename(name)).toBe(name)
}

function randomKeys(count: number, seed: number) {
  let s = seed >>> 0 || 1
  const rand = () => {
    // xorshift32
    s ^= s << 13
    s >>>= 0
    s ^= s >>> 17
    s ^= s << 5
    s >>>= 0
    return s / 2 ** 32
  }
  const alphabet = ['a', 'A', 'z', '0', '_', '-', '.', ':', '/', '\\', ' ', '\0', '~', 'é', 'E', '😀', '\ud800', '\udfff', 'C', 'O', 'N']
  const keys = new Set<string>()
  while (keys.size < count) {
    const len = Math.floor(rand() * 10) + (rand() < 0.02 ? 1000 : 0)
    let k = ''
    for (let i = 0; i < len; i++) k += alphabet[Math.floor(rand() * alphabet.length)]
    keys.add(k)
  }
  return [...keys]
}

describe('file names of keys (through the binding)', () => {
  const naming = new NativeFileDir(path.join(root, 'naming'), '.json')

  it('every corpus key gets a safe name; distinct keys, distinct names', () => {
    const seen = new Map<string, string>()
    for (const k of corpus) {
      const [name, legacy] = naming.names(k)
      assertSafe(name)
      expect(seen.has(name), `${JSON.stringify(k)} collides with ${JSON.stringify(seen.get(name))}`).toBe(false)
      seen.set(name, k)
      expect(naming.isOwn(name)).toBe(true)
      if (legacy !== undefined) {
        // only keys whose JS-module name is the key itself
        expect(k).toMatch(/^[A-Za-z0-9_-]+$/)
        expect(legacy).toBe(`${k}.json`)
      }
    }
    expect(naming.names('user_1')).toEqual(['user_1.json'])
    expect(naming.names('x'.repeat(250))).toEqual([`${'x'.repeat(250)}.json`])
  })

  it('is injective over 10,000 random keys (lone surrogates, separators, case, 1,000-unit keys)', () => {
    const keys = randomKeys(10_000, 42)
    const names = new Set<string>()
    for (const k of keys) {
      const [name] = naming.names(k)
      assertSafe(name)
      names.add(name)
    }
    expect(names.size).toBe(keys.length)
  })
})

describe('key corpus on disk', () => {
  it('the file cache stores and returns every corpus key separately', async () => {
    const dir = path.join(root, 'cache')
    const cache = createFileCache({ directory: dir, memoryMaxSize: 0 })
    await cache.init()
    await Promise.all(corpus.map((k) => cache.setAsync(k, ok(k))))
    for (const k of corpus) expect(await cache.getAsync(k)).toEqual(ok(k))
    expect(readdirSync(dir).filter((n) => !n.startsWith('.awaitly-tmp.')).length).toBe(corpus.length)
    expect(readdirSync(root).sort()).toEqual(['cache'])
  })

  it('the file store lists every corpus key back exactly', async () => {
    const store = createFileStore({ directory: path.join(root, 'store') })
    await Promise.all(corpus.map((k, i) => store.set(k, `v${i}`)))
    const listed = await store.keys('*')
    expect([...listed].sort()).toEqual([...corpus].sort())
    for (const [i, k] of corpus.entries()) expect(await store.get(k)).toBe(`v${i}`)
  })
})
