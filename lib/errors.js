'use strict'
// isPersistenceError: the runtime side of the PersistenceError type
// (index.d.ts). Every error this package raises has a stable `code` and is
// thrown as one JavaScript class per code (README "Errors"); the guard checks
// both, so a `true` narrows `e.code` to exactly the codes of `e`'s class.

const { binding } = require('./native.js')

// The code → class table is defined once, in Rust (src/error.rs).
const CONSTRUCTORS = { Error, TypeError, RangeError, SyntaxError }
const CLASS_OF_CODE = Object.freeze(
  Object.fromEntries(Object.entries(binding.errorClasses()).map(([code, name]) => [code, CONSTRUCTORS[name]])),
)

/**
 * Is `error` an error of this package: an Error of the class its `code`
 * belongs to, with one of our codes? The check is by shape (class + code), so
 * an error of the same shape raised elsewhere — Node's own
 * `RangeError [ERR_OUT_OF_RANGE]`, say — passes too.
 */
function isPersistenceError(error) {
  if (!(error instanceof Error)) return false
  const code = error.code
  if (typeof code !== 'string' || !Object.prototype.hasOwnProperty.call(CLASS_OF_CODE, code)) return false
  return error instanceof CLASS_OF_CODE[code]
}

module.exports = { isPersistenceError }
