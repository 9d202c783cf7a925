// Redis clients suite: the KeyValueStore of createRedisStore (its default
// transport, the connection on the JS thread; and `transport: 'tokio'`, the
// crate's tokio connection, what clusters use) against the
// clients a team would otherwise use, as a KeyValueStore: npm `redis` 5,
// ioredis 5 and @valkey/valkey-glide 2, each with its default options, on a
// private redis-server started for this run. get/set of 1 KB values at 1, 16
// and 256 calls in flight. Rounds are interleaved (every client once per
// round) and the median round of each client is reported.
//
// Ceilings from the same server in the same run: `redis-benchmark -c 1`
// (one round trip at a time: the latency floor) and `redis-benchmark -P 16`;
// and the floor of any Node client: a bare net.Socket writing one command
// and waiting for its whole reply, one at a time (no client library).
// JS-thread CPU per op is the main event loop's active time / ops.

import { execFileSync } from 'node:child_process'
import { createRequire } from 'node:module'
import net from 'node:net'
import { fmt, measureInFlight, ratio, startRedis } from './harness.mjs'

const require = createRequire(import.meta.url)
const { createRedisStore } = require('../index.js')
const { createClient } = require('redis')
const IORedis = require('ioredis')
const { GlideClient } = require('@valkey/valkey-glide')

const MEASURE_MS = Number(process.env.BENCH_MS ?? 600)
const REPEATS = Number(process.env.BENCH_REPEATS ?? 5)
const ENTRIES = 10_000
const VALUE = 'x'.repeat(1024)
const IN_FLIGHT = [1, 16, 256]

const measure = (inflightN, op) => measureInFlight(inflightN, op, { ms: MEASURE_MS, entries: ENTRIES })

const median = (xs) => [...xs].sort((a, b) => a.opsPerSec - b.opsPerSec)[Math.floor(xs.length / 2)]

function redisBenchmark(port, args) {
  const out = execFileSync('redis-benchmark', ['-h', '127.0.0.1', '-p', String(port), '-t', 'set,get', '-d', '1024', '-q', ...args], {
    encoding: 'utf8',
  })
  const rate = (name) => Number(new RegExp(`${name}: ([0-9.]+) requests per second`).exec(out.replace(/\r/g, '\n'))?.[1] ?? NaN)
  return { set: rate('SET'), get: rate('GET') }
}

/**
 * µs per get and per set of a 1 KB value at 1 in flight on a bare
 * net.Socket (RESP written by hand, the reply awaited by its length): the
 * round trip of Node's event loop with no client library; median of
 * REPEATS rounds.
 */
async function socketFloor(port) {
  const sock = net.connect(port, '127.0.0.1')
  sock.setNoDelay(true)
  await new Promise((resolve, reject) => sock.once('connect', resolve).once('error', reject))
  let want = 0
  let got = 0
  let wake = null
  sock.on('data', (b) => {
    got += b.length
    if (got >= want && wake) {
      const w = wake
      wake = null
      w()
    }
  })
  const resp = (...args) => Buffer.from(`*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`)
  const get = resp('GET', 'bench:kv:0')
  const set = resp('SET', 'bench:kv:0', VALUE)
  const call = (cmd, replyLen) =>
    new Promise((resolve) => {
      want = replyLen
      got = 0
      wake = resolve
      sock.write(cmd)
    })
  const ops = { get: () => call(get, `$${VALUE.length}\r\n`.length + VALUE.length + 2), set: () => call(set, '+OK\r\n'.length) }
  const out = {}
  for (const [op, f] of Object.entries(ops)) {
    const rounds = []
    for (let rep = 0; rep < REPEATS; rep++) rounds.push(await measure(1, f))
    out[op] = 1e6 / median(rounds).opsPerSec
  }
  sock.destroy()
  return out
}

/**
 * get/set of 1 KB values over `clients` (`[name, { get, set }]`, `native`
 * among them) at 1, 16 and 256 in flight, interleaved rounds, medians: the
 * ops/s rows (native against the best of `peers`), the chart groups, the
 * JS-thread CPU rows, and the medians by op, in flight and client.
 */
export async function compareClients(clients, peers) {
  const rows = []
  const groups = []
  const cpuRows = []
  const medians = {}
  for (const op of ['get', 'set']) {
    for (const n of IN_FLIGHT) {
      const rounds = Object.fromEntries(clients.map(([name]) => [name, []]))
      for (let rep = 0; rep < REPEATS; rep++) {
        for (const [name, c] of clients) {
          const f = op === 'get' ? (i) => c.get(`bench:kv:${i}`) : (i) => c.set(`bench:kv:${i}`, VALUE)
          rounds[name].push(await measure(n, f))
        }
      }
      const m = Object.fromEntries(clients.map(([name]) => [name, median(rounds[name])]))
      medians[`${op} ${n}`] = m
      const best = peers.reduce((a, b) => (m[a].opsPerSec >= m[b].opsPerSec ? a : b))
      const ours = m.native
      rows.push([op, n, ...clients.map(([name]) => fmt(m[name].opsPerSec)), `${ratio(ours.opsPerSec, m[best].opsPerSec)} (${best})`])
      groups.push({ label: `${op}, ${n} in flight`, values: clients.map(([name]) => m[name].opsPerSec) })
      const leastCpu = peers.reduce((a, b) => (m[a].jsUsPerOp <= m[b].jsUsPerOp ? a : b))
      cpuRows.push([op, n, ...clients.map(([name]) => m[name].jsUsPerOp.toFixed(2)), `${ratio(ours.jsUsPerOp, m[leastCpu].jsUsPerOp)} (${leastCpu})`])
    }
  }
  return { rows, groups, cpuRows, medians }
}

/** Write the 1 KB values every client reads, through `store`. */
export async function fill(store) {
  for (let i = 0; i < ENTRIES; i += 500) {
    await Promise.all(Array.from({ length: 500 }, (_, j) => store.set(`bench:kv:${i + j}`, VALUE)))
  }
}

export async function run() {
  const server = await startRedis()
  const npm = createClient({ url: server.url })
  await npm.connect()
  const io = new IORedis({ host: '127.0.0.1', port: server.port })
  const glide = await GlideClient.createClient({ addresses: [{ host: '127.0.0.1', port: server.port }] })
  const native = createRedisStore({ url: server.url })
  const tokio = createRedisStore({ url: server.url, transport: 'tokio' })
  await Promise.all([native.ping(), tokio.ping()])
  // KeyValueStore get/set over each client (as the spec's recipe wraps npm redis)
  const clients = [
    ['native', { get: (k) => native.get(k), set: (k, v) => native.set(k, v) }],
    ['native (tokio transport)', { get: (k) => tokio.get(k), set: (k, v) => tokio.set(k, v) }],
    ['npm redis 5', { get: (k) => npm.get(k), set: (k, v) => npm.set(k, v) }],
    ['ioredis 5', { get: (k) => io.get(k), set: (k, v) => io.set(k, v) }],
    ['valkey-glide 2', { get: (k) => glide.get(k), set: (k, v) => glide.set(k, v) }],
  ]
  const PEERS = ['npm redis 5', 'ioredis 5', 'valkey-glide 2']
  try {
    // every client reads keys that exist (1 KB values)
    await fill(native)
    const c1 = redisBenchmark(server.port, ['-c', '1', '-n', '20000'])
    const bare = await socketFloor(server.port)
    const p16 = redisBenchmark(server.port, ['-c', '50', '-P', '16', '-n', '400000'])
    const { rows, groups, cpuRows, medians } = await compareClients(clients, PEERS)
    const summary = []
    for (const op of ['get', 'set']) {
      const one = medians[`${op} 1`].native
      const floorUs = 1e6 / c1[op]
      summary.push(
        `${op} at 1 in flight: native ${(1e6 / one.opsPerSec).toFixed(1)} µs per call, redis-benchmark -c 1 ${floorUs.toFixed(1)} µs: ${ratio(1e6 / one.opsPerSec, floorUs)} of the floor (goal ≤ 1.15×); a bare net.Socket, no client library: ${bare[op].toFixed(1)} µs, ${ratio(bare[op], floorUs)} of it (the floor of any Node client here), native ${ratio(1e6 / one.opsPerSec, bare[op])} of that`,
      )
      summary.push(`${op} at 256 in flight: native ${ratio(medians[`${op} 256`].native.opsPerSec, p16[op])} of redis-benchmark -P 16 (${fmt(p16[op])}/s; goal ≥ 0.5×)`)
    }
    return [
      {
        title: 'Redis clients: KeyValueStore get/set 1 KB, ops/s (private redis-server, same run)',
        columns: ['op', 'in flight', ...clients.map(([name]) => name), 'native / best peer'],
        rows,
        chart: {
          file: 'redis-clients.svg',
          title: 'Redis KeyValueStore get/set 1 KB: ops/s by client (same run, median of interleaved rounds)',
          groups,
          series: clients.map(([name]) => name),
          unit: '/s',
        },
        notes: [
          ...summary,
          `Median of ${REPEATS} interleaved rounds of ${MEASURE_MS} ms each. Client, redis-server and any client threads share this machine's cores. Goal: ≥ 1.2× the best peer at every row.`,
        ],
      },
      {
        title: 'Redis clients: JS-thread CPU per op, µs (main event loop active time / ops)',
        columns: ['op', 'in flight', ...clients.map(([name]) => name), 'native / least peer'],
        rows: cpuRows,
        notes: ['GLIDE and the tokio transport do part of their work on other threads (not counted here). Goal: native at or below the best peer.'],
      },
    ]
  } finally {
    for (let i = 0; i < ENTRIES; i += 1000) {
      await npm.del(Array.from({ length: 1000 }, (_, j) => `bench:kv:${i + j}`)).catch(() => {})
    }
    await Promise.allSettled([native.close(), tokio.close(), npm.quit(), io.quit()])
    glide.close()
    server.stop()
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { renderTable } = await import('./harness.mjs')
  for (const t of await run()) console.log(renderTable(t))
}
