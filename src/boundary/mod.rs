//! What every napi binding shares, so that each `<concept>/binding.rs` stays
//! thin and no binding imports from another concept's binding:
//! - `js_error`: a `PersistError` thrown as the right JS class with `code`
//!   (or an async rejection `[CODE] message`), and panics caught at the
//!   boundary;
//! - `text`: JS strings in as exact UTF-16 code units;
//! - `lease`: the answer of a batch of run-lease ops (`LeaseOut`), the same
//!   for the file store and the Redis store;
//! - `test_hooks`: internal hooks for our own tests and benchmarks.

pub mod js_error;
pub mod lease;
pub mod test_hooks;
pub mod text;
