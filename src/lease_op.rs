//! One run-lease operation of a server store, keys as bytes: what the
//! Redis store turns into commands (`redis::lease`) and the PostgreSQL store
//! into statements (`postgres::lease`). The lease row `key` holds the owner
//! `token` until its ttl passes; a fenced write touches the snapshot
//! `state` only while `key` holds `token`.

/// One lease operation.
#[derive(Debug, Clone, PartialEq)]
pub enum LeaseOp {
    /// Take `key` for `token` if free or expired: taken (true) or held by
    /// someone (false).
    Acquire {
        key: Vec<u8>,
        token: String,
        ttl_ms: u64,
    },
    /// Delete `key` if it holds `token`: whether it did.
    Release { key: Vec<u8>, token: String },
    /// Re-arm `key` to `ttl_ms` if it holds `token`: whether it did.
    Renew {
        key: Vec<u8>,
        token: String,
        ttl_ms: u64,
    },
    /// Write `state` = `value` if the lease `key` holds `token`; else `ERR_LEASE_LOST`.
    FencedSet {
        key: Vec<u8>,
        token: String,
        state: Vec<u8>,
        value: Vec<u8>,
    },
    /// Delete `state` if the lease `key` holds `token`; else `ERR_LEASE_LOST`.
    FencedDelete {
        key: Vec<u8>,
        token: String,
        state: Vec<u8>,
    },
}
