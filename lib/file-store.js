'use strict'
// createFileStore: a file-backed KeyValueStore (get/set/delete/exists/keys),
// native (src/file/kv.rs `KvFiles`). One file per key, named by the same
// scheme as the file cache, holding our envelope {"key","value","expiresAt"}
// so keys() can list the exact original keys. TTLs are in seconds, like the
// spec's KeyValueStore, validated exactly as the Redis store validates them
// (storeTtl); expiry is judged with Date.now().

const { binding, call, invalidArg: typeError, storeTtl, drainFileDirsOnExit } = require('./native.js')
const { LeaseBatcher } = require('./lease-batcher.js')

/** Marks our native file stores (their leases are native too). */
const NATIVE_FILE_STORE = Symbol.for('awaitly-persistence-native.fileStore')

// Owner markers of KV caches and state persistences over this store (see
// lib/kv-cache.js): hidden files `.awaitly-owner.<hash>` next to the key
// files, never a key of the store.
const FILE_OWNERS = Symbol('awaitlyFileOwners')

function str(value, what) {
  if (typeof value !== 'string') {
    throw typeError(`${what} must be a string, got ${value === null ? 'null' : typeof value}`)
  }
  return value
}

function createFileStore(options) {
  if (options === null || typeof options !== 'object') throw typeError('createFileStore: options must be an object')
  const { directory, extension = '.kv.json', durable = true, reuseFiles = true } = options
  if (typeof directory !== 'string' || directory === '') {
    throw typeError('createFileStore: options.directory must be a non-empty string')
  }
  if (typeof extension !== 'string') throw typeError('createFileStore: options.extension must be a string')
  if (typeof durable !== 'boolean') throw typeError('createFileStore: options.durable must be a boolean')
  if (typeof reuseFiles !== 'boolean') throw typeError('createFileStore: options.reuseFiles must be a boolean')
  const native = new binding.NativeFileStore(directory, extension, durable, reuseFiles)
  drainFileDirsOnExit()

  const store = {
    [FILE_OWNERS]: {
      register: (marker) => call(native.registerOwner(marker)),
      list: () => call(native.ownerKeys()),
    },
    async get(key) {
      return call(native.get(str(key, 'key'), Date.now()))
    },
    async set(key, value, opts) {
      str(key, 'key')
      str(value, 'value')
      // the Redis store's validator: whole seconds, absent/0/null = no expiry
      const ttl = storeTtl(opts)
      await call(native.set(key, value, ttl === 0 ? null : Date.now() + ttl * 1000))
    },
    async delete(key) {
      return call(native.delete(str(key, 'key'), Date.now()))
    },
    async exists(key) {
      return call(native.exists(str(key, 'key'), Date.now()))
    },
    async keys(pattern) {
      return call(native.keys(str(pattern, 'pattern'), Date.now()))
    },
  }
  // run leases (src/file/lease.rs), for createSnapshotStore; not enumerable
  const leases = new LeaseBatcher((kinds, ttls, prefixes, ids, tokens) => native.leaseExec(kinds, ttls, prefixes, ids, tokens), 256)
  Object.defineProperty(store, NATIVE_FILE_STORE, {
    value: {
      leaseAcquire: (prefix, id, ttlMs) => leases.acquire(prefix, id, ttlMs),
      leaseRelease: (prefix, id, token) => leases.release(prefix, id, token),
      leaseRenew: (prefix, id, token, ttlMs) => leases.renew(prefix, id, token, ttlMs),
    },
  })
  return store
}

module.exports = { createFileStore }
// Internals for the other lib/ modules; not enumerable, so index.js does not re-export them.
Object.defineProperty(module.exports, 'internal', { value: { NATIVE_FILE_STORE, FILE_OWNERS } })
