//! Redis: the batch seam (`batch`: operations into commands, replies into
//! results, the trailing WAIT; `codes`: the numbers JS reads; `results`:
//! results on their way to JS), the protocol state of a connection
//! (`wire`), the calls made of several batches (`keys`: SCAN, clearing a
//! prefix; `lease`: run leases), the tokio connections and the cluster
//! (`store`), the JS-thread socket (`direct`, libuv) and the thin napi
//! `binding`.

pub mod batch;
pub(crate) mod binding;
pub mod codes;
#[cfg(unix)]
pub(crate) mod direct;
pub mod keys;
pub mod lease;
pub mod results;
pub mod store;
pub mod wire;
