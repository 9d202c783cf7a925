//! Glob helpers for the JavaScript glue and for user-supplied stores.

use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::glob;

/// Escape `* ? [ ] \` so `literal` matches only itself in a `keys()` pattern.
#[napi(catch_unwind)]
pub fn escape_glob(literal: String) -> String {
    glob::escape(&literal)
}

/// Does `key` match the Redis-style glob `pattern`?
#[napi(catch_unwind)]
pub fn glob_match(pattern: String, key: String) -> bool {
    glob::matches(&pattern, &key)
}

/// Test hook: panics inside the Rust core, caught at the boundary and thrown
/// as a JS `Error` with code `ERR_INTERNAL` instead of aborting the process.
#[napi(js_name = "__panicForTest")]
pub fn panic_for_test(env: Env) -> Result<()> {
    crate::js_error::guard(|| -> crate::error::Result<()> { panic!("deliberate test panic") })
        .map_err(|e| crate::js_error::throw(&env, e))
}
