'use strict'
// createRedisStore: a KeyValueStore on the native Redis core (src/redis/).
// The only JS logic is tick batching: every call made in one tick is queued,
// and at the end of the tick the queue goes to Rust as ONE native call (one
// batch, one round trip), whose results settle the calls.

const { binding, fromNative, invalidArg: typeError, storeTtl } = require('./native.js')
const { LeaseBatcher } = require('./lease-batcher.js')

/** Marks our native stores; createKVCache/createStatePersistence use the fast paths. */
const NATIVE_STORE = Symbol.for('awaitly-persistence-native.redisStore')

// op kinds and outcome codes, defined in Rust (src/redis/codes.rs)
const { Get: OP_GET, Set: OP_SET, Delete: OP_DELETE, Exists: OP_EXISTS, SetDurable: OP_SET_DURABLE, Ping: OP_PING } =
  binding.RedisOp
const { None: OUT_NONE, True: OUT_TRUE, False: OUT_FALSE, Value: META_VALUE } = binding.RedisOutcome

const DEFAULTS = { url: 'redis://127.0.0.1:6379', connectTimeout: 5000, commandTimeout: 5000, maxBatch: 64, transport: 'auto' }
const TRANSPORTS = ['auto', 'tokio']

/** A positive integer option (`unit` names it in the error), or its default. */
function positiveIntOption(name, value, dflt, unit) {
  if (value === undefined) return dflt
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0 || value > 2 ** 31) {
    throw typeError(`createRedisStore: ${name} must be a positive integer${unit}, got ${String(value)}`)
  }
  return value
}

function keyArg(method, key) {
  if (typeof key !== 'string') throw typeError(`${method}: key must be a string, got ${typeof key}`)
  return key
}

class Batcher {
  constructor(native, maxBatch, direct) {
    this.native = native
    this.maxBatch = maxBatch
    // the JS-thread data connection (DirectLink), or null: the tokio transport
    this.direct = direct
    this.reset()
    this.scheduled = false
    this.flush = this.flush.bind(this)
  }

  reset() {
    this.ops = []
    this.ttls = []
    // keys and SET values, concatenated, with their lengths: one string crosses to Rust
    this.lens = []
    this.blob = ''
    this.waiters = []
  }

  push(op, key, value, ttl) {
    return new Promise((resolve, reject) => {
      this.ops.push(op)
      this.ttls.push(ttl)
      this.lens.push(key.length)
      this.blob += key
      if (op === OP_SET || op === OP_SET_DURABLE) {
        this.lens.push(value.length)
        this.blob += value
      }
      this.waiters.push(resolve, reject)
      if (this.ops.length >= this.maxBatch) this.flush()
      else if (!this.scheduled) {
        this.scheduled = true
        process.nextTick(this.flush)
      }
    })
  }

  flush() {
    this.scheduled = false
    if (this.ops.length === 0) return
    const batch = { ops: this.ops, ttls: this.ttls, lens: this.lens, blob: this.blob, waiters: this.waiters }
    this.reset()
    if (this.direct) {
      this.direct.send(batch)
      return
    }
    const { ops, ttls, lens, blob, waiters } = batch
    let p
    try {
      p = this.native.exec(Uint8Array.from(ops), Uint32Array.from(ttls), Uint32Array.from(lens), blob)
    } catch (e) {
      settleAll(waiters, fromNative(e))
      return
    }
    p.then(
      (out) => settleResults([batch], 0, out.meta.length, out.meta, out.blob, out.errors),
      (e) => settleAll(waiters, fromNative(e)),
    )
  }
}

/**
 * Settle `batches[from..]` from the native results of their first `count`
 * ops, in order (concatenated over the batches): `meta[i]` is an OUT_* code,
 * or META_VALUE + n for a GET hit whose value is the next n units of `blob`;
 * `errors[i]` the `[CODE] message` of a failed op. Returns the index of the
 * first batch not settled.
 */
function settleResults(batches, from, count, meta, blob, errors) {
  let pos = 0
  let ci = 0
  let bi = from
  while (ci < count) {
    const { ops, waiters } = batches[bi++]
    for (let i = 0; i < ops.length; i++, ci++) {
      const m = meta[ci]
      if (m >= META_VALUE) {
        const end = pos + (m - META_VALUE)
        waiters[2 * i](blob.slice(pos, end))
        pos = end
        continue
      }
      switch (m) {
        case OUT_NONE:
          waiters[2 * i](ops[i] === OP_GET ? null : undefined)
          break
        case OUT_TRUE:
          waiters[2 * i](true)
          break
        case OUT_FALSE:
          waiters[2 * i](false)
          break
        default:
          waiters[2 * i + 1](fromNative(new Error(errors?.[ci] ?? '[ERR_INTERNAL] missing error')))
      }
    }
  }
  return bi
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
    // a batch's kinds, ttls and key/value lengths go to directSend in this
    // (reused) buffer: kinds and ttls, one each per op; up to two lengths
    this.io = new Int32Array(4 * maxBatch)
    this.ready = false
    this.connecting = false
    this.queued = []
    // run() calls not settled yet
    this.calls = 0
    // batches written, oldest first, from index `head`
    this.inflight = []
    this.head = 0
    this.drained = null
    this.onWire = this.onWire.bind(this)
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
    const { ops, ttls, lens } = batch
    const n = ops.length
    let io = this.io
    if (io.length < 2 * n + lens.length) io = this.io = new Int32Array(2 * (2 * n + lens.length))
    for (let i = 0; i < n; i++) {
      io[i] = ops[i]
      io[n + i] = ttls[i]
    }
    for (let i = 0; i < lens.length; i++) io[2 * n + i] = lens[i]
    const failure = this.native.directSend(io, n, lens.length, batch.blob)
    if (failure === null) {
      this.inflight.push(batch)
      return
    }
    // the connection is gone: this batch and every batch in flight
    this.lost(failure)
    settleAll(batch.waiters, fromNative(new Error(failure)))
  }

  onWire(count, meta, blob, errors, failure) {
    if (count > 0) {
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
      let resolve
      const p = new Promise((r) => (resolve = r))
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

/** Split the native `keys` answer (one string + UTF-16 lengths) into keys. */
function splitKeys({ lens, blob }) {
  const out = new Array(lens.length)
  let pos = 0
  for (let i = 0; i < lens.length; i++) {
    const end = pos + lens[i]
    out[i] = blob.slice(pos, end)
    pos = end
  }
  return out
}

function settleAll(waiters, e) {
  for (let i = 1; i < waiters.length; i += 2) {
    // one Error object per call, each with the same code and message
    const each = new Error(e.message)
    each.code = e.code
    waiters[i](each)
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
    throw typeError("createRedisStore: cluster must be an object like { nodes: ['redis://127.0.0.1:7000'] }")
  }
  if (options.url !== undefined) {
    throw typeError('createRedisStore: give either url (one server) or cluster (Redis Cluster), not both')
  }
  for (const f of Object.keys(cluster)) {
    if (f !== 'nodes') throw typeError(`createRedisStore: cluster.${f} is not an option (cluster takes { nodes })`)
  }
  const { nodes } = cluster
  if (!Array.isArray(nodes) || nodes.length === 0) {
    throw typeError('createRedisStore: cluster.nodes must be a non-empty array of redis:// or rediss:// URLs')
  }
  nodes.forEach((n, i) => {
    if (typeof n !== 'string' || !/^rediss?:\/\/./.test(n)) {
      throw typeError(`createRedisStore: cluster.nodes[${i}] must be a redis:// or rediss:// URL, got ${typeof n === 'string' ? JSON.stringify(n) : typeof n}`)
    }
  })
  return [...nodes]
}

/**
 * A KeyValueStore on Redis, native. One connection, replaced when it breaks:
 * on one server, with `transport: 'auto'`, a socket of the JS thread itself
 * (`store.transport === 'direct'`); else the tokio connection of the Rust
 * `redis` crate (`'tokio'`; a cluster: one per primary). Calls made in the
 * same tick go out as one batch (in a cluster, one pipeline per primary).
 */
function createRedisStore(options = {}) {
  if (options === null || typeof options !== 'object') throw typeError('createRedisStore: options must be an object')
  const clusterNodes = clusterOption(options)
  const url = options.url === undefined ? DEFAULTS.url : options.url
  if (typeof url !== 'string' || url.length === 0) throw typeError('createRedisStore: url must be a non-empty string')
  const connectTimeout = positiveIntOption('connectTimeout', options.connectTimeout, DEFAULTS.connectTimeout, ' number of milliseconds')
  const commandTimeout = positiveIntOption('commandTimeout', options.commandTimeout, DEFAULTS.commandTimeout, ' number of milliseconds')
  const maxBatch = positiveIntOption('maxBatch', options.maxBatch, DEFAULTS.maxBatch, ' (calls per pipeline)')
  const transport = options.transport === undefined ? DEFAULTS.transport : options.transport
  if (!TRANSPORTS.includes(transport)) {
    throw typeError(`createRedisStore: transport must be 'auto' or 'tokio', got ${typeof transport === 'string' ? JSON.stringify(transport) : String(transport)}`)
  }
  const waitReplicas = options.waitReplicas === undefined ? 0 : options.waitReplicas
  if (typeof waitReplicas !== 'number' || !Number.isInteger(waitReplicas) || waitReplicas < 0 || waitReplicas > 1000) {
    throw typeError(`createRedisStore: waitReplicas must be a whole number of replicas (0 = off), got ${String(waitReplicas)}`)
  }
  const tls = options.tls === undefined || options.tls === null ? {} : options.tls
  if (typeof tls !== 'object') throw typeError('createRedisStore: tls must be an object like { ca, cert, key } (PEM strings)')
  for (const f of ['ca', 'cert', 'key']) {
    if (tls[f] !== undefined && typeof tls[f] !== 'string') throw typeError(`createRedisStore: tls.${f} must be a PEM string`)
  }
  const native = new binding.NativeRedisStore(
    url,
    connectTimeout,
    commandTimeout,
    tls.ca,
    tls.cert,
    tls.key,
    clusterNodes,
    waitReplicas,
    transport,
  )
  const direct = native.transport === 'direct' ? new DirectLink(native, maxBatch) : null
  const batcher = new Batcher(native, maxBatch, direct)
  // keys, clearing and leases run on the data connection too (when direct)
  const onConn = direct ? (call) => direct.run(call) : (call) => call()
  const leases = new LeaseBatcher(
    (kinds, ttls, _scopes, keys, tokens) => onConn(() => native.leaseExec(kinds, ttls, keys, tokens)),
    maxBatch,
  )
  let closed = false
  const closedError = () => {
    const e = new Error('store is closed')
    e.code = 'ERR_STORE_CLOSED'
    return e
  }
  const enqueue = (op, key, value, ttl) => (closed ? Promise.reject(closedError()) : batcher.push(op, key, value, ttl))
  const native_ = (p) => (closed ? Promise.reject(closedError()) : p.catch((e) => Promise.reject(fromNative(e))))

  const store = {
    get(key) {
      try {
        return enqueue(OP_GET, keyArg('get', key), undefined, 0)
      } catch (e) {
        return Promise.reject(e)
      }
    },
    set(key, value, opts) {
      try {
        keyArg('set', key)
        if (typeof value !== 'string') throw typeError(`set: value must be a string, got ${typeof value}`)
        return enqueue(OP_SET, key, value, storeTtl(opts))
      } catch (e) {
        return Promise.reject(e)
      }
    },
    delete(key) {
      try {
        return enqueue(OP_DELETE, keyArg('delete', key), undefined, 0)
      } catch (e) {
        return Promise.reject(e)
      }
    },
    exists(key) {
      try {
        return enqueue(OP_EXISTS, keyArg('exists', key), undefined, 0)
      } catch (e) {
        return Promise.reject(e)
      }
    },
    /** Keys matching a Redis glob, by SCAN (never KEYS). Order unspecified. */
    keys(pattern) {
      if (typeof pattern !== 'string') return Promise.reject(typeError('keys: pattern must be a string'))
      return native_(onConn(() => native.keys(pattern))).then(splitKeys)
    },
    /** Connect now (if not connected) and PING; rejects with ERR_STORE_UNAVAILABLE / ERR_STORE_TIMEOUT. */
    ping() {
      return direct ? enqueue(OP_PING, '', undefined, 0) : native_(native.ping())
    },
    /** Close the connection; later calls reject with ERR_STORE_CLOSED. */
    async close() {
      if (closed) return
      batcher.flush()
      leases.flush()
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
    /** Where the calls run: 'direct' (the JS thread's own socket) or 'tokio'. */
    get transport() {
      return native.transport
    },
  }
  Object.defineProperty(store, NATIVE_STORE, {
    value: {
      get: (key) => enqueue(OP_GET, key, undefined, 0),
      set: (key, value, ttl) => enqueue(OP_SET, key, value, ttl),
      /** A state write: with waitReplicas, resolves once that many replicas have it. */
      setDurable: (key, value) => enqueue(OP_SET_DURABLE, key, value, 0),
      delete: (key) => enqueue(OP_DELETE, key, undefined, 0),
      exists: (key) => enqueue(OP_EXISTS, key, undefined, 0),
      keys: (pattern) => native_(onConn(() => native.keys(pattern))).then(splitKeys),
      clearCachePrefix: (prefix) => native_(onConn(() => native.clearCachePrefix(prefix))),
      // run leases (src/redis/lease.rs), for createSnapshotStore: token | null, boolean, boolean
      leaseAcquire: (key, ttlMs) => (closed ? Promise.reject(closedError()) : leases.acquire('', key, ttlMs)),
      leaseRelease: (key, token) => (closed ? Promise.reject(closedError()) : leases.release('', key, token)),
      leaseRenew: (key, token, ttlMs) => (closed ? Promise.reject(closedError()) : leases.renew('', key, token, ttlMs)),
    },
  })
  return store
}

module.exports = { createRedisStore }
// Internals for the other lib/ modules; not enumerable, so index.js does not re-export them.
Object.defineProperty(module.exports, 'internal', { value: { NATIVE_STORE } })
