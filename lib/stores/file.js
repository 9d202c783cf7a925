'use strict'
// createFileStore: a file-backed KeyValueStore (get/set/delete/exists/keys),
// native (src/file/kv.rs `KvFiles`). One file per key, named by the same
// scheme as the file cache, holding our envelope {"key","value","expiresAt"}
// so keys() can list the exact original keys. TTLs are in seconds, like the
// spec's KeyValueStore, validated exactly as the Redis store validates them
// (storeTtl); expiry is judged with Date.now().

const { binding, call } = require('../internal/binding.js')
const { invalidArg } = require('../internal/errors.js')
const { checkString, storeTtl } = require('../internal/validate.js')
const { drainFileDirsOnExit } = require('../internal/exit.js')
const { leaseCalls } = require('./leases.js')
const { ADAPTED, generic } = require('./adapter.js')

function createFileStore(options) {
  if (options === null || typeof options !== 'object') throw invalidArg('createFileStore: options must be an object')
  const { directory, extension = '.kv.json', durable = true, reuseFiles = true } = options
  if (typeof directory !== 'string' || directory === '') {
    throw invalidArg('createFileStore: options.directory must be a non-empty string')
  }
  if (typeof extension !== 'string') throw invalidArg('createFileStore: options.extension must be a string')
  if (typeof durable !== 'boolean') throw invalidArg('createFileStore: options.durable must be a boolean')
  if (typeof reuseFiles !== 'boolean') throw invalidArg('createFileStore: options.reuseFiles must be a boolean')
  const native = new binding.NativeFileStore(directory, extension, durable, reuseFiles)
  drainFileDirsOnExit()

  const store = {
    async get(key) {
      return call(native.get(checkString('key', key), Date.now()))
    },
    async set(key, value, opts) {
      checkString('key', key)
      checkString('value', value)
      // the Redis store's validator: whole seconds, absent/0/null = no expiry
      const ttl = storeTtl(opts)
      await call(native.set(key, value, ttl === 0 ? null : Date.now() + ttl * 1000))
    },
    async delete(key) {
      return call(native.delete(checkString('key', key), Date.now()))
    },
    async exists(key) {
      return call(native.exists(checkString('key', key), Date.now()))
    },
    async keys(pattern) {
      return call(native.keys(checkString('pattern', pattern), Date.now()))
    },
  }
  // run leases and fenced snapshot writes (src/file/lease.rs), for createSnapshotStore
  const leases = leaseCalls(
    (kinds, ttls, prefixes, ids, tokens, values) => native.leaseExec(kinds, ttls, prefixes, ids, tokens, values),
    256,
  )
  // Owner markers are hidden files `.awaitly-owner.<hash>` next to the key
  // files (lib/stores/ownership.js), never keys of the store.
  Object.defineProperty(store, ADAPTED, {
    value: generic(store, {
      registerOwner: (marker) => call(native.registerOwner(marker)),
      ownerKeys: () => call(native.ownerKeys()),
      leases: {
        acquire: leases.acquire,
        release: leases.release,
        renew: leases.renew,
        fencedSet: leases.fencedSet,
        fencedDelete: leases.fencedDelete,
        list: async (prefix) => {
          /** @type {import('./adapter.js').LeaseRecord[]} */
          const out = []
          for (const r of await call(native.leaseList())) {
            if (r.corrupt !== null && r.corrupt !== undefined) {
              out.push({ id: null, state: 'corrupt', expiresInMs: null, file: r.file, corrupt: r.corrupt })
              continue
            }
            // prefix and id are JSON strings (exact UTF-16); records of another prefix are not this listing's
            if (r.prefix === null || r.prefix === undefined || JSON.parse(r.prefix) !== prefix) continue
            const live = r.remainingMs !== null && r.remainingMs !== undefined
            out.push({
              id: JSON.parse(/** @type {string} */ (r.id)),
              state: live ? 'held' : 'expired',
              expiresInMs: live ? /** @type {number} */ (r.remainingMs) : null,
              file: r.file,
            })
          }
          return out
        },
        evict: (prefix, id) => call(native.leaseEvict(prefix, id)),
      },
    }),
  })
  return store
}

module.exports = { createFileStore }
