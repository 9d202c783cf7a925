// Redis suite: native createRedisStore + createKVCache / createStatePersistence
// against the spec's recipe (the JS module's createKVCache semantics over a
// KeyValueStore built on the npm `redis` client, as in the spec's Redis
// example), on a private redis-server started for this run; and
// redis-benchmark -P 16 against the same server as the ceiling.
//
// JS-thread CPU per op comes from the event-loop utilization of the main
// thread (active time / ops); process CPU per op (process.cpuUsage, all
// threads incl. the tokio workers) is reported next to it.

import { execFileSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { performance } from 'node:perf_hooks'
import { fmt, measureInFlight, ratio, startRedis } from './harness.mjs'

const require = createRequire(import.meta.url)
const lib = require('../index.js')
const { createClient } = require('redis')
const { createRedisStore, createKVCache, createStatePersistence, serializeResult, deserializeResult, ok } = lib

const MEASURE_MS = Number(process.env.BENCH_MS ?? 600)
// recipe and native alternate, REPEATS rounds each; the median round is reported
const REPEATS = Number(process.env.BENCH_REPEATS ?? 3)
const ENTRIES = 10_000

// ---------------------------------------------------------------- server

// ---------------------------------------------------------------- the recipe
// The spec's Redis KeyValueStore on the npm client, and the JS module's
// createKVCache / createStatePersistence semantics over it.
function recipeStore(redis) {
  return {
    get: (key) => redis.get(key),
    set: (key, value, opts) => (opts?.ttl ? redis.set(key, value, { EX: opts.ttl }) : redis.set(key, value)),
    delete: (key) => redis.del(key).then((n) => n > 0),
    exists: (key) => redis.exists(key).then((n) => n > 0),
    keys: (pattern) => redis.keys(pattern),
  }
}

function recipeKVCache({ store, prefix = 'workflow:', ttl }) {
  const memory = new Map()
  return {
    async getAsync(key) {
      const data = await store.get(prefix + key)
      if (!data) return undefined
      try {
        const r = deserializeResult(JSON.parse(data))
        memory.set(key, r)
        return r
      } catch {
        return undefined
      }
    },
    async setAsync(key, result) {
      await store.set(prefix + key, JSON.stringify(serializeResult(result)), ttl ? { ttl } : undefined)
      memory.set(key, result)
    },
    async clearAsync() {
      const keys = await store.keys(`${prefix}*`)
      for (const k of keys) await store.delete(k)
      memory.clear()
    },
  }
}

function recipeStateList(store, prefix) {
  return async () => (await store.keys(`${prefix}*`)).map((k) => k.slice(prefix.length))
}

// ---------------------------------------------------------------- measuring
/** Run `op(i)` from `inflightN` concurrent loops for `ms`; ops/s and CPU per op. */
const inflight = (inflightN, op, ms = MEASURE_MS) =>
  measureInFlight(inflightN, op, { ms, warmupMs: Math.min(300, ms / 4), entries: ENTRIES })

/** The round with the median ops/s. */
function median(rounds) {
  const sorted = [...rounds].sort((a, b) => a.opsPerSec - b.opsPerSec)
  return sorted[Math.floor(sorted.length / 2)]
}

async function timed(fn) {
  const elu0 = performance.eventLoopUtilization()
  const t0 = performance.now()
  await fn()
  return { ms: performance.now() - t0, jsMs: performance.eventLoopUtilization(elu0).active }
}

function redisBenchmark(port) {
  const out = execFileSync(
    'redis-benchmark',
    ['-h', '127.0.0.1', '-p', String(port), '-P', '16', '-t', 'set,get', '-n', '400000', '-d', '1024', '-c', '50', '-q'],
    { encoding: 'utf8' },
  )
  const rate = (name) => {
    const m = new RegExp(`${name}: ([0-9.]+) requests per second`).exec(out.replace(/\r/g, '\n'))
    return m ? Number(m[1]) : NaN
  }
  return { set: rate('SET'), get: rate('GET') }
}

// ---------------------------------------------------------------- suite
export async function run() {
  const server = await startRedis()
  const client = createClient({ url: server.url })
  await client.connect()
  const native = createRedisStore({ url: server.url })
  const recipeKV = recipeStore(client)
  try {
    const payload = ok({ data: 'x'.repeat(1000), n: 1 }) // ~1 KB serialized
    const ours = createKVCache({ store: native, prefix: 'bench:n:' })
    const theirs = recipeKVCache({ store: recipeKV, prefix: 'bench:r:' })
    // fill both key ranges so that GETs hit
    await Promise.all(Array.from({ length: ENTRIES }, (_, i) => ours.setAsync(`k${i}`, payload)))
    await Promise.all(Array.from({ length: ENTRIES }, (_, i) => theirs.setAsync(`k${i}`, payload)))

    const rb = redisBenchmark(server.port)
    const rows = []
    const cpuRows = []
    const at256 = {}
    for (const [label, method] of [
      ['setAsync 1 KB', 'set'],
      ['getAsync 1 KB', 'get'],
    ]) {
      for (const n of [1, 16, 256]) {
        const opN =
          method === 'set' ? (i) => ours.setAsync(`k${i}`, payload) : (i) => ours.getAsync(`k${i}`)
        const opR =
          method === 'set' ? (i) => theirs.setAsync(`k${i}`, payload) : (i) => theirs.getAsync(`k${i}`)
        const rs = []
        const os = []
        for (let rep = 0; rep < REPEATS; rep++) {
          rs.push(await inflight(n, opR))
          os.push(await inflight(n, opN))
        }
        const r = median(rs)
        const o = median(os)
        if (n === 256) at256[method] = o.opsPerSec
        rows.push([label, n, fmt(r.opsPerSec), fmt(o.opsPerSec), ratio(o.opsPerSec, r.opsPerSec)])
        cpuRows.push([
          label,
          n,
          r.jsUsPerOp.toFixed(2),
          o.jsUsPerOp.toFixed(2),
          r.cpuUsPerOp.toFixed(2),
          o.cpuUsPerOp.toFixed(2),
        ])
      }
    }

    // clearAsync and list() over 10,000 entries
    const clearRows = []
    {
      const tr = await timed(() => theirs.clearAsync())
      const to = await timed(() => ours.clearAsync())
      const leftR = (await client.keys('bench:r:*')).length
      // the cache's owner marker (bench:n:__awaitly:owner:cache) stays by design
      const leftN = (await client.keys('bench:n:*')).filter((k) => !k.endsWith('__awaitly:owner:cache')).length
      if (leftR || leftN) throw new Error(`clear left keys: ${leftR} / ${leftN}`)
      clearRows.push([`clearAsync (${fmt(ENTRIES)} entries)`, tr.ms.toFixed(1), to.ms.toFixed(1), ratio(tr.ms, to.ms), tr.jsMs.toFixed(1), to.jsMs.toFixed(1)])
    }
    {
      const states = createStatePersistence(native, 'bench:s:')
      const doc = '{"version":1,"entries":{"a":{"result":{"ok":true,"value":1}}}}'
      await Promise.all(Array.from({ length: ENTRIES }, (_, i) => native.set(`bench:s:run-${i}`, doc)))
      // and 10,000 unrelated keys in the keyspace (cache entries), as in real use
      await Promise.all(Array.from({ length: ENTRIES }, (_, i) => native.set(`bench:c:${i}`, doc)))
      const listR = recipeStateList(recipeKV, 'bench:s:')
      let nR = 0
      let nO = 0
      const tr = await timed(async () => (nR = (await listR()).length))
      const to = await timed(async () => (nO = (await states.list()).length))
      if (nR !== ENTRIES || nO !== ENTRIES) throw new Error(`list returned ${nR} / ${nO}`)
      clearRows.push([`list() (${fmt(ENTRIES)} states, ${fmt(2 * ENTRIES)} keys)`, tr.ms.toFixed(1), to.ms.toFixed(1), ratio(tr.ms, to.ms), tr.jsMs.toFixed(1), to.jsMs.toFixed(1)])
    }

    const ceiling = Math.min(rb.set, rb.get)
    return [
      {
        title: 'Redis: createKVCache async ops, ops/s (private redis-server, same run)',
        columns: ['op', 'in flight', 'recipe (npm redis + JS module semantics)', 'native', 'native / recipe'],
        rows,
        notes: [
          `redis-benchmark -P 16 -d 1024 -c 50 on the same server: SET ${fmt(rb.set)}/s, GET ${fmt(rb.get)}/s. ` +
            `Native at 256 in flight: SET ${ratio(at256.set, rb.set)}, GET ${ratio(at256.get, rb.get)} of it (goal ≥ 0.5×).`,
          `Median of ${REPEATS} alternating rounds of ${MEASURE_MS} ms each. One machine for everything (client, tokio workers, redis-server): the figures compete for the same cores.`,
        ],
      },
      {
        title: 'Redis: CPU per op, µs (JS thread = main event loop active time / ops; process = all threads)',
        columns: ['op', 'in flight', 'recipe JS thread', 'native JS thread', 'recipe process', 'native process'],
        rows: cpuRows,
      },
      {
        title: 'Redis: bulk operations, ms (lower is better)',
        columns: ['operation', 'recipe (KEYS + one DEL at a time)', 'native (SCAN + UNLINK in Rust)', 'speed-up', 'recipe JS-thread ms', 'native JS-thread ms'],
        rows: clearRows,
        notes: [`Goal: clear ≥ 8× faster. Ceiling reference: redis-benchmark ${fmt(ceiling)}/s.`],
      },
    ]
  } finally {
    await native.close().catch(() => {})
    await client.quit().catch(() => {})
    server.stop()
  }
}

// `node benchmark/redis.mjs` runs this suite alone
if (import.meta.url === `file://${process.argv[1]}`) {
  const { renderTable } = await import('./harness.mjs')
  for (const t of await run()) console.log(renderTable(t))
}
