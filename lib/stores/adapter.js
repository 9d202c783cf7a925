'use strict'
// The store adapter: `adapt(store)` gives the KV cache, the state persistence
// and the snapshot store one set of operations over any KeyValueStore. Our
// native stores (redis.js, file.js) carry their own adapted operations under
// the ADAPTED symbol (the Redis store's go straight to its tick batcher and
// clear a prefix in one native call; the file store keeps owner markers as
// hidden files and has native leases); any other store gets the generic
// adapter below, built on its public get/set/delete/exists/keys.

const { binding } = require('../internal/binding.js')
const { invalidArg } = require('../internal/errors.js')
const { MARKER_VALUE, isMarkerShaped, allKeysUnder } = require('./ownership.js')

/**
 * @typedef {object} Leases run leases (WorkflowLock), native
 * @property {(prefix: string, id: string, ttlMs: number) => Promise<string | null>} acquire the owner token, or null when held
 * @property {(prefix: string, id: string, token: string) => Promise<boolean>} release
 * @property {(prefix: string, id: string, token: string, ttlMs: number) => Promise<boolean>} renew
 * @property {(prefix: string, id: string, token: string, value: string) => Promise<void>} fencedSet writes snapshot `prefix + id` only if `token` still holds its lease (atomically), else rejects ERR_LEASE_LOST
 * @property {(prefix: string, id: string, token: string) => Promise<void>} fencedDelete deletes snapshot `prefix + id` likewise
 * @property {(prefix: string) => Promise<LeaseRecord[]>} list the leases under `prefix` (the inspector's listing)
 * @property {(prefix: string, id: string) => Promise<boolean>} evict removes a lease whoever holds it: whether a live one was removed
 *
 * @typedef {object} LeaseRecord a lease as `list` sees it
 * @property {string | null} id the run id (null: a file record that cannot be read)
 * @property {'held' | 'expired' | 'corrupt'} state Redis lease keys exist only while held; a file record stays `expired` after its holder died, until acquired again or evicted
 * @property {number | null} expiresInMs time left while held (null: not held, a Redis key without expiry, or a PostgreSQL row, whose expiry is not read)
 * @property {string} [file] the file record's name (file store)
 * @property {string} [corrupt] why a file record cannot be read
 *
 * @typedef {object} Adapted
 * @property {(key: string) => Promise<unknown>} get the stored value, null/undefined when absent
 * @property {(keys: string[]) => Promise<unknown[]>} getMany the values of `keys`, in order
 * @property {(key: string, value: string, ttl: number) => Promise<unknown>} set ttl in whole seconds, 0 = no expiry
 * @property {(key: string, value: string) => Promise<unknown>} setDurable a document write (Redis: with waitReplicas, WAITs for them)
 * @property {(key: string) => Promise<unknown>} delete
 * @property {(key: string) => Promise<unknown>} exists
 * @property {(pattern: string) => Promise<string[]>} keys the keys matching a glob (a KeyValueStore's contract)
 * @property {(marker: string) => Promise<unknown>} registerOwner writes an owner marker (ownership.js)
 * @property {(prefix: string) => Promise<unknown>} clearCachePrefix a KV cache's clear: deletes what ownership lets it
 * @property {boolean} ordered calls made in one tick land in call order (one pipeline)
 * @property {(cursor: string, pattern: string) => Promise<{ cursor: string, keys: string[] } | null>} scanPage one SCAN page of a single Redis server (cursor '0' starts, a returned '0' ends); null where keys cannot be paged (use `keys`)
 * @property {Leases | null} leases
 */

/** Marks the adapted operations a native store carries (registered, so a second copy of this package loaded in the process recognises them). */
const ADAPTED = Symbol.for('awaitly-persistence-native.adapted')

/** Store calls in flight at once on a store of unknown kind (reads of a load, deletes of a clear). */
const IN_FLIGHT = 100

const STORE_METHODS = ['get', 'set', 'delete', 'exists', 'keys']

/**
 * A KeyValueStore argument: an object with the methods the adapter calls.
 * @param {string} fn
 * @param {unknown} store
 */
function checkStore(fn, store) {
  if (store === null || typeof store !== 'object') throw invalidArg(`${fn}: store must be a KeyValueStore object`)
  for (const m of STORE_METHODS) {
    if (typeof (/** @type {Record<string, unknown>} */ (store)[m]) !== 'function') {
      throw invalidArg(`${fn}: store.${m} must be a function`)
    }
  }
}

/**
 * `fn` over `items`, at most IN_FLIGHT calls at a time; results in order.
 * @template T, R
 * @param {T[]} items
 * @param {(item: T) => Promise<R>} fn
 */
async function inBatches(items, fn) {
  /** @type {R[]} */
  const out = []
  for (let i = 0; i < items.length; i += IN_FLIGHT) {
    const part = await Promise.all(items.slice(i, i + IN_FLIGHT).map(fn))
    for (const v of part) out.push(v)
  }
  return out
}

/**
 * A cache's clear of `prefix` on a store without a native one: the keys under
 * it, the owners among them (`ownerKeys`), and the deletions the Rust core's
 * rule allows.
 * @param {Adapted} adapted
 * @param {(candidates: string[]) => Promise<string[]>} ownerKeys
 * @param {(key: string) => Promise<unknown>} remove
 * @param {string} prefix
 */
async function clearByKeys(adapted, ownerKeys, remove, prefix) {
  const candidates = await allKeysUnder(adapted, prefix)
  const doomed = binding.cacheDeletableKeys(prefix, await ownerKeys(candidates), candidates)
  await inBatches(doomed, remove)
}

/**
 * The operations of any KeyValueStore; `overrides` are a native store's own.
 * @param {any} store a KeyValueStore (checked by checkStore)
 * @param {Partial<Adapted> & { ownerKeys?: (candidates: string[]) => Promise<string[]> }} [overrides]
 * @returns {Adapted}
 */
function generic(store, overrides = {}) {
  const { ownerKeys: ownOwnerKeys, ...own } = overrides
  /** The marker-shaped candidates that hold the marker value. */
  const markerKeys = async (/** @type {string[]} */ candidates) => {
    const shaped = candidates.filter(isMarkerShaped)
    const values = await Promise.all(shaped.map((k) => store.get(k)))
    return shaped.filter((_, i) => values[i] === MARKER_VALUE)
  }
  const ownerKeys = ownOwnerKeys ?? markerKeys
  /** @type {Adapted} */
  const adapted = {
    get: (key) => store.get(key),
    getMany: (keys) => inBatches(keys, (k) => store.get(k)),
    set: (key, value, ttl) => store.set(key, value, ttl ? { ttl } : undefined),
    setDurable: (key, value) => store.set(key, value),
    delete: (key) => store.delete(key),
    exists: (key) => store.exists(key),
    keys: (pattern) => store.keys(pattern),
    registerOwner: (marker) => Promise.resolve(store.set(marker, MARKER_VALUE)),
    clearCachePrefix: (prefix) => clearByKeys(adapted, ownerKeys, (k) => store.delete(k), prefix),
    ordered: false,
    leases: null,
    scanPage: () => Promise.resolve(null),
    ...own,
  }
  return adapted
}

/**
 * The adapted operations of `store`: a native store's own, or the generic ones.
 * @param {any} store a KeyValueStore
 * @returns {Adapted}
 */
function adapt(store) {
  return store[ADAPTED] ?? generic(store)
}

module.exports = { ADAPTED, adapt, generic, checkStore }
