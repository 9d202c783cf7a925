//! Thin napi layer over [`crate::redis_store`]. The JS glue
//! (`lib/redis-store.js`) gathers the calls made in one tick and sends them
//! here as ONE `exec` call (one pipeline, one promise), then settles them.
//!
//! Batch encoding: `ops[i]` is the op kind (0 get, 1 set, 2 delete,
//! 3 exists), `ttls[i]` the SET ttl in seconds (0: none); the keys and SET
//! values travel as ONE string plus their UTF-16 lengths (a napi string
//! conversion per key and value cost ~0.9-1.7 µs per op; one for the batch
//! is a copy). Results come back the same way: codes, lengths, one string.

// napi registers these at load time; `cargo test` builds never call them.
#![cfg_attr(test, allow(dead_code))]

use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::error::PersistError;
use crate::js_error;
use crate::redis_store::{Op, OpResult, Owners, RedisConfig, RedisStore, REGISTRY_PREFIX};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_by_utf16_lengths() -> crate::error::Result<()> {
        assert_eq!(split_utf16("abcde", &[2, 0, 3])?, vec!["ab", "", "cde"]);
        // é is 1 UTF-16 unit (2 bytes), 🚀 is 2 units (4 bytes)
        assert_eq!(split_utf16("aé🚀bc", &[2, 2, 2])?, vec!["aé", "🚀", "bc"]);
        assert!(split_utf16("aé", &[1]).is_err());
        assert!(split_utf16("aé", &[3]).is_err());
        assert_eq!(utf16_len("a🚀é"), 4);
        Ok(())
    }
}

/// Outcome codes of [`NativeRedisStore::exec`], one per op.
const OUT_NONE: u8 = 0; // GET miss (null) or SET done (undefined)
const OUT_VALUE: u8 = 1; // GET hit: the next `lens` entry, sliced off `blob`
const OUT_TRUE: u8 = 2;
const OUT_FALSE: u8 = 3;
const OUT_ERROR: u8 = 4; // `errors[i]` holds `[CODE] message`

#[napi(object)]
pub struct ExecOut {
    pub codes: Uint8Array,
    /// UTF-16 lengths of the GET values, in order, concatenated in `blob`.
    pub lens: Uint32Array,
    pub blob: String,
    /// Per-op failures, only when some op failed.
    pub errors: Option<Vec<Option<String>>>,
}

#[napi(object)]
pub struct KeysOut {
    pub lens: Uint32Array,
    pub blob: String,
}

/// Split `blob` into pieces of the given UTF-16 lengths (JS string lengths).
fn split_utf16(blob: &str, lens: &[u32]) -> crate::error::Result<Vec<String>> {
    let total: usize = lens.iter().map(|&l| l as usize).sum();
    let mut out = Vec::with_capacity(lens.len());
    if blob.is_ascii() {
        // UTF-16 units == bytes
        if blob.len() != total {
            return Err(PersistError::Internal(
                "exec: batch text and lengths disagree".into(),
            ));
        }
        let mut pos = 0usize;
        for &l in lens {
            let end = pos + l as usize;
            out.push(blob.get(pos..end).unwrap_or_default().to_string());
            pos = end;
        }
        return Ok(out);
    }
    let mut chars = blob.char_indices();
    let mut start = 0usize;
    for &l in lens {
        let mut units = 0usize;
        let mut end = start;
        while units < l as usize {
            let (i, c) = chars.next().ok_or_else(|| {
                PersistError::Internal("exec: batch text shorter than its lengths".into())
            })?;
            units += c.len_utf16();
            end = i + c.len_utf8();
        }
        out.push(blob[start..end].to_string());
        start = end;
    }
    if start != blob.len() {
        return Err(PersistError::Internal(
            "exec: batch text longer than its lengths".into(),
        ));
    }
    Ok(out)
}

fn utf16_len(s: &str) -> u32 {
    if s.is_ascii() {
        s.len() as u32
    } else {
        s.encode_utf16().count() as u32
    }
}

/// Await `fut`, turning a panic inside it into `ERR_INTERNAL` (napi-rs would
/// reject with a bare "Panic in async function").
async fn guarded<T>(fut: impl std::future::Future<Output = crate::error::Result<T>>) -> Result<T> {
    match js_error::catch_panic_async(fut).await {
        Ok(r) => r.map_err(js_error::to_async),
        Err(what) => Err(js_error::to_async(PersistError::Internal(format!(
            "panic in the Redis store: {what}"
        )))),
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

    /// Run a batch as one pipeline. `blob` is the op keys and the SET values
    /// concatenated (key, then value for a SET), `lens` their UTF-16 lengths:
    /// one string crosses the boundary instead of one per key and value.
    #[napi]
    pub async fn exec(
        &self,
        ops: Uint8Array,
        ttls: Uint32Array,
        lens: Uint32Array,
        blob: String,
    ) -> Result<ExecOut> {
        let n = ops.len();
        let fail = |m: &str| js_error::to_async(PersistError::Internal(format!("exec: {m}")));
        if ttls.len() != n {
            return Err(fail("batch arrays differ in length"));
        }
        let pieces = split_utf16(&blob, &lens).map_err(js_error::to_async)?;
        let mut pieces = pieces.into_iter();
        let mut batch = Vec::with_capacity(n);
        for i in 0..n {
            let key = pieces.next().ok_or_else(|| fail("missing key"))?;
            let op = match ops[i] {
                0 => Op::Get(key),
                1 => {
                    let v = pieces.next().ok_or_else(|| fail("missing value"))?;
                    let t = ttls[i];
                    Op::Set(key, v, (t > 0).then_some(u64::from(t)))
                }
                2 => Op::Delete(key),
                3 => Op::Exists(key),
                k => return Err(fail(&format!("unknown op {k}"))),
            };
            batch.push(op);
        }
        let results = guarded(self.core.exec(&batch)).await?;
        let mut codes = Vec::with_capacity(n);
        let mut out_lens = Vec::new();
        let mut out_blob = String::new();
        let mut errors: Option<Vec<Option<String>>> = None;
        for (i, r) in results.into_iter().enumerate() {
            match r {
                OpResult::Value(Some(s)) => {
                    codes.push(OUT_VALUE);
                    out_lens.push(utf16_len(&s));
                    out_blob.push_str(&s);
                }
                OpResult::Value(None) | OpResult::Done => codes.push(OUT_NONE),
                OpResult::Bool(true) => codes.push(OUT_TRUE),
                OpResult::Bool(false) => codes.push(OUT_FALSE),
                OpResult::Failed(e) => {
                    codes.push(OUT_ERROR);
                    errors.get_or_insert_with(|| vec![None; n])[i] = Some(coded(&e));
                }
            }
        }
        Ok(ExecOut {
            codes: Uint8Array::new(codes),
            lens: Uint32Array::new(out_lens),
            blob: out_blob,
            errors,
        })
    }

    /// Keys matching a Redis glob, by SCAN: concatenated in `blob`, with
    /// their UTF-16 lengths (one string crosses instead of one per key).
    #[napi]
    pub async fn keys(&self, pattern: String) -> Result<KeysOut> {
        let keys = guarded(self.core.keys(&pattern)).await?;
        let mut lens = Vec::with_capacity(keys.len());
        let mut blob = String::with_capacity(keys.iter().map(String::len).sum());
        for k in &keys {
            lens.push(utf16_len(k));
            blob.push_str(k);
        }
        Ok(KeysOut {
            lens: Uint32Array::new(lens),
            blob,
        })
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
