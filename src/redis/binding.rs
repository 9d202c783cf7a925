//! Thin napi layer over [`crate::redis::store`]. The JS glue
//! (`lib/stores/redis.js`) gathers the calls made in one tick and sends them
//! here as ONE `exec` call (one pipeline, one promise; the encoding is
//! `boundary::batch`'s), then settles them; on the JS thread's connection
//! (`redis::direct`) when the store has one.

// napi registers these at load time; `cargo test` builds never call them.
#![cfg_attr(test, allow(dead_code))]

use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::boundary::batch::{blob_text, decode_io, keys_out, ExecOut, KeysOut, ScanPageOut};
use crate::boundary::js_error::{self, guarded};
use crate::boundary::typed::Copied;
use crate::error::PersistError;
use crate::redis::config::RedisConfig;
use crate::redis::lease::{data_op, lease_id, lease_key, lease_ttls};
use crate::redis::results::{encode_results, Encoded};
use crate::redis::store::RedisStore;
use crate::tls::TlsOptions;
use crate::wtf8;

/// The store's core is shared with every call in flight: each method clones
/// it into a `'static` future, so a call never borrows the JS object, whose
/// memory Node frees when its worker thread is torn down (a future borrowing
/// `&self` then read freed memory: the crash of issue 9).
#[napi]
pub struct NativeRedisStore {
    core: RedisStore,
    /// Calls run on the JS thread's socket (`redis::direct`), else on tokio.
    direct_transport: bool,
    /// The data connection on the JS thread (`redis::direct`), when the
    /// store can have one: the socket [`NativeRedisStore::direct_connect`]
    /// opened waits here for [`NativeRedisStore::direct_attach`].
    #[cfg(unix)]
    direct: std::cell::RefCell<Option<crate::redis::direct::Direct>>,
    #[cfg(unix)]
    parked: std::sync::Arc<std::sync::Mutex<Option<crate::redis::direct::DirectSocket>>>,
    /// A cluster store's calls on the JS thread (`redis::direct::cluster`).
    #[cfg(unix)]
    cluster_direct: std::cell::RefCell<Option<crate::redis::direct::cluster::DirectCluster>>,
}

#[napi]
impl NativeRedisStore {
    // one argument per option of createRedisStore, validated in lib/stores/redis.js
    #[allow(clippy::too_many_arguments)]
    #[napi(constructor, catch_unwind)]
    pub fn new(
        env: Env,
        url: String,
        connect_timeout_ms: u32,
        command_timeout_ms: u32,
        tls_ca: Option<String>,
        tls_cert: Option<String>,
        tls_key: Option<String>,
        tls_servername: Option<String>,
        tls_reject_unauthorized: Option<bool>,
        cluster_nodes: Option<Vec<String>>,
        wait_replicas: Option<u32>,
        transport: Option<String>,
    ) -> Result<Self> {
        let want_direct = match transport.as_deref() {
            None | Some("auto") => true,
            Some("tokio") => false,
            Some(other) => {
                return Err(js_error::throw(
                    &env,
                    PersistError::InvalidArgument(format!(
                        "createRedisStore: transport must be 'auto' or 'tokio', got {other:?}"
                    )),
                ))
            }
        };
        js_error::guard(|| {
            RedisStore::new(RedisConfig {
                url,
                cluster_nodes: cluster_nodes.unwrap_or_default(),
                wait_replicas: wait_replicas.unwrap_or(0),
                connect_timeout_ms: u64::from(connect_timeout_ms),
                command_timeout_ms: u64::from(command_timeout_ms),
                tls: TlsOptions {
                    ca: tls_ca,
                    cert: tls_cert,
                    key: tls_key,
                    servername: tls_servername,
                    reject_unauthorized: tls_reject_unauthorized.unwrap_or(true),
                },
            })
        })
        .and_then(|core| {
            let direct_transport =
                want_direct && core.direct_capable() && crate::js_loop::uv::available();
            #[cfg(unix)]
            let cluster_direct = match direct_transport && core.is_cluster() {
                // SAFETY: a JS call of this env, on its thread
                true => Some(unsafe {
                    crate::redis::direct::cluster::DirectCluster::new(env.raw(), core.clone())
                }?),
                false => None,
            };
            Ok(NativeRedisStore {
                direct_transport,
                core,
                #[cfg(unix)]
                direct: Default::default(),
                #[cfg(unix)]
                parked: Default::default(),
                #[cfg(unix)]
                cluster_direct: std::cell::RefCell::new(cluster_direct),
            })
        })
        .map_err(|e| js_error::throw(&env, e))
    }

    /// Where this store's calls run: `'direct'`, on the JS thread's own
    /// socket (one server, with `transport: 'auto'`, in a Node whose libuv
    /// functions can be found), or `'tokio'`.
    #[napi(getter, catch_unwind, ts_return_type = "'direct' | 'tokio'")]
    pub fn transport(&self) -> &'static str {
        if self.direct_transport {
            "direct"
        } else {
            "tokio"
        }
    }

    /// Open the data connection's socket (on tokio: connect, AUTH, SELECT,
    /// within connectTimeout); resolves once it waits for `directAttach`.
    #[napi(catch_unwind, ts_return_type = "Promise<void>")]
    pub fn direct_connect<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, ()>> {
        let core = self.core.clone();
        #[cfg(unix)]
        let parked = self.parked.clone();
        env.spawn_future(async move {
            #[cfg(unix)]
            {
                let socket = guarded("Redis", core.connect_direct()).await?;
                if let Ok(mut slot) = parked.lock() {
                    *slot = Some(socket);
                }
                Ok(())
            }
            #[cfg(not(unix))]
            {
                let _ = core;
                Err(js_error::to_async(PersistError::Internal(
                    "no direct transport on this platform".into(),
                )))
            }
        })
    }

    /// Watch the socket `directConnect` opened on this thread's event loop;
    /// replies go to `onWire(codes, lens, blob, errors, failure)`.
    #[napi(catch_unwind)]
    pub fn direct_attach(&self, env: Env, on_wire: Unknown) -> Result<()> {
        #[cfg(unix)]
        {
            let socket = self.parked.lock().ok().and_then(|mut s| s.take());
            let Some(socket) = socket else {
                return Err(js_error::throw(
                    &env,
                    PersistError::Internal("directAttach: no socket is waiting".into()),
                ));
            };
            let cfg = self.core.config();
            // SAFETY: called by JS on this env's thread, `on_wire` a value of it
            let d = unsafe {
                crate::redis::direct::Direct::attach(
                    env.raw(),
                    socket,
                    on_wire.raw(),
                    cfg.command_timeout_ms,
                    self.core.wait(),
                )
            }
            .map_err(|e| js_error::throw(&env, e))?;
            // a previous connection (already failed) is closed by its drop
            match self.direct.try_borrow_mut() {
                Ok(mut slot) => {
                    *slot = Some(d);
                    Ok(())
                }
                Err(_) => Err(js_error::throw(
                    &env,
                    PersistError::Internal("directAttach: re-entered".into()),
                )),
            }
        }
        #[cfg(not(unix))]
        {
            let _ = on_wire;
            Err(js_error::throw(
                &env,
                PersistError::Internal("no direct transport on this platform".into()),
            ))
        }
    }

    /// Write one batch on the data connection. `io` (an Int32Array the JS
    /// glue reuses: no typed array crosses per call) holds the batch as
    /// `exec` takes it: `n_ops` op kinds, `n_ops` ttls, then `n_lens` UTF-16
    /// lengths of the keys and values concatenated in `blob`. Returns null,
    /// or `[CODE] message` when the connection is gone: then this batch and
    /// every batch in flight failed with it.
    #[napi(catch_unwind)]
    pub fn direct_send(
        &self,
        env: Env,
        #[napi(ts_arg_type = "Int32Array")] io: Unknown,
        n_ops: u32,
        n_lens: u32,
        blob: Utf16String,
    ) -> Option<String> {
        let r = decode_io(&env, &io, n_ops, n_lens, &blob, &data_op).and_then(|batch| {
            #[cfg(unix)]
            {
                match self.direct.try_borrow().as_deref() {
                    Ok(Some(d)) => d.send(batch),
                    Ok(None) => Err(PersistError::Unavailable("not connected".into())),
                    Err(_) => Err(PersistError::Internal("directSend: re-entered".into())),
                }
            }
            #[cfg(not(unix))]
            {
                let _ = batch;
                Err(PersistError::Internal("no direct transport".into()))
            }
        });
        r.err().map(|e| js_error::coded(&e))
    }

    /// Close the data connection (its batches in flight are the caller's).
    #[napi(catch_unwind)]
    pub fn direct_close(&self) {
        #[cfg(unix)]
        let taken = self.direct.try_borrow_mut().ok().and_then(|mut s| s.take());
        if let Some(d) = taken {
            d.close();
        }
    }

    /// Run a batch as one pipeline. `io` holds the op kinds, their ttls and
    /// the UTF-16 lengths of the text pieces (`boundary::batch::decode_io`);
    /// `blob` is the pieces concatenated (a key, then a SET's value; a lease
    /// op's names): one string crosses the boundary instead of one per key
    /// and value. It crosses as UTF-16, so lone surrogates survive (stored
    /// as WTF-8).
    #[napi(catch_unwind, ts_return_type = "Promise<ExecOut>")]
    pub fn exec<'env>(
        &self,
        env: &'env Env,
        #[napi(ts_arg_type = "Int32Array")] io: Unknown,
        n_ops: u32,
        n_lens: u32,
        blob: Utf16String,
    ) -> Result<PromiseRaw<'env, ExecOut>> {
        let batch = decode_io(env, &io, n_ops, n_lens, &blob, &data_op);
        let out = |results| {
            let Encoded { meta, blob, errors } = encode_results(results);
            ExecOut {
                meta: Copied(meta),
                blob: blob_text(blob),
                errors,
            }
        };
        let core = self.core.clone();
        env.spawn_future(async move {
            let batch = batch.map_err(js_error::to_async)?;
            guarded("Redis", core.exec(batch)).await.map(out)
        })
    }

    /// A cluster store's JS-thread transport: take `onBatch(token, count,
    /// meta, blob, errors, failure)` as the function `batchSend`'s batches
    /// answer (`boundary::answer`).
    #[napi(catch_unwind)]
    pub fn batch_attach(&self, env: Env, on_batch: Function<'_, (), ()>) -> Result<()> {
        #[cfg(unix)]
        {
            let attached = match self.cluster_direct.try_borrow().as_deref() {
                // SAFETY: called by JS on this env's thread, `on_batch` a function of it
                Ok(Some(c)) => unsafe { c.attach(env.raw(), on_batch.raw()) },
                _ => Err(PersistError::Internal(
                    "batchAttach: not a cluster on the JS thread".into(),
                )),
            };
            attached.map_err(|e| js_error::throw(&env, e))
        }
        #[cfg(not(unix))]
        {
            let _ = on_batch;
            Err(js_error::throw(
                &env,
                PersistError::Internal("no direct transport on this platform".into()),
            ))
        }
    }

    /// A cluster store's JS-thread transport: run a batch (as `exec` takes
    /// it) over the cluster, its results to `onBatch` with `token`.
    #[napi(catch_unwind)]
    pub fn batch_send(
        &self,
        env: Env,
        #[napi(ts_arg_type = "Int32Array")] io: Unknown,
        n_ops: u32,
        n_lens: u32,
        blob: Utf16String,
        token: u32,
    ) -> Result<()> {
        let batch = decode_io(&env, &io, n_ops, n_lens, &blob, &data_op)
            .map_err(|e| js_error::throw(&env, e))?;
        #[cfg(unix)]
        {
            let sent = match self.cluster_direct.try_borrow().as_deref() {
                Ok(Some(c)) => c.send(token, batch),
                _ => Err(PersistError::Closed),
            };
            sent.map_err(|e| js_error::throw(&env, e))
        }
        #[cfg(not(unix))]
        {
            let _ = (batch, token);
            Err(js_error::throw(
                &env,
                PersistError::Internal("no direct transport on this platform".into()),
            ))
        }
    }

    /// Keys matching a Redis glob, by SCAN: concatenated in `blob`, with
    /// their UTF-16 lengths (one string crosses instead of one per key).
    /// Keys that are not text (no JS string maps to them) are left out.
    #[napi(catch_unwind, ts_return_type = "Promise<KeysOut>")]
    pub fn keys<'env>(
        &self,
        env: &'env Env,
        pattern: Utf16String,
    ) -> Result<PromiseRaw<'env, KeysOut>> {
        let pattern = wtf8::encode(&pattern);
        if let Some(link) = self.direct_link() {
            return self.start_direct(env, async move {
                crate::redis::keys::keys(&link, &pattern)
                    .await
                    .map(keys_out)
            });
        }
        #[cfg(unix)]
        if self.is_cluster_direct() {
            return self.start_cluster(env, move |link| async move {
                crate::redis::keys::keys(&link, &pattern)
                    .await
                    .map(keys_out)
            });
        }
        let core = self.core.clone();
        env.spawn_future(async move {
            let keys = guarded("Redis", core.keys(&pattern)).await?;
            Ok(keys_out(keys))
        })
    }

    /// One SCAN page on a single server (`RedisStore::scan_page`): the next
    /// cursor (decimal text: it can exceed 2^53; "0" ends the pass) and the
    /// page's keys as in `keys`; null on a cluster.
    #[napi(catch_unwind, ts_return_type = "Promise<ScanPageOut | null>")]
    pub fn scan_page<'env>(
        &self,
        env: &'env Env,
        cursor: String,
        pattern: Utf16String,
    ) -> Result<PromiseRaw<'env, Option<ScanPageOut>>> {
        let pattern = wtf8::encode(&pattern);
        let cursor: u64 = match cursor.parse() {
            Ok(c) => c,
            Err(_) => {
                return Err(js_error::throw(
                    env,
                    PersistError::Internal(format!("scanPage: bad cursor {cursor}")),
                ))
            }
        };
        let page = |(next, keys): (u64, Vec<Vec<u8>>)| {
            let out = keys_out(keys);
            Some(ScanPageOut {
                cursor: next.to_string(),
                lens: out.lens,
                blob: out.blob,
            })
        };
        if self.core.is_cluster() {
            return env.spawn_future(async move { Ok(None) });
        }
        if let Some(link) = self.direct_link() {
            return self.start_direct(env, async move {
                crate::redis::keys::scan_page(&link, cursor, &pattern)
                    .await
                    .map(page)
            });
        }
        let core = self.core.clone();
        env.spawn_future(async move {
            guarded(
                "Redis",
                crate::redis::keys::scan_page(&core, cursor, &pattern),
            )
            .await
            .map(page)
        })
    }

    /// `clearAsync` of the cache with `prefix`: SCAN + UNLINK of the keys it
    /// owns (see `Owners`). Resolves to the number of keys removed.
    #[napi(catch_unwind, ts_return_type = "Promise<number>")]
    pub fn clear_cache_prefix<'env>(
        &self,
        env: &'env Env,
        prefix: Utf16String,
    ) -> Result<PromiseRaw<'env, f64>> {
        let prefix = wtf8::encode(&prefix);
        if let Some(link) = self.direct_link() {
            return self.start_direct(env, async move {
                crate::redis::keys::clear_cache_prefix(&link, &prefix)
                    .await
                    .map(|n| n as f64)
            });
        }
        #[cfg(unix)]
        if self.is_cluster_direct() {
            return self.start_cluster(env, move |link| async move {
                crate::redis::keys::clear_cache_prefix(&link, &prefix)
                    .await
                    .map(|n| n as f64)
            });
        }
        let core = self.core.clone();
        env.spawn_future(async move {
            guarded("Redis", core.clear_cache_prefix(&prefix))
                .await
                .map(|n| n as f64)
        })
    }

    #[napi(catch_unwind, ts_return_type = "Promise<void>")]
    pub fn close<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, ()>> {
        #[cfg(unix)]
        if let Some(c) = self
            .cluster_direct
            .try_borrow_mut()
            .ok()
            .and_then(|mut c| c.take())
        {
            c.close();
        }
        let core = self.core.clone();
        env.spawn_future(async move {
            core.close().await;
            Ok(())
        })
    }

    /// The time left on each lease key in ms (-1 no expiry, -2 absent),
    /// read only, on the JS thread's connection when the store has one: the
    /// inspector's lease listing (`redis::lease`).
    #[napi(catch_unwind, ts_return_type = "Promise<Float64Array>")]
    pub fn lease_ttls<'env>(
        &self,
        env: &'env Env,
        keys: Vec<Utf16String>,
    ) -> Result<PromiseRaw<'env, Float64Array>> {
        let keys: Vec<Vec<u8>> = keys.iter().map(|k| wtf8::encode(k)).collect();
        let out = |ttls: Vec<i64>| Float64Array::new(ttls.into_iter().map(|t| t as f64).collect());
        if let Some(link) = self.direct_link() {
            return self.start_direct(env, async move { lease_ttls(&link, keys).await.map(out) });
        }
        #[cfg(unix)]
        if self.is_cluster_direct() {
            return self.start_cluster(env, move |link| async move {
                lease_ttls(&link, keys).await.map(out)
            });
        }
        let core = self.core.clone();
        env.spawn_future(async move { guarded("Redis", lease_ttls(&core, keys)).await.map(out) })
    }

    /// Connections opened so far (reconnects add one each).
    #[napi(getter)]
    pub fn connections_opened(&self) -> f64 {
        self.core.connections_opened() as f64
    }
}

#[cfg(unix)]
type Link = crate::redis::direct::Link;
#[cfg(not(unix))]
type Link = std::convert::Infallible;

impl NativeRedisStore {
    /// The JS thread's connection, when it is up (else calls go to tokio).
    fn direct_link(&self) -> Option<Link> {
        #[cfg(unix)]
        {
            let slot = self.direct.try_borrow().ok()?;
            slot.as_ref().filter(|d| d.is_open()).map(|d| d.link())
        }
        #[cfg(not(unix))]
        None
    }

    /// Does this cluster store run its calls on the JS thread?
    #[cfg(unix)]
    fn is_cluster_direct(&self) -> bool {
        matches!(self.cluster_direct.try_borrow().as_deref(), Ok(Some(_)))
    }

    /// Run `job` on the cluster's JS-thread transport: its promise.
    #[cfg(unix)]
    fn start_cluster<'env, T, F>(
        &self,
        env: &'env Env,
        job: impl FnOnce(crate::redis::direct::cluster::ClusterLink) -> F,
    ) -> Result<PromiseRaw<'env, T>>
    where
        T: ToNapiValue + 'static,
        F: std::future::Future<Output = crate::error::Result<T>> + 'static,
    {
        let started = match self.cluster_direct.try_borrow().as_deref() {
            // SAFETY: called from a JS call of this env, on its thread
            Ok(Some(c)) => unsafe { c.start(env.raw(), job) },
            _ => Err(PersistError::Closed),
        };
        started
            .map(|p| PromiseRaw::new(env.raw(), p))
            .map_err(|e| js_error::throw(env, e))
    }

    /// Run `job` (made for [`NativeRedisStore::direct_link`]'s connection)
    /// on the JS thread: its promise.
    fn start_direct<'env, T, F>(&self, env: &'env Env, job: F) -> Result<PromiseRaw<'env, T>>
    where
        T: ToNapiValue + 'static,
        F: std::future::Future<Output = crate::error::Result<T>> + 'static,
    {
        #[cfg(unix)]
        {
            let started = match self.direct.try_borrow().as_deref() {
                // SAFETY: called from a JS call of this env, on its thread
                Ok(Some(d)) => unsafe { d.start(env.raw(), job) },
                _ => Err(PersistError::Unavailable("not connected".into())),
            };
            started
                .map(|p| PromiseRaw::new(env.raw(), p))
                .map_err(|e| js_error::throw(env, e))
        }
        #[cfg(not(unix))]
        {
            drop(job);
            Err(js_error::throw(
                env,
                PersistError::Internal("no direct transport on this platform".into()),
            ))
        }
    }
}

/// The lease key that guards snapshot `prefix` + `id` on a Redis store
/// (`redis::lease::lease_key`): the inspector evicts a dead worker's lease
/// through it.
#[napi(catch_unwind)]
pub fn redis_lease_key(prefix: Utf16String, id: Utf16String) -> napi::Result<Utf16String> {
    let mut units = prefix.to_vec();
    units.extend_from_slice(&id);
    let key = lease_key(
        &wtf8::encode(&prefix),
        &wtf8::encode(&id),
        &wtf8::encode(&units),
    )
    .map_err(js_error::to_async)?;
    let text = wtf8::decode(&key)
        .ok_or_else(|| js_error::to_async(PersistError::Internal("lease key: not WTF-8".into())))?;
    Ok(Utf16String::from(text))
}

/// The run id that `key` is the lease key of under `prefix`
/// (`redis::lease::lease_id`), or null for any other key: the inspector's
/// lease listing.
#[napi(catch_unwind)]
pub fn redis_lease_id(prefix: Utf16String, key: Utf16String) -> Option<Utf16String> {
    let key = wtf8::encode(&key);
    lease_id(&wtf8::encode(&prefix), &key)
        .and_then(wtf8::decode)
        .map(Utf16String::from)
}
