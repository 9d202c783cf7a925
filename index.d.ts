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
export type StepFailureMeta =
  | { origin: 'result'; resultCause?: unknown }
  | { origin: 'throw'; thrown: unknown }
  /** awaitly ≥ 1.x: a step that used its fallback (stored as a `throw` meta, as the JS module does). */
  | { origin: 'fallback'; fallbackUsed: true; fallbackReason: string }

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

/**
 * A synchronous step-result cache, as awaitly's workflow engine calls it
 * (`createWorkflow('name', deps, { cache })`). Same shape as awaitly's `StepCache`.
 * In every cache of this package (memory, file, KV), every method taking a key
 * throws a TypeError (`code: 'ERR_INVALID_ARG'`) for a non-string key, before
 * anything is read or written.
 */
export interface StepCache {
  /** The result stored under `key`, or `undefined` (never `null`) when absent or expired. */
  get(key: string): Result<unknown, unknown, unknown> | undefined
  /**
   * Store `result` under `key` (replacing any previous one).
   * @param options.ttl This entry's time-to-live in **milliseconds**, instead of the
   *   cache's `ttl`. `0` = this entry never expires. Default: the cache's `ttl`.
   */
  set(key: string, result: Result<unknown, unknown, unknown>, options?: { ttl?: number }): void
  /** Whether a live (unexpired) entry exists for `key`. */
  has(key: string): boolean
  /** Remove `key`; `true` if a live entry was removed (`false` if absent or already expired). */
  delete(key: string): boolean
  /** Remove every entry. */
  clear(): void
}

/** Options of {@link createMemoryCache}. Invalid values throw a `TypeError` (`code: 'ERR_INVALID_ARG'`) naming the option. */
export interface MemoryCacheOptions {
  /**
   * Maximum number of **entries** (a non-negative integer). When a new key is set
   * in a full cache, the **least recently used** entry is evicted (`get`, `has`
   * and `set` make an entry most recently used).
   * Default: `undefined` = unbounded (`0` and `Infinity` also mean unbounded).
   */
  maxSize?: number
  /**
   * Time-to-live of entries in **milliseconds** (a non-negative number, measured
   * from the `set`; reads do not extend it). An entry is expired once
   * `Date.now() - storedAt > ttl`; expired entries are never returned and are
   * removed when touched, by `purgeStale()`, by `size`, or when their slot is
   * needed. Time is read with `Date.now()`, so fake timers control it.
   * Default: `undefined` = no expiry (`0` and `Infinity` also mean no expiry).
   */
  ttl?: number
}

/** Counters of a memory cache, cumulative since it was created (`clear()` keeps them). */
export interface MemoryCacheStats {
  /** `get` calls that returned an entry. */
  hits: number
  /** `get` calls that returned `undefined` (absent or expired). `has` is not counted. */
  misses: number
  /** Live entries removed to make room for a new key (least recently used first). */
  evictions: number
  /** Entries removed because their ttl had passed (touched, purged, or reclaimed when room was needed). */
  expirations: number
}

/** The StepCache returned by {@link createMemoryCache}, plus lru-cache-style extras. */
export interface MemoryCache extends StepCache {
  /**
   * Number of live entries (expired ones are purged first). O(1) until some
   * entry can have expired, then one pass over the entries.
   */
  readonly size: number
  /** Counters since creation; see {@link MemoryCacheStats}. */
  stats(): MemoryCacheStats
  /** Remove every expired entry now. Returns `true` if any was removed (like lru-cache). */
  purgeStale(): boolean
}

/**
 * An in-memory StepCache with O(1) least-recently-used eviction and TTL. The
 * recency order, eviction and expiry bookkeeping live in the native core; the
 * results themselves stay JavaScript objects, so `get` returns the very object
 * that was `set` (Dates, class instances, functions, Errors stay intact).
 *
 * @example
 * const cache = createMemoryCache({ maxSize: 1000, ttl: 60_000 })
 * const workflow = createWorkflow('checkout', deps, { cache })
 */
export declare function createMemoryCache(options?: MemoryCacheOptions): MemoryCache

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
  /**
   * Reuse replaced files as the temporaries of later writes (overwritten in
   * place, synced, renamed), which avoids a block allocation and a block free
   * per write: durable writes at 64 in flight measured ~6× faster with it.
   * Our own reads (in this and other processes) detect a file that changed
   * under them and read again; a foreign reader of the same directory (the JS
   * module, `cat`) still reading a file 50 ms after it was replaced could see
   * other content. Set `false` when other programs read this directory while
   * it is written. Native I/O only.
   * @default true
   */
  reuseFiles?: boolean
  /**
   * Write-behind (README "Which caches persist, and when"): `true` makes the
   * sync `set`, `delete` and `clear` (the methods awaitly's engine calls)
   * update the in-process layer at once and queue the same durable operation
   * as the `*Async` method, in call order per key (also relative to `*Async`
   * calls on this cache). Queued work keeps the process alive until done;
   * `flush()` waits for it. `false`: the sync methods touch the in-process
   * layer only (the JS module's behaviour). Not a boolean: TypeError `ERR_INVALID_ARG`.
   * @default true
   */
  writeBehind?: boolean
  /**
   * Called once per failed write-behind operation with the error (its `code`
   * as the `*Async` method's would be) and the key (`undefined` for a
   * `clear`). Without it, the first failure of each `code` is a
   * `process.emitWarning` (code `AWAITLY_WRITE_BEHIND`). Either way the
   * failure is counted in `stats().writeErrors` and reported by the next
   * `flush()`; it is never an unhandled rejection. A throwing `onError` is
   * reported as a warning. Not a function: TypeError `ERR_INVALID_ARG`.
   */
  onError?: (error: Error, key: string | undefined) => void
}

/**
 * Counters of a file or KV cache: its in-process layer's (see
 * {@link MemoryCacheStats}; all 0 with `memoryMaxSize: 0`) and its write-behind's.
 */
export interface PersistentCacheStats extends MemoryCacheStats {
  /** Write-behind operations (sync `set`/`delete`/`clear`) that failed, since creation. */
  writeErrors: number
  /** Write-behind operations queued and not yet settled. */
  pendingWrites: number
}

/**
 * The error `flush()` rejects with: an `AggregateError` (at run time; typed
 * as Error here so that no ES2021 lib is needed) whose `errors` are the
 * write-behind failures since the previous `flush()` (each with its own `code`;
 * at most the first 1000 are kept, the message gives the full count),
 * `code` `'ERR_IO'` (file cache) or `'ERR_STORE'` (KV cache).
 */
export interface WriteBehindError extends Error {
  code: 'ERR_IO' | 'ERR_STORE'
  errors: Error[]
}

/**
 * A StepCache backed by one file per key. The sync methods use a bounded
 * in-process LRU and (write-behind, default) queue the disk write; the async
 * ones use the disk. File format: the JS module's
 * `JSON.stringify(serializeResult(result), null, 2)`. Names: `<key><ext>` for
 * keys of only `[A-Za-z0-9_-]` (the JS module's name), otherwise
 * `<prefix>~<sha256 of the key's UTF-16><ext>`, whose file also holds the key
 * (`"key"`, first member) so that `init()` can preload it.
 */
export interface FileCache {
  /** In-process layer only (no disk read). */
  get(key: string): Result<unknown, unknown, unknown> | undefined
  /**
   * In-process layer at once (`options.ttl` in milliseconds, in-process only; the
   * file has no expiry); with `writeBehind` (default) the file write is queued as
   * `setAsync`'s. A value `setAsync` would reject is kept in-process and its
   * failure goes to `onError` / `flush()` (never thrown into the engine).
   */
  set(key: string, result: Result<unknown, unknown, unknown>, options?: { ttl?: number }): void
  has(key: string): boolean
  /** In-process at once; with `writeBehind`, the file removal is queued. Returns whether the in-process layer had it. */
  delete(key: string): boolean
  /** In-process at once; with `writeBehind`, removal of this cache's files is queued. */
  clear(): void
  /**
   * Create the directory; remove temporaries left by crashed processes; then
   * preload: the newest files (by mtime) fill the in-process layer, up to
   * `memoryMaxSize`, the newest most recently used. A file under a hashed name
   * holds its key (a `"key"` member, written since write-behind); older hashed
   * files hold none and are read by `getAsync` only. Native I/O only (with `fs`,
   * `init()` only creates the directory). A corrupt file follows `onCorrupt` (`'error'`: the others are loaded, then
   * `init()` rejects `ERR_CORRUPT`; `'miss'`: moved aside). A key set or deleted
   * during the preload keeps its newer state.
   */
  init(): Promise<void>
  /**
   * Settles once every write-behind operation queued before it is durable (as
   * `setAsync` would have resolved); rejects with a {@link WriteBehindError}
   * holding the failures since the last `flush()` (each reported once).
   */
  flush(): Promise<void>
  /** See {@link PersistentCacheStats}. */
  stats(): PersistentCacheStats
  /** Read a result from disk (undefined when absent); rejects ERR_CORRUPT / ERR_IO. */
  getAsync(key: string): Promise<Result<unknown, unknown, unknown> | undefined>
  /**
   * Write a result atomically (and durably, unless `durable: false`). Rejects before
   * writing, naming the key: TypeError `ERR_INVALID_ARG` for a non-Result or a value
   * JSON cannot hold (circular, BigInt; V8's error as `cause`), RangeError
   * `ERR_OUT_OF_RANGE` for one too deep.
   */
  setAsync(key: string, result: Result<unknown, unknown, unknown>): Promise<void>
  /** Remove a key's file: whether one existed. */
  deleteAsync(key: string): Promise<boolean>
  /** Remove this cache's files (its extension and naming scheme) only. */
  clearAsync(): Promise<void>
}

export declare function createFileCache(options: FileCacheOptions): FileCache

export interface FileStoreOptions {
  /** Directory holding one file per key (created on first use). */
  directory: string
  /** @default '.kv.json' */
  extension?: string
  /** See FileCacheOptions.durable. @default true */
  durable?: boolean
  /** See FileCacheOptions.reuseFiles. @default true */
  reuseFiles?: boolean
}

/**
 * A native file-backed KeyValueStore: one file per key holding
 * `{"key","value","expiresAt"}`, atomic durable writes, `ttl` in seconds
 * (expired entries read as null), `keys(pattern)` with Redis-style globs.
 * - `set` options are validated as the Redis store's: `{ ttl }` in whole seconds
 *   (absent, 0 or null = no expiry); anything else (`5`, `{ ttl: 1.5 }`) rejects
 *   TypeError `ERR_INVALID_ARG` before anything is written.
 * - A corrupt entry (torn, not UTF-8, not an envelope, holding another key) is never
 *   skipped: `get`/`exists` of its key and `keys(pattern)` (when the file may hold a
 *   matching key) reject `ERR_CORRUPT` naming the file; `delete` of its key removes
 *   the file and resolves `true`. `delete` resolves `false` only for no file or an
 *   expired entry.
 */
export declare function createFileStore(options: FileStoreOptions): FileStore

/** Marks this package's native Redis, PostgreSQL and file stores, whose snapshot stores have native run leases. */
declare const nativeLeases: unique symbol

/** A native file store (a KeyValueStore); `createSnapshotStore` over it has run leases. */
export interface FileStore extends KeyValueStore {
  readonly [nativeLeases]: 'file'
}

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

/**
 * TLS settings of the Redis and PostgreSQL stores, named as Node's `tls.connect` names them.
 * Checked at creation: `ca` must hold at least one certificate usable as a trust anchor,
 * `cert` at least one certificate, `key` a usable private key belonging to `cert`, and
 * `servername` must be a DNS name or IP address; else a TypeError (`ERR_INVALID_ARG`)
 * naming the field. Unknown fields are refused too.
 */
export interface TlsOptions {
  /** PEM: the CA(s) to trust. Default: the web PKI roots (Mozilla's, built in). */
  ca?: string
  /** PEM: a client certificate chain for mutual TLS, with `key`. */
  cert?: string
  /** PEM: the private key of `cert` (PKCS#1, PKCS#8 or SEC1). */
  key?: string
  /** The name sent (SNI) and that the server's certificate must hold. Default: the host connected to. */
  servername?: string
  /**
   * `false`: accept any server certificate (neither its chain nor its name is checked; the
   * handshake is still signed by it). For test servers only. Default `true`.
   */
  rejectUnauthorized?: boolean
}

export interface RedisStoreOptions {
  /** `redis://[user:pass@]host:port[/db]`, `rediss://` (TLS, see `tls`; `rediss://…#insecure` is `rejectUnauthorized: false`), `unix:/path` or `redis+unix:`. Default `redis://127.0.0.1:6379`. */
  url?: string
  /** Max ms to obtain a connection (connect, handshake, or wait for another call's attempt). Default 5000. */
  connectTimeout?: number
  /** Max ms for a command / pipeline once connected. Default 5000. */
  commandTimeout?: number
  /**
   * Max calls per pipeline; the calls of one tick are split into pipelines of this size (and
   * of at most 32K UTF-16 units of keys and values), written back to back: the server starts
   * on the first while the rest are encoded. Default 32.
   */
  maxBatch?: number
  /**
   * For `rediss://` (one server or every cluster node; both transports): the CA to trust, a
   * client certificate, `servername`, `rejectUnauthorized` ({@link TlsOptions}).
   */
  tls?: TlsOptions
  /**
   * Redis Cluster instead of one server (not together with `url`): seed nodes as
   * `redis://host:port` (or all `rediss://`); the rest of the cluster is discovered.
   * The calls of one tick go out as one pipeline per primary node, all in flight at once;
   * `keys`/`clearAsync`/`list` SCAN every primary; MOVED/ASK are followed.
   */
  cluster?: RedisClusterOptions
  /**
   * Where the calls run. `'auto'` (the default): on one server (`redis://`, `rediss://`,
   * `unix:`), over a socket of the JS thread itself, watched by Node's own event loop (no
   * thread hop per call: data calls, `keys`/`clearAsync`/`list`, run leases and snapshot
   * saves alike; connecting, DNS and the TLS handshake run on a Rust thread). On a Redis
   * Cluster, one such socket per primary, for every call (reading the slot map and
   * connecting run on a Rust thread). Where that is not possible (a Node whose libuv functions cannot be found in
   * the process) it falls back to `'tokio'`. `'tokio'`: every call on the Rust `redis`
   * crate's tokio connection. The store's `transport` property says which one is in use.
   * @default 'auto'
   */
  transport?: 'auto' | 'tokio'
  /**
   * After each state write (`createStatePersistence.save`), `WAIT waitReplicas` on the
   * node that took it, with a timeout of half `commandTimeout`: the save resolves only
   * once that many replicas have it, and rejects with `ERR_STORE_UNAVAILABLE` if fewer
   * acknowledged in time (the write may then be lost in a failover). Costs one replica
   * round trip per save. Default 0 (off: Redis replication is asynchronous).
   */
  waitReplicas?: number
}

export interface RedisClusterOptions {
  /** Seed nodes, e.g. `['redis://127.0.0.1:7000', 'redis://127.0.0.1:7001']`. At least one. */
  nodes: string[]
}

/**
 * A native (Rust) Redis KeyValueStore. One connection (see
 * {@link RedisStoreOptions.transport}), replaced when it breaks; the calls made in one tick
 * go out as one pipeline. Errors
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
  /**
   * Where the calls run: `'direct'` (sockets of the JS thread, what `transport: 'auto'`
   * gives on one server and on a cluster) or `'tokio'` (asked for, or no libuv found in the host).
   */
  readonly transport: 'direct' | 'tokio'
  /** Native calls made so far for get/set/delete/exists (and ping, on the direct transport): one per tick (or per `maxBatch` calls), one pipeline each. */
  readonly batchesSent: number
  /** The calls those batches carried (owner markers written by caches and persistences included). */
  readonly callsSent: number
  readonly [nativeLeases]: 'redis'
}

export declare function createRedisStore(options?: RedisStoreOptions): RedisStore

export interface PostgresStoreOptions {
  /**
   * `postgres://user:pass@host:port/db?sslmode=require` or `host=… user=…`. The fields below,
   * when given, override its parts. Default: none (host `127.0.0.1`, port 5432, user `$USER`).
   */
  connectionString?: string
  host?: string
  /** Default 5432. */
  port?: number
  user?: string
  password?: string
  database?: string
  /**
   * Schema of the table, created (with the table) on first use if missing. Letters, digits
   * and `_`, not starting with a digit, at most 63 (always double-quoted: case is kept).
   * Default: none (the connection's `search_path`, usually `public`).
   */
  schema?: string
  /** The table; same rules as `schema`, at most 52 characters. Default `'awaitly_kv'`. */
  table?: string
  /** Connections in the pool, opened on first use. Default 4. */
  poolSize?: number
  /** Max ms to open a connection. Default 5000. */
  connectTimeout?: number
  /** Max ms for a batch once connected; then `ERR_STORE_TIMEOUT` and the connection is replaced. Default 5000. */
  commandTimeout?: number
  /** Every this many ms, expired rows are deleted (500 per statement). Default 60000. */
  sweepInterval?: number
  /** Max calls per pipeline; the calls of one tick are split into batches of this size. Default 64. */
  maxBatch?: number
  /**
   * TLS required: `true` (the web PKI roots) or {@link TlsOptions} (`cert` with `key`: client
   * certificate). Without it, TLS is used only if `connectionString` says `sslmode=require`,
   * `verify-ca` or `verify-full` (all three verify the server's chain and name here).
   */
  tls?: boolean | TlsOptions
  /**
   * Where the connections and calls run. `'auto'` (default): in Node, on the JS thread
   * itself (its event loop watches the sockets; a call costs no thread hop); in Bun and
   * Deno, tokio. `'tokio'`: on the addon's tokio thread. The store's `transport` property
   * says which one is in use.
   */
  transport?: 'auto' | 'tokio'
}

/**
 * A native (Rust, tokio-postgres) PostgreSQL KeyValueStore: one table, keys and values
 * as `bytea` (exact for every JS string), expiry by the server's clock. The calls of one
 * tick are pipelined on one pooled connection. Errors carry `code`:
 * `ERR_STORE_UNAVAILABLE` (refused / dropped / server restarting), `ERR_STORE_TIMEOUT`,
 * `ERR_STORE` (the server rejected a statement), `ERR_STORE_CLOSED`, `ERR_INVALID_ARG`
 * (TypeError, before any query).
 *
 * A {@link createSnapshotStore} over it is a `WorkflowLock` (lease rows in the same table,
 * judged by the server's clock), and its `save(id)` / `delete(id)` of an id whose lease it
 * holds are fenced: ONE statement locks the lease row (`FOR UPDATE`), checks the token and
 * the expiry, and writes the snapshot row only then; otherwise `ERR_LEASE_LOST`, nothing
 * written. No extra round trip.
 */
export interface PostgresStore extends KeyValueStore {
  /** Connect now if needed (creating the schema on first use) and run an empty query. */
  ping(): Promise<void>
  /** Delete expired rows now, as the background sweep does; resolves to the count. */
  sweep(): Promise<number>
  /** Close the pool; later calls reject with `ERR_STORE_CLOSED`. */
  close(): Promise<void>
  /** Connections opened so far (pool slots + reconnects). */
  readonly connectionsOpened: number
  /** Where the calls run: `'direct'` (the JS thread, what `transport: 'auto'` takes in Node) or `'tokio'`. */
  readonly transport: 'direct' | 'tokio'
  readonly [nativeLeases]: 'postgres'
}

export declare function createPostgresStore(options?: PostgresStoreOptions): PostgresStore

export interface KVCacheOptions {
  store: KeyValueStore
  /** Key prefix; entries live at `${prefix}${key}`. Default `'workflow:'`. */
  prefix?: string
  /** Seconds; absent or 0 = no expiry. Negative, fractional or non-numbers throw a TypeError here. */
  ttl?: number
  /** Bound of the in-process layer used by the sync methods (LRU). Default 1000; 0 disables it. */
  memoryMaxSize?: number
  /**
   * As {@link FileCacheOptions.writeBehind}: the sync `set`/`delete`/`clear` also queue
   * the store's `set` (with the cache's `ttl`, in seconds; a sync `set`'s `options.ttl`
   * applies in-process only), `delete`, and the clear of this cache's keys.
   * @default true
   */
  writeBehind?: boolean
  /** As {@link FileCacheOptions.onError}. */
  onError?: (error: Error, key: string | undefined) => void
}

/**
 * A StepCache whose sync methods use a bounded in-process LRU (and, write-behind by default, queue
 * the store operation) and whose async methods use the store.
 * A non-string key is a TypeError (`ERR_INVALID_ARG`) from every method, before any store call.
 */
export interface KVCache extends StepCache {
  getAsync(key: string): Promise<Result<unknown, unknown, unknown> | undefined>
  /** Rejects before any store call exactly as {@link FileCache.setAsync} (a non-Result, circular, BigInt, too deep). */
  setAsync(key: string, result: Result<unknown, unknown, unknown>): Promise<void>
  hasAsync(key: string): Promise<boolean>
  deleteAsync(key: string): Promise<boolean>
  /** Deletes this cache's entries only (never state documents, never a longer prefix's keys). */
  clearAsync(): Promise<void>
  /**
   * Preload: read what the store holds under this cache's prefix into the in-process
   * layer, up to `memoryMaxSize` entries (which ones, when there are more, is the
   * store's key order: a KeyValueStore has no age). Keys by `keys(prefix*)` (SCAN on
   * the Redis store, never KEYS), values by GETs issued in one tick (pipelined on the
   * Redis store). Resolves with the number loaded; an undecodable entry rejects
   * `ERR_CORRUPT` after the others are loaded. Keys set or deleted meanwhile keep
   * their newer state.
   */
  load(): Promise<number>
  /** As {@link FileCache.flush} (code `ERR_STORE`). */
  flush(): Promise<void>
  /** See {@link PersistentCacheStats}. */
  stats(): PersistentCacheStats
}

/**
 * Before its first write the cache writes its owner marker
 * `<prefix>__awaitly:owner:cache` (inside the prefix: an ACL of `~<prefix>*`
 * suffices; on the native file store a hidden file instead). Keys ending in
 * `__awaitly:owner:cache` or `__awaitly:owner:state` are reserved: TypeError
 * `ERR_INVALID_ARG`.
 */
export declare function createKVCache(options: KVCacheOptions): KVCache

export interface StatePersistence {
  /**
   * `metadata` absent or an object; anything else (null, an array, a primitive, a
   * function) rejects TypeError `ERR_INVALID_ARG` before anything is written.
   */
  save(runId: string, state: ResumeState, metadata?: Record<string, unknown>): Promise<void>
  /** undefined only when nothing is stored; a stored non-state rejects with code `ERR_CORRUPT`. */
  load(runId: string): Promise<ResumeState | undefined>
  delete(runId: string): Promise<boolean>
  /** The saved run ids; rejects if the store's `keys` does (the file store: `ERR_CORRUPT` for a corrupt entry). */
  list(): Promise<string[]>
}

/**
 * Before its first save the persistence writes its owner marker
 * `<prefix>__awaitly:owner:state` (inside the prefix; on the native file store
 * a hidden file), so no cache's `clearAsync` deletes its documents; `list()`
 * leaves it out. Run ids ending in `__awaitly:owner:cache` or
 * `__awaitly:owner:state` are reserved: TypeError `ERR_INVALID_ARG`.
 */
export declare function createStatePersistence(store: KeyValueStore, prefix?: string): StatePersistence

/**
 * `hydrate()` loads `runId` once: `undefined`/`null` = nothing saved; anything else
 * that is not a ResumeState (`{ steps }` of string keys and `{ result, meta? }`
 * entries) rejects TypeError `ERR_INVALID_DOCUMENT` naming the run and the problem,
 * before any entry is set (a failed hydrate can be retried).
 */
export declare function createHydratingCache(
  memoryCache: StepCache,
  persistence: Pick<StatePersistence, 'load'>,
  runId: string,
): StepCache & { hydrate(): Promise<void> }

// ---------------------------------------------------------------------------
// Errors: every error this package raises, as one type (README "Errors").
// ---------------------------------------------------------------------------

/** Codes of the errors thrown as a `TypeError`. */
export type PersistenceTypeErrorCode = 'ERR_INVALID_ARG' | 'ERR_INVALID_DOCUMENT'
/** Codes of the errors thrown as a plain `Error`. */
export type PersistenceErrorOnlyCode =
  | 'ERR_CORRUPT'
  | 'ERR_IO'
  | 'ERR_STORE_UNAVAILABLE'
  | 'ERR_STORE_TIMEOUT'
  | 'ERR_STORE'
  | 'ERR_STORE_CLOSED'
  | 'ERR_LEASE_LOST'
  | 'ERR_INTERNAL'
  | 'ERR_NATIVE_BINDING_NOT_FOUND'
/** Every `code` an error of this package can carry. */
export type PersistenceErrorCode = PersistenceTypeErrorCode | 'ERR_JSON_SYNTAX' | 'ERR_OUT_OF_RANGE' | PersistenceErrorOnlyCode

/**
 * An error raised by this package: its class and `code` go together, so
 * checking `code` narrows the class (and the other way round):
 * - `TypeError`: `ERR_INVALID_ARG` (a bad argument or option), `ERR_INVALID_DOCUMENT`
 *   (JSON that is not a state document / serialized value);
 * - `SyntaxError`: `ERR_JSON_SYNTAX` (text that is not JSON);
 * - `RangeError`: `ERR_OUT_OF_RANGE` (a value too deep for `JSON.stringify`);
 * - `Error`: `ERR_CORRUPT`, `ERR_IO`, `ERR_STORE_UNAVAILABLE`, `ERR_STORE_TIMEOUT`,
 *   `ERR_STORE`, `ERR_STORE_CLOSED`, `ERR_LEASE_LOST` (a snapshot save or delete fenced off:
 *   the store's lease on the run is no longer its own, nothing was written),
 *   `ERR_INTERNAL` (a Rust panic caught at the boundary),
 *   `ERR_NATIVE_BINDING_NOT_FOUND` (with `platformPackage`, the package that is missing).
 */
export type PersistenceError =
  | (TypeError & { code: PersistenceTypeErrorCode })
  | (SyntaxError & { code: 'ERR_JSON_SYNTAX' })
  | (RangeError & { code: 'ERR_OUT_OF_RANGE' })
  | (Error & { code: Exclude<PersistenceErrorOnlyCode, 'ERR_NATIVE_BINDING_NOT_FOUND'> })
  | (Error & { code: 'ERR_NATIVE_BINDING_NOT_FOUND'; platformPackage: string })

/**
 * Is `error` a {@link PersistenceError}: an `Error` of the class its `code` belongs to,
 * with one of the codes above? For `catch (e)` without casts. It checks the shape
 * (class + code), so an error of the same shape from elsewhere (Node's own
 * `RangeError` with code `ERR_OUT_OF_RANGE`) passes too.
 */
export declare function isPersistenceError(error: unknown): error is PersistenceError

// ============================================================================
// awaitly 1.35 durable execution: SnapshotStore + WorkflowLock (issue 14)
// ============================================================================

// awaitly 1.35's snapshot types are defined once, in snapshot.d.ts (the
// `/snapshot` subpath); `WorkflowSnapshot` is re-exported here for users of
// the main entry.
import type { WorkflowSnapshot } from './snapshot.js'
export type { WorkflowSnapshot }

/**
 * awaitly's runtime ResumeState (1.35: `awaitly/workflow`; 4.x: `awaitly`):
 * steps in a Map. The same type as `ResumeState`, so a loaded one passes to
 * `createWorkflow(name, deps, { resumeState })` without a cast.
 */
export type DurableResumeState = ResumeState

export interface SnapshotStoreOptions<S extends KeyValueStore = KeyValueStore> {
  /** Where snapshots live: any KeyValueStore (leases only on our native Redis and file stores). */
  store: S
  /** Key prefix of snapshots and leases. @default 'awaitly:snapshot:' */
  prefix?: string
}

/**
 * awaitly 1.35's `SnapshotStore` with the official adapters' extended contract.
 * Ids are non-empty strings not starting with U+0000; anything else (and a
 * value that is neither a WorkflowSnapshot nor a ResumeState) rejects with a
 * TypeError `ERR_INVALID_ARG` before anything is written. A stored value that
 * cannot be read rejects `ERR_CORRUPT` (durable.run then returns a
 * PERSISTENCE_ERROR instead of starting afresh).
 */
export interface SnapshotStore {
  /**
   * Store a WorkflowSnapshot, or a ResumeState (as awaitly's `serializeResumeState`).
   * Fenced on a {@link LockingSnapshotStore} that holds the lease of `id`.
   */
  save(id: string, snapshot: WorkflowSnapshot | DurableResumeState): Promise<void>
  /**
   * The stored snapshot, or null. A saved ResumeState comes back as a ResumeState
   * (`deserializeResumeState`), as from the official adapters: use `loadResumeState` for it.
   */
  load(id: string): Promise<WorkflowSnapshot | null>
  /** The stored ResumeState, or null (nothing stored, or a WorkflowSnapshot). */
  loadResumeState(id: string): Promise<DurableResumeState | null>
  /** Remove the stored snapshot of `id` (fenced like `save` on a {@link LockingSnapshotStore}). */
  delete(id: string): Promise<void>
  /**
   * Ids with their last save time (ISO), newest first, at most `limit` (default 100).
   * `prefix` is literal text (glob and LIKE characters match themselves). Lease keys are never listed.
   */
  list(options?: { prefix?: string; limit?: number }): Promise<Array<{ id: string; updatedAt: string }>>
  /** Does nothing: the KeyValueStore belongs to the caller, who closes it. */
  close(): Promise<void>
}

/**
 * A SnapshotStore that is also awaitly 1.35's `WorkflowLock` (over our native
 * Redis, PostgreSQL or file store): `durable.run` then refuses a second concurrent run of
 * an id, renews the lease on a heartbeat and aborts a run whose lease is lost.
 * Expiry is judged by one clock: the Redis or PostgreSQL server's, or (files) this host's
 * boot-time clock. `ttlMs`: integer 1..2^31-1, default 60000.
 *
 * Fenced checkpoints (Redis, Redis Cluster, PostgreSQL and file stores):
 * from `tryAcquire(id)` until `release(id)`, this store's
 * `save(id)` and `delete(id)` write only if the lease is still its own, checked
 * atomically with the write (one script on Redis, one statement on
 * PostgreSQL, the lease lock on files);
 * otherwise they reject with `ERR_LEASE_LOST` and write nothing (README
 * "Fenced checkpoints").
 */
export interface LockingSnapshotStore extends SnapshotStore {
  /** Take the lease of `id` if nobody holds it (or it expired): its owner token, or null. */
  tryAcquire(id: string, options?: { ttlMs?: number }): Promise<{ ownerToken: string } | null>
  /** Drop the lease if `ownerToken` holds it; a stale or foreign token changes nothing. */
  release(id: string, ownerToken: string): Promise<void>
  /** Extend the lease to `ttlMs` from now if `ownerToken` still holds it; whether it did. */
  renew(id: string, ownerToken: string, options?: { ttlMs?: number }): Promise<boolean>
}

/**
 * awaitly 1.35 `SnapshotStore` over a KeyValueStore, for `durable.run`. Over
 * `createRedisStore()`, `createPostgresStore()` or `createFileStore()` it is also a `WorkflowLock`
 * (native leases); over any other store it has no lock methods and durable
 * runs unlocked (as on awaitly's in-memory store).
 */
export declare function createSnapshotStore(options: SnapshotStoreOptions<RedisStore | FileStore | PostgresStore>): LockingSnapshotStore
export declare function createSnapshotStore(options: SnapshotStoreOptions): SnapshotStore
