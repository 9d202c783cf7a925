//! Glob helpers for the JavaScript glue and for user-supplied stores.

use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::glob;

/// Escape `* ? [ ] \` so `literal` matches only itself in a `keys()` pattern.
#[napi(catch_unwind)]
pub fn escape_glob(literal: Utf16String) -> Utf16String {
    Utf16String::from(glob::escape_units(&literal))
}

/// Does `key` match the Redis-style glob `pattern`? Exact on UTF-16: a lone
/// surrogate matches only itself.
#[napi(catch_unwind)]
pub fn glob_match(pattern: Utf16String, key: Utf16String) -> bool {
    glob::matches_units(&pattern, &key)
}
