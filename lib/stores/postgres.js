'use strict'
// createPostgresStore: a KeyValueStore on PostgreSQL, native (src/postgres/:
// tokio-postgres, a pool, one table of bytea rows). Its JS side: option
// checks (before any connection), the tick batcher of the data calls (the
// calls of one tick go to Rust as ONE native call, pipelined on one pooled
// connection, as one transaction when they write twice or more) with the
// Redis store's batch encoding (kv-batch.js), and the store's adapted
// operations (lib/stores/adapter.js): the caches and persistences use them,
// and a snapshot store over it is a WorkflowLock (leases are rows of the
// same table, judged by the server's clock; their ops travel in the data
// batch, pushLease).

const { binding, fromNative, HOST_IS_NODE } = require('../internal/binding.js')
const { invalidArg, storeClosed } = require('../internal/errors.js')
const { describe, tlsSettings } = require('../internal/validate.js')
const { OP } = require('../internal/codes.js')
const { TickBatcher, settleAll } = require('../internal/tick-batcher.js')
const { ADAPTED } = require('./adapter.js')
const { MARKER_VALUE } = require('./ownership.js')
const { emptyBatch, packIo, settleResults, splitKeys, pushCall, pushLease, kvMethods, CallbackBatches } = require('./kv-batch.js')

const { GET: OP_GET, SET: OP_SET, DELETE: OP_DELETE, EXISTS: OP_EXISTS } = OP
const { LEASE_ACQUIRE, LEASE_RELEASE, LEASE_RENEW, FENCED_SET, FENCED_DELETE } = OP

const DEFAULT_TABLE = 'awaitly_kv'
/** @type {Record<string, number>} */
const DEFAULTS = {
  poolSize: 4,
  connectTimeout: 5000,
  commandTimeout: 5000,
  sweepInterval: 60_000,
  maxBatch: 64,
}

const OPTIONS = [
  'connectionString',
  'host',
  'port',
  'user',
  'password',
  'database',
  'schema',
  'table',
  'poolSize',
  'connectTimeout',
  'commandTimeout',
  'sweepInterval',
  'maxBatch',
  'tls',
  'transport',
]

/**
 * An integer option in min..max, or its default.
 * @param {Record<string, any>} options
 * @param {string} name
 * @param {number} min
 * @param {number} max
 * @param {string} unit
 * @returns {number}
 */
function intOption(options, name, min, max, unit) {
  const value = options[name]
  if (value === undefined) return DEFAULTS[name]
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalidArg(`createPostgresStore: ${name} must be an integer${unit} in ${min}..${max}, got ${String(value)}`)
  }
  return value
}

/**
 * A string option (`empty`: may it be ''), or undefined.
 * @param {Record<string, any>} options
 * @param {string} name
 * @param {boolean} [empty]
 * @returns {string | undefined}
 */
function stringOption(options, name, empty = false) {
  const value = options[name]
  if (value === undefined) return undefined
  if (typeof value !== 'string' || (!empty && value.length === 0)) {
    throw invalidArg(`createPostgresStore: ${name} must be a${empty ? '' : ' non-empty'} string, got ${describe(value)}`)
  }
  return value
}

/**
 * The `tls` option: true, or { ca, cert, key, servername, rejectUnauthorized }.
 * @param {unknown} tls
 */
function tlsOption(tls) {
  if (tls === undefined || tls === false) return { tls: false }
  if (tls === true) return { tls: true }
  if (tls === null || typeof tls !== 'object' || Array.isArray(tls)) {
    throw invalidArg('createPostgresStore: tls must be true or an object like { ca, cert, key, servername, rejectUnauthorized }')
  }
  const t = tlsSettings('createPostgresStore', /** @type {Record<string, unknown>} */ (tls))
  return {
    tls: true,
    tlsCa: t.ca,
    tlsCert: t.cert,
    tlsKey: t.key,
    tlsServername: t.servername,
    tlsRejectUnauthorized: t.rejectUnauthorized,
  }
}

/**
 * A KeyValueStore on PostgreSQL (README "PostgreSQL"): options are checked
 * here and in Rust (names, connection string, TLS material) before any
 * connection is made; the schema is created on first use.
 * @param {Record<string, any>} [options] user input, checked here
 */
function createPostgresStore(options = {}) {
  if (options === null || typeof options !== 'object' || Array.isArray(options))
    throw invalidArg('createPostgresStore: options must be an object')
  for (const k of Object.keys(options)) {
    if (!OPTIONS.includes(k)) throw invalidArg(`createPostgresStore: ${k} is not an option (${OPTIONS.join(', ')})`)
  }
  const maxBatch = intOption(options, 'maxBatch', 1, 100_000, ' (calls per pipeline)')
  const transport = options.transport === undefined ? 'auto' : options.transport
  if (transport !== 'auto' && transport !== 'tokio') {
    throw invalidArg(`createPostgresStore: transport must be 'auto' or 'tokio', got ${describe(transport)}`)
  }
  const native = new binding.NativePostgresStore({
    connectionString: stringOption(options, 'connectionString'),
    host: stringOption(options, 'host'),
    port: options.port === undefined ? undefined : intOption(options, 'port', 1, 65535, ''),
    user: stringOption(options, 'user'),
    password: stringOption(options, 'password', true),
    database: stringOption(options, 'database'),
    // names are checked (and quoted) in Rust
    schema: stringOption(options, 'schema', true),
    table: stringOption(options, 'table', true) ?? DEFAULT_TABLE,
    poolSize: intOption(options, 'poolSize', 1, 1000, ''),
    connectTimeout: intOption(options, 'connectTimeout', 1, 2 ** 31 - 1, ' number of milliseconds'),
    commandTimeout: intOption(options, 'commandTimeout', 1, 2 ** 31 - 1, ' number of milliseconds'),
    sweepInterval: intOption(options, 'sweepInterval', 1, 2 ** 31 - 1, ' number of milliseconds'),
    ...tlsOption(options.tls),
    // Bun and Deno run napi without Node's libuv loop: tokio there
    transport: transport === 'auto' && !HOST_IS_NODE ? 'tokio' : transport,
  })
  // on the JS thread, batches are answered through one callback; on tokio,
  // native.exec resolves a promise per batch
  const answered = native.transport === 'direct' ? new CallbackBatches(native) : null
  // a batch's kinds, ttls and lengths on their way to exec (packIo), reused
  /** @type {Int32Array} */
  let io = new Int32Array(0)
  /** @type {TickBatcher<import('./kv-batch.js').DataBatch>} */
  const batcher = new TickBatcher(maxBatch, emptyBatch, (batch) => {
    if (answered) return answered.send(batch)
    io = packIo(batch, io)
    native.exec(io, batch.ops.length, batch.lens.length, batch.blob).then(
      (out) => settleResults([batch], 0, out.meta.length, out.meta, out.blob, out.errors),
      (/** @type {Error} */ e) => settleAll(batch.waiters, fromNative(e)),
    )
  })
  let closed = false
  /** @type {(op: number, key: string, value: string | undefined, ttl: number) => Promise<any>} */
  const enqueue = (op, key, value, ttl) => (closed ? Promise.reject(storeClosed()) : pushCall(batcher, op, key, value, ttl))
  /** @type {(p: Promise<any>) => Promise<any>} */
  const native_ = (p) => (closed ? Promise.reject(storeClosed()) : p.catch((e) => Promise.reject(fromNative(e))))
  /** @type {(pattern: string) => Promise<string[]>} */
  const keys = (pattern) => native_(native.keys(pattern)).then(splitKeys)
  /** @type {(op: number, ttlMs: number, prefix: string, id: string, token: string, value: string) => Promise<any>} */
  const lease = (op, ttlMs, prefix, id, token, value) =>
    closed ? Promise.reject(storeClosed()) : pushLease(batcher, op, ttlMs, prefix, id, token, value)

  const store = {
    ...kvMethods(enqueue),
    /**
     * Keys matching a Redis glob: an index range and an escaped LIKE, then the exact glob.
     * @param {string} pattern
     */
    keys(pattern) {
      if (typeof pattern !== 'string') return Promise.reject(invalidArg(`keys: pattern must be a string, got ${describe(pattern)}`))
      return keys(pattern)
    },
    /** Connect now (creating the schema on first use) and run an empty query. */
    ping() {
      return native_(native.ping())
    },
    /** Delete expired rows now, in batches, as the background sweep does; resolves to the count. */
    sweep() {
      return native_(native.sweep())
    },
    /** Close the pool: the calls already made settle first; later calls reject with ERR_STORE_CLOSED. */
    async close() {
      if (closed) return
      batcher.flush()
      closed = true
      await native.close()
    },
    /** Where the calls run: 'direct' (the JS thread itself, `transport: 'auto'` in Node) or 'tokio'. */
    get transport() {
      return native.transport
    },
    /** Connections opened so far (pool slots + reconnects). */
    get connectionsOpened() {
      return native.connectionsOpened
    },
  }
  /** @type {import('./adapter.js').Adapted} */
  const adapted = {
    get: (key) => enqueue(OP_GET, key, undefined, 0),
    // one tick: batches of maxBatch
    getMany: (ks) => Promise.all(ks.map((k) => enqueue(OP_GET, k, undefined, 0))),
    set: (key, value, ttl) => enqueue(OP_SET, key, value, ttl),
    // a committed write is durable (synchronous_commit)
    setDurable: (key, value) => enqueue(OP_SET, key, value, 0),
    delete: (key) => enqueue(OP_DELETE, key, undefined, 0),
    exists: (key) => enqueue(OP_EXISTS, key, undefined, 0),
    keys,
    registerOwner: (marker) => enqueue(OP_SET, marker, MARKER_VALUE, 0),
    clearCachePrefix: (prefix) => native_(native.clearCachePrefix(prefix)),
    ordered: true,
    // run leases: rows of the store's table, their keys named in Rust
    // (postgresLeaseKey, src/postgres/sql.rs); saves and deletes of a held
    // run are fenced (one statement each)
    leases: {
      acquire: (prefix, id, ttlMs) => lease(LEASE_ACQUIRE, ttlMs, prefix, id, '', ''),
      release: (prefix, id, token) => lease(LEASE_RELEASE, 0, prefix, id, token, ''),
      renew: (prefix, id, token, ttlMs) => lease(LEASE_RENEW, ttlMs, prefix, id, token, ''),
      fencedSet: (prefix, id, token, value) => lease(FENCED_SET, 0, prefix, id, token, value),
      fencedDelete: (prefix, id, token) => lease(FENCED_DELETE, 0, prefix, id, token, ''),
      // the live lease rows (keys() leaves expired rows out); their expiry is not read
      list: async (prefix) => {
        const base = binding.postgresLeaseKey(prefix, '')
        const live = (await keys(`${binding.escapeGlob(base)}*`)).filter((k) => k.startsWith(base))
        return live.map((k) => ({ id: k.slice(base.length), state: /** @type {'held'} */ ('held'), expiresInMs: null }))
      },
      evict: (prefix, id) => adapted.delete(binding.postgresLeaseKey(prefix, id)).then(Boolean),
    },
    // keys() reads an index range in one piece: no SCAN pages
    scanPage: () => Promise.resolve(null),
  }
  Object.defineProperty(store, ADAPTED, { value: adapted })
  return store
}

module.exports = { createPostgresStore }
