// Snapshot suite (issue 14): createSnapshotStore for awaitly 1.35's
// durable.run against what a team writes today without an adapter:
// - Redis: the npm `redis` client or ioredis, JSON.stringify/parse of the
//   same envelope, `SET NX PX` + an EVAL compare-and-delete for the lease
//   (ours on both transports: the JS thread's connection and tokio);
// - files: fs/promises, writeFile(temp) + rename (+ fh.sync() for the
//   durable row), `open(lock, 'wx')` + read/compare/unlink for the lease.
// Ops: save + load of a 20-step WorkflowSnapshot (one op = both), and
// tryAcquire + release of a free lease, at 1 and 64 in flight; a private
// redis-server, a temporary directory. Median of BENCH_REPEATS rounds.
// Fencing cost: the same save + load by a snapshot store that holds the
// lease of every id it saves (a fenced save: one script checks the lease and
// writes on Redis, one statement on PostgreSQL (a private schema of the
// local server, dropped after), on files the lease record is checked under
// its lock) against one that holds none (a plain SET / upsert / file write).

import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import fsp from 'node:fs/promises'
import { createRequire } from 'node:module'
import os from 'node:os'
import path from 'node:path'
import { performance } from 'node:perf_hooks'
import { ratio, startRedis } from './harness.mjs'

const require = createRequire(import.meta.url)
const { createSnapshotStore, createRedisStore, createFileStore, createPostgresStore } = require('../index.js')
const { createClient } = require('redis')
const IORedis = require('ioredis')
const pg = require('pg')
const PG = { host: '127.0.0.1', port: 5432, user: 'postgres', database: 'test' }
const PG_SCHEMA = `bench_fence_${process.pid}`

const MEASURE_MS = Number(process.env.BENCH_MS ?? 500)
const REPEATS = Number(process.env.BENCH_REPEATS ?? 5)
const IDS = 1000

function snapshot20() {
  const steps = {}
  for (let i = 0; i < 20; i++) {
    steps[`step-${i}`] = { ok: true, value: { orderId: `ord-${i}`, amount: i * 10.5, items: ['sku-1', 'sku-2', 'sku-3'], note: 'x'.repeat(40) } }
  }
  return {
    formatVersion: 1,
    workflowName: 'checkout',
    steps,
    execution: { status: 'running', lastUpdated: new Date().toISOString(), currentStepId: 'step-19' },
    metadata: { version: 1, lastStepKey: 'step-19' },
  }
}
const SNAP = snapshot20()

/** `op(loop, seq)` from `n` concurrent loops for `ms`: ops/s. */
async function loops(n, op, ms) {
  const end = performance.now() + ms
  let count = 0
  let seq = 0
  const t0 = performance.now()
  await Promise.all(
    Array.from({ length: n }, async (_, loop) => {
      while (performance.now() < end) {
        await op(loop, seq++)
        count++
      }
    }),
  )
  return count / ((performance.now() - t0) / 1000)
}

/** JS-thread µs per op of `op` from `n` concurrent loops (event-loop active time / ops). */
async function jsThreadUs(n, op, ms) {
  const elu = performance.eventLoopUtilization()
  const t0 = performance.now()
  const rate = await loops(n, op, ms)
  const { active } = performance.eventLoopUtilization(elu)
  return (active * 1000) / (rate * ((performance.now() - t0) / 1000))
}

/** µs of JSON.stringify + JSON.parse of one stored snapshot envelope: what every client spends per save + load. */
function jsonUs() {
  const once = () => JSON.parse(JSON.stringify({ updatedAt: new Date().toISOString(), snapshot: SNAP })).snapshot
  for (let i = 0; i < 5000; i++) once()
  const n = 50_000
  const t0 = performance.now()
  for (let i = 0; i < n; i++) once()
  return ((performance.now() - t0) * 1000) / n
}

/** The ops alternate, REPEATS rounds each (the machine's load drifts); their medians. */
async function rates(n, ...ops) {
  const warm = Math.min(200, MEASURE_MS / 3)
  for (const op of ops) await loops(n, op, warm)
  const runs = ops.map(() => [])
  for (let r = 0; r < REPEATS; r++) {
    for (let i = 0; i < ops.length; i++) runs[i].push(await loops(n, ops[i], MEASURE_MS))
  }
  const median = (a) => a.sort((x, y) => x - y)[Math.floor(a.length / 2)]
  return runs.map(median)
}

// ------------------------------------------------------------ plain JS: Redis
const RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end"

/** The same over ioredis. */
function jsIoRedis(client, prefix) {
  return {
    async save(id, snap) {
      await client.set(prefix + id, JSON.stringify({ updatedAt: new Date().toISOString(), snapshot: snap }))
    },
    async load(id) {
      const t = await client.get(prefix + id)
      return t === null ? null : JSON.parse(t).snapshot
    },
    async tryAcquire(id, { ttlMs }) {
      const token = randomBytes(16).toString('hex')
      const r = await client.set(`${prefix}lock:${id}`, token, 'PX', ttlMs, 'NX')
      return r === 'OK' ? { ownerToken: token } : null
    },
    async release(id, token) {
      await client.eval(RELEASE, 1, `${prefix}lock:${id}`, token)
    },
  }
}

function jsRedis(client, prefix) {
  return {
    async save(id, snap) {
      await client.set(prefix + id, JSON.stringify({ updatedAt: new Date().toISOString(), snapshot: snap }))
    },
    async load(id) {
      const t = await client.get(prefix + id)
      return t === null ? null : JSON.parse(t).snapshot
    },
    async tryAcquire(id, { ttlMs }) {
      const token = randomBytes(16).toString('hex')
      const r = await client.set(`${prefix}lock:${id}`, token, { NX: true, PX: ttlMs })
      return r === 'OK' ? { ownerToken: token } : null
    },
    async release(id, token) {
      await client.eval(RELEASE, { keys: [`${prefix}lock:${id}`], arguments: [token] })
    },
  }
}

// ------------------------------------------------------------ plain JS: files
function jsFiles(dir, durable) {
  let tmpSeq = 0
  const file = (id) => path.join(dir, `${encodeURIComponent(id)}.json`)
  const lock = (id) => path.join(dir, `${encodeURIComponent(id)}.lock`)
  return {
    async save(id, snap) {
      const tmp = path.join(dir, `.tmp-${process.pid}-${tmpSeq++}`)
      const fh = await fsp.open(tmp, 'w')
      await fh.writeFile(JSON.stringify({ updatedAt: new Date().toISOString(), snapshot: snap }))
      if (durable) await fh.sync()
      await fh.close()
      await fsp.rename(tmp, file(id))
    },
    async load(id) {
      try {
        return JSON.parse(await fsp.readFile(file(id), 'utf8')).snapshot
      } catch (e) {
        if (e.code === 'ENOENT') return null
        throw e
      }
    },
    async tryAcquire(id, { ttlMs }) {
      const token = randomBytes(16).toString('hex')
      try {
        const fh = await fsp.open(lock(id), 'wx')
        await fh.writeFile(JSON.stringify({ token, expiresAt: Date.now() + ttlMs }))
        await fh.close()
        return { ownerToken: token }
      } catch (e) {
        if (e.code !== 'EEXIST') throw e
        return null // (a real one would also check expiry and take over)
      }
    },
    async release(id, token) {
      try {
        const rec = JSON.parse(await fsp.readFile(lock(id), 'utf8'))
        if (rec.token === token) await fsp.unlink(lock(id))
      } catch (e) {
        if (e.code !== 'ENOENT') throw e
      }
    },
  }
}

const saveLoad = (s) => async (loop, seq) => {
  const id = `wf-${seq % IDS}`
  await s.save(id, SNAP)
  await s.load(id)
}
const lease = (s) => async (loop) => {
  const id = `lease-${loop}`
  const l = await s.tryAcquire(id, { ttlMs: 30_000 })
  if (l === null) throw new Error(`benchmark: lease ${id} was not free`)
  await s.release(id, l.ownerToken)
}

/** Take the lease of every id saveLoad touches (long TTL): its saves are fenced from now on. */
async function holdAll(store) {
  for (let i = 0; i < IDS; i += 100) {
    const got = await Promise.all(Array.from({ length: 100 }, (_, j) => store.tryAcquire(`wf-${i + j}`, { ttlMs: 600_000 })))
    if (got.some((l) => l === null)) throw new Error('benchmark: a lease was not free')
  }
}

async function rows(pairs) {
  const out = []
  for (const [label, nativeOp, jsOp] of pairs) {
    for (const n of [1, 64]) {
      const [js, native] = await rates(n, jsOp, nativeOp)
      out.push([label, n, js, native, ratio(native, js)])
    }
  }
  return out
}

/** Redis rows: [label, { npm, io, native, tokio }] → each at 1 and 64 in flight. */
async function redisRows(sets) {
  const out = []
  for (const [label, o] of sets) {
    for (const n of [1, 64]) {
      const [npm, io, native, tokio] = await rates(n, o.npm, o.io, o.native, o.tokio)
      const best = npm >= io ? ['npm redis 5', npm] : ['ioredis 5', io]
      out.push([label, n, npm, io, native, tokio, `${ratio(native, best[1])} (${best[0]})`])
    }
  }
  return out
}

export async function run() {
  const server = await startRedis()
  const root = mkdtempSync(path.join(os.tmpdir(), 'bench-snapshot-'))
  try {
    const kv = createRedisStore({ url: server.url })
    const kvTokio = createRedisStore({ url: server.url, transport: 'tokio' })
    const nativeRedis = createSnapshotStore({ store: kv, prefix: 'bench:n:' })
    const tokioRedis = createSnapshotStore({ store: kvTokio, prefix: 'bench:t:' })
    const client = createClient({ url: server.url })
    await client.connect()
    const io = new IORedis({ host: '127.0.0.1', port: server.port })
    const plainRedis = jsRedis(client, 'bench:js:')
    const ioRedis = jsIoRedis(io, 'bench:io:')
    // the ceiling at 64 in flight: every client there is bound by its JS
    // thread, and JSON of the snapshot is work none can skip
    const json = jsonUs()
    const peerUs = Math.min(await jsThreadUs(64, saveLoad(plainRedis), MEASURE_MS), await jsThreadUs(64, saveLoad(ioRedis), MEASURE_MS))
    const redisTable = await redisRows([
      ['Redis: save + load (20-step snapshot)', { npm: saveLoad(plainRedis), io: saveLoad(ioRedis), native: saveLoad(nativeRedis), tokio: saveLoad(tokioRedis) }],
      ['Redis: tryAcquire + release', { npm: lease(plainRedis), io: lease(ioRedis), native: lease(nativeRedis), tokio: lease(tokioRedis) }],
    ])
    const mk = (name) => {
      const d = path.join(root, name)
      require('node:fs').mkdirSync(d)
      return d
    }
    const nativeFast = createSnapshotStore({ store: createFileStore({ directory: mk('n-fast'), durable: false }) })
    const nativeDurable = createSnapshotStore({ store: createFileStore({ directory: mk('n-durable') }) })
    const plainFast = jsFiles(mk('js-fast'), false)
    const plainDurable = jsFiles(mk('js-durable'), true)
    const table = await rows([
      ['file: save + load, atomic (no fsync)', saveLoad(nativeFast), saveLoad(plainFast)],
      ['file: save + load, durable (fsync)', saveLoad(nativeDurable), saveLoad(plainDurable)],
      ['file: tryAcquire + release', lease(nativeFast), lease(plainFast)],
    ])
    // fencing cost: stores over the same KeyValueStores, one holding every lease
    const pgKv = createPostgresStore({ ...PG, schema: PG_SCHEMA })
    const fenced = [
      ['Redis', createSnapshotStore({ store: kv, prefix: 'bench:u:' }), createSnapshotStore({ store: kv, prefix: 'bench:f:' })],
      ['PostgreSQL', createSnapshotStore({ store: pgKv, prefix: 'u:' }), createSnapshotStore({ store: pgKv, prefix: 'f:' })],
      ...['atomic (no fsync)', 'durable (fsync)'].map((what, i) => {
        const fileKv = createFileStore({ directory: mk(`fence-${i}`), durable: i === 1 })
        return [`file, ${what}`, createSnapshotStore({ store: fileKv, prefix: 'u:' }), createSnapshotStore({ store: fileKv, prefix: 'f:' })]
      }),
    ]
    const fencing = []
    for (const [label, plain, holder] of fenced) {
      await holdAll(holder)
      for (const n of [1, 64]) {
        const [unfenced, withLease] = await rates(n, saveLoad(plain), saveLoad(holder))
        fencing.push([`${label}: save + load`, n, unfenced, withLease, ratio(withLease, unfenced)])
      }
    }
    await pgKv.close()
    const admin = new pg.Client(PG)
    await admin.connect()
    await admin.query(`DROP SCHEMA IF EXISTS ${PG_SCHEMA} CASCADE`)
    await admin.end()
    await Promise.all([client.quit(), io.quit(), kv.close(), kvTokio.close()])
    return [
      {
        title: 'createSnapshotStore on Redis vs plain JS (npm redis 5 / ioredis 5), ops/s (one op = both calls)',
        columns: ['operation', 'in flight', 'npm redis 5', 'ioredis 5', 'native', 'native (tokio transport)', 'native / best peer'],
        rows: redisTable,
        notes: [
          'A private redis-server on loopback. The JS lease is SET NX PX + EVAL; ours the same commands, in the store\'s data batch, on the JS thread\'s connection (native) or on tokio.',
          `All four alternate; median of ${REPEATS} rounds of ${MEASURE_MS} ms each. Goals: ≥ 1.0× at 1 in flight, ≥ 1.5× at 64.`,
          `Ceiling of save + load at 64 in flight: the faster JS peer spends ${peerUs.toFixed(1)} µs of JS-thread time per op, of which JSON.stringify + JSON.parse of the snapshot take ${json.toFixed(1)} µs (any client must: the snapshot is a JS object), so a client doing nothing but that JSON would reach ${(peerUs / json).toFixed(2)}× of it at most.`,
        ],
      },
      {
        title: 'createSnapshotStore on files vs plain JS (fs/promises), ops/s (one op = both calls)',
        columns: ['operation', 'in flight', 'plain JS', 'native', 'native / JS'],
        rows: table,
        notes: [
          'Files: the JS lease is open(wx) (no expiry takeover, no cross-process decision lock); ours takes a flock, checks the boot-time clock and renames a record.',
          `JS and native alternate; median of ${REPEATS} rounds of ${MEASURE_MS} ms each.`,
        ],
      },
      {
        title: 'Fenced checkpoints: save + load with the lease held vs without, ops/s (one op = both calls)',
        columns: ['operation', 'in flight', 'no lease', 'lease held (fenced save)', 'fenced / plain'],
        rows: fencing,
        notes: [
          'Same KeyValueStore, two snapshot stores: one holds the lease of every id it saves, so its saves are fenced (Redis: one EVAL checking the lease token and writing, in place of SET; PostgreSQL: one statement locking and checking the lease row, then the upsert; files: the lease record checked under the lease lock, then the write).',
          `Plain and fenced alternate; median of ${REPEATS} rounds of ${MEASURE_MS} ms each.`,
        ],
      },
    ]
  } finally {
    server.stop()
    rmSync(root, { recursive: true, force: true })
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { renderTable } = await import('./harness.mjs')
  for (const t of await run()) console.log(renderTable(t))
}
