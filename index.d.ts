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

/**
 * A string key-value store, as `awaitly/persistence` defines it. `ttl` is in
 * seconds; absent or 0 means no expiry. `keys(pattern)` takes a Redis-style
 * glob (`*`, `?`, `[a-z]`, `\x` escapes).
 */
export interface KeyValueStore {
  get(key: string): Promise<string | null>
  set(key: string, value: string, options?: { ttl?: number }): Promise<void>
  delete(key: string): Promise<boolean>
  exists(key: string): Promise<boolean>
  keys(pattern: string): Promise<string[]>
}

export interface RedisStoreOptions {
  /** `redis://[user:pass@]host:port[/db]`, `unix:/path` or `redis+unix:`. `rediss://` only in builds with the `redis-tls` feature. Default `redis://127.0.0.1:6379`. */
  url?: string
  /** Max ms to obtain a connection (connect, handshake, or wait for another call's attempt). Default 5000. */
  connectTimeout?: number
  /** Max ms for a command / pipeline once connected. Default 5000. */
  commandTimeout?: number
  /** Max calls per pipeline; the calls of one tick are split into pipelines of this size. Default 64. */
  maxBatch?: number
}

/**
 * A native (Rust) Redis KeyValueStore. One multiplexed connection, replaced
 * when it breaks; the calls made in one tick go out as one pipeline. Errors
 * carry `code`: `ERR_STORE_UNAVAILABLE` (refused / dropped),
 * `ERR_STORE_TIMEOUT`, `ERR_STORE` (the server rejected a command),
 * `ERR_STORE_CLOSED`, `ERR_INVALID_ARG` (TypeError).
 */
export interface RedisStore extends KeyValueStore {
  /** Keys matching a Redis glob, by SCAN (never KEYS); order unspecified. */
  keys(pattern: string): Promise<string[]>
  /** Connect now if needed, and PING. */
  ping(): Promise<void>
  /** Close the connection; later calls reject with `ERR_STORE_CLOSED`. */
  close(): Promise<void>
  /** Connections opened so far (1 + reconnects). */
  readonly connectionsOpened: number
}

export declare function createRedisStore(options?: RedisStoreOptions): RedisStore

export interface KVCacheOptions {
  store: KeyValueStore
  /** Key prefix; entries live at `${prefix}${key}`. Default `'workflow:'`. */
  prefix?: string
  /** Seconds; absent or 0 = no expiry. Negative, fractional or non-numbers throw a TypeError here. */
  ttl?: number
  /** Bound of the in-process layer used by the sync methods (LRU). Default 1000; 0 disables it. */
  maxMemoryEntries?: number
}

/** A StepCache whose sync methods use a bounded in-process LRU and whose async methods use the store. */
export interface KVCache extends StepCacheLike {
  getAsync(key: string): Promise<Result<unknown, unknown, unknown> | undefined>
  setAsync(key: string, result: Result<unknown, unknown, unknown>): Promise<void>
  hasAsync(key: string): Promise<boolean>
  deleteAsync(key: string): Promise<boolean>
  /** Deletes this cache's entries only (never state documents, never a longer prefix's keys). */
  clearAsync(): Promise<void>
}

/** The sync StepCache methods (same shape as awaitly's StepCache). */
export interface StepCacheLike {
  get(key: string): Result<unknown, unknown, unknown> | undefined
  set(key: string, result: Result<unknown, unknown, unknown>): void
  has(key: string): boolean
  delete(key: string): boolean
  clear(): void
}

export declare function createKVCache(options: KVCacheOptions): KVCache

export interface StatePersistence {
  save(runId: string, state: ResumeState, metadata?: Record<string, unknown>): Promise<void>
  /** undefined only when nothing is stored; a stored non-state rejects with code `ERR_CORRUPT`. */
  load(runId: string): Promise<ResumeState | undefined>
  delete(runId: string): Promise<boolean>
  list(): Promise<string[]>
}

export declare function createStatePersistence(store: KeyValueStore, prefix?: string): StatePersistence

export declare function createHydratingCache(
  memoryCache: StepCacheLike,
  persistence: Pick<StatePersistence, 'load'>,
  runId: string,
): StepCacheLike & { hydrate(): Promise<void> }
