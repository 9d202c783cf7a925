//! The tokio runtime behind every async native call.
//!
//! The work on it is I/O-bound (Redis pipelines, waiting on the file
//! committer), so a small fixed pool of workers beats one per core: fewer
//! cross-thread wake-ups per call, which is most of a lone call's latency.

use napi_derive::module_init;

#[module_init]
fn init() {
    let workers = std::env::var("AWAITLY_NATIVE_WORKERS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or(1);
    if let Ok(rt) = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("awaitly-native")
        .enable_all()
        .build()
    {
        napi::bindgen_prelude::create_custom_tokio_runtime(rt);
    }
}
