// Soak: 5,000,000 sets of fresh keys and fresh values into a
// createMemoryCache({ maxSize: 1000, ttl }) (so 4,999,000 evictions), with
// a get after every set. Prints RSS after a warm-up of 1,000,000 sets (V8's young
// generation and malloc arenas reach their working size in it) and at
// the end; the growth should stay under 20 MB (evicted entries are freed
// on both sides of the boundary).
//   node --expose-gc benchmark/memory-soak.mjs      (gc() before each reading)

import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const { createMemoryCache } = require('../index.js')

const TOTAL = 5_000_000
const WARMUP = 1_000_000
const MB = 2 ** 20

function settle() {
  if (global.gc) {
    global.gc()
    global.gc()
  }
  return process.memoryUsage()
}

export async function run({ total = TOTAL, warmup = WARMUP, impl = process.env.SOAK_IMPL ?? 'native' } = {}) {
  // SOAK_IMPL=lru-cache runs the same soak on lru-cache as a baseline of V8's own heap growth.
  const cache =
    impl === 'lru-cache'
      ? new (require('lru-cache').LRUCache)({ max: 1000, ttl: 60_000 })
      : createMemoryCache({ maxSize: 1000, ttl: 60_000 })
  const t0 = performance.now()
  let base = 0
  let baseHeap = 0
  const samples = []
  for (let i = 0; i < total; i++) {
    cache.set(`soak:${i}`, { ok: true, value: { i, pad: `value-${i}` } })
    cache.get(`soak:${i - 500}`)
    if (i + 1 === warmup) ({ rss: base, heapUsed: baseHeap } = settle())
    if ((i + 1) % 1_000_000 === 0) samples.push([i + 1, process.memoryUsage().rss])
  }
  const { rss: end, heapUsed: endHeap } = settle()
  const secs = (performance.now() - t0) / 1000
  const evictions = impl === 'lru-cache' ? '(n/a)' : cache.stats().evictions.toLocaleString('en-US')
  const growth = (end - base) / MB
  const rows = samples.map(([n, rss]) => [n.toLocaleString('en-US'), (rss / MB).toFixed(1), ((rss - base) / MB).toFixed(1)])
  rows.push(['end (after gc)', (end / MB).toFixed(1), growth.toFixed(1)])
  return [
    {
      title: `Memory soak (${impl}): ${total.toLocaleString('en-US')} sets over maxSize 1000 (RSS, MB)`,
      columns: ['sets', 'RSS', 'growth since warm-up'],
      rows,
      notes: [
        `Warm-up: ${warmup.toLocaleString('en-US')} sets, RSS then ${(base / MB).toFixed(1)} MB${global.gc ? ' (after gc)' : ' (run with --expose-gc for settled readings)'}.`,
        `JS heap in use: ${(baseHeap / MB).toFixed(1)} MB after warm-up, ${(endHeap / MB).toFixed(1)} MB at the end.`,
        `Growth after warm-up: ${growth.toFixed(1)} MB (goal < 20 MB: ${growth < 20 ? 'met' : 'NOT met'}); size ${cache.size}, evictions ${evictions}, ${((total * 2) / secs / 1e6).toFixed(2)}M ops/s.`,
      ],
    },
  ]
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { renderTable } = await import('./harness.mjs')
  for (const t of await run()) console.log(renderTable(t))
}
