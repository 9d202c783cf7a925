'use strict'
// createKVCache: a StepCache over any KeyValueStore, with a bounded
// in-process LRU for the sync methods. With a native store (createRedisStore)
// the async methods go straight to its tick batcher (one native call and one
// pipeline per tick) and clearAsync is one native SCAN + UNLINK call.
//
// Prefix isolation (see README "Prefix ownership"): before its first write a
// cache registers its prefix under the reserved key
// `__awaitly:owner:cache:<prefix>`; clearAsync deletes only keys whose longest
// registered prefix is this cache's own and not a state prefix
// (`workflow:state:` is always one). Keys stay `${prefix}${key}` as in the JS
// module, so entries it wrote remain readable.

const { binding, invalidArg: typeError, corruptError: corrupt, wholeSecondsTtl, checkKey } = require('./native.js')
const { deserializeResult } = require('./serialize.js')
const { isResult, resultText } = require('./serialize.js').internal
const { createMemoryLayer, delegateStepCache } = require('./memory-cache.js')
const { NATIVE_STORE } = require('./redis-store.js').internal

const STORE_METHODS = ['get', 'set', 'delete', 'exists', 'keys']
const DELETE_BATCH = 100

function checkStore(fn, store) {
  if (store === null || typeof store !== 'object') throw typeError(`${fn}: store must be a KeyValueStore object`)
  for (const m of STORE_METHODS) {
    if (typeof store[m] !== 'function') throw typeError(`${fn}: store.${m} must be a function`)
  }
}

function checkPrefix(fn, prefix) {
  if (typeof prefix !== 'string') throw typeError(`${fn}: prefix must be a string, got ${typeof prefix}`)
  return prefix
}

/** Registers `prefix` as an owner of `kind` in `store`, once (retried after a failure). */
function ownerRegistration(store, kind, prefix) {
  const regKey = binding.ownerRegistryKey(kind, prefix)
  const native = store[NATIVE_STORE]
  let done = false
  let pending = null
  return function ensure() {
    if (done) return null
    if (!pending) {
      pending = (native ? native.set(regKey, '1', 0) : Promise.resolve(store.set(regKey, '1'))).then(
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

/** Keys (from `keys`) under `prefix`, as stores with loose matching may return more. */
async function keysUnder(store, prefix) {
  const native = store[NATIVE_STORE]
  const pattern = `${binding.escapeGlob(prefix)}*`
  const keys = native ? await native.keys(pattern) : await store.keys(pattern)
  const reg = binding.ownerRegistryPrefix()
  return keys.filter((k) => typeof k === 'string' && k.startsWith(prefix) && !k.startsWith(reg))
}

/**
 * A StepCache backed by a KeyValueStore.
 * @param {{ store, prefix?: string, ttl?: number, memoryMaxSize?: number }} options
 */
function createKVCache(options) {
  if (options === null || typeof options !== 'object') throw typeError('createKVCache: options must be an object')
  const { store } = options
  checkStore('createKVCache', store)
  const prefix = checkPrefix('createKVCache', options.prefix === undefined ? 'workflow:' : options.prefix)
  const ttl = wholeSecondsTtl('createKVCache: ttl', options.ttl)
  const memory = createMemoryLayer('createKVCache', options.memoryMaxSize)
  const native = store[NATIVE_STORE]
  const register = ownerRegistration(store, 'cache', prefix)
  const ttlOpts = ttl ? { ttl } : undefined

  const sGet = native ? native.get : (k) => store.get(k)
  const sSet = native ? (k, v) => native.set(k, v, ttl) : (k, v) => store.set(k, v, ttlOpts)
  const sDel = native ? native.delete : (k) => store.delete(k)
  const sExists = native ? native.exists : (k) => store.exists(k)

  function decode(fullKey, data) {
    let parsed
    try {
      parsed = JSON.parse(data)
    } catch (e) {
      throw corrupt(fullKey, 'not JSON', e)
    }
    if (!isResult(parsed)) {
      throw corrupt(fullKey, 'not a serialized Result')
    }
    try {
      return deserializeResult(parsed)
    } catch (e) {
      throw corrupt(fullKey, 'not a serialized Result', e)
    }
  }

  // Every method checks its key (checkKey) before it reads or writes: the
  // sync ones through the memory layer, the async ones here.
  return {
    ...delegateStepCache(memory),

    async getAsync(key) {
      const fullKey = `${prefix}${checkKey(key)}`
      const data = await sGet(fullKey)
      if (data === null || data === undefined) return undefined
      if (typeof data !== 'string') throw corrupt(fullKey, `store returned ${typeof data}, not a string`)
      const result = decode(fullKey, data)
      memory.set(key, result)
      return result
    },

    async setAsync(key, result) {
      checkKey(key)
      // the file cache's check and encoding: a non-Result, circular or BigInt
      // value is a TypeError naming the key, before anything is written
      const json = resultText(key, result)
      const reg = register()
      const write = sSet(`${prefix}${key}`, json)
      if (reg) await Promise.all([reg, write])
      else await write
      memory.set(key, result)
    },

    async hasAsync(key) {
      return sExists(`${prefix}${checkKey(key)}`)
    },

    async deleteAsync(key) {
      checkKey(key)
      memory.delete(key)
      return sDel(`${prefix}${key}`)
    },

    async clearAsync() {
      if (native) {
        await native.clearCachePrefix(prefix)
      } else {
        const [candidates, registry] = await Promise.all([
          keysUnder(store, prefix),
          store.keys(`${binding.escapeGlob(binding.ownerRegistryPrefix())}*`),
        ])
        const doomed = binding.cacheDeletableKeys(
          prefix,
          registry.filter((k) => typeof k === 'string'),
          candidates,
        )
        for (let i = 0; i < doomed.length; i += DELETE_BATCH) {
          await Promise.all(doomed.slice(i, i + DELETE_BATCH).map((k) => store.delete(k)))
        }
      }
      memory.clear()
    },
  }
}

module.exports = { createKVCache }
Object.defineProperty(module.exports, 'internal', {
  value: { checkStore, checkPrefix, ownerRegistration, keysUnder },
})
