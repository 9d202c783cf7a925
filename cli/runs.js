'use strict'
// Reading saved runs for the inspector: every entry under the snapshot
// prefix (createSnapshotStore) and the state prefix (createStatePersistence)
// of one store, decoded by the same code their `load` uses, summarised as
// one row each. Keys come page by page from SCAN on a single Redis server,
// else from the store's `keys()` (SCAN of every primary on a cluster; never
// KEYS); values are read a page at a time and dropped once summarised, so
// memory holds a page of keys and the rows kept, never the values.

const { internal: snap } = require('../lib/persistence/snapshots.js')
const { parseState } = require('../lib/format/serialize.js')
const { binding } = require('../lib/internal/binding.js')
const { isMarkerShaped } = require('../lib/stores/ownership.js')
const { adapt } = require('../lib/stores/adapter.js')

const PAGE = 256
const STATE_DEFAULT_PREFIX = 'workflow:state:'

/** Milliseconds of a duration like `90s`, `5m`, `2h`, `1d`, `250ms` or a bare number of ms; NaN when unreadable. */
function parseDuration(text) {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(String(text).trim())
  if (!m) return Number.NaN
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] ?? 'ms']
  return Math.round(Number(m[1]) * unit)
}

const isObj = (v) => v !== null && typeof v === 'object' && !Array.isArray(v)

/** One line of text for a serialized cause (any of awaitly's shapes), its chain joined by ' <- '. */
function describeCause(cause, depth = 0) {
  if (cause === undefined || cause === null) return null
  if (depth > 20) return '…'
  if (!isObj(cause)) return JSON.stringify(cause)
  let head
  if (cause.type === 'error') head = `${cause.name ?? 'Error'}: ${cause.message ?? ''}`
  else if (cause.type === 'thrown') head = `thrown ${cause.originalType ?? ''}: ${cause.stringRepresentation ?? ''}`
  else if (cause.type === 'value') head = `value ${JSON.stringify(cause.value)}`
  else if (cause.type === 'undefined') head = 'undefined'
  else head = JSON.stringify(cause)
  const inner = cause.cause !== undefined ? describeCause(cause.cause, depth + 1) : null
  return inner ? `${head} <- ${inner}` : head
}

/** The steps of a decoded entry, in order: `[{ name, ok, value?, error?, cause? }]`. */
function stepsOf(kind, doc) {
  if (kind === 'snapshot') {
    const steps = doc.steps
    const order = Array.isArray(doc.metadata?.stepOrder) ? doc.metadata.stepOrder.filter((k) => Object.hasOwn(steps, k)) : []
    const names = [...new Set([...order, ...Object.keys(steps)])]
    return names.map((name) => {
      const s = steps[name]
      return s.ok ? { name, ok: true, value: s.value } : { name, ok: false, error: s.error, cause: describeCause(s.cause) }
    })
  }
  // resume states: a Map of { result, meta }
  const out = []
  for (const [name, entry] of doc.steps) {
    const r = entry.result
    out.push(r.ok ? { name, ok: true, value: r.value } : { name, ok: false, error: r.error, cause: describeCause(causeJson(r.cause)) })
  }
  return out
}

/** A cause as JSON-ish data (resume states hold live Errors; awaitly wraps a step's cause as `{ __cachedMeta, originalCause }`). */
function causeJson(c) {
  if (c !== null && typeof c === 'object' && c.__cachedMeta === true) return causeJson(c.originalCause)
  if (c instanceof Error)
    return { type: 'error', name: c.name, message: c.message, cause: c.cause === undefined ? undefined : causeJson(c.cause) }
  return c === undefined ? undefined : { type: 'value', value: c }
}

/**
 * @typedef {object} Row one saved run, as `runs --json` prints it (README "Inspecting runs")
 * @property {string} id
 * @property {string} prefix
 * @property {string} key
 * @property {'snapshot' | 'resume-state' | 'corrupt'} kind
 * @property {'1.35' | '4.x' | '1.0' | null} format
 * @property {'running' | 'completed' | 'failed' | null} status
 * @property {number} stepsDone
 * @property {number} stepsFailed
 * @property {string | null} lastStep
 * @property {string | null} updatedAt
 * @property {number | null} ageMs
 * @property {number} size
 * @property {string | null} error
 * @property {{ state: string, expiresInMs: number | null }} [lease]
 * @property {boolean} [stuck]
 */

/**
 * Decode one stored value into a row (what `runs` prints) plus the decoded
 * document (`doc`, for `show`). A value that does not decode is a row of
 * kind `corrupt` with the error; it is never skipped.
 */
function decode(where, key, text, now) {
  const id = key.slice(where.prefix.length)
  const size = Buffer.byteLength(text)
  /** @type {Row} */
  const row = {
    id,
    prefix: where.prefix,
    key,
    kind: 'corrupt',
    format: null,
    status: null,
    stepsDone: 0,
    stepsFailed: 0,
    lastStep: null,
    updatedAt: null,
    ageMs: null,
    size,
    error: null,
  }
  let doc
  try {
    if (where.kind === 'snapshot') {
      const { updatedAt, snapshot } = snap.decodeStored(key, text)
      doc = snapshot
      row.updatedAt = updatedAt
      if (snapshot.steps instanceof Map) {
        row.kind = 'resume-state'
        row.format = '1.35'
      } else {
        row.kind = 'snapshot'
        row.format = Array.isArray(snapshot.metadata?.stepOrder) ? '4.x' : '1.35'
        row.status = snapshot.execution.status
        row.lastStep = snapshot.metadata?.lastStepKey ?? snapshot.execution.currentStepId ?? null
      }
    } else {
      doc = parseState(text)
      const raw = JSON.parse(text)
      doc.metadata = isObj(raw.metadata) ? raw.metadata : undefined
      row.kind = 'resume-state'
      row.format = '1.0'
    }
  } catch (e) {
    row.error = e && e.code === 'ERR_CORRUPT' ? e.message : `${e?.code ? `${e.code}: ` : ''}${e?.message ? e.message : String(e)}`
    return { row, doc: null }
  }
  const steps = stepsOf(row.kind, doc)
  row.stepsDone = steps.length
  row.stepsFailed = steps.filter((s) => !s.ok).length
  if (row.lastStep === null && steps.length > 0) row.lastStep = steps[steps.length - 1].name
  if (row.updatedAt !== null) {
    const t = Date.parse(row.updatedAt)
    row.ageMs = Number.isFinite(t) ? Math.max(0, now - t) : null
  }
  return { row, doc, steps }
}

/** Attach lease and stuck to a row. */
function judge(row, leases, stuckAfterMs) {
  const l = row.kind === 'corrupt' || row.prefix !== leases.prefix ? undefined : leases.byId.get(row.id)
  row.lease = l ? { state: l.state, expiresInMs: l.expiresInMs } : { state: 'none', expiresInMs: null }
  row.stuck = row.status === 'running' && row.lease.state !== 'held' && row.ageMs !== null && row.ageMs > stuckAfterMs
  return row
}

/**
 * An open inspector source: the store, the prefixes it reads and the
 * snapshot prefix's lease admin (null over a store without leases).
 */
function openSource(store, { prefix = snap.DEFAULT_PREFIX, statePrefix = STATE_DEFAULT_PREFIX, kinds = ['snapshot', 'state'] } = {}) {
  const wheres = []
  if (kinds.includes('snapshot')) wheres.push({ kind: 'snapshot', prefix })
  if (kinds.includes('state')) wheres.push({ kind: 'state', prefix: statePrefix })
  return { store, wheres, admin: snap.leaseAdmin(store, prefix), leasePrefix: prefix }
}

/** Which keys of `where` are runs: not markers, not lease keys, not under a longer sibling prefix. */
function keyFilter(source, where) {
  const longer = source.wheres
    .filter((w) => w !== where && w.prefix.length > where.prefix.length && w.prefix.startsWith(where.prefix))
    .map((w) => w.prefix)
  return (k) =>
    k.startsWith(where.prefix) &&
    k.length > where.prefix.length &&
    !(where.kind === 'snapshot' && k.charCodeAt(where.prefix.length) === 0) &&
    !isMarkerShaped(k) &&
    !longer.some((p) => k.startsWith(p))
}

/**
 * The run keys of one prefix, a batch at a time: SCAN page by page on a
 * single Redis server (memory holds one page, a key may come twice), else
 * the store's `keys()` (SCAN of every primary on a cluster; the file
 * store's listing) in one batch.
 * @returns {AsyncGenerator<string[] & { complete?: boolean }>}
 */
async function* keyBatches(source, where) {
  const pattern = `${binding.escapeGlob(where.prefix)}*`
  const keep = keyFilter(source, where)
  const { scanPage } = adapt(source.store)
  let page = await scanPage('0', pattern)
  if (page === null) {
    const all = /** @type {string[] & { complete?: boolean }} */ ((await source.store.keys(pattern)).filter(keep))
    all.complete = true // every key of the prefix: the progress line can show a total
    yield all
    return
  }
  while (page !== null) {
    const keys = page.keys.filter(keep)
    if (keys.length) yield keys
    if (page.cursor === '0') return
    page = await scanPage(page.cursor, pattern)
  }
}

/** The snapshot prefix's leases: `{ prefix, byId: Map, list }`. */
async function readLeases(source) {
  const list = source.admin ? await source.admin.list() : []
  const byId = new Map()
  for (const l of list) if (l.id !== null) byId.set(l.id, l)
  return { prefix: source.leasePrefix, byId, list, supported: source.admin !== null }
}

/**
 * Every run of the source, a page at a time: calls `onPage(rows)` with
 * judged rows in store order, `onProgress(done, total)` after each page
 * (`total` null while a paged SCAN is still finding keys).
 */
/**
 * @param {ReturnType<typeof openSource>} source
 * @param {{ stuckAfterMs: number, onPage: (rows: Row[]) => unknown, onProgress?: (done: number, total: number | null) => void }} options
 */
async function scanRuns(source, { stuckAfterMs, onPage, onProgress = () => {} }) {
  const leases = await readLeases(source)
  let done = 0
  for (const where of source.wheres) {
    for await (const keys of keyBatches(source, where)) {
      const known = keys.complete ? done + keys.length : null
      for (let i = 0; i < keys.length; i += PAGE) {
        const page = keys.slice(i, i + PAGE)
        const texts = await Promise.all(page.map((k) => source.store.get(k)))
        const now = Date.now()
        const rows = []
        for (let j = 0; j < page.length; j++) {
          if (texts[j] === null || texts[j] === undefined) continue // deleted since listed
          rows.push(judge(decode(where, page[j], texts[j], now).row, leases, stuckAfterMs))
        }
        done += page.length
        await onPage(rows)
        onProgress(done, known)
      }
    }
  }
  return { total: done, leases }
}

/** One run by id: `{ row, doc, steps }` of the first prefix holding it, or null. */
async function loadRun(source, id, { stuckAfterMs }) {
  const leases = await readLeases(source)
  for (const where of source.wheres) {
    const key = where.prefix + id
    const text = await source.store.get(key)
    if (text === null || text === undefined) continue
    const out = decode(where, key, text, Date.now())
    judge(out.row, leases, stuckAfterMs)
    return out
  }
  return null
}

/** Where `id` is stored: the prefixes holding it. */
async function locate(source, id) {
  const found = []
  for (const where of source.wheres) {
    const text = await source.store.get(where.prefix + id)
    if (text !== null && text !== undefined) found.push(where)
  }
  return found
}

/** Newest first; entries without a time (1.0 states, corrupt) after, by key. */
function newestFirst(a, b) {
  if (a.updatedAt !== b.updatedAt) {
    if (a.updatedAt === null) return 1
    if (b.updatedAt === null) return -1
    return a.updatedAt < b.updatedAt ? 1 : -1
  }
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0
}

/** A row filter from `{ status, stuck, olderThanMs, kind }`. */
function rowFilter({ status, stuck, olderThanMs }) {
  return (r) => {
    if (status !== undefined) {
      const s = r.kind === 'corrupt' ? 'corrupt' : (r.status ?? 'unknown')
      if (s !== status && !(status === 'stuck' && r.stuck)) return false
    }
    if (stuck && !r.stuck) return false
    if (olderThanMs !== undefined && !(r.ageMs !== null && r.ageMs > olderThanMs)) return false
    return true
  }
}

/**
 * Keeps the `limit` newest rows offered (all when limit is Infinity) in a
 * bounded array: memory is O(limit), not O(runs).
 */
class Newest {
  constructor(limit) {
    this.limit = limit
    this.rows = []
  }
  offer(row) {
    this.rows.push(row)
    if (this.rows.length >= 2 * this.limit && this.limit < 50_000) this.trim()
  }
  trim() {
    this.rows.sort(newestFirst)
    // a key SCAN returned twice: its two rows sort next to each other
    let n = 0
    for (const r of this.rows) if (n === 0 || this.rows[n - 1].key !== r.key) this.rows[n++] = r
    this.rows.length = Math.min(n, this.limit)
  }
  result() {
    this.trim()
    return this.rows
  }
}

/** The status a row is counted under: running, stuck, completed, failed, corrupt or unknown. */
const bucketStatus = (r) => (r.kind === 'corrupt' ? 'corrupt' : r.stuck ? 'stuck' : (r.status ?? 'unknown'))

module.exports = {
  STATE_DEFAULT_PREFIX,
  SNAPSHOT_DEFAULT_PREFIX: snap.DEFAULT_PREFIX,
  parseDuration,
  openSource,
  scanRuns,
  loadRun,
  locate,
  readLeases,
  rowFilter,
  Newest,
  bucketStatus,
}
