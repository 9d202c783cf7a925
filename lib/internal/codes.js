'use strict'
// The numbers that cross the napi boundary with a batch: operation kinds and
// per-operation outcome codes. They mirror src/redis/binding.rs (data ops and
// outcomes) and src/redis/lease.rs / src/file/lease.rs (lease kinds).

/** Redis data operations (one per call of a batch). */
const OP = Object.freeze({
  GET: 0,
  SET: 1,
  DELETE: 2,
  EXISTS: 3,
  /** a SET followed by WAIT <waitReplicas> (state documents) */
  SET_DURABLE: 4,
  PING: 5,
})

/** Outcomes of a Redis batch, one per op: OUT.NONE, TRUE, FALSE, an error, or OUT.VALUE + n for a GET hit of n UTF-16 units. */
const OUT = Object.freeze({ NONE: 0, TRUE: 2, FALSE: 3, VALUE: 8 })

/** Run-lease operations; their outcome codes: 0 false / not taken, 1 true / taken, else an error. */
const LEASE = Object.freeze({ ACQUIRE: 0, RELEASE: 1, RENEW: 2, TOKEN_LEN: 32 })

module.exports = { OP, OUT, LEASE }
