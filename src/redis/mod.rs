//! Redis: the pure core (`store`: connection, pipelines, SCAN/UNLINK,
//! timeouts, reconnect, owner registry) and its thin napi `binding`.

pub(crate) mod binding;
pub mod lease;
pub mod store;
