// Redis Cluster suite: createRedisStore({ cluster }) against ioredis's
// `Cluster` and the npm `redis` client's `createCluster` (both with their
// default options), on a local cluster of 3 primaries + 3 replicas started for
// this run. KeyValueStore get/set of 1 KB values at 1, 16 and 256 calls in
// flight, over 10,000 keys spread across all slots; then clearing 10,000 keys
// (native clearAsync: SCAN of every primary + UNLINK per slot; ioredis: SCAN
// of every primary + a pipeline of UNLINKs, as its docs suggest).
// Rounds alternate between clients; the median round is reported. JS-thread
// CPU per op is the main event loop's active time / ops. `native` is the
// default transport (the JS thread's sockets); `native tokio` the same store
// with `transport: 'tokio'`, for the difference.

import { createRequire } from 'node:module'
import { performance } from 'node:perf_hooks'
import { fmt, measureInFlight, ratio } from './harness.mjs'
import { startCluster } from '../__test__/helpers/redis-cluster.mjs'

const require = createRequire(import.meta.url)
const { createRedisStore, createKVCache, escapeGlob } = require('../index.js')
const { createCluster } = require('redis')
const IORedis = require('ioredis')

const MEASURE_MS = Number(process.env.BENCH_MS ?? 600)
const REPEATS = Number(process.env.BENCH_REPEATS ?? 3)
const ENTRIES = 10_000
const VALUE = 'x'.repeat(1024)

const measure = (inflightN, op) => measureInFlight(inflightN, op, { ms: MEASURE_MS, warmupMs: Math.min(200, MEASURE_MS / 4), entries: ENTRIES })

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

export async function run() {
  const cluster = await startCluster()
  const pre = `bench:cluster:${process.pid}:`
  const key = (i) => `${pre}${i}`
  const native = createRedisStore({ cluster: { nodes: cluster.nodes } })
  const nativeTokio = createRedisStore({ cluster: { nodes: cluster.nodes }, transport: 'tokio' })
  const io = new IORedis.Cluster(cluster.ports.slice(0, 3).map((port) => ({ host: '127.0.0.1', port })))
  const nr = createCluster({ rootNodes: cluster.nodes.slice(0, 3).map((url) => ({ url })) })
  try {
    await nr.connect()
    await native.ping()
    await nativeTokio.ping()
    await io.set(`${pre}warm`, '1')
    const clients = {
      native: { get: (i) => native.get(key(i)), set: (i) => native.set(key(i), VALUE) },
      'native tokio': { get: (i) => nativeTokio.get(key(i)), set: (i) => nativeTokio.set(key(i), VALUE) },
      ioredis: { get: (i) => io.get(key(i)), set: (i) => io.set(key(i), VALUE) },
      'npm redis': { get: (i) => nr.get(key(i)), set: (i) => nr.set(key(i), VALUE) },
    }
    // every key written once, so every get is a 1 KB hit
    for (let i = 0; i < ENTRIES; i += 500) {
      await Promise.all(Array.from({ length: 500 }, (_, j) => native.set(key(i + j), VALUE)))
    }
    const rows = []
    const cpuRows = []
    // ops/s per client, for the chart (benchmark/cluster.svg)
    const groups = []
    for (const op of ['set', 'get']) {
      for (const n of [1, 16, 256]) {
        const rounds = Object.fromEntries(Object.keys(clients).map((c) => [c, []]))
        const cpu = Object.fromEntries(Object.keys(clients).map((c) => [c, []]))
        for (let r = 0; r < REPEATS; r++) {
          for (const [name, c] of Object.entries(clients)) {
            const got = await measure(n, c[op])
            rounds[name].push(got.opsPerSec)
            cpu[name].push(got.jsUsPerOp)
          }
        }
        const m = Object.fromEntries(Object.entries(rounds).map(([k, v]) => [k, median(v)]))
        groups.push({ label: `${op}, ${n} in flight`, values: Object.keys(clients).map((c) => m[c]) })
        const best = Math.max(m.ioredis, m['npm redis'])
        rows.push([op, n, fmt(m.native), fmt(m['native tokio']), fmt(m.ioredis), fmt(m['npm redis']), ratio(m.native, best), ratio(m['native tokio'], best)])
        const js = Object.fromEntries(Object.entries(cpu).map(([k, v]) => [k, median(v)]))
        const least = Math.min(js.ioredis, js['npm redis'])
        cpuRows.push([op, n, js.native.toFixed(2), js['native tokio'].toFixed(2), js.ioredis.toFixed(2), js['npm redis'].toFixed(2), ratio(js.native, least)])
      }
    }

    // clearing 10,000 keys
    const fill = async () => {
      for (let i = 0; i < ENTRIES; i += 500) {
        await Promise.all(Array.from({ length: 500 }, (_, j) => native.set(`${pre}c:${i + j}`, 'v')))
      }
    }
    const clearWith = (store) => async () => {
      const cache = createKVCache({ store, prefix: `${pre}c:` })
      await cache.clearAsync()
    }
    const clearIo = async () => {
      const pattern = `${escapeGlob(`${pre}c:`)}*`
      await Promise.all(
        io.nodes('master').map(
          (node) =>
            new Promise((resolve, reject) => {
              const pending = []
              node
                .scanStream({ match: pattern, count: 1000 })
                .on('data', (keys) => {
                  if (keys.length === 0) return
                  const p = io.pipeline()
                  for (const k of keys) p.unlink(k)
                  pending.push(p.exec())
                })
                .on('end', () => Promise.all(pending).then(resolve, reject))
                .on('error', reject)
            }),
        ),
      )
    }
    const clearMs = { native: [], 'native tokio': [], ioredis: [] }
    for (let r = 0; r < REPEATS; r++) {
      for (const [name, fn] of [
        ['native', clearWith(native)],
        ['native tokio', clearWith(nativeTokio)],
        ['ioredis', clearIo],
      ]) {
        await fill()
        const t0 = performance.now()
        await fn()
        clearMs[name].push(performance.now() - t0)
        if ((await native.keys(`${escapeGlob(`${pre}c:`)}*`)).length) throw new Error(`${name} clear left keys`)
      }
    }
    const cn = median(clearMs.native)
    const ci = median(clearMs.ioredis)
    const ct = median(clearMs['native tokio'])

    // clean up: everything this run wrote
    await createKVCache({ store: native, prefix: pre }).clearAsync()
    for (const k of await native.keys(`__awaitly:owner:*${escapeGlob(pre)}*`)) await native.delete(k)

    return [
      {
        title: 'Redis Cluster (3 primaries + 3 replicas, local): KeyValueStore get/set, 1 KB values, ops/s',
        columns: ['op', 'in flight', 'native', 'native tokio', 'ioredis Cluster', 'npm redis createCluster', 'native / best', 'native tokio / best'],
        rows,
        chart: {
          file: 'cluster.svg',
          title: 'Redis Cluster, get/set 1 KB: ops/s by client (same run, median of interleaved rounds)',
          groups,
          series: ['native', 'native (tokio transport)', 'ioredis Cluster', 'npm redis createCluster'],
          unit: '/s',
        },
        notes: [`median of ${REPEATS} interleaved rounds of ${MEASURE_MS} ms; 10,000 keys over all slots; peers with default options`],
      },
      {
        title: 'Redis Cluster: JS-thread CPU per op, µs (main event loop active time / ops)',
        columns: ['op', 'in flight', 'native', 'native tokio', 'ioredis Cluster', 'npm redis createCluster', 'native / least peer'],
        rows: cpuRows,
        notes: ['native: the JS-thread transport (one socket per primary on the event loop; its reads, writes and parsing are counted here)'],
      },
      {
        title: 'Redis Cluster: clearing 10,000 keys (ms, lower is better)',
        columns: ['native clearAsync', 'native tokio clearAsync', 'ioredis SCAN per primary + UNLINK pipeline', 'speed-up', 'speed-up (tokio)'],
        rows: [[fmt(cn), fmt(ct), fmt(ci), ratio(ci, cn), ratio(ci, ct)]],
      },
    ]
  } finally {
    await native.close()
    await nativeTokio.close()
    io.disconnect()
    await nr.quit().catch(() => {})
    await cluster.stop()
  }
}
