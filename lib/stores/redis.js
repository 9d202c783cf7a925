'use strict'
// createRedisStore: a KeyValueStore on the native Redis core (src/redis/).
// Its JS side: option checks; the tick batcher of the data calls, run
// leases and fenced snapshot writes (the calls made in one tick go to Rust
// as pipelines of up to maxBatch calls, all written in that tick: one round
// trip), written through the JS-thread connection (DirectLink) or to tokio
// (exec); keys and clearing, run on that same connection when it is the JS
// thread's; and the store's adapted operations
// (lib/stores/adapter.js), which the caches and persistences use.

const { binding, fromNative, HOST_IS_NODE } = require('../internal/binding.js')
const { invalidArg, storeClosed } = require('../internal/errors.js')
const { describe, tlsSettings } = require('../internal/validate.js')
const { OP } = require('../internal/codes.js')
const { TickBatcher, settleAll } = require('../internal/tick-batcher.js')
const { ADAPTED } = require('./adapter.js')
const { MARKER_VALUE } = require('./ownership.js')
const { emptyBatch, packIo, settleResults, splitKeys, pushCall, pushLease, kvMethods, CallbackBatches } = require('./kv-batch.js')

const { GET: OP_GET, SET: OP_SET, DELETE: OP_DELETE, EXISTS: OP_EXISTS, SET_DURABLE: OP_SET_DURABLE, PING: OP_PING } = OP
const { LEASE_ACQUIRE, LEASE_RELEASE, LEASE_RENEW, FENCED_SET, FENCED_DELETE } = OP

const DEFAULTS = { url: 'redis://127.0.0.1:6379', connectTimeout: 5000, commandTimeout: 5000, maxBatch: 32, transport: 'auto' }

const TRANSPORTS = ['auto', 'tokio']

// A batch is sent once its text (keys and values) reaches this many UTF-16
// units, before maxBatch calls: the text stays a regular V8 string and its
// UTF-16 copy in Rust a regular heap block (V8 gives strings over ~128 KB
// pages of their own, and malloc maps blocks over 128 KB anew: both fault
// in fresh pages every batch). The snapshot bench's save + load of a 3.2 KB
// snapshot at 64 in flight, in a probe: 26.8k → 29.9k/s.
const MAX_BATCH_TEXT = 32 * 1024

// On the JS thread's connection to one server, while fewer than two full
// pipelines of ours are in flight, a tick's first pipeline is sent at this
// many calls, the next at twice that, and so on up to maxBatch, all written
// in that tick: the server starts on the first while the rest are made, and
// replies stream back instead of arriving all at once (16 gets in flight:
// 1.2x -> 1.45x npm redis, 16 sets 1.2x -> 1.9x; over TLS 0.8x -> 1.5x). With
// more in flight the server has plenty to work on: full pipelines, which
// cost it and us the least. (A cluster's and tokio's batches are maxBatch
// calls, each a job of its own.)
const FIRST_BATCH = 4

/** A positive integer option (`unit` names it in the error), or its default. */
function positiveIntOption(name, value, dflt, unit) {
  if (value === undefined) return dflt
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0 || value > 2 ** 31) {
    throw invalidArg(`createRedisStore: ${name} must be a positive integer${unit}, got ${String(value)}`)
  }
  return value
}

/**
 * The data connection on the JS thread (src/redis/direct.rs): batches are
 * written by `directSend` as they are flushed, and their results come back
 * in order through `onWire`, called from the event loop when replies
 * arrive. Connecting (and reconnecting after a failure) happens on the next
 * batch; batches made meanwhile wait here.
 */
class DirectLink {
  constructor(native, maxBatch) {
    this.native = native
    // a batch's kinds, ttls and text lengths go to directSend in this
    // (reused) buffer (packIo)
    /** @type {Int32Array} */
    this.io = new Int32Array(4 * maxBatch)
    this.ready = false
    this.connecting = false
    this.queued = []
    // run() calls not settled yet
    this.calls = 0
    // batches written, oldest first, from index `head`
    this.inflight = []
    this.head = 0
    // calls written and not answered yet
    this.opsInFlight = 0
    /** @type {{ p: Promise<unknown>, resolve: () => void } | null} */
    this.drained = null
    this.onWire = this.onWire.bind(this)
  }

  /**
   * How many calls fill a tick's first pipeline: FIRST_BATCH while fewer
   * than two full pipelines of ours are in flight (the server starts on it
   * at once while the rest are made, and replies stream back), else
   * `maxBatch` (the server has plenty to work on: full pipelines cost it
   * and us the least).
   * @param {number} maxBatch
   */
  firstBatch(maxBatch) {
    return this.opsInFlight < 2 * maxBatch ? FIRST_BATCH : maxBatch
  }

  send(batch) {
    if (this.ready) this.write(batch)
    else {
      this.queued.push(batch)
      if (!this.connecting) this.connect()
    }
  }

  /**
   * Run `call` (a native call that runs on this connection: keys, clearing,
   * leases) once the connection is up; its promise.
   */
  run(call) {
    let p
    if (!this.ready) p = new Promise((resolve, reject) => this.send({ call, resolve, reject }))
    else {
      try {
        p = call()
      } catch (e) {
        return Promise.reject(e)
      }
    }
    this.calls++
    const done = () => {
      this.calls--
      this.checkDrained()
    }
    p.then(done, done)
    return p
  }

  connect() {
    this.connecting = true
    this.native.directConnect().then(
      () => {
        this.connecting = false
        try {
          this.native.directAttach(this.onWire)
        } catch (e) {
          this.failQueued(fromNative(e))
          return
        }
        this.ready = true
        const queued = this.queued
        this.queued = []
        for (const b of queued) {
          if (b.call) {
            let p
            try {
              p = b.call()
            } catch (e) {
              b.reject(e)
              continue
            }
            p.then(b.resolve, b.reject)
          } else this.send(b)
        }
      },
      (e) => {
        this.connecting = false
        this.failQueued(fromNative(e))
      },
    )
  }

  write(batch) {
    this.io = packIo(batch, this.io)
    const failure = this.native.directSend(this.io, batch.ops.length, batch.lens.length, batch.blob)
    if (failure === null) {
      this.inflight.push(batch)
      this.opsInFlight += batch.ops.length
      return
    }
    // the connection is gone: this batch and every batch in flight
    this.lost(failure)
    settleAll(batch.waiters, fromNative(new Error(failure)))
  }

  onWire(count, meta, blob, errors, failure) {
    if (count > 0) {
      this.opsInFlight -= count
      this.head = settleResults(this.inflight, this.head, count, meta, blob, errors)
      if (this.head === this.inflight.length) {
        this.inflight = []
        this.head = 0
      } else if (this.head > 1024) {
        this.inflight = this.inflight.slice(this.head)
        this.head = 0
      }
    }
    if (failure !== null) this.lost(failure)
    this.checkDrained()
  }

  lost(failure) {
    this.ready = false
    const e = fromNative(new Error(failure))
    const pending = this.inflight.slice(this.head)
    this.inflight = []
    this.head = 0
    this.opsInFlight = 0
    for (const b of pending) settleAll(b.waiters, e)
  }

  failQueued(e) {
    const queued = this.queued
    this.queued = []
    for (const b of queued) {
      if (b.call) b.reject(e)
      else settleAll(b.waiters, e)
    }
    this.checkDrained()
  }

  /** Resolves once nothing is queued or in flight (for close()). */
  drain() {
    if (this.idle()) return Promise.resolve()
    if (!this.drained) {
      /** @type {() => void} */
      let resolve = () => {}
      const p = new Promise((r) => {
        resolve = () => r(undefined)
      })
      this.drained = { p, resolve }
    }
    return this.drained.p
  }

  idle() {
    return this.queued.length === 0 && this.inflight.length === this.head && !this.connecting && this.calls === 0
  }

  checkDrained() {
    if (this.drained && this.idle()) {
      this.drained.resolve()
      this.drained = null
    }
  }
}

/**
 * The `cluster` option: `{ nodes: ['redis://host:port', ...] }` (seed nodes;
 * the others are discovered), or undefined. Strict: anything else, unknown
 * fields, and `url` alongside it are TypeErrors.
 */
function clusterOption(options) {
  const cluster = options.cluster
  if (cluster === undefined) return undefined
  if (cluster === null || typeof cluster !== 'object' || Array.isArray(cluster)) {
    throw invalidArg("createRedisStore: cluster must be an object like { nodes: ['redis://127.0.0.1:7000'] }")
  }
  if (options.url !== undefined) {
    throw invalidArg('createRedisStore: give either url (one server) or cluster (Redis Cluster), not both')
  }
  for (const f of Object.keys(cluster)) {
    if (f !== 'nodes') throw invalidArg(`createRedisStore: cluster.${f} is not an option (cluster takes { nodes })`)
  }
  const { nodes } = cluster
  if (!Array.isArray(nodes) || nodes.length === 0) {
    throw invalidArg('createRedisStore: cluster.nodes must be a non-empty array of redis:// or rediss:// URLs')
  }
  nodes.forEach((n, i) => {
    if (typeof n !== 'string' || !/^rediss?:\/\/./.test(n)) {
      throw invalidArg(
        `createRedisStore: cluster.nodes[${i}] must be a redis:// or rediss:// URL, got ${typeof n === 'string' ? JSON.stringify(n) : typeof n}`,
      )
    }
  })
  return [...nodes]
}

/**
 * A KeyValueStore on Redis, native. One connection (a cluster: one per
 * primary), replaced when it breaks: with `transport: 'auto'`, sockets of the
 * JS thread itself (`store.transport === 'direct'`); else the tokio
 * connections of the Rust `redis` crate (`'tokio'`). Calls made in the
 * same tick go out as one batch (in a cluster, one pipeline per primary).
 */
/** @param {Record<string, any>} [options] user input, checked here */
function createRedisStore(options = {}) {
  if (options === null || typeof options !== 'object') throw invalidArg('createRedisStore: options must be an object')
  const clusterNodes = clusterOption(options)
  const url = options.url === undefined ? DEFAULTS.url : options.url
  if (typeof url !== 'string' || url.length === 0) throw invalidArg('createRedisStore: url must be a non-empty string')
  const connectTimeout = positiveIntOption('connectTimeout', options.connectTimeout, DEFAULTS.connectTimeout, ' number of milliseconds')
  const commandTimeout = positiveIntOption('commandTimeout', options.commandTimeout, DEFAULTS.commandTimeout, ' number of milliseconds')
  const maxBatch = positiveIntOption('maxBatch', options.maxBatch, DEFAULTS.maxBatch, ' (calls per pipeline)')
  const transport = options.transport === undefined ? DEFAULTS.transport : options.transport
  if (!TRANSPORTS.includes(transport)) {
    throw invalidArg(
      `createRedisStore: transport must be 'auto' or 'tokio', got ${typeof transport === 'string' ? JSON.stringify(transport) : String(transport)}`,
    )
  }
  const waitReplicas = options.waitReplicas === undefined ? 0 : options.waitReplicas
  if (typeof waitReplicas !== 'number' || !Number.isInteger(waitReplicas) || waitReplicas < 0 || waitReplicas > 1000) {
    throw invalidArg(`createRedisStore: waitReplicas must be a whole number of replicas (0 = off), got ${String(waitReplicas)}`)
  }
  const tlsOpt = options.tls === undefined || options.tls === null ? {} : options.tls
  if (typeof tlsOpt !== 'object' || Array.isArray(tlsOpt)) {
    throw invalidArg('createRedisStore: tls must be an object like { ca, cert, key, servername, rejectUnauthorized }')
  }
  const tls = tlsSettings('createRedisStore', tlsOpt)
  const native = new binding.NativeRedisStore(
    url,
    connectTimeout,
    commandTimeout,
    tls.ca,
    tls.cert,
    tls.key,
    tls.servername,
    tls.rejectUnauthorized,
    clusterNodes,
    waitReplicas,
    transport === 'auto' && !HOST_IS_NODE ? 'tokio' : transport,
  )
  // one server: the JS-thread connection driven from here; a cluster's
  // JS-thread transport is driven in Rust, its data batches answered
  // through CallbackBatches; on tokio, native.exec resolves a promise
  const direct = native.transport === 'direct' && !clusterNodes ? new DirectLink(native, maxBatch) : null
  const clusterDirect = native.transport === 'direct' && clusterNodes ? new CallbackBatches(native) : null
  /**
   * Run a native call made of several batches (keys, clearing, leases) on the
   * JS-thread connection once it is up (when the store has one).
   * @type {<T>(call: () => Promise<T>) => Promise<T>}
   */
  const onConn = direct ? (call) => direct.run(call) : (call) => call()
  // what the data calls cost: native calls (batches) made, and the calls they carried
  const sent = { batches: 0, calls: 0 }
  // a batch's kinds, ttls and lengths on their way to exec (packIo), reused
  /** @type {Int32Array} */
  let io = new Int32Array(0)
  /** @type {TickBatcher<import('./kv-batch.js').DataBatch>} */
  const batcher = new TickBatcher(
    maxBatch,
    emptyBatch,
    (batch) => {
      sent.batches++
      sent.calls += batch.ops.length
      if (direct) return direct.send(batch)
      if (clusterDirect) return clusterDirect.send(batch)
      let p
      try {
        io = packIo(batch, io)
        p = native.exec(io, batch.ops.length, batch.lens.length, batch.blob)
      } catch (e) {
        settleAll(batch.waiters, fromNative(/** @type {Error} */ (e)))
        return
      }
      p.then(
        (out) => settleResults([batch], 0, out.meta.length, out.meta, out.blob, out.errors),
        (/** @type {Error} */ e) => settleAll(batch.waiters, fromNative(e)),
      )
    },
    { full: (batch) => batch.blob.length >= MAX_BATCH_TEXT, first: direct ? () => direct.firstBatch(maxBatch) : undefined },
  )
  let closed = false
  /** @type {(op: number, key: string, value: string | undefined, ttl: number) => Promise<any>} */
  const enqueue = (op, key, value, ttl) => (closed ? Promise.reject(storeClosed()) : pushCall(batcher, op, key, value, ttl))
  /** @type {(op: number, ttlMs: number, prefix: string, id: string, token: string, value: string) => Promise<any>} */
  const lease = (op, ttlMs, prefix, id, token, value) =>
    closed ? Promise.reject(storeClosed()) : pushLease(batcher, op, ttlMs, prefix, id, token, value)
  /** @type {(p: Promise<any>) => Promise<any>} */
  const native_ = (p) => (closed ? Promise.reject(storeClosed()) : p.catch((e) => Promise.reject(fromNative(e))))

  const store = {
    ...kvMethods(enqueue),
    /** Keys matching a Redis glob, by SCAN (never KEYS). Order unspecified. */
    keys(pattern) {
      if (typeof pattern !== 'string') return Promise.reject(invalidArg(`keys: pattern must be a string, got ${describe(pattern)}`))
      return native_(onConn(() => native.keys(pattern))).then(splitKeys)
    },
    /** Connect now (if not connected) and PING; rejects with ERR_STORE_UNAVAILABLE / ERR_STORE_TIMEOUT. */
    ping() {
      return enqueue(OP_PING, '', undefined, 0)
    },
    /** Close the connection; later calls reject with ERR_STORE_CLOSED. */
    async close() {
      if (closed) return
      batcher.flush()
      closed = true
      // calls already made complete (within commandTimeout) before the end
      if (direct) {
        await direct.drain()
        native.directClose()
      }
      await native.close()
    },
    /** Connections opened so far (1 + reconnects). */
    get connectionsOpened() {
      return native.connectionsOpened
    },
    /** Where the calls go: 'direct' (connections on the JS thread: one server's, or one per cluster primary) or 'tokio'. */
    get transport() {
      return native.transport
    },
    /** Native calls made so far for get/set/delete/exists (and ping, on the direct transport): one per tick (or per maxBatch calls), one pipeline each. */
    get batchesSent() {
      return sent.batches
    },
    /** The calls those batches carried (the owner markers a cache or persistence writes included). */
    get callsSent() {
      return sent.calls
    },
  }
  /** @type {import('./adapter.js').Adapted} */
  const adapted = {
    get: (key) => enqueue(OP_GET, key, undefined, 0),
    // one tick: pipelines of maxBatch
    getMany: (keys) => Promise.all(keys.map((k) => enqueue(OP_GET, k, undefined, 0))),
    set: (key, value, ttl) => enqueue(OP_SET, key, value, ttl),
    setDurable: (key, value) => enqueue(OP_SET_DURABLE, key, value, 0),
    delete: (key) => enqueue(OP_DELETE, key, undefined, 0),
    exists: (key) => enqueue(OP_EXISTS, key, undefined, 0),
    keys: (pattern) => native_(onConn(() => native.keys(pattern))).then(splitKeys),
    registerOwner: (marker) => enqueue(OP_SET, marker, MARKER_VALUE, 0),
    clearCachePrefix: (prefix) => native_(onConn(() => native.clearCachePrefix(prefix))),
    ordered: true,
    // run leases and fenced snapshot writes: ops of the data batch
    // (src/redis/lease.rs names the lease key: under the prefix, in the
    // snapshot key's hash slot)
    leases: {
      acquire: (prefix, id, ttlMs) => lease(LEASE_ACQUIRE, ttlMs, prefix, id, '', ''),
      release: (prefix, id, token) => lease(LEASE_RELEASE, 0, prefix, id, token, ''),
      renew: (prefix, id, token, ttlMs) => lease(LEASE_RENEW, ttlMs, prefix, id, token, ''),
      fencedSet: (prefix, id, token, value) => lease(FENCED_SET, 0, prefix, id, token, value),
      fencedDelete: (prefix, id, token) => lease(FENCED_DELETE, 0, prefix, id, token, ''),
      // a lease key exists only while held (PX): its PTTL is the time left;
      // the key's form is Rust's (redisLeaseKey / redisLeaseId)
      list: async (prefix) => {
        const keys = await adapted.keys(`${binding.escapeGlob(`${prefix}\u0000lease`)}*`)
        /** @type {{ key: string, id: string }[]} */
        const named = []
        for (const key of keys) {
          const id = binding.redisLeaseId(prefix, key)
          if (id !== null && id !== undefined) named.push({ key, id })
        }
        /** @type {import('./adapter.js').LeaseRecord[]} */
        const out = []
        for (let i = 0; i < named.length; i += 512) {
          const page = named.slice(i, i + 512)
          const ttls = await native_(native.leaseTtls(page.map((n) => n.key)))
          page.forEach((n, j) => {
            if (ttls[j] !== -2) out.push({ id: n.id, state: 'held', expiresInMs: ttls[j] >= 0 ? ttls[j] : null })
          })
        }
        return out
      },
      evict: (prefix, id) => adapted.delete(binding.redisLeaseKey(prefix, id)).then(Boolean),
    },
    scanPage: (cursor, pattern) =>
      native_(native.scanPage(cursor, pattern)).then((p) => (p === null ? null : { cursor: p.cursor, keys: splitKeys(p) })),
  }
  Object.defineProperty(store, ADAPTED, { value: adapted })
  return store
}

module.exports = { createRedisStore }
