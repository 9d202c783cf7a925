//! Resume state: state-document validation and envelope (`doc`) and the thin
//! napi `binding` used by `lib/serialize.js`.

mod binding;
pub mod doc;
