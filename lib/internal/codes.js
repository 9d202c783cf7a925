'use strict'
// The numbers that cross the napi boundary with a batch: operation kinds and
// per-operation outcome codes. Defined once, in Rust (src/redis/codes.rs:
// RedisOp, RedisOutcome; src/boundary/lease.rs: LeaseKind, LeaseOutcome),
// and read here from the binding under the names the JS glue uses.

const { binding } = require('./binding.js')

const { RedisOp, RedisOutcome, LeaseKind, LeaseOutcome } = binding

/** Redis batch operations (one per call of a batch): data calls, and run leases with fenced snapshot writes. */
const OP = Object.freeze({
  GET: RedisOp.Get,
  SET: RedisOp.Set,
  DELETE: RedisOp.Delete,
  EXISTS: RedisOp.Exists,
  /** a SET followed by WAIT <waitReplicas> (state documents) */
  SET_DURABLE: RedisOp.SetDurable,
  PING: RedisOp.Ping,
  /** run-lease ops in the same batch (src/redis/codes.rs names their pieces) */
  LEASE_ACQUIRE: RedisOp.LeaseAcquire,
  LEASE_RELEASE: RedisOp.LeaseRelease,
  LEASE_RENEW: RedisOp.LeaseRenew,
  FENCED_SET: RedisOp.FencedSet,
  FENCED_DELETE: RedisOp.FencedDelete,
})

/** Outcomes of a Redis batch, one per op: OUT.NONE, TRUE, FALSE, ERROR, or OUT.VALUE + n for a GET hit of n UTF-16 units. */
const OUT = Object.freeze({
  NONE: RedisOutcome.None,
  TRUE: RedisOutcome.True,
  FALSE: RedisOutcome.False,
  ERROR: RedisOutcome.Error,
  VALUE: RedisOutcome.Value,
})

/** Run-lease operations of the file and PostgreSQL stores' lease batches, and their outcomes (YES: taken / released / renewed; NO: not; anything else: an error). */
const LEASE = Object.freeze({
  ACQUIRE: LeaseKind.Acquire,
  RELEASE: LeaseKind.Release,
  RENEW: LeaseKind.Renew,
  /** a snapshot write / delete made only if the caller still holds the lease (else ERR_LEASE_LOST) */
  FENCED_SET: LeaseKind.FencedSet,
  FENCED_DELETE: LeaseKind.FencedDelete,
  NO: LeaseOutcome.No,
  YES: LeaseOutcome.Yes,
  /** the length of an owner token (src/token.rs) */
  TOKEN_LEN: 32,
})

module.exports = { OP, OUT, LEASE }
