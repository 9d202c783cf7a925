//! The numbers that cross the napi boundary with a Redis data batch,
//! defined here once and read by the JS glue from the binding (`RedisOp`,
//! `RedisOutcome`; the lease codes are `crate::boundary::lease`'s).

use napi_derive::napi;

/// The kind of one op of a Redis batch (`lib/stores/redis.js` → `exec` /
/// `directSend`): a data op (pieces: key, then a SET's value) or a run-lease
/// op (`redis::lease`; its pieces are named below).
#[napi]
#[derive(Debug, PartialEq, Eq)]
pub enum RedisOp {
    Get = 0,
    Set = 1,
    Delete = 2,
    Exists = 3,
    /// A SET followed by `WAIT` when the store has `waitReplicas` (state
    /// documents, snapshots).
    SetDurable = 4,
    Ping = 5,
    /// Take the lease of snapshot `prefix + id` (pieces: prefix, id; ttl in
    /// ms): the new owner token, or a miss (held by someone).
    LeaseAcquire = 6,
    /// Drop the lease if `token` holds it (pieces: prefix, id, token):
    /// whether it did.
    LeaseRelease = 7,
    /// Re-arm the lease to ttl ms if `token` holds it (pieces: prefix, id,
    /// token): whether it did.
    LeaseRenew = 8,
    /// Write snapshot `prefix + id` if `token` still holds its lease
    /// (pieces: prefix, id, token, value); else `ERR_LEASE_LOST`.
    FencedSet = 9,
    /// Delete snapshot `prefix + id` if `token` still holds its lease
    /// (pieces: prefix, id, token); else `ERR_LEASE_LOST`.
    FencedDelete = 10,
}

impl RedisOp {
    pub fn from_code(code: i32) -> Option<RedisOp> {
        Some(match code {
            0 => RedisOp::Get,
            1 => RedisOp::Set,
            2 => RedisOp::Delete,
            3 => RedisOp::Exists,
            4 => RedisOp::SetDurable,
            5 => RedisOp::Ping,
            6 => RedisOp::LeaseAcquire,
            7 => RedisOp::LeaseRelease,
            8 => RedisOp::LeaseRenew,
            9 => RedisOp::FencedSet,
            10 => RedisOp::FencedDelete,
            _ => return None,
        })
    }
}

/// The outcome of one op of a Redis batch, one int each: one of these, or
/// `Value + n` for a GET hit whose value is the next `n` UTF-16 units of
/// the results' text.
#[napi]
#[derive(Debug, PartialEq, Eq)]
pub enum RedisOutcome {
    /// A GET miss (null), or done (undefined).
    None = 0,
    True = 2,
    False = 3,
    /// Failed: `errors[i]` holds `[CODE] message`.
    Error = 4,
    Value = 8,
}
