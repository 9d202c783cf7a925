//! awaitly-persistence-native: a Rust core for `awaitly/persistence`.
//!
//! `lib.rs` only wires modules. Pure cores (no napi types, injected clock):
//! `error`, `clock`, `glob`, `state_doc`, `lru`, `file_name`, `file_store`,
//! `redis_store`. Bindings (thin, napi): `js_error`, `*_binding`.

#![deny(clippy::unwrap_used)]
// `#[napi]` items are only registered in the cdylib; unit-test builds see them unused.
#![cfg_attr(test, allow(dead_code))]

pub mod clock;
pub mod error;
pub mod file_name;
pub mod file_store;
pub mod glob;
pub mod lru;
pub mod redis_store;
mod runtime;
pub mod state_doc;
pub mod wtf8;

mod file_binding;
mod glob_binding;
mod js_error;
mod memory_cache_binding;
mod redis_binding;
mod serialize_binding;
