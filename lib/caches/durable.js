'use strict'
// The durable StepCache: durableStepCache builds the StepCache of
// createFileCache and createKVCache from an in-process layer and a cache's
// durable primitives (writeOnly / removeOnly / clearOnly). With write-behind
// (the default) the sync set/delete/clear update the in-process layer at once
// and hand the durable operation (a promise from the cache's async path: the
// file directory's group-committed queue, the store adapter) to `track`.
// Write-behind queues nothing itself; it only
//  - counts what is in flight and keeps the process alive meanwhile (one
//    ref'd timer while anything is pending), so a script that ends normally
//    loses nothing;
//  - never lets a failure go unhandled: each one is counted (writeErrors),
//    passed to onError(error, key) or else emitted once per code as a
//    process warning, and kept for the next flush();
//  - flush(): settles once everything tracked before it has settled, and
//    rejects with the failures since the last flush.

const { invalidArg, withCode } = require('../internal/errors.js')
const { checkKey } = require('../internal/validate.js')
const { unsentTicks } = require('../internal/exit.js')

/** Failures kept for the next flush() (the rest are counted): no flush() must not mean unbounded memory. */
const MAX_KEPT = 1000
const { delegateStepCache } = require('./memory.js')

/** Reads and validates `writeBehind` and `onError`. */
function writeBehindOptions(owner, options) {
  const { writeBehind = true, onError } = options
  if (typeof writeBehind !== 'boolean') throw invalidArg(`${owner}: options.writeBehind must be a boolean`)
  if (onError !== undefined && typeof onError !== 'function') {
    throw invalidArg(`${owner}: options.onError must be a function`)
  }
  return { writeBehind, onError }
}

/**
 * @param {string} owner name used in messages ('createFileCache')
 * @param {string} code the code of flush()'s aggregate rejection ('ERR_IO' / 'ERR_STORE')
 * @param {((error: Error, key: string | undefined) => void) | undefined} onError
 */
function createWriteBehind(owner, code, onError) {
  const pending = new Set()
  let failures = []
  let failed = 0 // since the last flush, kept or not
  let writeErrors = 0
  let keepAlive = null
  const warned = new Set()

  function report(error, key) {
    writeErrors++
    failed++
    if (failures.length < MAX_KEPT) failures.push(error)
    if (onError) {
      try {
        onError(error, key)
      } catch (e) {
        // a throwing onError must not turn into an uncaught exception in a promise callback
        process.emitWarning(`${owner}: options.onError threw: ${e?.message}`, { code: 'ERR_WRITE_BEHIND_ONERROR' })
      }
      return
    }
    const c = error?.code || 'UNKNOWN'
    if (warned.has(c)) return
    warned.add(c)
    process.emitWarning(
      `${owner}: a write-behind ${key === undefined ? 'clear' : `write of ${JSON.stringify(key)}`} failed: ${
        error?.message
      } (further failures with code ${c} are counted in stats().writeErrors and reported by flush(), not warned again)`,
      { code: 'AWAITLY_WRITE_BEHIND', detail: c },
    )
  }

  /** Track the durable operation `promise` for `key` (undefined for a clear). */
  function track(promise, key) {
    pending.add(promise)
    if (keepAlive === null) keepAlive = setInterval(() => {}, 1 << 30)
    promise.then(
      () => done(promise),
      (e) => {
        done(promise)
        report(e, key)
      },
    )
  }

  function done(promise) {
    pending.delete(promise)
    if (pending.size === 0 && keepAlive !== null) {
      clearInterval(keepAlive)
      keepAlive = null
    }
  }

  async function flush() {
    if (pending.size > 0) await Promise.allSettled([...pending])
    // the rejection handlers of the settled promises have run (they were attached first)
    if (failed === 0) return
    const errors = failures
    const n = failed
    failures = []
    failed = 0
    const e = withCode(
      new AggregateError(
        errors,
        `${owner}: ${n} write-behind operation${n === 1 ? '' : 's'} failed since the last flush${
          n > errors.length ? ` (the first ${errors.length} in errors)` : ''
        } (first: ${errors[0]?.message})`,
      ),
      code,
    )
    throw e
  }

  return {
    track,
    flush,
    get writeErrors() {
      return writeErrors
    },
    get pendingWrites() {
      return pending.size
    },
  }
}

const NO_STATS = Object.freeze({ hits: 0, misses: 0, evictions: 0, expirations: 0 })

/**
 * Tickets: the last write or delete of each key (sync or async) wins the
 * in-process layer too. An async write remembers its result only if no later
 * call touched the key meanwhile.
 */
function createTickets() {
  let seq = 0
  let clearedAt = 0
  let holds = 0 // while a preload runs, settled tickets are kept for touchedAfter
  const latest = new Map()
  return {
    take(key) {
      const n = ++seq
      latest.set(key, n)
      return n
    },
    /** true if ticket `n` is still the key's latest (and forgets it) */
    settle(key, n) {
      if (latest.get(key) !== n) return false
      if (holds === 0) latest.delete(key)
      return true
    },
    clear() {
      latest.clear()
      clearedAt = ++seq
    },
    /** Start a preload: returns a mark for touchedAfter; call release() when done. */
    hold() {
      holds++
      return seq
    },
    release() {
      holds--
    },
    /** Was `key` set, deleted or cleared after `mark`? */
    touchedAfter(key, mark) {
      return clearedAt > mark || (latest.get(key) ?? 0) > mark
    },
  }
}

/**
 * The StepCache of a file or KV cache: the async methods of `api`
 * (getAsync... and the durable primitives writeOnly/removeOnly/clearOnly),
 * the sync ones over `memory`, write-behind unless disabled.
 */
function durableStepCache(owner, code, memory, api, { writeBehind, onError }, encode, tickets = createTickets()) {
  const wb = createWriteBehind(owner, code, onError)
  const { writeOnly, removeOnly, clearOnly, ...rest } = api
  const later = (fn) => {
    try {
      return Promise.resolve(fn())
    } catch (e) {
      return Promise.reject(e)
    }
  }
  // The sync sets of one job: [key, result, ticket, ...]. The sync call only
  // updates memory and appends here; encoding and queueing the durable write
  // happen once per job (a microtask), or earlier when any other method of
  // this cache is called (so call order is kept), or at process.exit() in
  // the same job (unsentTicks, before the file directories drain).
  let sets = null
  const sendSets = () => {
    if (sets === null) return
    const batch = sets
    sets = null
    unsentTicks.delete(sendSets)
    for (let i = 0; i < batch.length; i += 3) {
      const key = batch[i]
      const result = batch[i + 1]
      const t = batch[i + 2]
      const p = later(() => writeOnly(key, encode(key, result)))
      wb.track(p, key)
      const settled = () => {
        tickets.settle(key, t)
      }
      p.then(settled, settled)
    }
  }
  const stats = () => ({
    ...(memory.stats ? memory.stats() : NO_STATS),
    writeErrors: wb.writeErrors,
    pendingWrites: wb.pendingWrites + (sets === null ? 0 : sets.length / 3),
  })
  const asyncMethods = {
    ...rest,
    async setAsync(key, result) {
      sendSets()
      checkKey(key)
      const text = encode(key, result)
      const t = tickets.take(key)
      try {
        await writeOnly(key, text)
      } catch (e) {
        tickets.settle(key, t)
        throw e
      }
      if (tickets.settle(key, t)) memory.set(key, result)
    },
    async deleteAsync(key) {
      sendSets()
      checkKey(key)
      memory.delete(key)
      const t = tickets.take(key)
      try {
        return await removeOnly(key)
      } finally {
        tickets.settle(key, t)
      }
    },
    async clearAsync() {
      sendSets()
      memory.clear()
      tickets.clear()
      await clearOnly()
    },
    flush() {
      sendSets()
      return wb.flush()
    },
    stats,
  }
  // the other async methods (getAsync, hasAsync, init, load) see the sets made before them
  for (const name of Object.keys(rest)) {
    const fn = rest[name]
    if (typeof fn === 'function') {
      asyncMethods[name] = function (...args) {
        sendSets()
        return fn.apply(this, args)
      }
    }
  }
  if (!writeBehind) return { ...delegateStepCache(memory), ...asyncMethods }
  return {
    get: (key) => memory.get(key),
    has: (key) => memory.has(key),
    set(key, result, options) {
      memory.set(key, result, options) // checks the key (and options) first
      if (sets === null) {
        sets = []
        queueMicrotask(sendSets)
        unsentTicks.add(sendSets) // so that process.exit() in this job still sends them
      }
      sets.push(key, result, tickets.take(key))
    },
    delete(key) {
      sendSets()
      const had = memory.delete(key)
      const t = tickets.take(key)
      const p = later(() => removeOnly(key))
      wb.track(p, key)
      p.then(settled, settled)
      function settled() {
        tickets.settle(key, t)
      }
      return had
    },
    clear() {
      sendSets()
      memory.clear()
      tickets.clear()
      wb.track(later(clearOnly), undefined)
    },
    ...asyncMethods,
  }
}

module.exports = { createWriteBehind, writeBehindOptions, durableStepCache, createTickets }
