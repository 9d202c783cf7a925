//! Thin napi layer over [`crate::postgres::store`]. The JS glue
//! (`lib/stores/postgres.js`) gathers the calls of one tick, data calls
//! and run-lease ops alike, into ONE `batchSend` (JS thread) or `exec`
//! (tokio) call, encoded as every server store's batches are
//! (`boundary::batch`), and settles them from the results, encoded the
//! same way.

// napi registers these at load time; `cargo test` builds never call them.
#![cfg_attr(test, allow(dead_code))]

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::boundary::answer::BatchAnswers;
use crate::boundary::batch::{blob_text, decode_io, ExecOut, KeysOut};
use crate::boundary::js_error::{self, caught};
use crate::boundary::text::js_text;
use crate::boundary::typed::Copied;
use crate::error::PersistError;
use crate::js_loop::executor::Executor;
use crate::postgres::config::PgConfig;
use crate::postgres::connect::Runner;
use crate::postgres::js_thread::JsThread;
use crate::postgres::sql::lease_key;
use crate::postgres::store::{lease_op, PgStore};
use crate::redis::results::{encode_results, Encoded};
use crate::tls::TlsOptions;
use crate::wtf8;

/// The options of createPostgresStore, checked in JS for type and range.
#[napi(object)]
pub struct PostgresOptions {
    pub connection_string: Option<String>,
    pub host: Option<String>,
    pub port: Option<u32>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub database: Option<String>,
    pub schema: Option<String>,
    pub table: String,
    pub pool_size: u32,
    pub connect_timeout: u32,
    pub command_timeout: u32,
    pub sweep_interval: u32,
    /// TLS required (with the settings below, each optional).
    pub tls: bool,
    pub tls_ca: Option<String>,
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
    pub tls_servername: Option<String>,
    pub tls_reject_unauthorized: Option<bool>,
    /// 'auto' (the JS thread where the runtime allows) or 'tokio'.
    pub transport: String,
}

/// Every async method clones the core into a `'static` future: a call never
/// borrows the JS object, which Node frees at worker teardown.
#[napi]
pub struct NativePostgresStore {
    core: PgStore,
    /// The JS thread's executor, when the calls run there.
    executor: Option<Rc<Executor>>,
    /// How `batchSend`'s batches are answered (JS-thread calls only).
    answers: Rc<RefCell<BatchAnswers>>,
}

impl Drop for NativePostgresStore {
    /// Collected: let go of `onBatch`. After the env's teardown began (the
    /// executor closed first) the env frees it itself.
    fn drop(&mut self) {
        if let Ok(mut a) = self.answers.try_borrow_mut() {
            match &self.executor {
                // SAFETY: a finalizer of the live env, on its thread
                Some(e) if !e.is_closed() => unsafe { a.release() },
                _ => a.forget(),
            }
        }
    }
}

#[napi]
impl NativePostgresStore {
    #[napi(constructor, catch_unwind)]
    pub fn new(env: Env, o: PostgresOptions) -> Result<Self> {
        let port = match o.port {
            None => Ok(None),
            Some(p) => u16::try_from(p).map(Some).map_err(|_| {
                PersistError::InvalidArgument(format!(
                    "createPostgresStore: port {p} is out of range"
                ))
            }),
        };
        // SAFETY: in a JS call, on the env's thread
        let executor = match o.transport.as_str() {
            "auto" if crate::js_loop::uv::available() => Some(unsafe { Executor::of(env.raw()) }),
            "auto" | "tokio" => None,
            other => Some(Err(PersistError::InvalidArgument(format!(
                "createPostgresStore: transport must be 'auto' or 'tokio', got {other:?}"
            )))),
        }
        .transpose()
        .map_err(|e| js_error::throw(&env, e))?;
        let runner = match &executor {
            Some(e) => Runner::Driven(Arc::new(JsThread::here(e.shared().clone()))),
            None => Runner::Tokio,
        };
        js_error::guard(|| {
            PgStore::new(
                PgConfig {
                    connection_string: o.connection_string,
                    host: o.host,
                    port: port?,
                    user: o.user,
                    password: o.password,
                    database: o.database,
                    schema: o.schema,
                    table: o.table,
                    pool_size: o.pool_size as usize,
                    connect_timeout_ms: u64::from(o.connect_timeout),
                    command_timeout_ms: u64::from(o.command_timeout),
                    sweep_interval_ms: u64::from(o.sweep_interval),
                    tls: o.tls.then_some(TlsOptions {
                        ca: o.tls_ca,
                        cert: o.tls_cert,
                        key: o.tls_key,
                        servername: o.tls_servername,
                        reject_unauthorized: o.tls_reject_unauthorized.unwrap_or(true),
                    }),
                },
                runner,
            )
        })
        .map(|core| NativePostgresStore {
            core,
            executor,
            answers: Rc::default(),
        })
        .map_err(|e| js_error::throw(&env, e))
    }

    /// A batch (the calls of one tick, run-lease ops included), run as
    /// [`PgStore::exec_batch`] runs it.
    #[napi(catch_unwind, ts_return_type = "Promise<ExecOut>")]
    pub fn exec<'env>(
        &self,
        env: &'env Env,
        #[napi(ts_arg_type = "Int32Array")] io: Unknown,
        n_ops: u32,
        n_lens: u32,
        blob: Utf16String,
    ) -> Result<PromiseRaw<'env, ExecOut>> {
        let batch = decode_io(env, &io, n_ops, n_lens, &blob, &lease_op);
        let core = self.core.clone();
        self.start(env, async move {
            let results = core.exec_batch(batch?).await?;
            let Encoded { meta, blob, errors } = encode_results(results);
            Ok(ExecOut {
                meta: Copied(meta),
                blob: blob_text(blob),
                errors,
            })
        })
    }

    /// On the JS thread: take `onBatch(token, count, meta, blob, errors,
    /// failure)` as the function `batchSend`'s batches answer
    /// (`boundary::answer`).
    #[napi(catch_unwind)]
    pub fn batch_attach(&self, env: Env, on_batch: Function<'_, (), ()>) -> Result<()> {
        if self.executor.is_none() {
            return Err(js_error::throw(
                &env,
                PersistError::Internal("batchAttach: the store runs on tokio".into()),
            ));
        }
        let attached = match self.answers.try_borrow_mut() {
            // SAFETY: called by JS on this env's thread, `on_batch` a function of it
            Ok(mut a) => unsafe { a.attach(env.raw(), on_batch.raw()) },
            Err(_) => Err(PersistError::Internal("batchAttach: re-entered".into())),
        };
        attached.map_err(|e| js_error::throw(&env, e))
    }

    /// On the JS thread: a batch (as `exec` takes it),
    /// pipelined; its results to `onBatch` with `token`.
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
        let batch = decode_io(&env, &io, n_ops, n_lens, &blob, &lease_op)
            .map_err(|e| js_error::throw(&env, e))?;
        let Some(executor) = &self.executor else {
            return Err(js_error::throw(
                &env,
                PersistError::Internal("batchSend: the store runs on tokio".into()),
            ));
        };
        if !self.answers.try_borrow().is_ok_and(|a| a.attached()) {
            return Err(js_error::throw(
                &env,
                PersistError::Internal("batchSend before batchAttach".into()),
            ));
        }
        let core = self.core.clone();
        let call = caught("PostgreSQL", async move { core.exec_batch(batch).await });
        // SAFETY: in a JS call of the executor's env, on its thread
        unsafe { executor.spawn_answered(self.answers.clone(), token, call) }
            .map_err(|e| js_error::throw(&env, e))
    }

    /// Keys matching a Redis glob, concatenated, with their UTF-16 lengths.
    #[napi(catch_unwind, ts_return_type = "Promise<KeysOut>")]
    pub fn keys<'env>(
        &self,
        env: &'env Env,
        pattern: Utf16String,
    ) -> Result<PromiseRaw<'env, KeysOut>> {
        let core = self.core.clone();
        let pattern: Vec<u16> = pattern.to_vec();
        self.start(env, async move {
            let keys = core.keys(&pattern).await?;
            let lens: Vec<u32> = keys.iter().map(|k| k.len() as u32).collect();
            let blob: Vec<u16> = keys.concat();
            Ok(KeysOut {
                lens: Copied(lens),
                blob: js_text(blob),
            })
        })
    }

    /// `clearAsync` of the KV cache with `prefix`; resolves to rows deleted.
    #[napi(catch_unwind, ts_return_type = "Promise<number>")]
    pub fn clear_cache_prefix<'env>(
        &self,
        env: &'env Env,
        prefix: Utf16String,
    ) -> Result<PromiseRaw<'env, f64>> {
        let core = self.core.clone();
        let prefix: Vec<u16> = prefix.to_vec();
        self.start(env, async move {
            core.clear_cache_prefix(&prefix).await.map(|n| n as f64)
        })
    }

    /// Delete expired rows now (what the background sweep does); resolves
    /// to the number deleted.
    #[napi(catch_unwind, ts_return_type = "Promise<number>")]
    pub fn sweep<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, f64>> {
        let core = self.core.clone();
        self.start(env, async move { core.sweep().await.map(|n| n as f64) })
    }

    #[napi(catch_unwind, ts_return_type = "Promise<void>")]
    pub fn ping<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, ()>> {
        let core = self.core.clone();
        self.start(env, async move { core.ping().await })
    }

    #[napi(catch_unwind, ts_return_type = "Promise<void>")]
    pub fn close<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, ()>> {
        let core = self.core.clone();
        self.start(env, async move {
            core.close().await;
            Ok(())
        })
    }

    /// Where the calls run: 'direct' (the JS thread's own sockets and
    /// executor, what `transport: 'auto'` takes in Node) or 'tokio'.
    #[napi(getter, ts_return_type = "'direct' | 'tokio'")]
    pub fn transport(&self) -> &'static str {
        if self.executor.is_some() {
            "direct"
        } else {
            "tokio"
        }
    }

    /// Connections opened so far (reconnects add one each).
    #[napi(getter)]
    pub fn connections_opened(&self) -> f64 {
        self.core.connections_opened() as f64
    }
}

/// The row key of the lease that guards snapshot `prefix` + `id` on a
/// PostgreSQL store (`sql::lease_key`): the inspector lists and evicts
/// leases through it.
#[napi(catch_unwind)]
pub fn postgres_lease_key(prefix: Utf16String, id: Utf16String) -> napi::Result<Utf16String> {
    let key = lease_key(&wtf8::encode(&prefix), &wtf8::encode(&id));
    wtf8::decode(&key)
        .map(Utf16String::from)
        .ok_or_else(|| js_error::to_async(PersistError::Internal("lease key: not WTF-8".into())))
}

impl NativePostgresStore {
    /// Run a call where the store's calls run (the JS thread's executor,
    /// or tokio): its promise. A panic in it rejects with `ERR_INTERNAL`.
    fn start<'env, T, F>(&self, env: &'env Env, call: F) -> Result<PromiseRaw<'env, T>>
    where
        T: ToNapiValue + Send + 'static,
        F: std::future::Future<Output = crate::error::Result<T>> + Send + 'static,
    {
        let call = caught("PostgreSQL", call);
        match &self.executor {
            // SAFETY: in a JS call of the executor's env, on its thread
            Some(e) => unsafe { e.spawn_promise(call) }
                .map(|p| PromiseRaw::new(env.raw(), p))
                .map_err(|e| js_error::throw(env, e)),
            None => env.spawn_future(async move { call.await.map_err(js_error::to_async) }),
        }
    }
}
