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

export declare function serializeCause(cause: unknown): SerializedCause
export declare function deserializeCause(serialized: SerializedCause): unknown
export declare function serializeResult(result: Result<unknown, unknown, unknown>): SerializedResult
export declare function deserializeResult(serialized: SerializedResult): Result<unknown, unknown, unknown>
export declare function serializeMeta(meta: StepFailureMeta): SerializedMeta
export declare function deserializeMeta(serialized: SerializedMeta): StepFailureMeta
export declare function serializeEntry(entry: ResumeStateEntry): SerializedEntry
export declare function deserializeEntry(serialized: SerializedEntry): ResumeStateEntry
export declare function serializeState(state: ResumeState, metadata?: Record<string, unknown>): SerializedState
export declare function deserializeState(serialized: SerializedState): ResumeState
/** `JSON.stringify(serializeState(state, metadata))`, byte for byte. */
export declare function stringifyState(state: ResumeState, metadata?: Record<string, unknown>): string
/** Parse a state document. Throws SyntaxError for text that is not JSON, TypeError for JSON that is not a state. */
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
