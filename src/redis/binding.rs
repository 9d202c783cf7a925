//! Thin napi layer over [`crate::redis::store`]. The JS glue
//! (`lib/redis-store.js`) gathers the calls made in one tick and sends them
//! here as ONE `exec` call (one pipeline, one promise), then settles them.
//!
//! Batch encoding: `ops[i]` is the op kind (0 get, 1 set, 2 delete,
//! 3 exists, 4 durable set: a state write, followed by `WAIT` when the store
//! has `waitReplicas`), `ttls[i]` the SET ttl in seconds (0: none); the keys and SET
//! values travel as ONE string plus their UTF-16 lengths (a napi string
//! conversion per key and value cost ~0.9-1.7 µs per op; one for the batch
//! is a copy). Results come back the same way: codes, lengths, one string.

// napi registers these at load time; `cargo test` builds never call them.
#![cfg_attr(test, allow(dead_code))]

use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::boundary::js_error;
use crate::boundary::lease::{decode_leases, lease_out, LeaseOut};
use crate::error::PersistError;
use crate::redis::batch::Op;
use crate::redis::codes::RedisOp;
use crate::redis::lease::{lease_exec, lease_id, lease_key, lease_ttls};
use crate::redis::results::{encode_results, Blob, Encoded};
use crate::redis::store::{
    Owners, RedisConfig, RedisStore, KIND_STATE, MARKER_CACHE, MARKER_STATE, MARKER_VALUE,
};
use crate::wtf8;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_by_utf16_lengths() -> crate::error::Result<()> {
        let u = |s: &str| s.encode_utf16().collect::<Vec<u16>>();
        let units = u("abcde");
        assert_eq!(
            split_units(&units, &[2, 0, 3])?,
            vec![&units[..2], &[][..], &units[2..]]
        );
        assert!(split_units(&units, &[1]).is_err());
        assert!(split_units(&units, &[6]).is_err());
        // a lone surrogate is one unit like any other
        let lone = [0x61, 0xD800, 0x62];
        assert_eq!(split_units(&lone, &[1, 2])?, vec![&lone[..1], &lone[1..]]);
        Ok(())
    }
}

#[napi(object)]
pub struct ExecOut {
    /// One int per op: a `RedisOutcome`, or `RedisOutcome.Value + n` for a
    /// GET hit (its value: the next `n` UTF-16 units of `blob`).
    pub meta: Int32Array,
    #[napi(ts_type = "string")]
    pub blob: JsText,
    /// Per-op failures, only when some op failed.
    pub errors: Option<Vec<Option<String>>>,
}

/// The values' text as a JS string (ASCII as one-byte latin1).
pub(crate) fn blob_text(blob: Blob) -> JsText {
    match blob {
        Blob::Ascii(bytes) => match String::from_utf8(bytes) {
            Ok(ascii) => Either::A(Latin1String::from(ascii)),
            Err(e) => Either::B(Utf16String::from(
                e.into_bytes()
                    .iter()
                    .map(|&b| u16::from(b))
                    .collect::<Vec<u16>>(),
            )),
        },
        Blob::Units(units) => Either::B(Utf16String::from(units)),
    }
}

/// One page of `scanPage`: the next cursor and the keys (as `KeysOut`).
#[napi(object)]
pub struct ScanPageOut {
    pub cursor: String,
    pub lens: Uint32Array,
    #[napi(ts_type = "string")]
    pub blob: JsText,
}

#[napi(object)]
pub struct KeysOut {
    pub lens: Uint32Array,
    #[napi(ts_type = "string")]
    pub blob: JsText,
}

/// Text going back to JS: ASCII as a one-byte (latin1) V8 string, which JS
/// slices and parses faster and stores in half the memory; anything else as
/// UTF-16 (exact, lone surrogates included).
pub(crate) type JsText = Either<Latin1String, Utf16String>;

pub(crate) fn js_text(units: Vec<u16>) -> JsText {
    if units.iter().all(|&u| u < 0x80) {
        let bytes: Vec<u8> = units.iter().map(|&u| u as u8).collect();
        if let Ok(ascii) = String::from_utf8(bytes) {
            return Either::A(Latin1String::from(ascii));
        }
    }
    Either::B(Utf16String::from(units))
}

/// Split `blob` into pieces of the given UTF-16 lengths (JS string lengths).
fn split_units<'a>(blob: &'a [u16], lens: &[u32]) -> crate::error::Result<Vec<&'a [u16]>> {
    let mut out = Vec::with_capacity(lens.len());
    let mut pos = 0usize;
    for &l in lens {
        let end = pos + l as usize;
        let piece = blob.get(pos..end).ok_or_else(|| {
            PersistError::Internal("exec: batch text shorter than its lengths".into())
        })?;
        out.push(piece);
        pos = end;
    }
    if pos != blob.len() {
        return Err(PersistError::Internal(
            "exec: batch text longer than its lengths".into(),
        ));
    }
    Ok(out)
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
    parked: std::sync::Arc<std::sync::Mutex<Option<crate::redis::store::DirectSocket>>>,
}

#[napi]
impl NativeRedisStore {
    // one argument per option of createRedisStore, validated in lib/redis-store.js
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
                tls_ca,
                tls_cert,
                tls_key,
            })
        })
        .map(|core| NativeRedisStore {
            direct_transport: want_direct && core.direct_capable() && direct_available(),
            core,
            #[cfg(unix)]
            direct: Default::default(),
            #[cfg(unix)]
            parked: Default::default(),
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
                let socket = guarded(core.connect_direct()).await?;
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
        io: Unknown,
        n_ops: u32,
        n_lens: u32,
        blob: Utf16String,
    ) -> Option<String> {
        let (n_ops, n_lens) = (n_ops as usize, n_lens as usize);
        let r = int32_view(&env, &io)
            .and_then(|ints| {
                let need = 2 * n_ops + n_lens;
                let ints = ints.get(..need).ok_or_else(|| {
                    PersistError::Internal("directSend: io buffer shorter than the batch".into())
                })?;
                let ops: Vec<u8> = ints[..n_ops].iter().map(|&k| k as u8).collect();
                let ttls: Vec<u32> = ints[n_ops..2 * n_ops].iter().map(|&t| t as u32).collect();
                let lens: Vec<u32> = ints[2 * n_ops..].iter().map(|&l| l as u32).collect();
                decode_batch(&ops, &ttls, &lens, &blob)
            })
            .and_then(|batch| {
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

    /// Run a batch as one pipeline. `blob` is the op keys and the SET values
    /// concatenated (key, then value for a SET), `lens` their UTF-16 lengths:
    /// one string crosses the boundary instead of one per key and value. It
    /// crosses as UTF-16, so lone surrogates survive (stored as WTF-8).
    #[napi(catch_unwind, ts_return_type = "Promise<ExecOut>")]
    pub fn exec<'env>(
        &self,
        env: &'env Env,
        ops: Uint8Array,
        ttls: Uint32Array,
        lens: Uint32Array,
        blob: Utf16String,
    ) -> Result<PromiseRaw<'env, ExecOut>> {
        let batch = decode_batch(&ops, &ttls, &lens, &blob);
        let core = self.core.clone();
        env.spawn_future(async move {
            let batch = batch.map_err(js_error::to_async)?;
            let results = guarded(core.exec(batch)).await?;
            let Encoded { meta, blob, errors } = encode_results(results);
            Ok(ExecOut {
                meta: Int32Array::new(meta),
                blob: blob_text(blob),
                errors,
            })
        })
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
        let core = self.core.clone();
        env.spawn_future(async move {
            let keys = guarded(core.keys(&pattern)).await?;
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
            guarded(crate::redis::keys::scan_page(&core, cursor, &pattern))
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
        let core = self.core.clone();
        env.spawn_future(async move {
            guarded(core.clear_cache_prefix(&prefix))
                .await
                .map(|n| n as f64)
        })
    }

    /// Connect now (if needed) and PING.
    #[napi(catch_unwind, ts_return_type = "Promise<void>")]
    pub fn ping<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, ()>> {
        let core = self.core.clone();
        env.spawn_future(async move { guarded(core.ping()).await })
    }

    #[napi(catch_unwind, ts_return_type = "Promise<void>")]
    pub fn close<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, ()>> {
        let core = self.core.clone();
        env.spawn_future(async move {
            core.close().await;
            Ok(())
        })
    }

    /// A batch of run-lease ops as one batch (see `redis::lease`), on the
    /// JS thread's connection when the store has one, on the lease of
    /// snapshot `ids[i]` under `prefixes[i]` (the lease key is made here):
    /// `kinds[i]` a `LeaseKind` (an acquire's new token is made here; a
    /// fenced set writes `values[i]`, "" for the other kinds), `tokens[i]`
    /// the owner token ("" for acquire). Resolves to a `LeaseOutcome` per op
    /// (`errors[i]` for an error: `ERR_LEASE_LOST` for a fenced-off write)
    /// and the tokens of the taken leases, in order, concatenated (32
    /// characters each).
    #[napi(catch_unwind, ts_return_type = "Promise<LeaseOut>")]
    #[allow(clippy::too_many_arguments)]
    pub fn lease_exec<'env>(
        &self,
        env: &'env Env,
        kinds: Uint8Array,
        ttls: Uint32Array,
        prefixes: Vec<Utf16String>,
        ids: Vec<Utf16String>,
        tokens: Vec<String>,
        values: Vec<Utf16String>,
    ) -> Result<PromiseRaw<'env, LeaseOut>> {
        let batch = match decode_leases(&kinds, &ttls, prefixes, ids, tokens, values, lease_key) {
            Ok(b) => b,
            Err(e) => return Err(js_error::throw(env, e)),
        };
        if let Some(link) = self.direct_link() {
            return self.start_direct(env, async move {
                let results = lease_exec(&link, &batch).await?;
                Ok(lease_out(&batch, results))
            });
        }
        let core = self.core.clone();
        env.spawn_future(async move {
            let results = guarded(lease_exec(&core, &batch)).await?;
            Ok(lease_out(&batch, results))
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
        let core = self.core.clone();
        env.spawn_future(async move { guarded(lease_ttls(&core, keys)).await.map(out) })
    }

    /// Connections opened so far (reconnects add one each).
    #[napi(getter)]
    pub fn connections_opened(&self) -> f64 {
        self.core.connections_opened() as f64
    }
}

#[cfg(unix)]
fn direct_available() -> bool {
    crate::redis::direct::available()
}

#[cfg(not(unix))]
fn direct_available() -> bool {
    false
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

/// The keys found, as they go to JS (not-text keys left out).
fn keys_out(keys: Vec<Vec<u8>>) -> KeysOut {
    let mut lens = Vec::with_capacity(keys.len());
    let mut blob = Vec::with_capacity(keys.iter().map(Vec::len).sum());
    for k in &keys {
        let before = blob.len();
        if wtf8::decode_into(k, &mut blob) {
            lens.push((blob.len() - before) as u32);
        }
    }
    KeysOut {
        lens: Uint32Array::new(lens),
        blob: js_text(blob),
    }
}

/// The ints of an Int32Array argument (borrowed for this call).
fn int32_view<'a>(env: &Env, v: &'a Unknown) -> crate::error::Result<&'a [i32]> {
    let mut kind = 0;
    let mut len = 0usize;
    let mut data = std::ptr::null_mut();
    let mut ab = std::ptr::null_mut();
    let mut offset = 0usize;
    // SAFETY: `v` is a value of `env`, alive for this call; a typed array's
    // data stays put while it is referenced (it is an argument)
    let status = unsafe {
        napi::sys::napi_get_typedarray_info(
            env.raw(),
            v.raw(),
            &mut kind,
            &mut len,
            &mut data,
            &mut ab,
            &mut offset,
        )
    };
    if status != napi::sys::Status::napi_ok
        || kind != napi::sys::TypedarrayType::int32_array
        || (data.is_null() && len > 0)
    {
        return Err(PersistError::Internal("expected an Int32Array".into()));
    }
    if len == 0 {
        return Ok(&[]);
    }
    // SAFETY: `len` int32s at `data`, per napi_get_typedarray_info
    Ok(unsafe { std::slice::from_raw_parts(data as *const i32, len) })
}

/// The ops of one `exec` call, keys and values as WTF-8 bytes.
pub(crate) fn decode_batch(
    ops: &[u8],
    ttls: &[u32],
    lens: &[u32],
    blob: &[u16],
) -> crate::error::Result<Vec<Op>> {
    let n = ops.len();
    let fail = |m: &str| PersistError::Internal(format!("exec: {m}"));
    if ttls.len() != n {
        return Err(fail("batch arrays differ in length"));
    }
    let mut pieces = split_units(blob, lens)?.into_iter().map(wtf8::encode);
    let mut batch = Vec::with_capacity(n);
    for (&kind, &ttl) in ops.iter().zip(ttls) {
        let key = pieces.next().ok_or_else(|| fail("missing key"))?;
        let op = RedisOp::from_code(i32::from(kind))
            .ok_or_else(|| fail(&format!("unknown op {kind}")))?;
        let ttl = (ttl > 0).then_some(u64::from(ttl));
        batch.push(match op {
            RedisOp::Get => Op::Get(key),
            RedisOp::Set => Op::Set(
                key,
                pieces.next().ok_or_else(|| fail("missing value"))?,
                ttl,
            ),
            RedisOp::SetDurable => Op::SetDurable(
                key,
                pieces.next().ok_or_else(|| fail("missing value"))?,
                ttl,
            ),
            RedisOp::Delete => Op::Delete(key),
            RedisOp::Exists => Op::Exists(key),
            RedisOp::Ping => Op::Ping,
        });
    }
    Ok(batch)
}

/// The marker key (inside `prefix`) that records `prefix` as a `kind`
/// ('cache' | 'state') owner, and the value it holds.
#[napi(catch_unwind)]
pub fn owner_marker_key(kind: String, prefix: Utf16String) -> Utf16String {
    let suffix = if kind == KIND_STATE {
        MARKER_STATE
    } else {
        MARKER_CACHE
    };
    let mut key: Vec<u16> = prefix.to_vec();
    key.extend(suffix.encode_utf16());
    Utf16String::from(key)
}

#[napi(catch_unwind)]
pub fn owner_marker_value() -> String {
    MARKER_VALUE.to_string()
}

/// The suffixes of marker keys: a key ending in one is reserved in a KV
/// cache or state persistence.
#[napi(catch_unwind)]
pub fn owner_marker_suffixes() -> Vec<String> {
    vec![MARKER_CACHE.to_string(), MARKER_STATE.to_string()]
}

/// Of `candidates`, the keys a cache with `prefix` may delete, given the
/// owner keys found in the store: verified markers and legacy registry keys
/// (for stores written in JavaScript, and the file store's owner files).
#[napi(catch_unwind)]
pub fn cache_deletable_keys(
    prefix: Utf16String,
    owner_keys: Vec<Utf16String>,
    candidates: Vec<Utf16String>,
) -> Vec<Utf16String> {
    let owner_keys: Vec<Vec<u8>> = owner_keys.iter().map(|k| wtf8::encode(k)).collect();
    let owners = Owners::from_keys(owner_keys.iter().map(Vec::as_slice));
    let prefix = wtf8::encode(&prefix);
    candidates
        .into_iter()
        .filter(|k| owners.cache_may_delete(&prefix, &wtf8::encode(k)))
        .collect()
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
