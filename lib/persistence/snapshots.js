'use strict'
// createSnapshotStore: awaitly's SnapshotStore, 1.35 and 4.x (the official adapters'
// extended contract: save/load of a WorkflowSnapshot or a ResumeState,
// loadResumeState) over any KeyValueStore, and, over our native Redis, file
// and PostgreSQL stores, also its WorkflowLock (tryAcquire/release/renew),
// which is all Rust (src/redis/lease.rs, src/file/lease.rs,
// src/postgres/sql.rs), reached through the
// store adapter's leases (lib/stores/adapter.js). The glue is JavaScript
// only where JavaScript semantics demand it: ResumeState holds Maps and
// Error objects, which awaitly's own serializeResumeState /
// deserializeResumeState turn into JSON and back (loaded from the user's
// `awaitly`, 1.35 or 4.x, only when a ResumeState is saved or loaded).
//
// Stored value, one key `<prefix><id>` per snapshot:
//   {"updatedAt":"<ISO>","snapshot":<the JSON awaitly-postgres stores>}
// where the snapshot is the WorkflowSnapshot as JSON.stringify writes it, or
// serializeResumeState's {"kind":"ResumeState","steps":[...]}.
// Redis leases: one key under the prefix holding the owner token, named in
// src/redis/lease.rs (`<prefix>\u0000lease…`: ids may not start with U+0000,
// so no snapshot key is ever a lease key; in the snapshot key's hash slot).
// File leases: records in `<directory>/.awaitly-leases/`, not store keys.
// PostgreSQL leases: rows `<prefix>\u0000lease:<id>` of the store's table.
//
// Fenced checkpoints: while this store holds the lease of an id (tryAcquire
// took it, release has not dropped it), save(id) and delete(id) go to the
// native store as fenced writes: the lease is checked and the snapshot
// written in one atomic step (a script on Redis, under the lease lock on
// files, one statement on PostgreSQL), and a lease that is no longer ours (expired, taken over) rejects
// ERR_LEASE_LOST with nothing written.

const { binding } = require('../internal/binding.js')
const { invalidArg, corruptError, withCode } = require('../internal/errors.js')
const { checkString } = require('../internal/validate.js')
const { STATUSES } = require('../format/snapshot.js').internal
const { adapt } = require('../stores/adapter.js')
const { checkNotReserved, isMarkerShaped, ownerRegistration } = require('../stores/ownership.js')

const DEFAULT_PREFIX = 'awaitly:snapshot:'
const DEFAULT_LIST_LIMIT = 100
const DEFAULT_TTL_MS = 60_000
const MAX_TTL_MS = 2 ** 31 - 1

let awaitlyResumeState
/**
 * serializeResumeState / deserializeResumeState of the application's awaitly
 * (a ResumeState only exists where awaitly is installed): 4.x exports them
 * from `awaitly`, 1.35 from `awaitly/workflow`.
 */
function resumeStateModule() {
  if (awaitlyResumeState === undefined) {
    try {
      // which of the two is installed is only known here, at run time: `any`
      // @ts-expect-error TS1479: awaitly's `types` condition names ESM declarations, while its `require` condition loads dist/index.cjs
      const root = /** @type {any} */ (require('awaitly'))
      if (typeof root.serializeResumeState === 'function') awaitlyResumeState = root
      else {
        // @ts-expect-error TS1479: as above, dist/workflow.cjs
        awaitlyResumeState = require('awaitly/workflow')
      }
    } catch (cause) {
      throw withCode(
        new Error('createSnapshotStore: a ResumeState needs the "awaitly" package (1.35 or 4.x) installed', { cause }),
        'ERR_INTERNAL',
      )
    }
  }
  return awaitlyResumeState
}

function checkId(method, id) {
  checkString(`${method}: id`, id)
  if (id.length === 0) throw invalidArg(`${method}: id must not be empty`)
  if (id.charCodeAt(0) === 0) throw invalidArg(`${method}: id must not start with U+0000 (reserved for lease keys)`)
  return checkNotReserved(method, id)
}

function checkToken(method, token) {
  if (typeof token !== 'string' || token.length === 0) throw invalidArg(`${method}: ownerToken must be a non-empty string`)
  return token
}

function ttlOf(method, options) {
  if (options === undefined || options === null) return DEFAULT_TTL_MS
  if (typeof options !== 'object') throw invalidArg(`${method}: options must be an object like { ttlMs }`)
  const { ttlMs } = options
  if (ttlMs === undefined) return DEFAULT_TTL_MS
  if (typeof ttlMs !== 'number' || !Number.isInteger(ttlMs) || ttlMs < 1 || ttlMs > MAX_TTL_MS) {
    throw invalidArg(`${method}: ttlMs must be an integer number of milliseconds in 1..${MAX_TTL_MS}, got ${String(ttlMs)}`)
  }
  return ttlMs
}

const isPlainObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v)

/** A ResumeState: `{ steps: Map }` (awaitly's isResumeState). */
const isResumeState = (v) => isPlainObject(v) && v.steps instanceof Map

/** Why `v` is not a WorkflowSnapshot awaitly can resume from, or null. */
function snapshotProblem(v) {
  if (!isPlainObject(v)) return 'not an object'
  if (v.formatVersion !== 1) return `formatVersion must be 1, got ${String(v.formatVersion)}`
  if (!isPlainObject(v.steps)) return 'steps must be an object'
  for (const k of Object.keys(v.steps)) {
    const s = v.steps[k]
    if (!isPlainObject(s) || typeof s.ok !== 'boolean')
      return `steps[${JSON.stringify(k)}] must be { ok: true, value } or { ok: false, error, cause }`
    if (!s.ok && !isPlainObject(s.cause)) return `steps[${JSON.stringify(k)}].cause must be a serialized cause`
  }
  const x = v.execution
  if (!isPlainObject(x)) return 'execution must be an object'
  if (!STATUSES.includes(x.status)) return `execution.status must be running, completed or failed, got ${String(x.status)}`
  if (typeof x.lastUpdated !== 'string') return 'execution.lastUpdated must be an ISO string'
  if (v.metadata !== undefined && !isPlainObject(v.metadata)) return 'metadata must be an object'
  return null
}

function encode(id, value) {
  let snapshot
  if (isResumeState(value)) snapshot = resumeStateModule().serializeResumeState(value)
  else {
    const problem = snapshotProblem(value)
    if (problem) throw invalidArg(`save(${JSON.stringify(id)}): not a WorkflowSnapshot or ResumeState: ${problem}`)
    snapshot = value
  }
  let json
  try {
    json = JSON.stringify(snapshot)
  } catch (cause) {
    throw invalidArg(`save(${JSON.stringify(id)}): the snapshot is not JSON-serializable: ${cause.message}`, cause)
  }
  return `{"updatedAt":${JSON.stringify(new Date().toISOString())},"snapshot":${json}}`
}

/** The stored envelope of `key`, checked; throws ERR_CORRUPT when it cannot be read. */
function decodeEnvelope(key, text) {
  let doc
  try {
    doc = JSON.parse(text)
  } catch (cause) {
    throw corruptError(key, `not JSON: ${cause.message}`, cause)
  }
  if (!isPlainObject(doc) || typeof doc.updatedAt !== 'string' || !isPlainObject(doc.snapshot)) {
    throw corruptError(key, 'not a stored snapshot ({"updatedAt","snapshot"})')
  }
  return doc
}

function decodeSnapshot(key, text) {
  const { snapshot } = decodeEnvelope(key, text)
  if (snapshot.kind === 'ResumeState') {
    if (!Array.isArray(snapshot.steps)) throw corruptError(key, 'ResumeState steps must be an array')
    return resumeStateModule().deserializeResumeState(snapshot)
  }
  const problem = snapshotProblem(snapshot)
  if (problem) throw corruptError(key, `not a WorkflowSnapshot: ${problem}`)
  return snapshot
}

function listOptions(options) {
  if (options === undefined || options === null) return { prefix: '', limit: DEFAULT_LIST_LIMIT }
  if (typeof options !== 'object') throw invalidArg('list: options must be an object like { prefix, limit }')
  const { prefix = '', limit = DEFAULT_LIST_LIMIT } = options
  if (typeof prefix !== 'string') throw invalidArg('list: prefix must be a string')
  if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 0)
    throw invalidArg(`list: limit must be a non-negative integer, got ${String(limit)}`)
  return { prefix, limit }
}

/**
 * awaitly SnapshotStore (1.35 and 4.x) over a KeyValueStore; over our native Redis and
 * file stores also a WorkflowLock (leases in Rust).
 */
function createSnapshotStore(options) {
  if (!isPlainObject(options)) throw invalidArg('createSnapshotStore: options must be an object like { store, prefix }')
  const { store, prefix = DEFAULT_PREFIX } = options
  if (store === null || typeof store !== 'object' || ['get', 'set', 'delete', 'keys'].some((m) => typeof store[m] !== 'function')) {
    throw invalidArg('createSnapshotStore: store must be a KeyValueStore (get, set, delete, keys)')
  }
  if (typeof prefix !== 'string') throw invalidArg('createSnapshotStore: prefix must be a string')
  const keyOf = (id) => prefix + id
  // On native Redis a save is a durable write: with `waitReplicas: n` it
  // returns once n replicas have it (WAIT in the same pipeline).
  const adapted = adapt(store)
  // The prefix is marked as a state persistence's (a marker key inside it),
  // so a KV cache whose clearAsync covers it never deletes snapshots.
  const register = ownerRegistration(adapted, 'state', prefix)
  // The native leases (with fenced writes), and the tokens of the leases
  // this store holds: id -> ownerToken, from tryAcquire until release.
  const { leases } = adapted
  /** @type {Map<string, string>} */
  const held = new Map()

  const api = {
    async save(id, snapshot) {
      checkId('save', id)
      const text = encode(id, snapshot)
      const reg = register()
      if (reg) await reg
      const token = held.get(id)
      if (token === undefined || !leases) await adapted.setDurable(keyOf(id), text)
      else await leases.fencedSet(prefix, id, token, text)
    },
    async load(id) {
      checkId('load', id)
      const key = keyOf(id)
      const text = await adapted.get(key)
      return text === null || text === undefined ? null : decodeSnapshot(key, text)
    },
    /** The stored ResumeState of `id`, or null (nothing stored, or a WorkflowSnapshot). */
    async loadResumeState(id) {
      const v = await api.load(id)
      return isResumeState(v) ? v : null
    },
    async delete(id) {
      checkId('delete', id)
      const token = held.get(id)
      if (token === undefined || !leases) await adapted.delete(keyOf(id))
      else await leases.fencedDelete(prefix, id, token)
    },
    /** `[{ id, updatedAt }]`, newest first; `prefix` is literal text. */
    async list(options) {
      const { prefix: idPrefix, limit } = listOptions(options)
      const literal = prefix + idPrefix
      const keys = await adapted.keys(`${binding.escapeGlob(literal)}*`)
      const own = keys.filter(
        (k) => k.startsWith(literal) && k.length > prefix.length && k.charCodeAt(prefix.length) !== 0 && !isMarkerShaped(k),
      )
      const texts = await Promise.all(own.map((k) => adapted.get(k)))
      const out = []
      for (let i = 0; i < own.length; i++) {
        if (texts[i] === null || texts[i] === undefined) continue // deleted since listed
        out.push({ id: own[i].slice(prefix.length), updatedAt: decodeEnvelope(own[i], texts[i]).updatedAt })
      }
      out.sort((a, b) => (a.updatedAt < b.updatedAt ? 1 : a.updatedAt > b.updatedAt ? -1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
      return out.slice(0, limit)
    },
    async close() {},
  }

  if (leases) {
    api.tryAcquire = async (id, opts) => {
      checkId('tryAcquire', id)
      const token = await leases.acquire(prefix, id, ttlOf('tryAcquire', opts))
      if (token === null) return null
      held.set(id, token)
      return { ownerToken: token }
    }
    api.release = async (id, ownerToken) => {
      checkId('release', id)
      checkToken('release', ownerToken)
      try {
        await leases.release(prefix, id, ownerToken)
      } finally {
        if (held.get(id) === ownerToken) held.delete(id)
      }
    }
    // A lost lease (renew answers false) stays held: later saves of the id
    // are fenced off until release.
    api.renew = async (id, ownerToken, opts) => {
      checkId('renew', id)
      checkToken('renew', ownerToken)
      return leases.renew(prefix, id, ownerToken, ttlOf('renew', opts))
    }
  }
  return api
}

/**
 * The leases of the snapshots under `prefix`, for the inspector (cli/):
 * `list()` (see the adapter's LeaseRecord) and `evict(id)` (removes the
 * lease whoever holds it; resolves whether a live lease was removed), or
 * null over a store without leases.
 * @param {any} store a KeyValueStore
 * @param {string} prefix
 */
function leaseAdmin(store, prefix) {
  const { leases } = adapt(store)
  if (!leases) return null
  return {
    list: () => leases.list(prefix),
    evict: (/** @type {unknown} */ id) => leases.evict(prefix, checkId('evict', id)),
  }
}

/**
 * A stored value as `load` reads it, plus its envelope: `{ updatedAt,
 * snapshot }` (the snapshot exactly as `load` returns it). Throws ERR_CORRUPT.
 */
function decodeStored(key, text) {
  const { updatedAt } = decodeEnvelope(key, text)
  return { updatedAt, snapshot: decodeSnapshot(key, text) }
}

module.exports = { createSnapshotStore }
// Internals for the inspector (cli/); not enumerable, so index.js does not re-export them.
Object.defineProperty(module.exports, 'internal', {
  value: { DEFAULT_PREFIX, leaseAdmin, decodeStored },
})
