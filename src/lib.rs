//! awaitly-persistence-native: a Rust core for `awaitly/persistence`.
//!
//! `lib.rs` only wires modules. One folder per concept, each a pure core (no
//! napi types, injected clock; `cargo test`) plus its thin napi `binding.rs`:
//! `redis/`, `postgres/`, `file/`, `cache/` (the memory LRU), `state/` (resume-state
//! documents). Shared: `error` (+ `js_error`, its JS mapping), `clock`,
//! `glob` (+ `glob_binding`), `wtf8`, `runtime`.

#![deny(clippy::unwrap_used)]
// a panic in a sync napi function would abort the user's process: outside
// tests, no `expect` and no explicit `panic!` either
#![cfg_attr(not(test), deny(clippy::expect_used, clippy::panic))]
// `#[napi]` items are only registered in the cdylib; unit-test builds see them unused.
#![cfg_attr(test, allow(dead_code))]

pub mod cache;
pub mod clock;
pub mod error;
pub mod file;
pub mod glob;
pub mod postgres;
pub mod redis;
mod runtime;
pub mod state;
pub mod token;
pub mod wtf8;

mod glob_binding;
mod js_error;
