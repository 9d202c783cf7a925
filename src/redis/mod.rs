//! Redis: the pure core (`store`: connections, pipelines, SCAN/UNLINK,
//! timeouts, reconnect, owner registry; `wire`: the data connection's
//! protocol state; `lease`: run leases), the JS-thread socket of the data
//! connection (`direct`, libuv) and the thin napi `binding`.

pub(crate) mod binding;
pub mod cluster;
#[cfg(unix)]
pub(crate) mod direct;
pub mod lease;
pub mod store;
pub mod wire;
