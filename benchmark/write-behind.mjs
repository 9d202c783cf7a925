// Write-behind (README "Which caches persist, and when"): what the sync
// `set` awaitly's engine calls costs when it also persists, and how fast a
// new process preloads. N sync sets of 1 KB results in one loop, then
// `await flush()` (everything durable). Goals (issue 10): the loop within 2×
// of the memory cache's set; set + flush at least the ops/s of the same
// cache's setAsync with 256 in flight (measured here too); preload entries/s.
// Redis: a private redis-server started for this run (no persistence).
// Run alone: `node benchmark/index.mjs write-behind` (release build).
// BENCH_WB_N (default 100000) and BENCH_WB_ENTRIES (default 100000) scale it.

import { createRequire } from 'node:module'
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { ratio, startRedis } from './harness.mjs'

const require = createRequire(import.meta.url)
const { createMemoryCache, createFileCache, createKVCache, createRedisStore, ok } = require('../index.js')

const N = Number(process.env.BENCH_WB_N ?? 100_000)
const ENTRIES = Number(process.env.BENCH_WB_ENTRIES ?? 100_000)
const VALUE = ok({ id: 'order-1', payload: 'x'.repeat(1000 - 40) }) // 1 KB serialized
const IN_FLIGHT = 256
const ASYNC_N = Number(process.env.BENCH_WB_ASYNC_N ?? 20_000)

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

/** setAsync with IN_FLIGHT calls in flight (a new one as each settles), ASYNC_N in all: ops/s. */
async function setAsyncRate(cache, tag) {
  let next = 0
  const t0 = performance.now()
  const worker = async () => {
    while (next < ASYNC_N) {
      const i = next++
      await cache.setAsync(`${tag}-a${i}`, VALUE)
    }
  }
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker))
  return ASYNC_N / ((performance.now() - t0) / 1000)
}

export async function run() {
  const root = mkdtempSync(path.join(os.tmpdir(), 'awaitly-wb-bench-'))
  const redis = await startRedis()
  try {
    const store = createRedisStore({ url: redis.url })
    const big = N + 1
    await setThenFlush(createMemoryCache({ maxSize: big }), 'warm') // JIT warm-up of the shared paths
    const mem = await setThenFlush(createMemoryCache({ maxSize: big }), 'm')
    const fileDurable = createFileCache({ directory: path.join(root, 'durable'), memoryMaxSize: big })
    await fileDurable.init()
    const fileFast = createFileCache({ directory: path.join(root, 'fast'), memoryMaxSize: big, durable: false })
    await fileFast.init()
    const kv = createKVCache({ store, prefix: 'wb:', memoryMaxSize: big })
    const rows = [['createMemoryCache set (nothing persisted)', mem.loopPerSec, '1.00×', '', mem.perSec, '', '']]
    for (const [name, cache, tag] of [
      ['createFileCache, durable', fileDurable, 'd'],
      ['createFileCache, durable: false', fileFast, 'f'],
      ['createKVCache on createRedisStore', kv, 'k'],
    ]) {
      const r = await setThenFlush(cache, tag)
      const asyncRate = await setAsyncRate(cache, tag)
      rows.push([
        name,
        r.loopPerSec,
        ratio(r.loopPerSec, mem.loopPerSec),
        `${r.flushMs.toFixed(0)} ms`,
        r.perSec,
        asyncRate,
        ratio(r.perSec, asyncRate),
      ])
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
        columns: ['cache', 'set loop (sets/s)', 'loop / memory set', 'flush()', 'set + flush (sets/s)', `setAsync ×${IN_FLIGHT} (ops/s)`, 'set + flush / setAsync'],
        rows,
        notes: [
          'The loop is what the engine waits for (the in-process layer plus appending to the job\'s batch; encoding and queueing happen once per job); goal: within 2× of the memory cache\'s set (loop / memory set ≥ 0.50×).',
          `flush() is the time until every write is durable; goal: set + flush at least the same cache's setAsync with ${IN_FLIGHT} in flight (${ASYNC_N.toLocaleString('en-US')} writes), i.e. ≥ 1.00×.`,
          '1 KB results; in-process layers large enough for all entries.',
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
