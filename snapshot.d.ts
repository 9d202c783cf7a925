// Types of `awaitly-persistence-native/snapshot`: the exports of awaitly
// 1.35's `awaitly/persistence`, under the same names and shapes (checked both
// ways against awaitly's own by __test__/fixtures/types/snapshot.mts).

export { createMemoryCache } from './index.js'
export type { MemoryCacheOptions } from './index.js'
// Ours, beyond awaitly's list: the SnapshotStore (+ WorkflowLock on our native
// Redis and file stores) that `durable.run` takes as `store`.
export { createSnapshotStore } from './index.js'
export type { SnapshotStoreOptions, LockingSnapshotStore, DurableResumeState } from './index.js'

/** A value `JSON.stringify` keeps as it is. */
export type JSONValue = null | boolean | number | string | JSONValue[] | { [k: string]: JSONValue }

/**
 * The error wire format of snapshots (awaitly 1.35; not the 1.0
 * `SerializedCause` of the main entry): an Error, with its cause chain, or a
 * thrown non-Error with its string form and, when it has one, its JSON value.
 */
export type SerializedCause =
  | {
      type: 'error'
      name: string
      message: string
      stack?: string
      cause?: SerializedCause
    }
  | {
      type: 'thrown'
      /** `'null'`, `typeof` the value, or an object's constructor name. */
      originalType?: string
      /** The JSON round trip of the value, when it has one. */
      value?: JSONValue
      /** `String(value)`, at most 1,000 UTF-16 code units. */
      stringRepresentation: string
      /** Present when `stringRepresentation` was cut. */
      truncated?: true
    }

/** One step's outcome in a snapshot. */
export type StepResult =
  | { ok: true; value: JSONValue }
  | { ok: false; error: JSONValue; cause: SerializedCause; meta?: { origin: 'result' | 'throw' } }

/** awaitly 1.35's JSON-safe workflow snapshot (`JSON.stringify` it as is). */
export interface WorkflowSnapshot {
  formatVersion: 1
  workflowName?: string
  /** Step results by step id. */
  steps: Record<string, StepResult>
  execution: {
    status: 'running' | 'completed' | 'failed'
    /** ISO time (`toISOString()`). */
    lastUpdated: string
    completedAt?: string
    currentStepId?: string
  }
  metadata?: {
    workflowId?: string
    definitionHash?: string
    input?: JSONValue
    [key: string]: JSONValue | undefined
  }
  /** Values a snapshot could not keep exactly. */
  warnings?: Array<{
    type: 'lossy_value'
    stepId: string
    path: string
    reason: 'non-json' | 'circular' | 'encode-failed'
  }>
}

/** One entry of `WorkflowSnapshot['warnings']`. */
export type SnapshotWarning = NonNullable<WorkflowSnapshot['warnings']>[number]

/** Thrown by {@link assertValidSnapshot}: `errors` lists every problem, `message` the first. */
export declare class SnapshotFormatError extends Error {
  readonly errors: string[]
  constructor(message: string, errors?: string[])
}

/** A snapshot that does not belong to the workflow restoring it. */
export declare class SnapshotMismatchError extends Error {
  readonly mismatchType: 'unknown_steps' | 'workflow_id' | 'definition_hash'
  readonly details?:
    | {
        unknownSteps?: string[]
        snapshotWorkflowId?: string
        expectedWorkflowId?: string
        snapshotHash?: string
        expectedHash?: string
      }
    | undefined
  constructor(
    message: string,
    mismatchType: 'unknown_steps' | 'workflow_id' | 'definition_hash',
    details?: {
      unknownSteps?: string[]
      snapshotWorkflowId?: string
      expectedWorkflowId?: string
      snapshotHash?: string
      expectedHash?: string
    },
  )
}

/** A step value whose decode failed during a restore. */
export declare class SnapshotDecodeError extends Error {
  readonly stepId: string
  readonly originalError?: unknown
  constructor(message: string, stepId: string, originalError?: unknown)
}

/** Cheap structural check: formatVersion 1 and object `steps` and `execution` (use validateSnapshot for the rest). */
export declare function looksLikeWorkflowSnapshot(obj: unknown): obj is WorkflowSnapshot

/** Full structural validation; never throws. `snapshot` is `obj` itself. */
export declare function validateSnapshot(
  obj: unknown,
): { valid: true; snapshot: WorkflowSnapshot } | { valid: false; errors: string[] }

/** {@link validateSnapshot}, throwing a {@link SnapshotFormatError} when invalid. */
export declare function assertValidSnapshot(obj: unknown): WorkflowSnapshot

/**
 * `delta`'s steps over `base`'s, `delta`'s execution, metadata merged shallowly,
 * `base` warnings of replaced steps dropped. A missing snapshot or `steps`
 * throws a TypeError (`code: 'ERR_INVALID_ARG'`).
 */
export declare function mergeSnapshots(base: WorkflowSnapshot, delta: WorkflowSnapshot): WorkflowSnapshot

/** An Error and its cause chain as a {@link SerializedCause}; a loop in the chain ends in a `[Circular]` entry. */
export declare function serializeError(error: Error): SerializedCause

/** A thrown non-Error as a `thrown` {@link SerializedCause}. */
export declare function serializeThrown(value: unknown): SerializedCause

/** A {@link SerializedCause} back to an Error (with its chain) or to the thrown value. */
export declare function deserializeCauseNew(serialized: SerializedCause): unknown

/**
 * The store interface of awaitly 1.35's `durable.run` / `createWorkflow`
 * persistence (snapshots by workflow id).
 */
export interface SnapshotStore {
  /** Insert or replace the snapshot of `id`. */
  save(id: string, snapshot: WorkflowSnapshot): Promise<void>
  /** The snapshot of `id`, or `null` when there is none. */
  load(id: string): Promise<WorkflowSnapshot | null>
  delete(id: string): Promise<void>
  /** Ids (starting with `prefix`, at most `limit`) with their last update (ISO time). */
  list(options?: { prefix?: string; limit?: number }): Promise<Array<{ id: string; updatedAt: string }>>
  close(): Promise<void>
}
