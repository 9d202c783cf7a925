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

/** The spec's minimal file-system interface (all paths are `${directory}/${name}`). */
export interface FileSystemInterface {
  readFile(path: string): Promise<string>
  writeFile(path: string, data: string): Promise<void>
  unlink(path: string): Promise<void>
  exists(path: string): Promise<boolean>
  readdir(path: string): Promise<string[]>
  mkdir(path: string, options?: { recursive?: boolean }): Promise<void>
}

export interface FileCacheOptions {
  /** Directory holding one file per key. */
  directory: string
  /**
   * File extension (no `/`, `\`, control characters; at most 64 bytes).
   * @default '.json'
   */
  extension?: string
  /**
   * A FileSystemInterface to do the I/O (as the JS module required). Without
   * it, all I/O is native: atomic, durable writes off the JS thread. With it,
   * writes are as atomic as its `writeFile`.
   */
  fs?: FileSystemInterface
  /**
   * Entries kept in the in-process LRU layer behind the sync methods
   * (0 disables it; `Infinity` = unbounded, as the JS module).
   * @default 1000
   */
  memoryMaxSize?: number
  /**
   * A file that cannot be read as a serialized result: `'error'` rejects
   * `getAsync` with `code: 'ERR_CORRUPT'`; `'miss'` returns undefined and
   * moves the file aside to `<name>.corrupt` (never deleting anything).
   * @default 'error'
   */
  onCorrupt?: 'error' | 'miss'
  /**
   * Native I/O only: `true` resolves `setAsync`/`deleteAsync`/`clearAsync` once
   * the change is on disk (fsync, group-committed). `false` skips the
   * directory fsync (and the data sync of fresh temporaries): a process crash
   * still leaves old or new content, never a torn file; after a power loss
   * the latest writes may be lost (or, on file systems without ext4's
   * rename heuristics, left empty).
   * @default true
   */
  durable?: boolean
}

/**
 * A StepCache backed by one file per key. The sync methods use a bounded
 * in-process LRU; the async ones use the disk. File format: the JS module's
 * `JSON.stringify(serializeResult(result), null, 2)`. Names: `<key><ext>` for
 * keys of only `[A-Za-z0-9_-]` (the JS module's name), otherwise
 * `<prefix>~<sha256 of the key's UTF-16><ext>`.
 */
export interface FileCache {
  /** In-process layer only (no disk read). */
  get(key: string): Result<unknown, unknown, unknown> | undefined
  /** In-process layer only (no disk write). */
  set(key: string, result: Result<unknown, unknown, unknown>): void
  has(key: string): boolean
  delete(key: string): boolean
  clear(): void
  /** Create the directory; remove temporaries left by crashed processes. */
  init(): Promise<void>
  /** Read a result from disk (undefined when absent); rejects ERR_CORRUPT / ERR_IO. */
  getAsync(key: string): Promise<Result<unknown, unknown, unknown> | undefined>
  /** Write a result atomically (and durably, unless `durable: false`). */
  setAsync(key: string, result: Result<unknown, unknown, unknown>): Promise<void>
  /** Remove a key's file: whether one existed. */
  deleteAsync(key: string): Promise<boolean>
  /** Remove this cache's files (its extension and naming scheme) only. */
  clearAsync(): Promise<void>
}

export declare function createFileCache(options: FileCacheOptions): FileCache

/** The spec's generic key-value store interface (`ttl` in seconds). */
export interface KeyValueStore {
  get(key: string): Promise<string | null>
  set(key: string, value: string, options?: { ttl?: number }): Promise<void>
  delete(key: string): Promise<boolean>
  exists(key: string): Promise<boolean>
  keys(pattern: string): Promise<string[]>
}

export interface FileStoreOptions {
  /** Directory holding one file per key (created on first use). */
  directory: string
  /** @default '.kv.json' */
  extension?: string
  /** See FileCacheOptions.durable. @default true */
  durable?: boolean
}

/**
 * A native file-backed KeyValueStore: one file per key holding
 * `{"key","value","expiresAt"}`, atomic durable writes, `ttl` in seconds
 * (expired entries read as null), `keys(pattern)` with Redis-style globs.
 */
export declare function createFileStore(options: FileStoreOptions): KeyValueStore

// ============================================================================
// KeyValueStore, KV cache, Redis store, state persistence, hydrating cache (issue: KV/Redis)
// ============================================================================
