// Type definitions for awaitly-persistence-native. Structurally compatible
// with awaitly's own types (awaitly/persistence, awaitly/workflow), so our
// caches and states pass to awaitly's createWorkflow without casts.

// ============================================================================
// Results and resume state (same shapes as awaitly's core / workflow types)
// ============================================================================

export type Ok<T> = { ok: true; value: T }
export type Err<E, C = unknown> = { ok: false; error: E; cause?: C }
export type Result<T, E = unknown, C = unknown> = Ok<T> | Err<E, C>

/** A successful Result: `{ ok: true, value }`. */
export declare function ok<T>(value: T): Ok<T>
/** A failed Result: `{ ok: false, error }`, plus `cause` when `options.cause` is not undefined. */
export declare function err<E, C = unknown>(error: E, options?: { cause?: C }): Err<E, C>

/** Why a step failed: it returned an err (`result`) or threw (`throw`). */
export type StepFailureMeta = { origin: 'result'; resultCause?: unknown } | { origin: 'throw'; thrown: unknown }

export interface ResumeStateEntry {
  result: Result<unknown, unknown, unknown>
  meta?: StepFailureMeta
}

export interface ResumeState {
  steps: Map<string, ResumeStateEntry>
}

// ============================================================================
// Serialization (issue: wire format)
// ============================================================================

/** JSON-safe representation of a cause value (an Error, any value, or undefined). */
export interface SerializedCause {
  type: 'error' | 'value' | 'undefined'
  errorName?: string
  errorMessage?: string
  errorStack?: string
  value?: unknown
}

/** JSON-safe representation of a Result. */
export interface SerializedResult {
  ok: boolean
  value?: unknown
  error?: unknown
  cause?: SerializedCause
}

/** JSON-safe representation of StepFailureMeta. */
export interface SerializedMeta {
  origin: 'result' | 'throw'
  resultCause?: SerializedCause
  thrown?: SerializedCause
}

/** JSON-safe representation of a ResumeStateEntry. */
export interface SerializedEntry {
  result: SerializedResult
  meta?: SerializedMeta
}

/** JSON-safe representation of ResumeState (`version` is 1). */
export interface SerializedState {
  version: number
  entries: Record<string, SerializedEntry>
  metadata?: Record<string, unknown>
}

/**
 * Errors thrown by the serialization functions carry a stable `code`:
 * - `ERR_INVALID_ARG` (TypeError): an argument of the wrong type (`serializeResult(null)`,
 *   `stringifyState({})`, `deserializeCause(null)`), or a value `JSON.stringify` rejects in
 *   `stringifyState` (circular, BigInt: V8's own TypeError, code added);
 * - `ERR_OUT_OF_RANGE` (RangeError): a value too deep for `JSON.stringify` (V8's own error);
 * - `ERR_JSON_SYNTAX` (SyntaxError): `parseState` of text that is not JSON (V8's own error);
 * - `ERR_INVALID_DOCUMENT` (TypeError): `parseState` / `deserializeState` of JSON that is not a
 *   version-1 state document; the message names the problem, e.g.
 *   `not a state document: entries["a"].result.ok must be a boolean, got string`.
 */
export type SerializationErrorCode = 'ERR_INVALID_ARG' | 'ERR_OUT_OF_RANGE' | 'ERR_JSON_SYNTAX' | 'ERR_INVALID_DOCUMENT'

/** Serialize a cause: an Error keeps name/message/stack; a value JSON cannot hold becomes `String(value)`. */
export declare function serializeCause(cause: unknown): SerializedCause
/** Restore a cause. An unknown `type` yields `value` (as the JS module); a non-object throws `ERR_INVALID_ARG`. */
export declare function deserializeCause(serialized: SerializedCause): unknown
export declare function serializeResult(result: Result<unknown, unknown, unknown>): SerializedResult
export declare function deserializeResult(serialized: SerializedResult): Result<unknown, unknown, unknown>
export declare function serializeMeta(meta: StepFailureMeta): SerializedMeta
export declare function deserializeMeta(serialized: SerializedMeta): StepFailureMeta
export declare function serializeEntry(entry: ResumeStateEntry): SerializedEntry
export declare function deserializeEntry(serialized: SerializedEntry): ResumeStateEntry
/**
 * Serialize a ResumeState. Entry keys follow JS object-key rules (array-index keys first,
 * ascending); a `__proto__` step is left out, as the JS module's output never held it.
 */
export declare function serializeState(state: ResumeState, metadata?: Record<string, unknown>): SerializedState
/**
 * Restore a ResumeState. Validates the whole document like `parseState` (only version 1 is
 * read): TypeError `ERR_INVALID_DOCUMENT` naming the first problem.
 */
export declare function deserializeState(serialized: SerializedState): ResumeState
/** `JSON.stringify(serializeState(state, metadata))`, byte for byte. */
export declare function stringifyState(state: ResumeState, metadata?: Record<string, unknown>): string
/**
 * Parse a state document. SyntaxError (`ERR_JSON_SYNTAX`) for text that is not JSON, TypeError
 * (`ERR_INVALID_DOCUMENT`) naming the problem for JSON that is not a version-1 state document.
 */
export declare function parseState(json: string): ResumeState

// ============================================================================
// Glob helpers
// ============================================================================

/** Escape `* ? [ ] \` so `literal` matches only itself in a `keys()` pattern. */
export declare function escapeGlob(literal: string): string
/** Does `key` match the Redis-style glob `pattern` (`*`, `?`, `[a-z]`, `\x`)? */
export declare function globMatch(pattern: string, key: string): boolean

// ============================================================================
// StepCache (issue: memory cache)
// ============================================================================

// ============================================================================
// File cache and file store (issue: file)
// ============================================================================

// ============================================================================
// KeyValueStore, KV cache, Redis store, state persistence, hydrating cache (issue: KV/Redis)
// ============================================================================
