'use strict'
// The numbers that cross the napi boundary with a batch: operation kinds and
// per-operation outcome codes. Defined once, in Rust (src/redis/codes.rs:
// RedisOp, RedisOutcome; src/boundary/lease.rs: LeaseKind, LeaseOutcome),
// and read here from the binding under the names the JS glue uses.

const { binding } = require('./binding.js')

const { RedisOp, RedisOutcome, LeaseKind, LeaseOutcome } = binding

/** Redis data operations (one per call of a batch). */
const OP = Object.freeze({
  GET: RedisOp.Get,
  SET: RedisOp.Set,
  DELETE: RedisOp.Delete,
  EXISTS: RedisOp.Exists,
  /** a SET followed by WAIT <waitReplicas> (state documents) */
  SET_DURABLE: RedisOp.SetDurable,
  PING: RedisOp.Ping,
})

/** Outcomes of a Redis batch, one per op: OUT.NONE, TRUE, FALSE, ERROR, or OUT.VALUE + n for a GET hit of n UTF-16 units. */
const OUT = Object.freeze({
  NONE: RedisOutcome.None,
  TRUE: RedisOutcome.True,
  FALSE: RedisOutcome.False,
  ERROR: RedisOutcome.Error,
  VALUE: RedisOutcome.Value,
})

/** Run-lease operations and their outcomes (YES: taken / released / renewed; NO: not; anything else: an error). */
const LEASE = Object.freeze({
  ACQUIRE: LeaseKind.Acquire,
  RELEASE: LeaseKind.Release,
  RENEW: LeaseKind.Renew,
  NO: LeaseOutcome.No,
  YES: LeaseOutcome.Yes,
  /** the length of an owner token (src/token.rs) */
  TOKEN_LEN: 32,
})

module.exports = { OP, OUT, LEASE }
