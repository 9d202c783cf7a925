'use strict'
// The data batch of our native KeyValueStores on a server (the Redis store,
// lib/stores/redis.js, and the PostgreSQL store, lib/stores/postgres.js):
// the calls of one tick as the native side takes them (op kinds, ttls and
// text lengths in one Int32Array, keys and values as one string; also the
// run leases and fenced snapshot writes, pushLease), how its
// results settle them, how a `keys` answer splits, and the stores' data
// methods over it (kvMethods), and batches answered through one callback
// (CallbackBatches). The Rust side of the same encoding: src/boundary/batch.rs
// and src/boundary/answer.rs.

const { fromNative } = require('../internal/binding.js')
const { settleAll } = require('../internal/tick-batcher.js')
const { OP, OUT } = require('../internal/codes.js')
const { checkString, storeTtl } = require('../internal/validate.js')

const { GET: OP_GET, SET: OP_SET, DELETE: OP_DELETE, EXISTS: OP_EXISTS, LEASE_ACQUIRE: OP_ACQUIRE, FENCED_SET: OP_FENCED_SET } = OP
const { NONE: OUT_NONE, TRUE: OUT_TRUE, FALSE: OUT_FALSE, VALUE: META_VALUE } = OUT

/**
 * @typedef {{ ops: number[], ttls: number[], lens: number[], blob: string, waiters: Function[] }} DataBatch
 *   a tick's data calls: op and ttl of each, its key and SET value
 *   concatenated into one string (`blob`, one string crosses to Rust) with
 *   their lengths
 */

/** @returns {DataBatch} */
const emptyBatch = () => ({ ops: [], ttls: [], lens: [], blob: '', waiters: [] })

/**
 * A batch's op kinds, ttls and text lengths in ONE Int32Array, as the native
 * `exec` / `directSend` read them (src/boundary/batch.rs decode_io): kinds
 * (n), ttls (n), then the lengths. Fills `io` when it is large enough, else
 * a new one; returns the array filled (the caller keeps it for the next).
 * @param {DataBatch} batch
 * @param {Int32Array} io
 * @returns {Int32Array}
 */
function packIo({ ops, ttls, lens }, io) {
  const n = ops.length
  if (io.length < 2 * n + lens.length) io = new Int32Array(2 * (2 * n + lens.length))
  for (let i = 0; i < n; i++) {
    io[i] = ops[i]
    io[n + i] = ttls[i]
  }
  for (let i = 0; i < lens.length; i++) io[2 * n + i] = lens[i]
  return io
}

/**
 * Settle `batches[from..]` from the native results of their first `count`
 * ops, in order (concatenated over the batches): `meta[i]` is an OUT_* code,
 * or META_VALUE + n for a GET hit whose value is the next n units of `blob`;
 * `errors[i]` the `[CODE] message` of a failed op. Returns the index of the
 * first batch not settled.
 */
function settleResults(batches, from, count, meta, blob, errors) {
  let pos = 0
  let ci = 0
  let bi = from
  while (ci < count) {
    const { ops, waiters } = batches[bi++]
    for (let i = 0; i < ops.length; i++, ci++) {
      const m = meta[ci]
      if (m >= META_VALUE) {
        const end = pos + (m - META_VALUE)
        waiters[2 * i](blob.slice(pos, end))
        pos = end
        continue
      }
      switch (m) {
        case OUT_NONE:
          waiters[2 * i](ops[i] === OP_GET || ops[i] === OP_ACQUIRE ? null : undefined)
          break
        case OUT_TRUE:
          waiters[2 * i](true)
          break
        case OUT_FALSE:
          waiters[2 * i](false)
          break
        default:
          waiters[2 * i + 1](fromNative(new Error(errors?.[ci] ?? '[ERR_INTERNAL] missing error')))
      }
    }
  }
  return bi
}

/** Split the native `keys` answer (one string + UTF-16 lengths) into keys. */
function splitKeys({ lens, blob }) {
  const out = new Array(lens.length)
  let pos = 0
  for (let i = 0; i < lens.length; i++) {
    const end = pos + lens[i]
    out[i] = blob.slice(pos, end)
    pos = end
  }
  return out
}

/**
 * Queue one data call in `batcher`'s batch of this tick; its promise.
 * @param {import('../internal/tick-batcher.js').TickBatcher<DataBatch>} batcher
 * @param {number} op
 * @param {string} key
 * @param {string | undefined} value a SET's value
 * @param {number} ttl
 */
function pushCall(batcher, op, key, value, ttl) {
  const b = batcher.current()
  b.ops.push(op)
  b.ttls.push(ttl)
  b.lens.push(key.length)
  b.blob += key
  if (value !== undefined) {
    b.lens.push(value.length)
    b.blob += value
  }
  return batcher.wait(b)
}

/**
 * Queue one run-lease op (src/redis/lease.rs, src/postgres/lease.rs) in
 * `batcher`'s batch of this tick, on the lease of snapshot `prefix + id`;
 * its promise: an acquire's new token or null, a release's / renew's
 * boolean, a fenced write's undefined (or ERR_LEASE_LOST).
 * @param {import('../internal/tick-batcher.js').TickBatcher<DataBatch>} batcher
 * @param {number} op an OP.LEASE_* or OP.FENCED_* code
 * @param {number} ttlMs
 * @param {string} prefix
 * @param {string} id
 * @param {string} token the owner token ('' for an acquire)
 * @param {string} value a fenced set's value ('' otherwise)
 */
function pushLease(batcher, op, ttlMs, prefix, id, token, value) {
  const b = batcher.current()
  b.ops.push(op)
  b.ttls.push(ttlMs)
  b.lens.push(prefix.length, id.length)
  b.blob += prefix
  b.blob += id
  if (op !== OP_ACQUIRE) {
    b.lens.push(token.length)
    b.blob += token
  }
  if (op === OP_FENCED_SET) {
    b.lens.push(value.length)
    b.blob += value
  }
  return batcher.wait(b)
}

/**
 * The KeyValueStore data methods of a native server store: the arguments
 * checked (a bad one rejects with a TypeError, nothing queued), then the
 * call queued by `enqueue` in this tick's batch.
 * @param {(op: number, key: string, value: string | undefined, ttl: number) => Promise<any>} enqueue
 */
function kvMethods(enqueue) {
  return {
    /** @param {string} key */
    get(key) {
      try {
        return enqueue(OP_GET, checkString('get: key', key), undefined, 0)
      } catch (e) {
        return Promise.reject(e)
      }
    },
    /**
     * @param {string} key
     * @param {string} value
     * @param {{ ttl?: number | null } | null} [opts] ttl in whole seconds
     */
    set(key, value, opts) {
      try {
        checkString('set: key', key)
        checkString('set: value', value)
        return enqueue(OP_SET, key, value, storeTtl(opts))
      } catch (e) {
        return Promise.reject(e)
      }
    },
    /** @param {string} key */
    delete(key) {
      try {
        return enqueue(OP_DELETE, checkString('delete: key', key), undefined, 0)
      } catch (e) {
        return Promise.reject(e)
      }
    },
    /** @param {string} key */
    exists(key) {
      try {
        return enqueue(OP_EXISTS, checkString('exists: key', key), undefined, 0)
      } catch (e) {
        return Promise.reject(e)
      }
    },
  }
}

/**
 * Data batches run by a JS-thread transport whose batches are Rust futures
 * (a Redis Cluster's, a PostgreSQL store's; src/boundary/answer.rs): each
 * goes to `batchSend` with a token and is answered through `onBatch`, called
 * from the event loop (or during `batchSend`, when it fails before anything
 * is written). No promise and no result object per batch; `meta` is an
 * Int32Array Rust keeps and refills, read here at once.
 */
class CallbackBatches {
  /** @param {{ batchAttach: Function, batchSend: Function }} native */
  constructor(native) {
    this.native = native
    // a batch's kinds, ttls and text lengths (packIo), reused
    /** @type {Int32Array} */
    this.io = new Int32Array(0)
    this.next = 0
    /** @type {Map<number, DataBatch>} */
    this.pending = new Map()
    this.attached = false
    this.onBatch = this.onBatch.bind(this)
  }

  /** @param {DataBatch} batch */
  send(batch) {
    const token = this.next
    this.next = (this.next + 1) >>> 0
    try {
      if (!this.attached) {
        this.native.batchAttach(this.onBatch)
        this.attached = true
      }
      this.io = packIo(batch, this.io)
      this.pending.set(token, batch)
      this.native.batchSend(this.io, batch.ops.length, batch.lens.length, batch.blob, token)
    } catch (e) {
      this.pending.delete(token)
      settleAll(batch.waiters, fromNative(/** @type {Error} */ (e)))
    }
  }

  /**
   * @param {number} token
   * @param {number} count
   * @param {Int32Array} meta
   * @param {string} blob
   * @param {any} errors
   * @param {string | null} failure
   */
  onBatch(token, count, meta, blob, errors, failure) {
    const batch = this.pending.get(token)
    if (batch === undefined) return
    this.pending.delete(token)
    if (failure !== null) settleAll(batch.waiters, fromNative(new Error(failure)))
    else settleResults([batch], 0, count, meta, blob, errors)
  }
}

module.exports = { emptyBatch, packIo, settleResults, splitKeys, pushCall, pushLease, kvMethods, CallbackBatches }
