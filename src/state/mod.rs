//! Resume state: the JSON scanner over JS text (`scan`), state-document
//! validation (`validate`) and the thin napi `binding` used by
//! `lib/serialize.js`.

mod binding;
mod scan;
pub mod validate;
