// awaitly passes a step's own ttl (milliseconds) as set(key, result, { ttl }).
// Every StepCache we ship honours it on its in-process layer, wrappers included.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createRequire } from 'node:module'
import { createMapStore } from '../helpers/map-store'

const require = createRequire(import.meta.url)
const { createMemoryCache, createFileCache, createKVCache, createHydratingCache, createStatePersistence, ok } =
  require('../../index.js')

let dir: string
beforeEach(() => {
  vi.useFakeTimers()
  dir = mkdtempSync(join(tmpdir(), 'awaitly-step-ttl-'))
})
afterEach(() => {
  vi.useRealTimers()
  rmSync(dir, { recursive: true, force: true })
})

const caches: [string, () => any][] = [
  ['createMemoryCache', () => createMemoryCache()],
  ['createFileCache', () => createFileCache({ directory: dir })],
  ['createKVCache', () => createKVCache({ store: createMapStore() })],
  [
    'createHydratingCache',
    () => createHydratingCache(createMemoryCache(), createStatePersistence(createMapStore()), 'run'),
  ],
]

describe.each(caches)('%s: set(key, result, { ttl }) in milliseconds', (_name, make) => {
  it('expires that entry after its ttl, and only that entry', async () => {
    const cache = make()
    cache.set('short', ok(1), { ttl: 100 })
    cache.set('plain', ok(2))
    vi.advanceTimersByTime(100)
    expect(cache.get('short')).toEqual(ok(1)) // not past the ttl yet (expired once now - storedAt > ttl)
    vi.advanceTimersByTime(1)
    expect(cache.get('short')).toBeUndefined()
    expect(cache.has('short')).toBe(false)
    expect(cache.get('plain')).toEqual(ok(2))
    // the file cache writes behind: its writes land before the directory is removed
    await cache.flush?.()
  })
})
