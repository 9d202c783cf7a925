'use strict'
// The tick batcher: the calls made in one tick are gathered into one batch,
// handed to the native side as ONE call at the end of the tick (or as soon
// as it holds maxBatch calls), and each call's promise is settled from that
// batch's results. The server stores' data batches (their run-lease ops
// included) and the file store's run-lease calls each use one.

const { fromNative } = require('./binding.js')
const { copyError } = require('./errors.js')

/**
 * @typedef {{ waiters: Function[] }} Batch a batch: its own columns, and
 *   [resolve, reject] of each call, in call order
 */

/**
 * Reject every call of a batch with (a copy of) `error`.
 * @param {Function[]} waiters
 * @param {{ message: string, code?: string }} error
 */
function settleAll(waiters, error) {
  for (let i = 1; i < waiters.length; i += 2) waiters[i](copyError(error))
}

/** @template {Batch} B */
class TickBatcher {
  /**
   * @param {number} maxBatch calls per batch, at most
   * @param {() => B} empty a new batch with empty columns
   * @param {(batch: B) => void} send hands a batch over; it must settle every
   *   call (a synchronous throw rejects them all)
   * @param {{ full?: (batch: B) => boolean, first?: () => number }} [options]
   *   `full`: whether a batch is full before it holds its count of calls
   *   (its size in bytes, say); `first`: asked as a tick's first call comes,
   *   how many calls fill that tick's first batch; each next one holds twice
   *   the last, up to maxBatch (default: maxBatch)
   */
  constructor(maxBatch, empty, send, { full = () => false, first = () => maxBatch } = {}) {
    this.maxBatch = maxBatch
    this.empty = empty
    this.send = send
    this.full = full
    this.first = first
    // calls that fill the batch being made; whether a tick's calls are coming
    this.limit = maxBatch
    this.inTick = false
    /** @type {B | null} */
    this.batch = null
    this.scheduled = false
    this.flush = this.flush.bind(this)
    this.endTick = this.endTick.bind(this)
  }

  /** The batch of this tick, to append a call's columns to before `wait`. */
  current() {
    if (this.batch === null) {
      this.batch = this.empty()
      if (!this.inTick) {
        this.inTick = true
        this.limit = Math.max(1, Math.min(this.maxBatch, this.first()))
      }
    }
    return this.batch
  }

  /**
   * The promise of the call just appended to `batch` (this tick's).
   * @param {B} batch
   * @returns {Promise<any>}
   */
  wait(batch) {
    return new Promise((resolve, reject) => {
      batch.waiters.push(resolve, reject)
      if (batch.waiters.length >= 2 * this.limit || this.full(batch)) {
        this.flush()
        this.limit = Math.min(this.maxBatch, 2 * this.limit)
      } else if (!this.scheduled) {
        this.scheduled = true
        process.nextTick(this.endTick)
      }
    })
  }

  /** The end of the tick: its last batch goes. */
  endTick() {
    this.inTick = false
    this.flush()
  }

  /** Send this tick's batch now (also at the end of the tick, and when full). */
  flush() {
    this.scheduled = false
    const batch = this.batch
    if (batch === null) return
    this.batch = null
    try {
      this.send(batch)
    } catch (e) {
      settleAll(batch.waiters, fromNative(e))
    }
  }
}

module.exports = { TickBatcher, settleAll }
