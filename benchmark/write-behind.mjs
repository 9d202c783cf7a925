// Write-behind (README "Which caches persist, and when"): what the sync
// `set` awaitly's engine calls costs when it also persists, and how fast a
// new process preloads. N sync sets in one loop, then `await flush()`
// (everything durable), against the memory cache's set (nothing persisted);
// then init() (file cache) / load() (KV cache on Redis) of ENTRIES entries.
// Redis: a private redis-server started for this run (no persistence).
// Run alone: `node benchmark/index.mjs write-behind` (release build).
// BENCH_WB_N (default 100000) and BENCH_WB_ENTRIES (default 20000) scale it.

import { createRequire } from 'node:module'
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { ratio, startRedis } from './harness.mjs'

const require = createRequire(import.meta.url)
const { createMemoryCache, createFileCache, createKVCache, createRedisStore, ok } = require('../index.js')

const N = Number(process.env.BENCH_WB_N ?? 100_000)
const ENTRIES = Number(process.env.BENCH_WB_ENTRIES ?? 20_000)
const VALUE = ok({ id: 1, name: 'x', tags: ['a', 'b'] })

/** N sync sets in one loop, then flush (if any): { loopMs, flushMs, total sets/s }. */
async function setThenFlush(cache, tag) {
  const keys = Array.from({ length: N }, (_, i) => `${tag}-${i}`)
  const t0 = performance.now()
  for (let i = 0; i < N; i++) cache.set(keys[i], VALUE)
  const t1 = performance.now()
  if (cache.flush) await cache.flush()
  const t2 = performance.now()
  if (cache.stats && cache.stats().writeErrors) throw new Error(`${tag}: ${cache.stats().writeErrors} write errors`)
  return { loopMs: t1 - t0, flushMs: t2 - t1, perSec: N / ((t2 - t0) / 1000), loopPerSec: N / ((t1 - t0) / 1000) }
}

export async function run() {
  const root = mkdtempSync(path.join(os.tmpdir(), 'awaitly-wb-bench-'))
  const redis = await startRedis()
  try {
    const store = createRedisStore({ url: redis.url })
    const big = N + 1
    const mem = await setThenFlush(createMemoryCache({ maxSize: big }), 'm')
    const fileDurable = createFileCache({ directory: path.join(root, 'durable'), memoryMaxSize: big })
    await fileDurable.init()
    const fileFast = createFileCache({ directory: path.join(root, 'fast'), memoryMaxSize: big, durable: false })
    await fileFast.init()
    const kv = createKVCache({ store, prefix: 'wb:', memoryMaxSize: big })
    const rows = [['createMemoryCache set (nothing persisted)', mem.loopPerSec, '', mem.perSec, '1.00×']]
    for (const [name, cache, tag] of [
      ['createFileCache, durable', fileDurable, 'd'],
      ['createFileCache, durable: false', fileFast, 'f'],
      ['createKVCache on createRedisStore', kv, 'k'],
    ]) {
      const r = await setThenFlush(cache, tag)
      rows.push([name, r.loopPerSec, `${r.flushMs.toFixed(0)} ms`, r.perSec, ratio(r.perSec, mem.perSec)])
    }

    // preload: ENTRIES entries on disk / in Redis, a new cache loads them all
    const pre = []
    const fileDir = path.join(root, 'preload')
    const w = createFileCache({ directory: fileDir, memoryMaxSize: 0, durable: false })
    await w.init()
    for (let i = 0; i < ENTRIES; i++) w.set(`p${i}`, VALUE)
    await w.flush()
    let t = performance.now()
    const fresh = createFileCache({ directory: fileDir, memoryMaxSize: ENTRIES })
    await fresh.init()
    let ms = performance.now() - t
    pre.push(['createFileCache init() (listing, stat, read, parse)', ENTRIES, `${ms.toFixed(0)} ms`, ENTRIES / (ms / 1000)])
    const kvw = createKVCache({ store, prefix: 'pre:', memoryMaxSize: 0 })
    for (let i = 0; i < ENTRIES; i++) kvw.set(`p${i}`, VALUE)
    await kvw.flush()
    t = performance.now()
    const loaded = await createKVCache({ store, prefix: 'pre:', memoryMaxSize: ENTRIES }).load()
    ms = performance.now() - t
    if (loaded !== ENTRIES) throw new Error(`load() loaded ${loaded} of ${ENTRIES}`)
    pre.push(['createKVCache load() on createRedisStore (SCAN + pipelined GET)', ENTRIES, `${ms.toFixed(0)} ms`, ENTRIES / (ms / 1000)])
    await store.close()
    return [
      {
        title: `Write-behind: ${N.toLocaleString('en-US')} sync set() in one loop, then await flush()`,
        columns: ['cache', 'set loop (sets/s)', 'flush()', 'set + flush (sets/s)', 'ratio'],
        rows,
        notes: [
          'The loop is what the engine waits for (the in-process layer plus queueing); flush() is the time until every write is durable.',
          "'ratio' is set + flush against the memory cache's set, which persists nothing.",
        ],
      },
      {
        title: 'Preload into the in-process layer',
        columns: ['operation', 'entries', 'time', 'entries/s'],
        rows: pre,
      },
    ]
  } finally {
    redis.stop()
    rmSync(root, { recursive: true, force: true })
  }
}
