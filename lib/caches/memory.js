'use strict'
// createMemoryCache: a synchronous StepCache with O(1) LRU eviction and TTL.
//
// Split of work (see src/cache/lru.rs and src/cache/binding.rs):
// - Rust owns the recency order, slot allocation, which entry is evicted,
//   each entry's stored-at time and effective TTL (written into `meta`),
//   option validation, stale purging and the eviction/expiration counters.
// - This glue holds what must stay JavaScript: the key → slot Map and the
//   keys/values by slot (so `get` returns the very object that was stored),
//   and the hot read path. A hit reads `meta` (shared Float64Array) to apply
//   the expiry rule and appends its slot to `ring` (shared Uint32Array); Rust
//   applies those hits, in order, at the start of its next call, before it
//   reads or changes the order. So get/has never cross into native code
//   (except one flush per RING hits), set/delete cross exactly once.
// - Memory follows what is used: a new cache has no `meta` and no `ring`;
//   the first set allocates `meta` for 4 slots, the first hit to record a
//   ring of 16, and both double as entries and hits come (`meta` up to
//   maxSize, `ring` up to RING). The native registry keeps them until the
//   cache's finalizer runs, after a GC and a turn of the event loop, so
//   arrays sized for maxSize up front would hold memory for every cache made
//   in a synchronous loop (__test__ memory-cache-alloc bounds it).

const { binding } = require('../internal/binding.js')
const { invalidArg } = require('../internal/errors.js')
const { describe, checkKey } = require('../internal/validate.js')

const {
  memoryCacheInit,
  memoryCacheCreate,
  memoryCacheInsert,
  memoryCacheUpdate,
  memoryCacheRemove,
  memoryCacheFlush,
  memoryCacheClear,
  memoryCachePurgeStale,
  memoryCacheSetMeta,
  memoryCacheSetRing,
  memoryCacheCounters,
  memoryCacheThrow,
} = binding

/** Returned by a native call that failed; memoryCacheThrow() throws its error. */
const ERR = 0xffffffff

/** Hits buffered before a flush call, at most (the ring starts at RING_INITIAL and doubles). */
const RING = 1024
const RING_INITIAL = 16
/** Slots of a cache's first metadata array (then doubled as needed, up to maxSize). */
const INITIAL = 4
// Placeholders until a cache's first set / first recorded hit (never written:
// `meta` is read only for a slot in use, the ring only below `ringCap`).
const NO_META = new Float64Array(0)
const NO_RING = new Uint32Array(0)

// regs layout (see src/cache/binding.rs)
const R_PENDING = 0
const R_NOW = 1
const R_TTL_TAG = 2
const R_TTL = 3
const R_SLOT = 4
const R_EXPIRED = 5
const R_HANDLE = 6

const TYPE_TAGS = ['string', 'boolean', 'object', 'null', 'bigint', 'symbol', 'function']
const tagOf = (v) => 2 + TYPE_TAGS.indexOf(v === null ? 'null' : typeof v)

const OWNER = Symbol('memoryCacheOwner')

function f64s(n) {
  return new Float64Array(new ArrayBuffer(Math.max(n, 8) * 8))
}

// The argument registers of every native call made from this thread (shared
// with any other instance of this module in the thread: the first one wins).
const regs = /** @type {Float64Array} */ (memoryCacheInit(f64s(8)))

/**
 * Create an in-memory StepCache with LRU eviction and TTL.
 * @param {{ maxSize?: number, ttl?: number }} [options]
 */
function createMemoryCache(options) {
  if (options === null || (options !== undefined && typeof options !== 'object')) {
    throw invalidArg(`options must be an object, got ${describe(options)}`)
  }
  const maxSize = options === undefined ? undefined : options.maxSize
  const ttlOption = options === undefined ? undefined : options.ttl

  const bounded = typeof maxSize === 'number' && maxSize >= 1 && Number.isFinite(maxSize)
  let cap = 0
  let meta = NO_META
  let ringCap = 0
  let ring = NO_RING
  // Validates maxSize and ttl (TypeError, code ERR_INVALID_ARG). The owner
  // token frees the native state when this cache is garbage collected.
  const owner = memoryCacheCreate(maxSize, ttlOption)
  const handle = regs[R_HANDLE]
  const limit = bounded ? maxSize : Infinity
  // Without a default ttl, an entry set without its own never expires: its
  // stored-at time is never read, so set skips the clock for it.
  const defaultTtl = typeof ttlOption === 'number' && ttlOption > 0 && ttlOption !== Infinity

  const map = new Map()
  // kv[2 * slot] = key, kv[2 * slot + 1] = value: side by side, so an
  // eviction touches one cache line, not two.
  let kv = []
  let pending = 0
  let last = -1
  let hits = 0
  let misses = 0
  let anyTtl = false

  function grow() {
    const next = Math.min(Math.max(cap * 2, INITIAL), limit)
    const m = f64s(2 * next)
    m.set(meta)
    // (called from set, with its registers already written)
    memoryCacheSetMeta(m)
    meta = m
    cap = next
  }

  function forget(slot, key) {
    map.delete(key)
    kv[2 * slot] = undefined
    kv[2 * slot + 1] = undefined
  }

  function removeSlot(slot, key, expired) {
    regs[R_PENDING] = pending
    pending = 0
    last = -1
    regs[R_SLOT] = slot
    regs[R_EXPIRED] = expired ? 1 : 0
    regs[R_HANDLE] = handle
    if (memoryCacheRemove() === ERR) memoryCacheThrow()
    forget(slot, key)
  }

  /** Has the entry in `slot` outlived its ttl? */
  function expired(slot) {
    const ttl = meta[slot * 2 + 1]
    return ttl !== Infinity && Date.now() - meta[slot * 2] > ttl
  }

  /** A hit on `slot`, queued in the ring (Rust applies it to the LRU order at the next flush). */
  function touch(slot) {
    if (slot !== last) {
      last = slot
      if (pending === ringCap) ringFull()
      ring[pending++] = slot
    }
  }

  function flush() {
    regs[R_PENDING] = pending
    pending = 0
    regs[R_HANDLE] = handle
    if (memoryCacheFlush() === ERR) memoryCacheThrow()
  }

  /** The ring is full (or not there yet): apply its hits, and give it twice the room while below RING. */
  function ringFull() {
    if (ringCap >= RING) {
      flush()
      return
    }
    const n = Math.max(ringCap * 2, RING_INITIAL)
    const next = new Uint32Array(new ArrayBuffer(n * 4))
    regs[R_PENDING] = pending
    pending = 0
    regs[R_HANDLE] = handle
    memoryCacheSetRing(next) // applies the pending hits first, from the old ring
    ring = next
    ringCap = n
  }

  function purge() {
    regs[R_PENDING] = pending
    pending = 0
    last = -1
    regs[R_NOW] = Date.now()
    regs[R_HANDLE] = handle
    const gone = memoryCachePurgeStale()
    for (let i = 0; i < gone.length; i++) forget(gone[i], kv[2 * gone[i]])
    return gone.length
  }

  const cache = {
    get(key) {
      const slot = map.get(key)
      if (slot === undefined) {
        checkKey(key) // only string keys are ever stored: a non-string one always lands here
        misses++
        return undefined
      }
      if (expired(slot)) {
        removeSlot(slot, key, true)
        misses++
        return undefined
      }
      hits++
      touch(slot)
      return kv[slot * 2 + 1]
    },

    set(key, result, options) {
      if (typeof key !== 'string') checkKey(key)
      let tag = 0
      if (options !== undefined) {
        if (options === null || typeof options !== 'object') {
          throw invalidArg(`options must be an object, got ${describe(options)}`)
        }
        const t = options.ttl
        if (t !== undefined) {
          if (typeof t === 'number') {
            tag = 1
            regs[R_TTL] = t
          } else tag = tagOf(t)
        }
      }
      regs[R_TTL_TAG] = tag
      regs[R_PENDING] = pending
      pending = 0
      regs[R_NOW] = tag === 0 && !defaultTtl ? 0 : Date.now()
      regs[R_HANDLE] = handle
      let slot = map.get(key)
      if (slot !== undefined) {
        regs[R_SLOT] = slot
        if (memoryCacheUpdate() === ERR) memoryCacheThrow()
        kv[slot * 2 + 1] = result
      } else {
        if (map.size === cap && cap < limit) grow()
        slot = memoryCacheInsert()
        if (slot === ERR) memoryCacheThrow()
        const i = slot * 2
        if (i < kv.length) {
          const old = kv[i]
          if (old !== undefined) map.delete(old)
          kv[i] = key
          kv[i + 1] = result
        } else {
          kv.push(key, result)
        }
        map.set(key, slot)
      }
      last = slot
      if (meta[slot * 2 + 1] !== Infinity) anyTtl = true
    },

    has(key) {
      const slot = map.get(key)
      if (slot === undefined) {
        checkKey(key)
        return false
      }
      if (expired(slot)) {
        removeSlot(slot, key, true)
        return false
      }
      touch(slot)
      return true
    },

    delete(key) {
      const slot = map.get(key)
      if (slot === undefined) {
        checkKey(key)
        return false
      }
      const stale = expired(slot)
      removeSlot(slot, key, stale)
      return !stale
    },

    clear() {
      regs[R_PENDING] = 0
      pending = 0
      last = -1
      regs[R_HANDLE] = handle
      if (memoryCacheClear() === ERR) memoryCacheThrow()
      map.clear()
      kv = []
      anyTtl = false
    },

    /** Live entries (expired ones are purged first). */
    get size() {
      if (anyTtl) purge()
      return map.size
    },

    /** Counters since creation: get hits/misses, LRU evictions, TTL expirations. */
    stats() {
      regs[R_PENDING] = pending
      pending = 0
      regs[R_HANDLE] = handle
      const [evictions, expirations] = memoryCacheCounters()
      return { hits, misses, evictions, expirations }
    },

    // The owner token lives in the closure context every method shares, so
    // the native state lives as long as any method (even destructured ones).
    get [OWNER]() {
      return owner
    },

    /** Remove every expired entry now; true if any was removed. */
    purgeStale() {
      return purge() > 0
    },
  }
  return cache
}

/** Default bound of the in-process layer of the file and KV caches (entries). */
const DEFAULT_MEMORY_MAX_SIZE = 1000

// keeps nothing, but takes keys as a cache does
const OFF_LAYER = Object.freeze({
  get: (key) => void checkKey(key),
  set: (key) => void checkKey(key),
  has: (key) => {
    checkKey(key)
    return false
  },
  delete: (key) => {
    checkKey(key)
    return false
  },
  clear: () => {},
})

/**
 * The bounded in-process layer behind the sync methods of createFileCache and
 * createKVCache: the native LRU with `maxSize` entries (`Infinity` =
 * unbounded), or, for `0`, a layer that keeps nothing. Validates the option.
 */
function createMemoryLayer(owner, memoryMaxSize = DEFAULT_MEMORY_MAX_SIZE) {
  if (!(memoryMaxSize === Infinity || (Number.isInteger(memoryMaxSize) && memoryMaxSize >= 0))) {
    throw invalidArg(`${owner}: options.memoryMaxSize must be a non-negative integer or Infinity, got ${String(memoryMaxSize)}`)
  }
  if (memoryMaxSize === 0) return OFF_LAYER
  return createMemoryCache({ maxSize: memoryMaxSize })
}

/** The five sync StepCache methods of a wrapper, delegating to `target` (ttl options included). */
function delegateStepCache(target) {
  return {
    get: (key) => target.get(key),
    set: (key, result, options) => target.set(key, result, options),
    has: (key) => target.has(key),
    delete: (key) => target.delete(key),
    clear: () => target.clear(),
  }
}

module.exports = { createMemoryCache }
// Internal (not re-exported by index.js): used by lib/caches/file.js and lib/caches/kv.js.
Object.defineProperty(module.exports, 'createMemoryLayer', { value: createMemoryLayer, enumerable: false })
Object.defineProperty(module.exports, 'delegateStepCache', { value: delegateStepCache, enumerable: false })
