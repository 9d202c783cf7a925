// The native file store and a corrupt entry (issue 9, item 6): get/load
// reject ERR_CORRUPT, and so do keys() and list() (state persistence over the
// file store) — a corrupt entry is reported, never silently skipped — while
// delete removes it and resolves true (something was removed).
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import os from 'node:os'
import path from 'node:path'

const require = createRequire(import.meta.url)
const { createFileStore, createStatePersistence, ok } = require('../../index.js')

let dir: string
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'awaitly-fstore-corrupt-'))
})
afterEach(() => rmSync(dir, { recursive: true, force: true }))

async function rejection(p: Promise<unknown>): Promise<any> {
  try {
    await p
  } catch (e) {
    return e
  }
  throw new Error('expected a rejection')
}

/** The file holding `key` (read from the envelopes in the directory). */
function fileOf(key: string): string {
  for (const name of readdirSync(dir)) {
    if (!name.endsWith('.kv.json')) continue
    if (JSON.parse(readFileSync(path.join(dir, name), 'utf8')).key === key) return name
  }
  throw new Error(`no file for ${key}`)
}

function expectCorrupt(e: any, file: string) {
  expect(e).toBeInstanceOf(Error)
  expect(e.code).toBe('ERR_CORRUPT')
  expect(e.message).toContain(file)
}

const state = { steps: new Map([['a', { result: ok(1) }]]) }

describe('native file store: a corrupt entry is reported by keys(), list(), get() and load() alike', () => {
  for (const [what, garbage] of [
    ['torn JSON', '{"key":"workflow:state:run-1","val'],
    ['not UTF-8', Buffer.from([0xff, 0xfe, 0x00])],
    ['JSON that is not an envelope', '[1,2,3]'],
  ] as const) {
    it(`${what}: rejects ERR_CORRUPT naming the file; delete removes it and says true`, async () => {
      const store = createFileStore({ directory: dir })
      const states = createStatePersistence(store)
      await states.save('run-1', state)
      await states.save('run-2', state)
      await store.set('workflow:cache:step-1', '{"ok":true,"value":1}')
      const file = fileOf('workflow:state:run-1')
      writeFileSync(path.join(dir, file), garbage)

      expectCorrupt(await rejection(store.get('workflow:state:run-1')), file)
      expectCorrupt(await rejection(states.load('run-1')), file)
      // were: ['workflow:state:run-2', ...] and ['run-2'], the corrupt run silently left out
      expectCorrupt(await rejection(store.keys('*')), file)
      expectCorrupt(await rejection(store.keys('workflow:state:*')), file)
      expectCorrupt(await rejection(states.list()), file)
      // a pattern that no key of that file can match does not read it
      expect(await store.keys('workflow:cache:*')).toEqual(['workflow:cache:step-1'])
      expect(await store.exists('workflow:state:run-2')).toBe(true)

      // delete: the corrupt file is removed, and that is reported (was false)
      expect(await states.delete('run-1')).toBe(true)
      expect(existsSync(path.join(dir, file))).toBe(false)
      expect(await states.delete('run-1')).toBe(false)
      expect(await states.list()).toEqual(['run-2'])
      expect(await store.get('workflow:state:run-1')).toBeNull()
    })
  }

  it('a file that holds another key is corrupt for keys() as for get(); delete of its key removes it', async () => {
    const store = createFileStore({ directory: dir })
    await store.set('plain', 'v')
    copyFileSync(path.join(dir, 'plain.kv.json'), path.join(dir, 'other.kv.json'))
    expectCorrupt(await rejection(store.get('other')), 'other.kv.json')
    expectCorrupt(await rejection(store.keys('*')), 'other.kv.json')
    expectCorrupt(await rejection(store.keys('o*')), 'other.kv.json')
    expect(await store.keys('p*')).toEqual(['plain'])
    expect(await store.delete('other')).toBe(true)
    expect(await store.keys('*')).toEqual(['plain'])
  })

  it('delete still says false for a missing key and for an expired entry (nothing live removed)', async () => {
    const store = createFileStore({ directory: dir })
    expect(await store.delete('nope')).toBe(false)
    await store.set('short', 'v', { ttl: 1 })
    const file = path.join(dir, 'short.kv.json')
    const env = JSON.parse(readFileSync(file, 'utf8'))
    writeFileSync(file, JSON.stringify({ ...env, expiresAt: Date.now() - 1000 }))
    expect(await store.keys('*')).toEqual([])
    expect(await store.delete('short')).toBe(false)
    expect(existsSync(file)).toBe(false)
  })

  it('files that are not entries of this store (other extensions, temporaries, quarantined) are not reported', async () => {
    const store = createFileStore({ directory: dir })
    await store.set('k', 'v')
    writeFileSync(path.join(dir, 'notes.txt'), 'garbage')
    writeFileSync(path.join(dir, 'k.kv.json.corrupt'), 'garbage')
    writeFileSync(path.join(dir, '.awaitly-tmp.1.1'), 'garbage')
    expect(await store.keys('*')).toEqual(['k'])
  })
})
