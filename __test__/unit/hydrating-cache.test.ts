import { describe, expect, it } from 'vitest'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const { createHydratingCache, ok, err } = require('../../index.js')

function memory() {
  const m = new Map<string, any>()
  return {
    m,
    get: (k: string) => m.get(k),
    set: (k: string, v: any) => void m.set(k, v),
    has: (k: string) => m.has(k),
    delete: (k: string) => m.delete(k),
    clear: () => m.clear(),
  }
}

describe('createHydratingCache', () => {
  it('loads once when hydrate() is called concurrently, then delegates the sync methods', async () => {
    let loads = 0
    const persistence = {
      async load(runId: string) {
        loads++
        await new Promise((r) => setTimeout(r, 20))
        expect(runId).toBe('run-1')
        return { steps: new Map([['a', { result: ok(1) }], ['b', { result: err('E') }]]) }
      },
    }
    const mem = memory()
    const cache = createHydratingCache(mem, persistence, 'run-1')
    await Promise.all(Array.from({ length: 10 }, () => cache.hydrate()))
    await cache.hydrate()
    expect(loads).toBe(1)
    expect(cache.get('a')).toEqual(ok(1))
    expect(cache.has('b')).toBe(true)
    cache.set('c', ok(3))
    expect(mem.m.get('c')).toEqual(ok(3))
    expect(cache.delete('a')).toBe(true)
    expect(cache.has('a')).toBe(false)
    cache.clear()
    expect(mem.m.size).toBe(0)
  })

  it('nothing persisted: hydrates to empty; a failed load rejects every waiter and can be retried', async () => {
    let calls = 0
    const persistence = {
      async load() {
        calls++
        if (calls === 1) {
          const e: any = new Error('down')
          e.code = 'ERR_STORE_UNAVAILABLE'
          throw e
        }
        return undefined
      },
    }
    const cache = createHydratingCache(memory(), persistence, 'r')
    const [a, b] = await Promise.allSettled([cache.hydrate(), cache.hydrate()])
    expect(a.status).toBe('rejected')
    expect(b.status).toBe('rejected')
    expect((a as any).reason.code).toBe('ERR_STORE_UNAVAILABLE')
    expect(calls).toBe(1)
    await cache.hydrate()
    expect(calls).toBe(2)
    expect(cache.get('x')).toBeUndefined()
  })
})
