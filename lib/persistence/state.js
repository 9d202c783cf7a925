'use strict'
// createStatePersistence: save/load/delete/list workflow resume states in a
// KeyValueStore. Stored text is stringifyState's, byte for byte. A stored
// value that is not a state rejects with ERR_CORRUPT (the JS module turned it
// into `undefined`, i.e. a silent fresh start); `load` resolves undefined only
// when nothing is stored. Before its first save the persistence marks its
// prefix as a state prefix (lib/stores/ownership.js), so no cache sharing the
// store deletes its documents; list() leaves markers out. The store's
// operations come from the store adapter (lib/stores/adapter.js).

const { stringifyState, parseState } = require('../format/serialize.js')
const { invalidArg, corruptError } = require('../internal/errors.js')
const { checkString, checkPrefix, describe } = require('../internal/validate.js')
const { adapt, checkStore } = require('../stores/adapter.js')
const { checkNotReserved, ownerRegistration, keysUnder } = require('../stores/ownership.js')

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
  const adapted = adapt(store)
  const register = ownerRegistration(adapted, 'state', prefix)

  return {
    async save(runId, state, metadata) {
      checkRunId('save', runId)
      checkMetadata(metadata)
      const json = stringifyState(state, metadata)
      const reg = register()
      if (reg && adapted.ordered) {
        // same tick: the registration and the write share one pipeline, in order
        await Promise.all([reg, adapted.setDurable(`${prefix}${runId}`, json)])
        return
      }
      if (reg) await reg
      await adapted.setDurable(`${prefix}${runId}`, json)
    },

    async load(runId) {
      checkRunId('load', runId)
      const fullKey = `${prefix}${runId}`
      const data = await adapted.get(fullKey)
      if (data === null || data === undefined) return undefined
      return decodeState(fullKey, data)
    },

    async delete(runId) {
      checkRunId('delete', runId)
      return adapted.delete(`${prefix}${runId}`)
    },

    async list() {
      const keys = await keysUnder(adapted, prefix)
      return keys.map((k) => k.slice(prefix.length))
    },
  }
}

module.exports = { createStatePersistence }
