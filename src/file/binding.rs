//! Thin napi layer over `file::dir`, `file::kv` and `file::name`. Keys cross as exact
//! UTF-16 (`Utf16String`: lone surrogates survive). Reads run on tokio's
//! blocking pool; writes are queued to the directory's committer thread and
//! resolve when their group commit is durable.
//!
//! No method returns a future that borrows `self`: each clones the shared
//! core into a `'static` future, because Node frees the JS object (and the
//! struct inside it) when a worker thread is torn down, while the call may
//! still be running on another thread.

use std::sync::Arc;

use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::boundary::js_error;
use crate::boundary::lease::{lease_rows, LeaseKind as LeaseCode, LeaseOut};
use crate::error::PersistError;
use crate::file::dir::{Done, DrainHandle, FileDir};
use crate::file::kv::KvFiles;
use crate::file::lease::{FileLeaseOp, FileLeases, HostClock, LeaseKind, Pending};

/// A read: the file read, its text, and an identity for `quarantine`.
#[napi(object)]
pub struct FileRead {
    pub name: String,
    pub text: String,
    pub identity: String,
}

fn channel<T: Send + 'static>() -> (
    Done<T>,
    tokio::sync::oneshot::Receiver<crate::error::Result<T>>,
) {
    let (tx, rx) = tokio::sync::oneshot::channel();
    (
        Box::new(move |r| {
            let _ = tx.send(r);
        }),
        rx,
    )
}

async fn settle<T>(rx: tokio::sync::oneshot::Receiver<crate::error::Result<T>>) -> Result<T> {
    match rx.await {
        Ok(r) => r.map_err(js_error::to_async),
        Err(_) => Err(js_error::to_async(PersistError::Internal(
            "file committer stopped".into(),
        ))),
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> crate::error::Result<T> + Send + 'static,
) -> Result<T> {
    match tokio::task::spawn_blocking(move || js_error::guard(f)).await {
        Ok(r) => r.map_err(js_error::to_async),
        Err(e) => Err(js_error::to_async(PersistError::Internal(e.to_string()))),
    }
}

thread_local! {
    /// The directories opened on this thread's JS environment (main thread
    /// or one worker), drained when it exits: see [`drain_file_dirs`].
    static DIRS: std::cell::RefCell<Option<Vec<DrainHandle>>> = const { std::cell::RefCell::new(None) };
}

/// How long exit waits for the directories' queued operations, in all.
const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Remember `handle` for [`drain_file_dirs`]; the first directory of an
/// environment also hooks its teardown (a terminated worker runs no JS).
fn register_dir(env: &Env, handle: DrainHandle) {
    DIRS.with(|d| {
        let mut d = d.borrow_mut();
        let first = d.is_none();
        let list = d.get_or_insert_with(Vec::new);
        list.retain(|h| !h.is_dead());
        list.push(handle);
        if first {
            let _ = env.add_env_cleanup_hook((), |_| drain_dirs());
        }
    });
}

fn drain_dirs() {
    let handles: Vec<DrainHandle> = DIRS
        .try_with(|d| {
            d.try_borrow()
                .ok()
                .and_then(|d| d.as_ref().map(|v| v.to_vec()))
                .unwrap_or_default()
        })
        .unwrap_or_default();
    // all at once, against one deadline
    for h in &handles {
        h.start();
    }
    let deadline = std::time::Instant::now() + DRAIN_TIMEOUT;
    for h in &handles {
        h.wait(deadline);
    }
}

/// Finish the queued file operations of this environment's directories and
/// unlink the replaced and deleted files they still keep, so that nothing
/// deleted or overwritten stays on disk. Called by the glue on process
/// `exit` (normal end or `process.exit()`), and by the environment's
/// teardown hook (worker termination). Blocks, at most 5 s per directory.
#[napi(catch_unwind)]
pub fn drain_file_dirs() {
    drain_dirs();
}

/// One cache directory: naming, reads, atomic durable writes.
#[napi]
pub struct NativeFileDir {
    inner: Arc<FileDir>,
}

#[napi]
impl NativeFileDir {
    #[napi(constructor, catch_unwind)]
    pub fn new(
        env: Env,
        directory: String,
        extension: String,
        reuse_files: Option<bool>,
    ) -> Result<Self> {
        js_error::guard(|| FileDir::new(&directory, &extension))
            .map(|d| {
                d.set_reuse(reuse_files.unwrap_or(true));
                register_dir(&env, d.drain_handle());
                NativeFileDir { inner: Arc::new(d) }
            })
            .map_err(|e| js_error::throw(&env, e))
    }

    /// `[primary, legacy?]` file names of `key`.
    #[napi(catch_unwind)]
    pub fn names(&self, key: Utf16String) -> Vec<String> {
        let n = self.inner.naming().names(&key);
        std::iter::once(n.primary).chain(n.legacy).collect()
    }

    /// Is `file` a name of this cache's scheme?
    #[napi(catch_unwind)]
    pub fn is_own(&self, file: String) -> bool {
        self.inner.naming().is_own(&file)
    }

    /// Create the directory; remove temporaries of dead processes.
    #[napi(catch_unwind, ts_return_type = "Promise<number>")]
    pub fn init<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, u32>> {
        let d = Arc::clone(&self.inner);
        env.spawn_future(blocking(move || d.init()))
    }

    /// Read `key`'s file: `null` when there is none.
    #[napi(catch_unwind, ts_return_type = "Promise<FileRead | null>")]
    pub fn read<'env>(
        &self,
        env: &'env Env,
        key: Utf16String,
    ) -> Result<PromiseRaw<'env, Option<FileRead>>> {
        let d = Arc::clone(&self.inner);
        env.spawn_future(blocking(move || {
            let names = d.naming().names(&key);
            Ok(d.read(&names)?.map(|f| FileRead {
                name: f.name,
                text: f.text,
                identity: f.identity,
            }))
        }))
    }

    /// Atomically write many files in one group commit (the writes of one
    /// JavaScript tick). Per write: `null`, or the error as `[CODE] message`.
    #[napi(catch_unwind, ts_return_type = "Promise<Array<string | null>>")]
    pub fn write_many<'env>(
        &self,
        env: &'env Env,
        keys: Vec<Utf16String>,
        data: Vec<String>,
        durable: bool,
    ) -> Result<PromiseRaw<'env, Vec<Option<String>>>> {
        if keys.len() != data.len() {
            return Err(js_error::throw(
                env,
                PersistError::InvalidArgument("writeMany: keys and data differ in length".into()),
            ));
        }
        let mut receivers = Vec::with_capacity(keys.len());
        let mut writes = Vec::with_capacity(keys.len());
        for (key, text) in keys.into_iter().zip(data) {
            let (done, rx) = channel::<()>();
            receivers.push(rx);
            let name = self.inner.naming().names(&key).primary;
            writes.push((name, text.into_bytes(), durable, done));
        }
        self.inner.write_many(writes);
        env.spawn_future(async move {
            let mut out = Vec::with_capacity(receivers.len());
            for rx in receivers {
                out.push(match rx.await {
                    Ok(Ok(())) => None,
                    Ok(Err(e)) => Some(format!("[{}] {}", e.code(), e)),
                    Err(_) => Some("[ERR_INTERNAL] file committer stopped".into()),
                });
            }
            Ok(out)
        })
    }

    /// Remove `key`'s file (and its proven old name): whether one existed.
    #[napi(catch_unwind, ts_return_type = "Promise<boolean>")]
    pub fn remove<'env>(&self, env: &'env Env, key: Utf16String) -> Result<PromiseRaw<'env, bool>> {
        let (done, rx) = channel();
        let n = self.inner.naming().names(&key);
        self.inner
            .delete(std::iter::once(n.primary).chain(n.legacy).collect(), done);
        env.spawn_future(settle(rx))
    }

    /// Remove every file of this cache's naming scheme: how many.
    #[napi(catch_unwind, ts_return_type = "Promise<number>")]
    pub fn clear<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, u32>> {
        let (done, rx) = channel();
        self.inner.clear(done);
        env.spawn_future(settle(rx))
    }

    /// Move `name` aside to `<name>.corrupt` if it is still the file read.
    #[napi(catch_unwind, ts_return_type = "Promise<string | null>")]
    pub fn quarantine<'env>(
        &self,
        env: &'env Env,
        name: String,
        identity: String,
    ) -> Result<PromiseRaw<'env, Option<String>>> {
        let (done, rx) = channel();
        self.inner.quarantine(name, identity, done);
        env.spawn_future(settle(rx))
    }
}

/// A file-backed KeyValueStore.
#[napi]
pub struct NativeFileStore {
    inner: Arc<KvFiles>,
    leases: Arc<FileLeases>,
}

#[napi]
impl NativeFileStore {
    #[napi(constructor, catch_unwind)]
    pub fn new(
        env: Env,
        directory: String,
        extension: String,
        durable: bool,
        reuse_files: Option<bool>,
    ) -> Result<Self> {
        js_error::guard(|| {
            let kv = KvFiles::new(&directory, &extension, durable)?;
            let leases = FileLeases::new(&directory, Box::new(HostClock::new()))?;
            Ok((kv, leases))
        })
        .map(|(d, leases)| {
            d.set_reuse(reuse_files.unwrap_or(true));
            register_dir(&env, d.drain_handle());
            NativeFileStore {
                inner: Arc::new(d),
                leases: Arc::new(leases),
            }
        })
        .map_err(|e| js_error::throw(&env, e))
    }

    #[napi(catch_unwind, ts_return_type = "Promise<string | null>")]
    pub fn get<'env>(
        &self,
        env: &'env Env,
        key: Utf16String,
        now_ms: f64,
    ) -> Result<PromiseRaw<'env, Option<Utf16String>>> {
        let s = Arc::clone(&self.inner);
        env.spawn_future(blocking(move || {
            Ok(s.get(&key, now_ms)?.map(Utf16String::from))
        }))
    }

    /// `expires_at`: ms since the epoch, or null. Queued before this
    /// returns, so calls apply in call order.
    #[napi(catch_unwind, ts_return_type = "Promise<void>")]
    pub fn set<'env>(
        &self,
        env: &'env Env,
        key: Utf16String,
        value: Utf16String,
        expires_at: Option<f64>,
    ) -> Result<PromiseRaw<'env, ()>> {
        let (done, rx) = channel();
        self.inner.set(&key, &value, expires_at, done);
        env.spawn_future(settle(rx))
    }

    /// Whether a live entry was removed. Queued before this returns.
    #[napi(catch_unwind, ts_return_type = "Promise<boolean>")]
    pub fn delete<'env>(
        &self,
        env: &'env Env,
        key: Utf16String,
        now_ms: f64,
    ) -> Result<PromiseRaw<'env, bool>> {
        let (done, rx) = channel();
        self.inner.delete(&key, now_ms, done);
        env.spawn_future(settle(rx))
    }

    #[napi(catch_unwind, ts_return_type = "Promise<boolean>")]
    pub fn exists<'env>(
        &self,
        env: &'env Env,
        key: Utf16String,
        now_ms: f64,
    ) -> Result<PromiseRaw<'env, bool>> {
        let s = Arc::clone(&self.inner);
        env.spawn_future(blocking(move || s.exists(&key, now_ms)))
    }

    /// Record an owner marker key in a hidden file (see `KvFiles::register_owner`).
    #[napi(catch_unwind, ts_return_type = "Promise<void>")]
    pub fn register_owner<'env>(
        &self,
        env: &'env Env,
        marker: Utf16String,
    ) -> Result<PromiseRaw<'env, ()>> {
        let (done, rx) = channel();
        self.inner.register_owner(&marker, done);
        env.spawn_future(settle(rx))
    }

    /// The owner marker keys recorded in this directory.
    #[napi(catch_unwind, ts_return_type = "Promise<Array<string>>")]
    pub fn owner_keys<'env>(&self, env: &'env Env) -> Result<PromiseRaw<'env, Vec<Utf16String>>> {
        let s = Arc::clone(&self.inner);
        env.spawn_future(blocking(move || {
            Ok(s.owner_keys()?.into_iter().map(Utf16String::from).collect())
        }))
    }

    #[napi(catch_unwind, ts_return_type = "Promise<Array<string>>")]
    pub fn keys<'env>(
        &self,
        env: &'env Env,
        pattern: Utf16String,
        now_ms: f64,
    ) -> Result<PromiseRaw<'env, Vec<Utf16String>>> {
        let s = Arc::clone(&self.inner);
        env.spawn_future(blocking(move || {
            Ok(s.keys(&pattern, now_ms)?
                .into_iter()
                .map(Utf16String::from)
                .collect())
        }))
    }

    /// A batch of run-lease ops, decided in order under one hold of the
    /// directory's lease lock (see `file::lease`): `kinds[i]` a `LeaseKind`
    /// (acquire: a new token is made here; release; renew; fenced set of the
    /// snapshot `prefixes[i] + ids[i]` to `values[i]`; fenced delete of
    /// it), on the lease of `ids[i]` under `prefixes[i]`, by `tokens[i]` (""
    /// for acquire). A fenced write goes through this store's own write path
    /// and is committed before the lock is released. Same answer as the
    /// Redis store's `lease_exec`.
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
        let l = Arc::clone(&self.leases);
        let kv = Arc::clone(&self.inner);
        let (kinds, ttls) = (kinds.to_vec(), ttls.to_vec());
        env.spawn_future(blocking(move || {
            let ops = lease_rows(&kinds, &ttls, prefixes, ids, tokens, values)?
                .into_iter()
                .map(|r| FileLeaseOp {
                    kind: match r.kind {
                        LeaseCode::Acquire => LeaseKind::Acquire { ttl_ms: r.ttl_ms },
                        LeaseCode::Release => LeaseKind::Release,
                        LeaseCode::Renew => LeaseKind::Renew { ttl_ms: r.ttl_ms },
                        LeaseCode::FencedSet => LeaseKind::FencedSet,
                        LeaseCode::FencedDelete => LeaseKind::FencedDelete,
                    },
                    prefix: r.prefix,
                    id: r.id,
                    token: r.token,
                    value: r.value,
                })
                .collect::<Vec<_>>();
            let write = |op: &FileLeaseOp| -> Pending {
                let mut key = op.prefix.clone();
                key.extend_from_slice(&op.id);
                if op.kind == LeaseKind::FencedSet {
                    let (done, rx) = channel::<()>();
                    kv.set(&key, &op.value, None, done);
                    Box::new(move || committed(rx))
                } else {
                    let (done, rx) = channel::<bool>();
                    kv.delete(&key, epoch_ms(), done);
                    Box::new(move || committed(rx).map(|_| ()))
                }
            };
            let results = l.exec(&ops, &write)?;
            Ok(lease_out(&ops, results))
        }))
    }

    /// Every lease record of the directory (see `FileLeases::list`): `prefix`
    /// and `id` as JSON strings (null in a record without them), `remainingMs`
    /// null once expired, `corrupt` the reason a record cannot be read.
    #[napi(catch_unwind, ts_return_type = "Promise<Array<FileLeaseEntry>>")]
    pub fn lease_list<'env>(
        &self,
        env: &'env Env,
    ) -> Result<PromiseRaw<'env, Vec<FileLeaseEntry>>> {
        let l = Arc::clone(&self.leases);
        env.spawn_future(blocking(move || {
            Ok(l.list()?
                .into_iter()
                .map(|e| FileLeaseEntry {
                    file: e.file,
                    prefix: e.prefix,
                    id: e.id,
                    remaining_ms: e.remaining_ms.map(|m| m as f64),
                    corrupt: e.corrupt,
                })
                .collect())
        }))
    }

    /// Remove the lease of `id` under `prefix` whoever holds it; resolves
    /// whether a live lease was removed.
    #[napi(catch_unwind, ts_return_type = "Promise<boolean>")]
    pub fn lease_evict<'env>(
        &self,
        env: &'env Env,
        prefix: Utf16String,
        id: Utf16String,
    ) -> Result<PromiseRaw<'env, bool>> {
        let l = Arc::clone(&self.leases);
        let (prefix, id) = (prefix.to_vec(), id.to_vec());
        env.spawn_future(blocking(move || l.evict(&prefix, &id)))
    }
}

/// One lease record of a store directory (`NativeFileStore.leaseList`).
#[napi(object)]
pub struct FileLeaseEntry {
    pub file: String,
    pub prefix: Option<String>,
    pub id: Option<String>,
    pub remaining_ms: Option<f64>,
    pub corrupt: Option<String>,
}

/// Wait (on a blocking thread) for the committer's answer to a queued write.
fn committed<T>(
    rx: tokio::sync::oneshot::Receiver<crate::error::Result<T>>,
) -> crate::error::Result<T> {
    rx.blocking_recv()
        .unwrap_or_else(|_| Err(PersistError::Internal("file committer stopped".into())))
}

/// Now, in ms since the epoch (the KV layer's expiry clock).
fn epoch_ms() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}

fn lease_out(ops: &[FileLeaseOp], results: Vec<crate::error::Result<bool>>) -> LeaseOut {
    LeaseOut::encode(ops.iter().zip(results).map(|(op, r)| {
        let acquired = matches!(op.kind, LeaseKind::Acquire { .. }).then_some(op.token.as_str());
        (acquired, r)
    }))
}
