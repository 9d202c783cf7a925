//! How a failed Redis call becomes ours ([`Fail`]): a client error or a
//! missed deadline mapped to a `PersistError` code (`ERR_STORE_TIMEOUT`,
//! `ERR_STORE_UNAVAILABLE`, `ERR_STORE`), and whether the connection must
//! be replaced.

use redis::{RedisError, ServerErrorKind};

use crate::error::PersistError;

/// A failed call: our error, and whether the connection must be replaced.
pub(crate) struct Fail {
    pub(crate) err: PersistError,
    pub(crate) replace: bool,
}

impl Fail {
    /// No answer within `timeout_ms`: the connection is wedged or the
    /// server paused, so it is replaced.
    pub(crate) fn timeout(timeout_ms: u64) -> Fail {
        Fail {
            err: PersistError::Timeout(timeout_ms),
            replace: true,
        }
    }
}

/// A call's outcome within its deadline: its value, or why it failed.
pub(crate) fn outcome<T>(
    r: std::result::Result<redis::RedisResult<T>, tokio::time::error::Elapsed>,
    timeout_ms: u64,
) -> std::result::Result<T, Fail> {
    match r {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(classify(&e, timeout_ms)),
        Err(_) => Err(Fail::timeout(timeout_ms)),
    }
}

/// Map a client error to ours; `replace` when the connection must be replaced.
pub(crate) fn classify(e: &RedisError, timeout_ms: u64) -> Fail {
    let (err, replace) = if e.is_timeout() {
        (PersistError::Timeout(timeout_ms), true)
    } else if e.is_io_error()
        || e.is_connection_refusal()
        || e.is_connection_dropped()
        || e.is_unrecoverable_error()
    {
        (PersistError::Unavailable(e.to_string()), true)
    } else if matches!(
        e.kind(),
        redis::ErrorKind::Server(
            ServerErrorKind::ClusterDown | ServerErrorKind::MasterDown | ServerErrorKind::TryAgain
        )
    ) {
        // a shard without a reachable primary (failover under way)
        (PersistError::Unavailable(e.to_string()), false)
    } else {
        (PersistError::Store(e.to_string()), false)
    };
    Fail { err, replace }
}
