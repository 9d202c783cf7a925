'use strict'
// Result / cause / state serialization: the wire format of awaitly/persistence,
// byte for byte (see __test__/conformance.test.ts).
//
// Division of labour (measured on the 2-core dev box; figures in
// benchmark/serialize.mjs and the README):
// - V8 does the JSON of user values (JSON.stringify / JSON.parse) and builds
//   the JS objects, Errors and Maps: walking JS values from Rust costs
//   9-15 µs per entry against ~1 µs for V8, building them 5x JSON.parse.
// - The Rust core (src/state/validate.rs) owns the state document's rules: its
//   validator and every error message for JSON that is not a state document.
//   Argument errors are thrown from Rust too, so every error has its class and `code` from one place.
// - stringifyState is one V8 JSON.stringify: sending the text through Rust
//   measured 0.54x of it on a 1,000-entry state (272 KB: the text crosses in
//   as UTF-16 cheaply, ~25 µs per 370 KB, but creating the result string back
//   in V8 costs ~290 µs per 370 KB, plus the scan),
//   and a 1-entry state pays ~1.2 µs of N-API crossing against ~1 µs of work.
// - parseState / deserializeState build the Map in one JS pass that also does
//   the rules' type checks (a few `typeof`s per entry, no allocation). On the
//   first problem the pass hands over to the Rust validator, which re-reads
//   the text and throws the error naming the problem. Validating every valid
//   document in Rust first measured 0.58-0.77x.

const { binding, invalidArg, describe } = require('./native.js')

// ---------------------------------------------------------------------------
// Results
// ---------------------------------------------------------------------------

/** A successful Result. */
const ok = (value) => ({ ok: true, value })

/** A failed Result; `options.cause` is kept only when it is not undefined. */
const err = (error, options) =>
  options !== undefined && options !== null && options.cause !== undefined
    ? { ok: false, error, cause: options.cause }
    : { ok: false, error }

// ---------------------------------------------------------------------------
// Small helpers (the words match the Rust core's messages)
// ---------------------------------------------------------------------------

/** `got` of a message: missing, null, array, object, string, number, ... */
function kindOf(v) {
  if (v === undefined) return 'missing'
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'array'
  return typeof v
}

/** Like kindOf, but shows short literals (version, type, origin). */
function gotValue(v) {
  if (typeof v === 'number' && Number.isInteger(v) && Math.abs(v) < 1e15) return String(v)
  if (typeof v === 'string') return v.length <= 64 ? JSON.stringify(v) : 'string' // as the Rust core
  return kindOf(v)
}

/** A JSON object: not null, not an array. */
const isRecord = (v) => v !== null && typeof v === 'object' && !Array.isArray(v)

/** Something whose properties can be read (the JS module's implicit rule). */
const isObjectLike = (v) => v !== null && (typeof v === 'object' || typeof v === 'function')

/** Give an error thrown by V8 a `code` (when it is an object without one). */
function withCode(e, code) {
  if (e !== null && typeof e === 'object' && e.code === undefined) {
    try {
      e.code = code
    } catch {}
  }
  return e
}

function argError(fn, arg, expected, value) {
  binding.throwArgumentError(fn, arg, expected, kindOf(value))
}

// ---------------------------------------------------------------------------
// Causes
// ---------------------------------------------------------------------------

function serializeCause(cause) {
  if (cause === undefined) return { type: 'undefined' }
  if (cause instanceof Error) {
    return { type: 'error', errorName: cause.name, errorMessage: cause.message, errorStack: cause.stack }
  }
  try {
    JSON.stringify(cause)
    return { type: 'value', value: cause }
  } catch {
    return { type: 'value', value: String(cause) }
  }
}

function errorFrom(serialized) {
  const error = new Error(serialized.errorMessage ?? 'Unknown error')
  error.name = serialized.errorName ?? 'Error'
  if (serialized.errorStack) error.stack = serialized.errorStack
  return error
}

/**
 * Restore a cause. Like the JS module, an unknown `type` yields `value`;
 * unlike it, a non-object throws a TypeError (ERR_INVALID_ARG) instead of
 * reading properties of null.
 */
function deserializeCause(serialized) {
  if (!isObjectLike(serialized)) argError('deserializeCause', 'serialized', 'an object', serialized)
  if (serialized.type === 'undefined') return undefined
  if (serialized.type === 'error') return errorFrom(serialized)
  return serialized.value
}

// ---------------------------------------------------------------------------
// Results, metas, entries
// ---------------------------------------------------------------------------

function serializeResult(result) {
  if (!isObjectLike(result)) argError('serializeResult', 'result', 'a Result object', result)
  if (result.ok) return { ok: true, value: result.value }
  return {
    ok: false,
    error: result.error,
    cause: result.cause !== undefined ? serializeCause(result.cause) : undefined,
  }
}

/** A Result as the caches store it: an object (not an array) with a boolean `ok`. */
const isResult = (r) => r !== null && typeof r === 'object' && !Array.isArray(r) && typeof r.ok === 'boolean'

/**
 * The stored JSON text of a cache entry (file and KV caches):
 * `JSON.stringify(serializeResult(result), null, space)`. Throws, before
 * anything is written: TypeError ERR_INVALID_ARG for a result that is not a
 * Result or holds what JSON cannot carry (circular, BigInt: V8's error is the
 * cause), RangeError ERR_OUT_OF_RANGE for one too deep; both name the key.
 * An error thrown by the user's own toJSON passes through untouched.
 */
function resultText(key, result, space) {
  if (!isResult(result)) {
    throw invalidArg(`result for key ${JSON.stringify(key)} must be a Result ({ ok: true, value } or { ok: false, error }), got ${describe(result)}`)
  }
  try {
    return JSON.stringify(serializeResult(result), null, space)
  } catch (e) {
    if (e instanceof RangeError) {
      const r = new RangeError(`result for key ${JSON.stringify(key)} is too deep to store as JSON: ${e.message}`, { cause: e })
      r.code = 'ERR_OUT_OF_RANGE'
      throw r
    }
    if (e instanceof TypeError && e.code === undefined) {
      throw invalidArg(`result for key ${JSON.stringify(key)} cannot be stored as JSON: ${e.message}`, e)
    }
    throw e
  }
}

function deserializeResult(serialized) {
  if (!isObjectLike(serialized)) argError('deserializeResult', 'serialized', 'an object', serialized)
  if (serialized.ok) return ok(serialized.value)
  const cause = serialized.cause ? deserializeCause(serialized.cause) : undefined
  return err(serialized.error, cause !== undefined ? { cause } : undefined)
}

function serializeMeta(meta) {
  if (!isObjectLike(meta)) argError('serializeMeta', 'meta', 'an object', meta)
  if (meta.origin === 'result') {
    return {
      origin: 'result',
      resultCause: meta.resultCause !== undefined ? serializeCause(meta.resultCause) : undefined,
    }
  }
  return { origin: 'throw', thrown: serializeCause(meta.thrown) }
}

function deserializeMeta(serialized) {
  if (!isObjectLike(serialized)) argError('deserializeMeta', 'serialized', 'an object', serialized)
  if (serialized.origin === 'result') {
    return {
      origin: 'result',
      resultCause: serialized.resultCause ? deserializeCause(serialized.resultCause) : undefined,
    }
  }
  return { origin: 'throw', thrown: serialized.thrown ? deserializeCause(serialized.thrown) : undefined }
}

function serializeEntry(entry) {
  if (!isObjectLike(entry)) argError('serializeEntry', 'entry', 'an object', entry)
  if (!isObjectLike(entry.result)) argError('serializeEntry', 'entry.result', 'a Result object', entry.result)
  return { result: serializeResult(entry.result), meta: entry.meta ? serializeMeta(entry.meta) : undefined }
}

function deserializeEntry(serialized) {
  if (!isObjectLike(serialized)) argError('deserializeEntry', 'serialized', 'an object', serialized)
  if (!isObjectLike(serialized.result)) {
    argError('deserializeEntry', 'serialized.result', 'an object', serialized.result)
  }
  return {
    result: deserializeResult(serialized.result),
    meta: serialized.meta ? deserializeMeta(serialized.meta) : undefined,
  }
}

// ---------------------------------------------------------------------------
// State: writing
// ---------------------------------------------------------------------------

function serializeState(state, metadata) {
  return stateDocument('serializeState', state, metadata)
}

/**
 * `{ version: 1, entries, metadata }` with the JS module's object-key
 * semantics: a key becomes a property key (String), a later duplicate
 * replaces the value in the first one's place, a symbol key never reaches
 * JSON, and a `__proto__` step is dropped (the JS module's
 * `entries[key] = ...` turned it into the prototype, so it never reached the
 * document; we drop it without touching any prototype).
 */
function stateDocument(fn, state, metadata) {
  if (!isObjectLike(state)) argError(fn, 'state', 'a ResumeState object', state)
  const steps = state.steps
  if (steps === null || steps === undefined || typeof steps[Symbol.iterator] !== 'function') {
    argError(fn, 'state.steps', 'a Map', steps)
  }
  const entries = {}
  for (const [key, entry] of steps) {
    const serialized = serializeEntry(entry)
    if (typeof key === 'string') {
      if (key !== '__proto__') entries[key] = serialized
    } else if (typeof key !== 'symbol') {
      const name = String(key)
      if (name !== '__proto__') entries[name] = serialized
    }
  }
  return { version: 1, entries, metadata }
}

/**
 * `JSON.stringify(serializeState(state, metadata))`, byte for byte, made by
 * V8 in one call (faster than assembling the document in Rust: the text
 * would have to cross to Rust and back and be scanned).
 */
function stringifyState(state, metadata) {
  const doc = stateDocument('stringifyState', state, metadata)
  try {
    return JSON.stringify(doc)
  } catch (e) {
    // V8's own error (circular / BigInt: TypeError; too deep: RangeError), with a code.
    if (e instanceof RangeError) throw withCode(e, 'ERR_OUT_OF_RANGE')
    if (e instanceof TypeError) throw withCode(e, 'ERR_INVALID_ARG')
    throw e // an error thrown by a user's toJSON, untouched
  }
}

// ---------------------------------------------------------------------------
// State: reading
// ---------------------------------------------------------------------------

const CAUSE_TYPES = '"error", "value" or "undefined"'

/**
 * Build `{ steps }` from a parsed document, checking the rules of
 * src/state/validate.rs as it goes. `fail(key, sub, expected, got)` is called on
 * the first problem and throws (path: `sub` under `entries[key]`, or the
 * top-level `sub` when `key` is undefined).
 */
function readState(doc, fail) {
  if (!isRecord(doc)) fail(undefined, '', 'an object', kindOf(doc))
  if (doc.version !== 1) fail(undefined, 'version', '1', gotValue(doc.version))
  const entries = doc.entries
  if (!isRecord(entries)) fail(undefined, 'entries', 'an object', kindOf(entries))
  const steps = new Map()
  for (const [key, entry] of Object.entries(entries)) {
    if (!isRecord(entry)) fail(key, '', 'an object', kindOf(entry))
    const r = entry.result
    if (!isRecord(r)) fail(key, '.result', 'an object', kindOf(r))
    let result
    if (r.ok === true) {
      result = { ok: true, value: r.value }
    } else if (r.ok === false) {
      const cause = readCause(r.cause, key, '.result.cause', fail)
      result = cause !== undefined ? { ok: false, error: r.error, cause } : { ok: false, error: r.error }
    } else {
      fail(key, '.result.ok', 'a boolean', kindOf(r.ok))
    }
    const m = entry.meta
    let meta
    if (m !== undefined && m !== null) {
      if (!isRecord(m)) fail(key, '.meta', 'an object', kindOf(m))
      if (m.origin === 'result') {
        meta = { origin: 'result', resultCause: readCause(m.resultCause, key, '.meta.resultCause', fail) }
      } else if (m.origin === 'throw') {
        meta = { origin: 'throw', thrown: readCause(m.thrown, key, '.meta.thrown', fail) }
      } else {
        fail(key, '.meta.origin', '"result" or "throw"', gotValue(m.origin))
      }
    }
    steps.set(key, { result, meta })
  }
  return { steps }
}

function readCause(c, key, sub, fail) {
  if (c === undefined || c === null) return undefined
  if (!isRecord(c)) fail(key, sub, 'an object', kindOf(c))
  switch (c.type) {
    case 'undefined':
      return undefined
    case 'error':
      return errorFrom(c)
    case 'value':
      return c.value
    default:
      return fail(key, `${sub}.type`, CAUSE_TYPES, gotValue(c.type))
  }
}

function problemPath(key, sub) {
  return key === undefined ? sub : `entries[${JSON.stringify(key)}]${sub}`
}

/** Throw the core's TypeError (ERR_INVALID_DOCUMENT) for an in-memory document. */
function throwProblem(key, sub, expected, got) {
  binding.throwDocumentError(problemPath(key, sub), expected, got)
}

/**
 * Restore ResumeState from a serialized state. Validates the document like
 * parseState: TypeError (code ERR_INVALID_DOCUMENT) naming the first problem
 * (an unsupported version included) instead of the JS module's crash.
 */
function deserializeState(serialized) {
  return readState(serialized, throwProblem)
}

/**
 * Parse a state document. SyntaxError (V8's own) for text that is not JSON;
 * TypeError (code ERR_INVALID_DOCUMENT), message from the Rust validator,
 * for JSON that is not a state document.
 */
function parseState(json) {
  const text = typeof json === 'string' ? json : String(json)
  let doc
  try {
    doc = JSON.parse(text)
  } catch (e) {
    throw e instanceof SyntaxError ? withCode(e, 'ERR_JSON_SYNTAX') : e // V8's exact SyntaxError
  }
  return readState(doc, (key, sub, expected, got) => {
    // The Rust core re-reads the text and throws the error naming the problem.
    binding.validateState(text)
    // Only reached if the two readers disagree (a bug): still fail clearly.
    throwProblem(key, sub, expected, got)
  })
}

module.exports = {
  ok,
  err,
  serializeCause,
  deserializeCause,
  serializeResult,
  deserializeResult,
  serializeMeta,
  deserializeMeta,
  serializeEntry,
  deserializeEntry,
  serializeState,
  deserializeState,
  stringifyState,
  parseState,
}
// Internal (not re-exported by index.js): used by lib/file-cache.js, lib/kv-cache.js, lib/hydrating-cache.js.
Object.defineProperty(module.exports, 'internal', { value: { isResult, resultText } })
