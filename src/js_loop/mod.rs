//! The JS thread's event loop, as the native stores use it: libuv's
//! functions and handle memory (`uv`), the env hooks and async contexts
//! (`env`), promises settled from the loop itself (`promise`), and an
//! executor of Rust futures on the loop (`executor`) with sockets whose
//! readiness comes from it (`stream`). Redis's JS-thread transport
//! (`crate::redis::direct`) drives its own sockets with the first three;
//! PostgreSQL's connections run as futures on the executor.

pub(crate) mod env;
pub(crate) mod executor;
pub(crate) mod promise;
pub(crate) mod stream;
pub(crate) mod uv;
