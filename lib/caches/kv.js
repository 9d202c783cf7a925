'use strict'
// createKVCache: a StepCache over any KeyValueStore, with a bounded
// in-process LRU for the sync methods. With a native store (createRedisStore)
// the async methods go straight to its tick batcher (one native call and one
// pipeline per tick) and clearAsync is one native SCAN + UNLINK call.
//
// Prefix isolation (see README "Clear isolation"): before its first write a
// cache writes the marker key `<prefix>__awaitly:owner:cache` (a state
// persistence `<prefix>__awaitly:owner:state`), inside its own prefix so a
// user whose ACL allows only `~<prefix>*` can use it; on a native file store
// the marker is a hidden file instead (`.awaitly-owner.<hash>`, no key file).
// clearAsync deletes only keys whose longest known prefix is this cache's own
// and not a state prefix (`workflow:state:` is always one); a longer prefix's
// marker lies in the range it scans. Registry keys of older builds
// (`__awaitly:owner:<kind>:<prefix>`) are honoured, never written. Keys stay
// `${prefix}${key}` as in the JS module, so entries it wrote remain readable.

const { binding } = require('../internal/binding.js')
const { invalidArg } = require('../internal/errors.js')
const { wholeSecondsTtl, checkKey } = require('../internal/validate.js')
const { resultText, parseResultText } = require('../format/serialize.js').internal
const { createMemoryLayer } = require('./memory.js')
const { NATIVE_STORE } = require('../stores/redis.js').internal
const { FILE_OWNERS } = require('../stores/file.js').internal
const { writeBehindOptions, assemble, createTickets } = require('./durable.js')

const STORE_METHODS = ['get', 'set', 'delete', 'exists', 'keys']
const DELETE_BATCH = 100

function checkStore(fn, store) {
  if (store === null || typeof store !== 'object') throw invalidArg(`${fn}: store must be a KeyValueStore object`)
  for (const m of STORE_METHODS) {
    if (typeof store[m] !== 'function') throw invalidArg(`${fn}: store.${m} must be a function`)
  }
}

function checkPrefix(fn, prefix) {
  if (typeof prefix !== 'string') throw invalidArg(`${fn}: prefix must be a string, got ${typeof prefix}`)
  return prefix
}

const MARKER_VALUE = binding.ownerMarkerValue()
const MARKER_SUFFIXES = binding.ownerMarkerSuffixes()
const LEGACY_PATTERN = `${binding.escapeGlob(binding.ownerLegacyPrefix())}*`
const isMarkerShaped = (k) => MARKER_SUFFIXES.some((s) => k.endsWith(s))

/** A key or run id ending like a marker key is reserved (TypeError, nothing written). */
function checkNotReserved(fn, key) {
  if (isMarkerShaped(key)) {
    throw invalidArg(`${fn}: ${JSON.stringify(key)} is reserved (keys ending in ${MARKER_SUFFIXES.join(' or ')} mark prefix owners)`)
  }
  return key
}

/** Writes `prefix`'s owner marker of `kind` into `store`, once (retried after a failure). */
function ownerRegistration(store, kind, prefix) {
  const marker = binding.ownerMarkerKey(kind, prefix)
  const native = store[NATIVE_STORE]
  const files = store[FILE_OWNERS]
  let done = false
  let pending = null
  return function ensure() {
    if (done) return null
    if (!pending) {
      const write = native
        ? native.set(marker, MARKER_VALUE, 0)
        : files
          ? files.register(marker)
          : Promise.resolve(store.set(marker, MARKER_VALUE))
      pending = write.then(
        () => {
          done = true
        },
        (e) => {
          pending = null
          throw e
        },
      )
    }
    return pending
  }
}

/** Every key (from `keys`) under `prefix`, markers included, as stores with loose matching may return more. */
async function allKeysUnder(store, prefix) {
  const native = store[NATIVE_STORE]
  const pattern = `${binding.escapeGlob(prefix)}*`
  const keys = native ? await native.keys(pattern) : await store.keys(pattern)
  return keys.filter((k) => typeof k === 'string' && k.startsWith(prefix))
}

/** The data keys under `prefix`: no marker keys. */
async function keysUnder(store, prefix) {
  return (await allKeysUnder(store, prefix)).filter((k) => !isMarkerShaped(k))
}

/**
 * The owner keys a clear of `candidates` must honour, on a store written in
 * JavaScript or the native file store: the marker-shaped candidates that
 * hold the marker value (file store: its hidden owner files), and registry
 * keys of older builds.
 */
async function ownerKeys(store, candidates) {
  const files = store[FILE_OWNERS]
  const shaped = files ? [] : candidates.filter(isMarkerShaped)
  const [markers, values, legacy] = await Promise.all([
    files ? files.list() : [],
    Promise.all(shaped.map((k) => store.get(k))),
    store.keys(LEGACY_PATTERN),
  ])
  const out = markers.concat(legacy.filter((k) => typeof k === 'string'))
  shaped.forEach((k, i) => {
    if (values[i] === MARKER_VALUE) out.push(k)
  })
  return out
}

/**
 * A StepCache backed by a KeyValueStore.
 * @param {{ store, prefix?: string, ttl?: number, memoryMaxSize?: number }} options
 */
function createKVCache(options) {
  if (options === null || typeof options !== 'object') throw invalidArg('createKVCache: options must be an object')
  const { store } = options
  checkStore('createKVCache', store)
  const prefix = checkPrefix('createKVCache', options.prefix === undefined ? 'workflow:' : options.prefix)
  const ttl = wholeSecondsTtl('createKVCache: ttl', options.ttl)
  const memoryMaxSize = options.memoryMaxSize === undefined ? 1000 : options.memoryMaxSize
  const memory = createMemoryLayer('createKVCache', memoryMaxSize)
  const native = store[NATIVE_STORE]
  const register = ownerRegistration(store, 'cache', prefix)
  const ttlOpts = ttl ? { ttl } : undefined
  const wbOpts = writeBehindOptions('createKVCache', options)
  const tickets = createTickets()
  // A clear in flight (SCAN/keys + deletes, several round trips): operations
  // called after it wait for it, so it cannot delete what was written later.
  let clearing = null
  const afterClear = (fn) => (clearing ? clearing.then(fn, fn) : fn())
  // One key's writes and deletes in flight: a call on a key whose previous
  // write or delete has not settled waits for it. The store's calls of
  // different ticks are separate requests (separate native tasks on the Redis
  // store), which need not arrive in order; the calls of one tick are one
  // pipeline and keep their order, so only a key's second call in flight waits.
  const inflight = new Map()
  const perKey = (key, fn) => {
    const prev = inflight.get(key)
    const run = prev ? prev.then(() => afterClear(fn)) : afterClear(fn)
    const tail = run.then(
      () => undefined,
      () => undefined,
    )
    inflight.set(key, tail)
    tail.then(() => {
      if (inflight.get(key) === tail) inflight.delete(key)
    })
    return run
  }

  const sGet = native ? native.get : (k) => store.get(k)
  const sSet = native ? (k, v) => native.set(k, v, ttl) : (k, v) => store.set(k, v, ttlOpts)
  const sDel = native ? native.delete : (k) => store.delete(k)
  const sExists = native ? native.exists : (k) => store.exists(k)

  const cache = assemble('createKVCache', 'ERR_STORE', memory, {
    async getAsync(key) {
      const fullKey = `${prefix}${checkNotReserved('createKVCache', checkKey(key))}`
      const data = await afterClear(() => sGet(fullKey))
      if (data === null || data === undefined) return undefined
      const result = parseResultText(fullKey, data)
      memory.set(key, result)
      return result
    },

    /**
     * Read what the store holds under this cache's prefix into the in-process
     * layer, up to its bound: the keys by SCAN (never KEYS) through keys(),
     * then the values with GETs issued in one tick (one pipeline per
     * maxBatch on the native Redis store; batches of 100 on other stores).
     * A key set or deleted meanwhile keeps its newer in-process state. An
     * entry that cannot be decoded rejects ERR_CORRUPT (as getAsync), after
     * the others are loaded. Resolves with the number of entries loaded.
     */
    async load() {
      const limit = memoryMaxSize
      if (limit === 0) return 0
      const mark = tickets.hold()
      try {
        return await loadFrom(mark, limit)
      } finally {
        tickets.release()
      }
    },

    async hasAsync(key) {
      const fullKey = `${prefix}${checkNotReserved('createKVCache', checkKey(key))}`
      return afterClear(() => sExists(fullKey))
    },

    // the file cache's check and encoding (resultText): a non-Result, circular
    // or BigInt value is a TypeError naming the key, before anything is written
    writeOnly: (key, json) =>
      perKey(key, () => {
        const reg = register()
        const write = sSet(`${prefix}${key}`, json)
        return reg ? Promise.all([reg, write]) : write
      }),

    removeOnly: (key) => perKey(checkNotReserved('createKVCache', key), () => sDel(`${prefix}${key}`)),

    clearOnly() {
      // the writes and deletes called before this clear have landed before it starts
      const before = inflight.size ? Promise.allSettled([...inflight.values()]) : null
      const run = afterClear(async () => {
        if (before) await before
        if (native) {
          await native.clearCachePrefix(prefix)
        } else {
          const candidates = await allKeysUnder(store, prefix)
          const doomed = binding.cacheDeletableKeys(prefix, await ownerKeys(store, candidates), candidates)
          for (let i = 0; i < doomed.length; i += DELETE_BATCH) {
            await Promise.all(doomed.slice(i, i + DELETE_BATCH).map((k) => store.delete(k)))
          }
        }
      })
      const mark = run.then(
        () => {
          if (clearing === mark) clearing = null
        },
        () => {
          if (clearing === mark) clearing = null
        },
      )
      clearing = mark
      return run
    },
  }, wbOpts, (key, result) => resultText(checkNotReserved('createKVCache', key), result), tickets)

  async function loadFrom(mark, limit) {
    const full = await afterClear(() => keysUnder(store, prefix))
    const wanted = full.length > limit ? full.slice(0, limit) : full
    let values
    if (native) {
      values = await Promise.all(wanted.map((k) => native.get(k))) // one tick: pipelines of maxBatch
    } else {
      values = []
      for (let i = 0; i < wanted.length; i += DELETE_BATCH) {
        const part = await Promise.all(wanted.slice(i, i + DELETE_BATCH).map((k) => store.get(k)))
        for (const v of part) values.push(v)
      }
    }
    let loaded = 0
    let firstCorrupt = null
    for (let i = 0; i < wanted.length; i++) {
      const data = values[i]
      if (data === null || data === undefined) continue // expired or deleted since the SCAN
      const key = wanted[i].slice(prefix.length)
      if (tickets.touchedAfter(key, mark)) continue
      try {
        memory.set(key, parseResultText(wanted[i], data))
        loaded++
      } catch (e) {
        if (firstCorrupt === null) firstCorrupt = e
      }
    }
    if (firstCorrupt) throw firstCorrupt
    return loaded
  }
  return cache
}

module.exports = { createKVCache }
Object.defineProperty(module.exports, 'internal', {
  value: { checkStore, checkPrefix, checkNotReserved, isMarkerShaped, ownerRegistration, keysUnder },
})
