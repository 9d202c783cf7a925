'use strict'
// Result / cause / state serialization. The shapes are the JS module's, byte
// for byte (see __test__/conformance.test.ts).

/** A successful Result. */
const ok = (value) => ({ ok: true, value })

/** A failed Result; `options.cause` is kept only when it is not undefined. */
const err = (error, options) =>
  options !== undefined && options !== null && options.cause !== undefined
    ? { ok: false, error, cause: options.cause }
    : { ok: false, error }

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

function deserializeCause(serialized) {
  if (serialized.type === 'undefined') return undefined
  if (serialized.type === 'error') {
    const error = new Error(serialized.errorMessage ?? 'Unknown error')
    error.name = serialized.errorName ?? 'Error'
    if (serialized.errorStack) error.stack = serialized.errorStack
    return error
  }
  return serialized.value
}

function serializeResult(result) {
  if (result.ok) return { ok: true, value: result.value }
  return {
    ok: false,
    error: result.error,
    cause: result.cause !== undefined ? serializeCause(result.cause) : undefined,
  }
}

function deserializeResult(serialized) {
  if (serialized.ok) return ok(serialized.value)
  const cause = serialized.cause ? deserializeCause(serialized.cause) : undefined
  return err(serialized.error, cause !== undefined ? { cause } : undefined)
}

function serializeMeta(meta) {
  if (meta.origin === 'result') {
    return {
      origin: 'result',
      resultCause: meta.resultCause !== undefined ? serializeCause(meta.resultCause) : undefined,
    }
  }
  return { origin: 'throw', thrown: serializeCause(meta.thrown) }
}

function deserializeMeta(serialized) {
  if (serialized.origin === 'result') {
    return {
      origin: 'result',
      resultCause: serialized.resultCause ? deserializeCause(serialized.resultCause) : undefined,
    }
  }
  return { origin: 'throw', thrown: serialized.thrown ? deserializeCause(serialized.thrown) : undefined }
}

function serializeEntry(entry) {
  return { result: serializeResult(entry.result), meta: entry.meta ? serializeMeta(entry.meta) : undefined }
}

function deserializeEntry(serialized) {
  return {
    result: deserializeResult(serialized.result),
    meta: serialized.meta ? deserializeMeta(serialized.meta) : undefined,
  }
}

function setOwn(obj, key, value) {
  if (key === '__proto__') {
    Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true })
  } else {
    obj[key] = value
  }
}

function serializeState(state, metadata) {
  const entries = {}
  for (const [key, entry] of state.steps) setOwn(entries, key, serializeEntry(entry))
  return { version: 1, entries, metadata }
}

function deserializeState(serialized) {
  const steps = new Map()
  for (const [key, entry] of Object.entries(serialized.entries)) steps.set(key, deserializeEntry(entry))
  return { steps }
}

function stringifyState(state, metadata) {
  return JSON.stringify(serializeState(state, metadata))
}

function parseState(json) {
  return deserializeState(JSON.parse(json))
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
