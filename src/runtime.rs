//! The tokio runtime behind every async native call.
//!
//! The work on it is I/O-bound (Redis pipelines, waiting on the file
//! committer; file reads run on tokio's blocking pool), so one worker beats
//! one per core: fewer cross-thread wake-ups per call, which is most of a
//! lone call's latency.

use napi_derive::module_init;

#[module_init]
fn init() {
    if let Ok(rt) = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("awaitly-native")
        .enable_all()
        .build()
    {
        napi::bindgen_prelude::create_custom_tokio_runtime(rt);
    }
}
