// Soak: 5,000,000 sets of fresh keys and fresh values into a
// createMemoryCache({ maxSize: 1000, ttl }) (so 4,999,000 evictions), with
// a get after every set. Prints RSS after a warm-up of 500,000 sets and at
// the end; the growth should stay under 20 MB (evicted entries are freed
// on both sides of the boundary).
//   node --expose-gc benchmark/memory-soak.mjs      (gc() before each reading)

import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const { createMemoryCache } = require('../index.js')

const TOTAL = 5_000_000
const WARMUP = 500_000
const MB = 2 ** 20

function settle() {
  if (global.gc) {
    global.gc()
    global.gc()
  }
  return process.memoryUsage().rss
}

export async function run({ total = TOTAL, warmup = WARMUP } = {}) {
  const cache = createMemoryCache({ maxSize: 1000, ttl: 60_000 })
  const t0 = performance.now()
  let base = 0
  const samples = []
  for (let i = 0; i < total; i++) {
    cache.set(`soak:${i}`, { ok: true, value: { i, pad: `value-${i}` } })
    cache.get(`soak:${i - 500}`)
    if (i + 1 === warmup) base = settle()
    if ((i + 1) % 1_000_000 === 0) samples.push([i + 1, process.memoryUsage().rss])
  }
  const end = settle()
  const secs = (performance.now() - t0) / 1000
  const stats = cache.stats()
  const growth = (end - base) / MB
  const rows = samples.map(([n, rss]) => [n.toLocaleString('en-US'), (rss / MB).toFixed(1), ((rss - base) / MB).toFixed(1)])
  rows.push(['end (after gc)', (end / MB).toFixed(1), growth.toFixed(1)])
  return [
    {
      title: `Memory soak: ${total.toLocaleString('en-US')} sets over maxSize 1000 (RSS, MB)`,
      columns: ['sets', 'RSS', 'growth since warm-up'],
      rows,
      notes: [
        `Warm-up: ${warmup.toLocaleString('en-US')} sets, RSS then ${(base / MB).toFixed(1)} MB${global.gc ? ' (after gc)' : ' (run with --expose-gc for settled readings)'}.`,
        `Growth after warm-up: ${growth.toFixed(1)} MB (goal < 20 MB: ${growth < 20 ? 'met' : 'NOT met'}); size ${cache.size}, evictions ${stats.evictions.toLocaleString('en-US')}, ${((total * 2) / secs / 1e6).toFixed(2)}M ops/s.`,
      ],
    },
  ]
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { renderTable } = await import('./harness.mjs')
  for (const t of await run()) console.log(renderTable(t))
}
