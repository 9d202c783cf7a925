'use strict'
// The runtime exports of awaitly 1.35's `awaitly/persistence` (snapshot
// validation and merge, the SerializedCause error wire format, the snapshot
// error classes), served by the `awaitly-persistence-native/snapshot` subpath.
//
// Plain JavaScript on purpose: every rule here is about JavaScript values
// (the `in` operator through prototypes, `instanceof Error`, `String()` and
// `JSON.stringify` of whatever was thrown, Error objects and their causes),
// and each call handles one small object, so a native call would add a
// boundary crossing and convert nothing useful. Results match awaitly's own
// functions, 1.35's and 4.5.1's (`awaitly/durable`), value for value
// (__test__/unit/snapshot-exports-diff.test.ts);
// the deliberate differences (README "The `/snapshot` subpath") are:
// - bad arguments to mergeSnapshots / serializeError / deserializeCauseNew
//   throw a TypeError with `code: 'ERR_INVALID_ARG'` naming the problem where
//   awaitly throws V8's TypeError from inside (same class, clearer message);
// - a cause chain that loops back (`e.cause = e`) or is deeper than the call
//   stack is serialized / deserialized instead of overflowing the stack;
// - validateSnapshot reports a `formatVersion` that cannot be turned into a
//   string (a Symbol, a null-prototype object) instead of throwing.

const { invalidArg } = require('../internal/errors.js')
const { describe } = require('../internal/validate.js')

/** Error thrown when snapshot structure is invalid (awaitly 1.35's shape: own `errors`, `name`). */
class SnapshotFormatError extends Error {
  errors
  constructor(message, errors = []) {
    super(message)
    this.errors = errors
    this.name = 'SnapshotFormatError'
  }
}

/** Error thrown when a snapshot does not match its workflow (own `mismatchType`, `details`, `name`). */
class SnapshotMismatchError extends Error {
  mismatchType
  details
  constructor(message, mismatchType, details) {
    super(message)
    this.mismatchType = mismatchType
    this.details = details
    this.name = 'SnapshotMismatchError'
  }
}

/** Error thrown when decoding a step value fails during restore (own `stepId`, `originalError`, `name`). */
class SnapshotDecodeError extends Error {
  stepId
  originalError
  constructor(message, stepId, originalError) {
    super(message)
    this.stepId = stepId
    this.originalError = originalError
    this.name = 'SnapshotDecodeError'
  }
}

/** A WorkflowSnapshot's execution.status values. */
const STATUSES = Object.freeze(['running', 'completed', 'failed'])
const hasOwn = (o, k) => Object.hasOwn(o, k)

/**
 * Cheap structural check, exactly awaitly's: formatVersion 1, `steps` a
 * non-null object, `execution` of type 'object' (null included: only
 * validateSnapshot rejects it), each found with `in` (own or inherited).
 */
function looksLikeWorkflowSnapshot(obj) {
  return (
    typeof obj === 'object' &&
    obj !== null &&
    'formatVersion' in obj &&
    obj.formatVersion === 1 &&
    'steps' in obj &&
    typeof obj.steps === 'object' &&
    obj.steps !== null &&
    'execution' in obj &&
    typeof obj.execution === 'object'
  )
}

/** `${v}`, or a description when JavaScript cannot make a string of it. */
function show(v) {
  try {
    return `${v}`
  } catch {
    return typeof v === 'symbol' ? v.toString() : Object.prototype.toString.call(v)
  }
}

/** Full validation: `{ valid: true, snapshot }` (the same object) or `{ valid: false, errors }`. */
function validateSnapshot(obj) {
  if (typeof obj !== 'object' || obj === null) return { valid: false, errors: ['Snapshot must be an object'] }
  const errors = []
  if (!('formatVersion' in obj)) errors.push('Missing required field: formatVersion')
  else if (obj.formatVersion !== 1) errors.push(`Invalid formatVersion: expected 1, got ${show(obj.formatVersion)}`)

  if (!('steps' in obj)) errors.push('Missing required field: steps')
  else if (typeof obj.steps !== 'object' || obj.steps === null) errors.push('steps must be an object')
  else {
    for (const [id, step] of Object.entries(obj.steps)) {
      if (typeof step !== 'object' || step === null) {
        errors.push(`steps["${id}"] must be an object`)
      } else if (!('ok' in step)) {
        errors.push(`steps["${id}"] missing required field: ok`)
      } else if (typeof step.ok !== 'boolean') {
        errors.push(`steps["${id}"].ok must be a boolean`)
      } else if (step.ok === false) {
        if (!('error' in step)) errors.push(`steps["${id}"] is error result but missing error field`)
        if (!('cause' in step)) errors.push(`steps["${id}"] is error result but missing cause field`)
      }
    }
  }

  if (!('execution' in obj)) errors.push('Missing required field: execution')
  else if (typeof obj.execution !== 'object' || obj.execution === null) errors.push('execution must be an object')
  else {
    const ex = obj.execution
    if (!('status' in ex)) errors.push('execution missing required field: status')
    else if (!STATUSES.includes(ex.status)) errors.push('execution.status must be one of: running, completed, failed')
    if (!('lastUpdated' in ex)) errors.push('execution missing required field: lastUpdated')
    else if (typeof ex.lastUpdated !== 'string') errors.push('execution.lastUpdated must be a string (ISO timestamp)')
  }
  return errors.length > 0 ? { valid: false, errors } : { valid: true, snapshot: obj }
}

/** validateSnapshot, throwing a SnapshotFormatError (message: the first problem; `errors`: all). */
function assertValidSnapshot(obj) {
  const r = validateSnapshot(obj)
  if (!r.valid) {
    const errors = /** @type {string[]} */ (r.errors)
    throw new SnapshotFormatError(`Invalid snapshot format: ${errors[0]}`, errors)
  }
  return r.snapshot
}

function checkMergeArg(name, s) {
  if (s === null || s === undefined) throw invalidArg(`mergeSnapshots: ${name} must be a snapshot, got ${describe(s)}`)
  if (s.steps === null || s.steps === undefined) {
    throw invalidArg(`mergeSnapshots: ${name}.steps must be an object, got ${describe(s.steps)}`)
  }
}

/**
 * Delta steps overwrite base steps (a null-prototype object, so a step id
 * `__proto__` is an ordinary key); execution from delta; metadata shallow
 * merged; base warnings of steps the delta replaces are dropped.
 */
function mergeSnapshots(base, delta) {
  checkMergeArg('base', base)
  checkMergeArg('delta', delta)
  const steps = Object.create(null)
  for (const [id, step] of Object.entries(base.steps)) steps[id] = step
  for (const [id, step] of Object.entries(delta.steps)) steps[id] = step
  const metadata = base.metadata || delta.metadata ? { ...base.metadata, ...delta.metadata } : undefined
  const baseWarnings = base.warnings || []
  if (typeof baseWarnings.filter !== 'function') {
    throw invalidArg(`mergeSnapshots: base.warnings must be an array, got ${describe(baseWarnings)}`)
  }
  const deltaWarnings = delta.warnings || []
  if (typeof deltaWarnings[Symbol.iterator] !== 'function') {
    throw invalidArg(`mergeSnapshots: delta.warnings must be an array, got ${describe(deltaWarnings)}`)
  }
  const kept = baseWarnings.filter((w) => {
    if (w === null || w === undefined) throw invalidArg(`mergeSnapshots: base.warnings holds ${describe(w)}`)
    return !hasOwn(delta.steps, w.stepId)
  })
  const warnings = [...kept, ...deltaWarnings]
  return {
    formatVersion: 1,
    steps,
    execution: { ...delta.execution },
    metadata,
    warnings: warnings.length > 0 ? warnings : undefined,
  }
}

/** Longest `stringRepresentation` kept by serializeThrown (UTF-16 code units); longer is cut and `truncated: true`. */
const MAX_STRING = 1000

/**
 * An Error as `{ type: 'error', name, message, stack?, cause? }`, its cause
 * chain followed (a non-Error cause through serializeThrown). An Error met a
 * second time on the chain ends it with a `[Circular]` thrown entry.
 */
function serializeError(error) {
  if (error === null || error === undefined) throw invalidArg(`serializeError: error must be an Error, got ${describe(error)}`)
  const seen = new Set()
  let root
  let parent
  let e = error
  for (;;) {
    seen.add(e)
    const out = { type: 'error', name: e.name, message: e.message }
    if (e.stack) out.stack = e.stack
    if (parent === undefined) root = out
    else parent.cause = out
    const cause = e.cause
    if (cause === undefined) break
    if (!(cause instanceof Error)) {
      out.cause = serializeThrown(cause)
      break
    }
    if (seen.has(cause)) {
      out.cause = { type: 'thrown', originalType: constructorName(cause), stringRepresentation: '[Circular]' }
      break
    }
    parent = out
    e = cause
  }
  return root
}

function constructorName(value) {
  if (value === null) return 'null'
  if (typeof value === 'object') return value.constructor?.name ?? 'Object'
  return typeof value
}

/**
 * A thrown non-Error as `{ type: 'thrown', originalType, stringRepresentation,
 * value?, truncated? }`: `value` is its JSON round trip when it has one.
 */
function serializeThrown(value) {
  let text
  let truncated = false
  try {
    text = String(value)
    if (text.length > MAX_STRING) {
      text = text.slice(0, MAX_STRING)
      truncated = true
    }
  } catch {
    text = '[unable to convert to string]'
  }
  const originalType = constructorName(value)
  let json
  try {
    const s = JSON.stringify(value)
    if (s !== undefined) json = JSON.parse(s)
  } catch {
    // not JSON-representable (BigInt, circular, a throwing toJSON): no `value`
  }
  const out = { type: 'thrown', originalType, stringRepresentation: text }
  if (json !== undefined) out.value = json
  if (truncated) out.truncated = true
  return out
}

/**
 * A SerializedCause back to a value: an `error` entry becomes an Error (with
 * its name, message, stack and cause chain), a `thrown` one its `value` or,
 * without one, its `stringRepresentation`. An object graph that loops back
 * gives an Error chain that loops back the same way.
 */
function deserializeCauseNew(serialized) {
  if (serialized === null || serialized === undefined) {
    throw invalidArg(`deserializeCauseNew: serialized must be a SerializedCause, got ${describe(serialized)}`)
  }
  const leaf = (s) => (s.value !== undefined ? s.value : s.stringRepresentation)
  if (serialized.type !== 'error') return leaf(serialized)
  const made = new Map()
  const make = (s) => {
    const e = new Error(s.message)
    e.name = s.name
    if (s.stack) e.stack = s.stack
    made.set(s, e)
    return e
  }
  const root = make(serialized)
  let e = root
  let s = serialized
  while (s.cause) {
    const next = s.cause
    if (made.has(next)) {
      e.cause = made.get(next)
      break
    }
    if (next.type !== 'error') {
      e.cause = leaf(next)
      break
    }
    const child = make(next)
    e.cause = child
    e = child
    s = next
  }
  return root
}

module.exports = {
  SnapshotFormatError,
  SnapshotMismatchError,
  SnapshotDecodeError,
  looksLikeWorkflowSnapshot,
  validateSnapshot,
  assertValidSnapshot,
  mergeSnapshots,
  serializeError,
  serializeThrown,
  deserializeCauseNew,
}
// Internal (not re-exported by snapshot.js): used by lib/persistence/snapshots.js.
Object.defineProperty(module.exports, 'internal', { value: { STATUSES } })
