'use strict'
// createStatePersistence: save/load/delete/list workflow resume states in a
// KeyValueStore. Stored text is stringifyState's, byte for byte. A stored
// value that is not a state rejects with ERR_CORRUPT (the JS module turned it
// into `undefined`, i.e. a silent fresh start); `load` resolves undefined only
// when nothing is stored. Before its first save the persistence writes its
// owner marker (`<prefix>__awaitly:owner:state`, inside the prefix; a hidden
// file on the native file store), so no cache sharing the store deletes its
// documents (see lib/caches/kv.js); list() leaves markers out.

const { stringifyState, parseState } = require('../format/serialize.js')
const { NATIVE_STORE } = require('../stores/redis.js').internal
const { invalidArg, corruptError } = require('../internal/errors.js')
const { checkString, describe } = require('../internal/validate.js')
const { checkStore, checkPrefix, checkNotReserved, ownerRegistration, keysUnder } = require('../caches/kv.js').internal

/**
 * A stored state document, read by parseState (which checks the whole
 * document: JSON, version 1, entries, results, causes, metas); anything it
 * rejects is ERR_CORRUPT here, with parseState's error as the cause.
 */
function decodeState(fullKey, data) {
  if (typeof data !== 'string') throw corruptError(fullKey, `store returned ${typeof data}, not a string`)
  try {
    return parseState(data)
  } catch (e) {
    throw corruptError(fullKey, e.message, e)
  }
}

/**
 * save's metadata: absent, or an object (awaitly's `Record<string, unknown>`).
 * null, arrays, primitives and functions are a TypeError (the JS module
 * stored `"metadata":5`, or dropped a function silently).
 */
function checkMetadata(metadata) {
  if (metadata === undefined) return
  if (metadata === null || typeof metadata !== 'object' || Array.isArray(metadata)) {
    throw invalidArg(`save: metadata must be an object (Record<string, unknown>) or absent, got ${describe(metadata)}`)
  }
}

function checkRunId(method, runId) {
  return checkNotReserved(method, checkString(`${method}: runId`, runId))
}

/**
 * StatePersistence over a KeyValueStore.
 * @param store a KeyValueStore (createRedisStore(), createFileStore(), or your own)
 * @param prefix key prefix, default 'workflow:state:'
 */
function createStatePersistence(store, prefix = 'workflow:state:') {
  checkStore('createStatePersistence', store)
  checkPrefix('createStatePersistence', prefix)
  const native = store[NATIVE_STORE]
  const register = ownerRegistration(store, 'state', prefix)
  const sGet = native ? native.get : (k) => store.get(k)
  const sSet = native ? native.setDurable : (k, v) => store.set(k, v)
  const sDel = native ? native.delete : (k) => store.delete(k)

  return {
    async save(runId, state, metadata) {
      checkRunId('save', runId)
      checkMetadata(metadata)
      const json = stringifyState(state, metadata)
      const reg = register()
      if (reg && native) {
        // same tick: the registration and the write share one pipeline, in order
        await Promise.all([reg, sSet(`${prefix}${runId}`, json)])
        return
      }
      if (reg) await reg
      await sSet(`${prefix}${runId}`, json)
    },

    async load(runId) {
      checkRunId('load', runId)
      const fullKey = `${prefix}${runId}`
      const data = await sGet(fullKey)
      if (data === null || data === undefined) return undefined
      return decodeState(fullKey, data)
    },

    async delete(runId) {
      checkRunId('delete', runId)
      return sDel(`${prefix}${runId}`)
    },

    async list() {
      const keys = await keysUnder(store, prefix)
      return keys.map((k) => k.slice(prefix.length))
    },
  }
}

module.exports = { createStatePersistence }
