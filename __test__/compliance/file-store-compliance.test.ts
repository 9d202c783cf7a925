import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { defineStoreCompliance } from '../helpers/store-compliance'
import { createFileStore, createKVCache, createStatePersistence, ok } from '../../index.js'

// The native file store against the same compliance suite as Redis, PostgreSQL
// and the JS Map store. A directory of its own: the store is isolated.
const directory = mkdtempSync(join(tmpdir(), 'awaitly-file-compliance-'))
afterAll(() => rmSync(directory, { recursive: true, force: true }))

defineStoreCompliance('native-file', () => createFileStore({ directory }), { isolated: true, hiddenOwners: true })

// No bookkeeping file among the user's files: the owner markers of KV caches
// and state persistences over a file store are hidden files, found by a clear
// through another store handle on the same directory.
describe('file store owner markers', () => {
  it('are hidden files (no key file, not in keys()), honoured by a clear through another handle', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'awaitly-file-owners-'))
    try {
      const one = createFileStore({ directory: dir })
      const states = createStatePersistence(one, 'app:state:')
      await states.save('run-1', { steps: new Map([['s', { result: ok(1) }]]) })
      await createKVCache({ store: one, prefix: 'app:sub:' }).setAsync('x', ok('sub'))
      const cache = createKVCache({ store: createFileStore({ directory: dir }), prefix: 'app:' })
      await cache.setAsync('mine', ok(2))
      const visible = readdirSync(dir).filter((n) => !n.startsWith('.')).sort()
      expect(visible).toEqual(['app_mine~', 'app_state_run-1~', 'app_sub_x~'].map((s) => expect.stringMatching(new RegExp(`^${s}[0-9a-f]{64}\\.kv\\.json$`))))
      expect(readdirSync(dir).filter((n) => n.startsWith('.')).length).toBe(3)
      expect((await one.keys('*')).sort()).toEqual(['app:mine', 'app:state:run-1', 'app:sub:x'])
      await cache.clearAsync()
      expect((await one.keys('*')).sort()).toEqual(['app:state:run-1', 'app:sub:x'])
      expect(await states.list()).toEqual(['run-1'])
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
