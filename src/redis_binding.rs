//! Thin napi layer over [`crate::redis_store`]. The JS glue
//! (`lib/redis-store.js`) gathers the calls made in one tick and sends them
//! here as ONE `exec` call (one pipeline, one promise), then settles them.
//!
//! Batch encoding: `ops[i]` is the op kind (0 get, 1 set, 2 delete,
//! 3 exists), `ttls[i]` the SET ttl in seconds (0: none), `keys[i]` its key;
//! `values` holds the SET values only, in order.

// napi registers these at load time; `cargo test` builds never call them.
#![cfg_attr(test, allow(dead_code))]

use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::error::PersistError;
use crate::js_error;
use crate::redis_store::{Op, OpResult, Owners, RedisConfig, RedisStore, REGISTRY_PREFIX};

#[napi(object)]
pub struct ExecOut {
    /// GET: string or null; DELETE/EXISTS: boolean; SET: null.
    pub values: Vec<Option<Either<String, bool>>>,
    /// Per-op failures (`[CODE] message`), only when some op failed.
    pub errors: Option<Vec<Option<String>>>,
}

/// Await `fut`, turning a panic inside it into `ERR_INTERNAL` (napi-rs would
/// reject with a bare "Panic in async function").
async fn guarded<T>(fut: impl std::future::Future<Output = crate::error::Result<T>>) -> Result<T> {
    use futures_util::FutureExt;
    match std::panic::AssertUnwindSafe(fut).catch_unwind().await {
        Ok(r) => r.map_err(js_error::to_async),
        Err(_) => Err(js_error::to_async(PersistError::Internal(
            "panic in the Redis store".into(),
        ))),
    }
}

fn coded(e: &PersistError) -> String {
    format!("[{}] {}", e.code(), e)
}

#[napi]
pub struct NativeRedisStore {
    core: RedisStore,
}

#[napi]
impl NativeRedisStore {
    #[napi(constructor, catch_unwind)]
    pub fn new(
        env: Env,
        url: String,
        connect_timeout_ms: u32,
        command_timeout_ms: u32,
        tls_ca: Option<String>,
        tls_cert: Option<String>,
        tls_key: Option<String>,
    ) -> Result<Self> {
        js_error::guard(|| {
            RedisStore::new(RedisConfig {
                url,
                connect_timeout_ms: u64::from(connect_timeout_ms),
                command_timeout_ms: u64::from(command_timeout_ms),
                tls_ca,
                tls_cert,
                tls_key,
            })
        })
        .map(|core| NativeRedisStore { core })
        .map_err(|e| js_error::throw(&env, e))
    }

    /// Run a batch as one pipeline.
    #[napi]
    pub async fn exec(
        &self,
        ops: Uint8Array,
        ttls: Uint32Array,
        keys: Vec<String>,
        values: Vec<String>,
    ) -> Result<ExecOut> {
        let n = ops.len();
        if keys.len() != n || ttls.len() != n {
            return Err(js_error::to_async(PersistError::Internal(
                "exec: batch arrays differ in length".into(),
            )));
        }
        let mut vals = values.into_iter();
        let mut batch = Vec::with_capacity(n);
        for (i, key) in keys.into_iter().enumerate() {
            let op = match ops[i] {
                0 => Op::Get(key),
                1 => {
                    let v = vals.next().ok_or_else(|| {
                        js_error::to_async(PersistError::Internal("exec: missing value".into()))
                    })?;
                    let t = ttls[i];
                    Op::Set(key, v, (t > 0).then_some(u64::from(t)))
                }
                2 => Op::Delete(key),
                3 => Op::Exists(key),
                k => {
                    return Err(js_error::to_async(PersistError::Internal(format!(
                        "exec: unknown op {k}"
                    ))))
                }
            };
            batch.push(op);
        }
        let results = guarded(self.core.exec(&batch)).await?;
        let mut out_vals = Vec::with_capacity(n);
        let mut errors: Option<Vec<Option<String>>> = None;
        for (i, r) in results.into_iter().enumerate() {
            match r {
                OpResult::Value(Some(s)) => out_vals.push(Some(Either::A(s))),
                OpResult::Value(None) | OpResult::Done => out_vals.push(None),
                OpResult::Bool(b) => out_vals.push(Some(Either::B(b))),
                OpResult::Failed(e) => {
                    out_vals.push(None);
                    errors.get_or_insert_with(|| vec![None; n])[i] = Some(coded(&e));
                }
            }
        }
        Ok(ExecOut {
            values: out_vals,
            errors,
        })
    }

    /// Keys matching a Redis glob, by SCAN.
    #[napi]
    pub async fn keys(&self, pattern: String) -> Result<Vec<String>> {
        guarded(self.core.keys(&pattern)).await
    }

    /// `clearAsync` of the cache with `prefix`: SCAN + UNLINK of the keys it
    /// owns (see `Owners`). Resolves to the number of keys removed.
    #[napi]
    pub async fn clear_cache_prefix(&self, prefix: String) -> Result<f64> {
        guarded(self.core.clear_cache_prefix(&prefix))
            .await
            .map(|n| n as f64)
    }

    /// Connect now (if needed) and PING.
    #[napi]
    pub async fn ping(&self) -> Result<()> {
        guarded(self.core.ping()).await
    }

    #[napi]
    pub async fn close(&self) -> Result<()> {
        self.core.close().await;
        Ok(())
    }

    /// Connections opened so far (reconnects add one each).
    #[napi(getter)]
    pub fn connections_opened(&self) -> f64 {
        self.core.connections_opened() as f64
    }
}

/// The reserved key space of the owner registry.
#[napi(catch_unwind)]
pub fn owner_registry_prefix() -> String {
    REGISTRY_PREFIX.to_string()
}

/// The registry key that records `prefix` as a `kind` ('cache' | 'state') owner.
#[napi(catch_unwind)]
pub fn owner_registry_key(kind: String, prefix: String) -> String {
    Owners::registry_key(&kind, &prefix)
}

/// Of `candidates`, the keys a cache with `prefix` may delete, given the
/// registry keys found in the store.
#[napi(catch_unwind)]
pub fn cache_deletable_keys(
    prefix: String,
    registry_keys: Vec<String>,
    candidates: Vec<String>,
) -> Vec<String> {
    let owners = Owners::from_registry_keys(registry_keys.iter().map(String::as_str));
    candidates
        .into_iter()
        .filter(|k| owners.cache_may_delete(&prefix, k))
        .collect()
}
