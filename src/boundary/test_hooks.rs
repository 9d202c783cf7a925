//! Internal hooks for this package's own tests and benchmarks, all in this
//! one place. Not part of the API: not in index.d.ts, not on the package's
//! exports; reached only as `require('./binding.js').__internal`.

use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::boundary::js_error::{guard, throw};

/// Internal: panics inside the Rust core, caught at the boundary and thrown
/// as a JS `Error` with code `ERR_INTERNAL` instead of aborting the process.
#[napi(namespace = "__internal", js_name = "panic")]
// the one deliberate panic: proves the boundary guard (__test__/smoke.test.ts)
#[allow(clippy::panic)]
pub fn panic_for_test(env: Env) -> Result<()> {
    guard(|| -> crate::error::Result<()> { panic!("deliberate test panic") })
        .map_err(|e| throw(&env, e))
}

/// Internal: live memory caches in this thread's registry (finalizers free
/// entries; __test__/memory-cache-gc.test.ts).
#[napi(namespace = "__internal", js_name = "memoryCacheLiveCount")]
pub fn memory_cache_live_count() -> u32 {
    crate::cache::binding::live_count()
}

/// Internal: an empty native call, the baseline of benchmark/memory-cache.mjs.
#[napi(namespace = "__internal", js_name = "noop")]
pub fn noop() {}
