//! What every napi binding shares, so that each `<concept>/binding.rs` stays
//! thin and no binding imports from another concept's binding:
//! - `js_error`: a `PersistError` thrown as the right JS class with `code`
//!   (or an async rejection `[CODE] message`), and panics caught at the
//!   boundary;
//! - `text`: JS strings in as exact UTF-16 code units, and text out;
//! - `batch`: the data batch of the server stores' `exec` and its answers;
//! - `answer`: data batches answered through one JS callback (`onBatch`);
//! - `lease`: a batch of run-lease ops and its answer (`LeaseOut`), the same
//!   for every store;
//! - `typed`: typed arrays out, copied into V8's own buffers;
//! - `test_hooks`: internal hooks for our own tests and benchmarks.

pub mod answer;
pub mod batch;
pub mod js_error;
pub mod lease;
pub mod test_hooks;
pub mod text;
pub mod typed;
