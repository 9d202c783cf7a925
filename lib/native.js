'use strict'
// Loads the native addon and decodes the error codes of async rejections.
// Sync native functions throw errors of the right class with `code` already
// set; async ones reject with a message `[CODE] text` (napi-rs cannot pick
// the class or code of a rejection), which `fromNative` turns into `code`.

const binding = require('../binding.js')

const CODED = /^\[(ERR_[A-Z_]+)\] /

/** Give a native rejection its `code` (idempotent); returns the error. */
function fromNative(e) {
  if (e && typeof e.message === 'string') {
    const m = CODED.exec(e.message)
    if (m) {
      e.code = m[1]
      e.message = e.message.slice(m[0].length)
    }
  }
  return e
}

/** Await a native promise, decoding its rejection. */
async function call(promise) {
  try {
    return await promise
  } catch (e) {
    throw fromNative(e)
  }
}

module.exports = { binding, fromNative, call }
