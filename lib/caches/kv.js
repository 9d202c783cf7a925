'use strict'
// createKVCache: a StepCache over any KeyValueStore, with a bounded
// in-process LRU for the sync methods. The store's operations come from the
// store adapter (lib/stores/adapter.js): on the native Redis store they go
// straight to its tick batcher (one native call and one pipeline per tick)
// and clearAsync is one native SCAN + UNLINK call. Before its first write the
// cache marks its prefix as a cache's, and clearAsync deletes only what that
// ownership allows (lib/stores/ownership.js). Keys are `${prefix}${key}` as
// in the JS module, so entries it wrote remain readable.

const { invalidArg } = require('../internal/errors.js')
const { wholeSecondsTtl, checkKey, checkPrefix } = require('../internal/validate.js')
const { resultText, parseResultText } = require('../format/serialize.js').internal
const { adapt, checkStore } = require('../stores/adapter.js')
const { checkNotReserved, ownerRegistration, keysUnder } = require('../stores/ownership.js')
const { createMemoryLayer } = require('./memory.js')
const { writeBehindOptions, durableStepCache, createTickets } = require('./durable.js')

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
  const adapted = adapt(store)
  const register = ownerRegistration(adapted, 'cache', prefix)
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

  const cache = durableStepCache(
    'createKVCache',
    'ERR_STORE',
    memory,
    {
      async getAsync(key) {
        const fullKey = `${prefix}${checkNotReserved('createKVCache', checkKey(key))}`
        const data = await afterClear(() => adapted.get(fullKey))
        if (data === null || data === undefined) return undefined
        const result = parseResultText(fullKey, data)
        memory.set(key, result)
        return result
      },

      /**
       * Read what the store holds under this cache's prefix into the in-process
       * layer, up to its bound: the keys by SCAN (never KEYS) through keys(),
       * then the values with GETs issued in one tick (one pipeline per
       * maxBatch on the native Redis store; IN_FLIGHT at a time on other stores).
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
        return afterClear(() => adapted.exists(fullKey))
      },

      // the file cache's check and encoding (resultText): a non-Result, circular
      // or BigInt value is a TypeError naming the key, before anything is written
      writeOnly: (key, json) =>
        perKey(key, () => {
          const reg = register()
          const write = adapted.set(`${prefix}${key}`, json, ttl)
          return reg ? Promise.all([reg, write]) : write
        }),

      removeOnly: (key) => perKey(checkNotReserved('createKVCache', key), () => adapted.delete(`${prefix}${key}`)),

      clearOnly() {
        // the writes and deletes called before this clear have landed before it starts
        const before = inflight.size ? Promise.allSettled([...inflight.values()]) : null
        const run = afterClear(async () => {
          if (before) await before
          await adapted.clearCachePrefix(prefix)
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
    },
    wbOpts,
    (key, result) => resultText(checkNotReserved('createKVCache', key), result),
    tickets,
  )

  async function loadFrom(mark, limit) {
    const full = await afterClear(() => keysUnder(adapted, prefix))
    const wanted = full.length > limit ? full.slice(0, limit) : full
    const values = await adapted.getMany(wanted)
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
