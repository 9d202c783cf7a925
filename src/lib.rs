//! awaitly-persistence-native: a Rust core for `awaitly/persistence`.
//!
//! `lib.rs` only wires modules. One folder per concept, each a pure core (no
//! napi types; time comes in as a `now_ms` argument or, for file leases, an
//! injected `LeaseClock`; `cargo test`) plus its thin napi `binding.rs`:
//! `redis/`, `postgres/`, `file/`, `cache/` (the memory LRU), `state/` (resume-state
//! documents), `ownership/` (which store keys a cache may clear). Shared: `error` (+ `boundary`, what the napi bindings share:
//! its JS mapping, JS text, lease results, test hooks), `lease_op` (the
//! server stores' run-lease operation), `json_string`, `glob`
//! (+ `glob_binding`), `wtf8`, `runtime`, `tls` (the
//! TLS client settings of the Redis and PostgreSQL stores), `js_loop` (the
//! JS thread's event loop: libuv, promises settled from it, an executor of
//! futures and sockets on it, for the Redis and PostgreSQL transports).

#![deny(clippy::unwrap_used)]
// a panic in a sync napi function would abort the user's process: outside
// tests, no `expect` and no explicit `panic!` either
#![cfg_attr(not(test), deny(clippy::expect_used, clippy::panic))]
// `#[napi]` items are only registered in the cdylib; unit-test builds see them unused.
#![cfg_attr(test, allow(dead_code))]

mod boundary;
pub mod cache;
pub mod error;
pub mod file;
pub mod glob;
pub mod json_string;
pub mod lease_op;
pub mod ownership;
pub mod postgres;
pub mod redis;
mod runtime;
pub mod state;
pub mod tls;
pub mod token;
pub mod wtf8;

mod glob_binding;
mod js_loop;
