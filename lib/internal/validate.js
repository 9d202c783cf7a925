'use strict'
// Argument validation shared by every factory and method: each check throws
// a TypeError with code ERR_INVALID_ARG (errors.js) before anything is read
// or written, and returns the value it checked.

const { invalidArg } = require('./errors.js')

/** `got` of an argument message: undefined, null, an array, an object, a number, ... */
function describe(v) {
  if (v === null || v === undefined) return String(v)
  if (typeof v === 'object') return Array.isArray(v) ? 'an array' : 'an object'
  return `a ${typeof v}`
}

/**
 * A string argument (a key, a value, a pattern, a run id): `what` names it
 * in the message, e.g. 'key' or 'save: runId'.
 */
function checkString(what, value) {
  if (typeof value !== 'string') throw invalidArg(`${what} must be a string, got ${describe(value)}`)
  return value
}

/**
 * A StepCache key: a string (awaitly's types; the JS module's `${prefix}${key}`
 * and file names made `1` and `'1'` one entry). Every method of every cache
 * checks it before it reads or writes anything.
 */
function checkKey(key) {
  return checkString('key', key)
}

/**
 * A key prefix option of `fn` (a factory): a string.
 * @param {string} fn
 * @param {unknown} prefix
 */
function checkPrefix(fn, prefix) {
  if (typeof prefix !== 'string') throw invalidArg(`${fn}: prefix must be a string, got ${typeof prefix}`)
  return prefix
}

/**
 * A KeyValueStore ttl: a whole number of seconds; undefined or 0 = no expiry
 * (returns 0). Anything else throws invalidArg naming `what`.
 */
function wholeSecondsTtl(what, ttl) {
  if (ttl === undefined || ttl === 0) return 0
  if (typeof ttl !== 'number' || !Number.isInteger(ttl) || ttl < 0 || ttl > 0xffffffff) {
    throw invalidArg(`${what} must be a non-negative whole number of seconds (0 or absent: no expiry), got ${String(ttl)}`)
  }
  return ttl
}

/**
 * The options of a KeyValueStore `set(key, value, options?)` (every store we
 * ship): absent/null, or `{ ttl }` as in wholeSecondsTtl (`ttl: null` = no
 * expiry too, as the npm clients take it). Returns 0 (no expiry) or the ttl.
 */
function storeTtl(options) {
  if (options === undefined || options === null) return 0
  if (typeof options !== 'object') throw invalidArg('set: options must be an object like { ttl }')
  return options.ttl === null ? 0 : wholeSecondsTtl('set: ttl', options.ttl)
}

const TLS_FIELDS = ['ca', 'cert', 'key', 'servername', 'rejectUnauthorized']

/**
 * The `tls` option of a store (`fn`: its factory, for messages), as Node's
 * tls.connect names them: { ca, cert, key } PEM strings, servername (the
 * name sent and verified instead of the host), rejectUnauthorized (false:
 * any server certificate). The PEM text itself is checked in Rust.
 * @param {string} fn
 * @param {Record<string, unknown>} tls an object (the caller checked)
 * @returns {{ ca?: string, cert?: string, key?: string, servername?: string, rejectUnauthorized?: boolean }}
 */
function tlsSettings(fn, tls) {
  for (const f of Object.keys(tls)) {
    if (!TLS_FIELDS.includes(f)) throw invalidArg(`${fn}: tls.${f} is not an option (tls takes { ${TLS_FIELDS.join(', ')} })`)
  }
  for (const f of ['ca', 'cert', 'key']) {
    if (tls[f] !== undefined && typeof tls[f] !== 'string')
      throw invalidArg(`${fn}: tls.${f} must be a PEM string, got ${describe(tls[f])}`)
  }
  if (tls.servername !== undefined && (typeof tls.servername !== 'string' || tls.servername === '')) {
    throw invalidArg(`${fn}: tls.servername must be a non-empty string (a DNS name or IP address), got ${describe(tls.servername)}`)
  }
  if (tls.rejectUnauthorized !== undefined && typeof tls.rejectUnauthorized !== 'boolean') {
    throw invalidArg(`${fn}: tls.rejectUnauthorized must be a boolean, got ${describe(tls.rejectUnauthorized)}`)
  }
  return /** @type {any} */ (tls)
}

module.exports = { describe, checkString, checkKey, checkPrefix, wholeSecondsTtl, storeTtl, tlsSettings }
