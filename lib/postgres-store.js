'use strict'
// createPostgresStore: a KeyValueStore on PostgreSQL, native (src/postgres/:
// tokio-postgres, a pool, one table of bytea rows). The JS side only checks
// options and arguments and batches: the calls of one tick go to Rust as ONE
// native call (pipelined on one connection), exactly as the Redis store's
// (the same Batcher and result encoding). Over it, createKVCache,
// createStatePersistence and createSnapshotStore take their native paths,
// and a snapshot store is also a WorkflowLock (one-statement leases, judged
// by the server's clock).

const { binding, fromNative, invalidArg: typeError, storeTtl } = require('./native.js')
const { LeaseBatcher } = require('./lease-batcher.js')
const { NATIVE_STORE, Batcher, splitKeys } = require('./redis-store.js').internal

const OP_GET = 0
const OP_SET = 1
const OP_DELETE = 2
const OP_EXISTS = 3

const DEFAULTS = {
  table: 'awaitly_kv',
  poolSize: 4,
  connectTimeout: 5000,
  commandTimeout: 5000,
  sweepInterval: 60_000,
  maxBatch: 64,
}

const OPTIONS = new Set([
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
])

function intOption(options, name, min, max, unit) {
  const value = options[name]
  if (value === undefined) return DEFAULTS[name]
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw typeError(`createPostgresStore: ${name} must be an integer${unit} in ${min}..${max}, got ${String(value)}`)
  }
  return value
}

function stringOption(options, name) {
  const value = options[name]
  if (value === undefined) return undefined
  if (typeof value !== 'string' || value.length === 0) throw typeError(`createPostgresStore: ${name} must be a non-empty string`)
  return value
}

function passwordOption(password) {
  if (password !== undefined && typeof password !== 'string') throw typeError('createPostgresStore: password must be a string')
  return password
}

function tlsOption(tls) {
  if (tls === undefined || tls === false) return { tls: false }
  if (tls === true) return { tls: true }
  if (tls === null || typeof tls !== 'object' || Array.isArray(tls)) {
    throw typeError('createPostgresStore: tls must be true or an object like { ca, cert, key } (PEM strings)')
  }
  for (const f of Object.keys(tls)) {
    if (!['ca', 'cert', 'key'].includes(f)) throw typeError(`createPostgresStore: tls.${f} is not an option (tls takes { ca, cert, key })`)
    if (tls[f] !== undefined && typeof tls[f] !== 'string') throw typeError(`createPostgresStore: tls.${f} must be a PEM string`)
  }
  return { tls: true, tlsCa: tls.ca, tlsCert: tls.cert, tlsKey: tls.key }
}

function keyArg(method, key) {
  if (typeof key !== 'string') throw typeError(`${method}: key must be a string, got ${key === null ? 'null' : typeof key}`)
  return key
}

/**
 * A KeyValueStore on PostgreSQL (see README "PostgreSQL"). Options are
 * checked here and in Rust before any connection is made.
 */
function createPostgresStore(options = {}) {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) throw typeError('createPostgresStore: options must be an object')
  for (const k of Object.keys(options)) {
    if (!OPTIONS.has(k)) throw typeError(`createPostgresStore: ${k} is not an option (${[...OPTIONS].join(', ')})`)
  }
  const table = options.table === undefined ? DEFAULTS.table : options.table
  if (typeof table !== 'string') throw typeError('createPostgresStore: table must be a string')
  if (options.schema !== undefined && typeof options.schema !== 'string') throw typeError('createPostgresStore: schema must be a string')
  const maxBatch = intOption(options, 'maxBatch', 1, 100_000, ' (calls per pipeline)')
  const native = new binding.NativePostgresStore({
    connectionString: stringOption(options, 'connectionString'),
    host: stringOption(options, 'host'),
    port: options.port === undefined ? undefined : intOption(options, 'port', 1, 65535, ''),
    user: stringOption(options, 'user'),
    password: passwordOption(options.password),
    database: stringOption(options, 'database'),
    schema: options.schema,
    table,
    poolSize: intOption(options, 'poolSize', 1, 1000, ''),
    connectTimeout: intOption(options, 'connectTimeout', 1, 2 ** 31 - 1, ' number of milliseconds'),
    commandTimeout: intOption(options, 'commandTimeout', 1, 2 ** 31 - 1, ' number of milliseconds'),
    sweepInterval: intOption(options, 'sweepInterval', 1, 2 ** 31 - 1, ' number of milliseconds'),
    ...tlsOption(options.tls),
  })
  const batcher = new Batcher(native, maxBatch, null)
  const leases = new LeaseBatcher((kinds, ttls, _scopes, keys, tokens) => native.leaseExec(kinds, ttls, keys, tokens), maxBatch)
  let closed = false
  const closedError = () => {
    const e = new Error('store is closed')
    e.code = 'ERR_STORE_CLOSED'
    return e
  }
  const enqueue = (op, key, value, ttl) => (closed ? Promise.reject(closedError()) : batcher.push(op, key, value, ttl))
  const native_ = (p) => (closed ? Promise.reject(closedError()) : p.catch((e) => Promise.reject(fromNative(e))))
  const keys = (pattern) => native_(native.keys(pattern)).then(splitKeys)
  const lease = (fn) => (closed ? Promise.reject(closedError()) : fn())

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
        if (typeof value !== 'string') throw typeError(`set: value must be a string, got ${value === null ? 'null' : typeof value}`)
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
    /** Keys matching a Redis glob: an index range plus an escaped LIKE, then the exact glob. */
    keys(pattern) {
      if (typeof pattern !== 'string') return Promise.reject(typeError('keys: pattern must be a string'))
      return keys(pattern)
    },
    /** Connect now (if needed: the schema is created on first use) and run an empty query. */
    ping() {
      return native_(native.ping())
    },
    /** Delete expired rows now, in batches (the background sweep does it every sweepInterval); resolves to the count. */
    sweep() {
      return native_(native.sweep())
    },
    /** Close the pool; calls already made settle first, later calls reject with ERR_STORE_CLOSED. */
    async close() {
      if (closed) return
      batcher.flush()
      leases.flush()
      closed = true
      await native.close()
    },
    /** Connections opened so far (pool slots opened + reconnects). */
    get connectionsOpened() {
      return native.connectionsOpened
    },
  }
  Object.defineProperty(store, NATIVE_STORE, {
    value: {
      get: (key) => enqueue(OP_GET, key, undefined, 0),
      set: (key, value, ttl) => enqueue(OP_SET, key, value, ttl),
      // a committed INSERT is durable (synchronous_commit)
      setDurable: (key, value) => enqueue(OP_SET, key, value, 0),
      delete: (key) => enqueue(OP_DELETE, key, undefined, 0),
      exists: (key) => enqueue(OP_EXISTS, key, undefined, 0),
      keys,
      clearCachePrefix: (prefix) => native_(native.clearCachePrefix(prefix)),
      // run leases: rows of the store's table (src/postgres/sql.rs)
      leaseAcquire: (key, ttlMs) => lease(() => leases.acquire('', key, ttlMs)),
      leaseRelease: (key, token) => lease(() => leases.release('', key, token)),
      leaseRenew: (key, token, ttlMs) => lease(() => leases.renew('', key, token, ttlMs)),
    },
  })
  return store
}

module.exports = { createPostgresStore }
