//! Redis: the batch seam (`batch`: operations into commands, replies into
//! results, the trailing WAIT; `codes`: the numbers JS reads; `results`:
//! results on their way to JS), the protocol state of a connection
//! (`wire`), the calls made of several batches (`keys`: SCAN, clearing a
//! prefix; `lease`: run leases), the tokio connections (`store`, opened by
//! `tokio_conn`), the cluster's routing (`cluster`), the JS-thread socket
//! (`direct`, libuv) and the thin napi `binding`. TLS settings: `crate::tls`.

pub mod batch;
pub(crate) mod binding;
pub mod cluster;
pub mod codes;
pub mod config;
#[cfg(unix)]
pub(crate) mod direct;
pub(crate) mod failure;
pub mod keys;
pub mod lease;
pub mod results;
pub mod store;
pub mod tokio_conn;
pub mod wire;
