// A plain JS Map KeyValueStore (ttl in seconds, Redis glob keys()), used by
// the compliance suite as the reference "any object with the five methods".
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const { globMatch } = require('../../index.js')

export function createMapStore() {
  const map = new Map<string, { value: string; expiresAt: number }>()
  const live = (k: string) => {
    const e = map.get(k)
    if (!e) return undefined
    if (e.expiresAt && e.expiresAt <= Date.now()) {
      map.delete(k)
      return undefined
    }
    return e
  }
  return {
    map,
    async get(key: string) {
      return live(key)?.value ?? null
    },
    async set(key: string, value: string, opts?: { ttl?: number }) {
      map.set(key, { value, expiresAt: opts?.ttl ? Date.now() + opts.ttl * 1000 : 0 })
    },
    async delete(key: string) {
      return live(key) !== undefined && map.delete(key)
    },
    async exists(key: string) {
      return live(key) !== undefined
    },
    async keys(pattern: string) {
      return [...map.keys()].filter((k) => live(k) !== undefined && globMatch(pattern, k))
    },
  }
}
