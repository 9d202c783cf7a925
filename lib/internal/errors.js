'use strict'
// The errors this package raises: one JavaScript class per stable `code`
// (README "Errors"), the constructors the JS side uses, and
// isPersistenceError, the runtime side of the PersistenceError type
// (index.d.ts). The Rust core raises the same codes; its async rejections
// get their `code` in binding.js (fromNative).

const { binding } = require('./binding.js')

// The code → class table is defined once, in Rust (src/error.rs).
const CONSTRUCTORS = { Error, TypeError, RangeError, SyntaxError }
/** @type {Readonly<Record<string, ErrorConstructor>>} */
const CLASS_OF_CODE = Object.freeze(
  Object.fromEntries(
    Object.entries(binding.errorClasses()).map(([code, name]) => [code, CONSTRUCTORS[/** @type {keyof typeof CONSTRUCTORS} */ (name)]]),
  ),
)

/**
 * Is `error` an error of this package: an Error of the class its `code`
 * belongs to, with one of our codes? The check is by shape (class + code), so
 * an error of the same shape raised elsewhere — Node's own
 * `RangeError [ERR_OUT_OF_RANGE]`, say — passes too.
 * @param {unknown} error
 */
function isPersistenceError(error) {
  if (!(error instanceof Error)) return false
  const code = /** @type {{ code?: unknown }} */ (error).code
  if (typeof code !== 'string' || !Object.hasOwn(CLASS_OF_CODE, code)) return false
  return error instanceof CLASS_OF_CODE[/** @type {keyof typeof CLASS_OF_CODE} */ (code)]
}

/**
 * `error` with its `code` set.
 * @template {Error} E
 * @param {E} error
 * @param {string} code
 * @returns {E & { code: string }}
 */
function withCode(error, code) {
  return Object.assign(error, { code })
}

/**
 * A TypeError for a bad argument or option, with code ERR_INVALID_ARG (and V8's error as `cause`, if any).
 * @param {string} message
 * @param {unknown} [cause]
 */
function invalidArg(message, cause) {
  return withCode(new TypeError(message, cause ? { cause } : undefined), 'ERR_INVALID_ARG')
}

/**
 * A stored value that cannot be read back (code ERR_CORRUPT), worded as the
 * Rust core's: `corrupt value at <location>: <reason>`.
 * @param {string} location
 * @param {string} reason
 * @param {unknown} [cause]
 */
function corruptError(location, reason, cause) {
  return withCode(new Error(`corrupt value at ${location}: ${reason}`, cause ? { cause } : undefined), 'ERR_CORRUPT')
}

/**
 * A TypeError for a loaded thing that is not the document it should be (code ERR_INVALID_DOCUMENT).
 * @param {string} message
 */
function invalidDocument(message) {
  return withCode(new TypeError(message), 'ERR_INVALID_DOCUMENT')
}

/** A call on a closed store (code ERR_STORE_CLOSED). */
function storeClosed() {
  return withCode(new Error('store is closed'), 'ERR_STORE_CLOSED')
}

/**
 * A copy of `error` per waiter: the calls of one failed batch each reject
 * with their own Error object, of the same code and message.
 * @param {{ message: string, code?: string }} error
 */
function copyError(error) {
  return withCode(new Error(error.message), /** @type {string} */ (error.code))
}

module.exports = { isPersistenceError, withCode, invalidArg, corruptError, invalidDocument, storeClosed, copyError }
