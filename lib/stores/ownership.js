'use strict'
// Prefix ownership (README "Clear isolation"). Before its first write a KV
// cache writes the marker key `<prefix>__awaitly:owner:cache`, a state
// persistence or snapshot store `<prefix>__awaitly:owner:state`: inside its
// own prefix, so a user whose ACL allows only `~<prefix>*` can use it (on the
// native file store the marker is a hidden file instead,
// `.awaitly-owner.<hash>`, never a key). A cache's clear deletes only keys
// whose longest known prefix is its own and not a state prefix
// (`workflow:state:` always is one); the rule itself is the Rust core's
// (binding.cacheDeletableKeys, src/ownership/). Keys and run ids shaped
// like a marker are reserved.

const { binding } = require('../internal/binding.js')
const { invalidArg } = require('../internal/errors.js')

const MARKER_VALUE = binding.ownerMarkerValue()
const MARKER_SUFFIXES = binding.ownerMarkerSuffixes()

/** @param {string} key */
const isMarkerShaped = (key) => MARKER_SUFFIXES.some((s) => key.endsWith(s))

/**
 * A key or run id ending like a marker key is reserved (TypeError, nothing written).
 * @param {string} fn
 * @param {string} key
 */
function checkNotReserved(fn, key) {
  if (isMarkerShaped(key)) {
    throw invalidArg(`${fn}: ${JSON.stringify(key)} is reserved (keys ending in ${MARKER_SUFFIXES.join(' or ')} mark prefix owners)`)
  }
  return key
}

/**
 * Writes `prefix`'s owner marker of `kind` through `adapted` (adapter.js),
 * once: `ensure()` returns the write in flight, or null once it has
 * succeeded; a failed write is retried by the next call.
 * @param {import('./adapter.js').Adapted} adapted
 * @param {'cache' | 'state'} kind
 * @param {string} prefix
 * @returns {() => Promise<void> | null}
 */
function ownerRegistration(adapted, kind, prefix) {
  const marker = binding.ownerMarkerKey(kind, prefix)
  let done = false
  /** @type {Promise<void> | null} */
  let pending = null
  return function ensure() {
    if (done) return null
    if (!pending) {
      pending = adapted.registerOwner(marker).then(
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

/**
 * Every key under `prefix`, markers included (a store with loose matching
 * may return more from `keys`: those are left out).
 * @param {import('./adapter.js').Adapted} adapted
 * @param {string} prefix
 * @returns {Promise<string[]>}
 */
async function allKeysUnder(adapted, prefix) {
  const keys = await adapted.keys(`${binding.escapeGlob(prefix)}*`)
  return keys.filter((k) => typeof k === 'string' && k.startsWith(prefix))
}

/**
 * The data keys under `prefix`: no marker keys.
 * @param {import('./adapter.js').Adapted} adapted
 * @param {string} prefix
 */
async function keysUnder(adapted, prefix) {
  return (await allKeysUnder(adapted, prefix)).filter((k) => !isMarkerShaped(k))
}

module.exports = { MARKER_VALUE, isMarkerShaped, checkNotReserved, ownerRegistration, allKeysUnder, keysUnder }
