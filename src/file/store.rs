//! Atomic, durable file I/O for the file cache and the file store. Pure Rust:
//! no napi types; completions are plain callbacks, time is an argument.
//!
//! Writes go through one committer thread per directory handle, which works
//! in batches (group commit): everything queued while the previous batch was
//! syncing is taken at once, then
//! 1. each write goes to its own temporary file `.awaitly-tmp.<pid>.<n>` in
//!    the same directory (created exclusively, written in full);
//! 2. one data sync covers all of them (`syncfs(2)` on Linux, one
//!    `fdatasync` per file elsewhere);
//! 3. in call order, each temporary is renamed over its target, deletes
//!    unlink, clears remove the cache's own files;
//! 4. one `fsync` of the directory makes the renames and unlinks durable;
//! 5. only then is each caller told it is done.
//!
//! A crash at any instant leaves each target with its old or its new
//! content, never a torn or empty file (rename is atomic; the new content was
//! on disk before the rename). Calls of one handle are applied in call order,
//! so the last `write` of a key wins. With `durable = false`, steps 2 and 4
//! are skipped: still atomic against a process crash, not against power loss.
//! Leftover temporaries of dead processes are removed by [`FileDir::init`].
//!
//! Speed on ext4 (measured, see benchmark/file.mjs): creating files after a
//! sync and freeing the blocks of replaced files both wait on the journal
//! (~1 ms each). So on Linux the temporary is *exchanged* with the target
//! (`renameat2(RENAME_EXCHANGE)`, atomic like a rename): the target then
//! holds the new content and the temporary's name holds the replaced file,
//! which no other name and no other process refers to. That file is later
//! reused as the temporary of a write: overwritten in place, synced,
//! exchanged. Exclusive ownership is what makes reuse safe with several
//! writer processes on one directory (an earlier scheme hard-linked the old
//! target, and two processes could link, then both reuse, the same file:
//! two keys on one inode). A replaced file is reused only after every read
//! of this handle that might have opened it has finished (read epochs) and
//! at least 50 ms after it was replaced (readers in other processes, whose
//! reads re-check the file's identity and read again); at most 4,096 files /
//! 32 MiB are kept, the rest and deleted keys are unlinked by a reaper
//! thread, and the pool is unlinked when the handle has been idle for 100 ms,
//! is dropped, or [`DrainHandle::drain`] is called (at process exit and
//! worker teardown). A reused file's data is always synced before its
//! exchange, even for a non-durable write, so its old blocks (another key's
//! old value) can never surface after a power loss. Where the exchange is
//! not available (other systems, file systems without it) nothing is reused:
//! the replaced file is hard-linked aside and unlinked by the reaper.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, SystemTime};

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::{PersistError, Result};
use crate::file::name::{
    is_temp, json_quote_utf16, json_unquote_utf16, key_hash, temp_pid, FileNames, Naming,
    CORRUPT_SUFFIX, TEMP_PREFIX,
};
use crate::glob;

/// A completion callback, called once from the committer thread.
pub type Done<T> = Box<dyn FnOnce(Result<T>) + Send>;

/// Temporaries of live processes younger than this are left alone by `init`.
const STALE_TEMP: Duration = Duration::from_secs(3600);
/// Most operations one group commit takes from the queue: each write of a
/// batch holds its temporary open until the commit, so an unbounded batch (a
/// hundred thousand writes queued in one tick) ran out of file descriptors.
/// The rest stay queued, in order, for the next batch.
const MAX_BATCH: usize = 512;

static TEMP_SEQ: AtomicU64 = AtomicU64::new(0);

enum Op {
    Write {
        name: String,
        data: Vec<u8>,
        durable: bool,
        done: Done<()>,
    },
    Delete {
        names: Vec<String>,
        /// Run by the committer just before unlinking; ANDed into the result.
        check: Option<Box<dyn FnOnce() -> bool + Send>>,
        done: Done<bool>,
    },
    Clear {
        done: Done<u32>,
    },
    Quarantine {
        name: String,
        identity: String,
        done: Done<Option<String>>,
    },
}

#[derive(Default)]
struct Queue {
    ops: VecDeque<Op>,
    closed: bool,
    running: bool,
    /// Asked by [`DrainHandle::drain`]: once the queue is empty, unlink the
    /// pool, finish the reaper and let the committer go.
    drain: bool,
}

struct Shared {
    dir: PathBuf,
    naming: Naming,
    /// Create the directory before the first write (stores have no `init`).
    auto_init: bool,
    ready: std::sync::atomic::AtomicBool,
    /// Batch counter: bumped by the committer before each batch's renames.
    epoch: AtomicU64,
    /// Reads in flight, by the epoch they started in (count per epoch).
    readers: Mutex<std::collections::BTreeMap<u64, usize>>,
    /// Reuse replaced files as later temporaries (see `Reaper`); when off,
    /// replaced files are unlinked on the reaper thread.
    reuse: std::sync::atomic::AtomicBool,
    /// `renameat2(RENAME_EXCHANGE)` works here (cleared on the first
    /// EINVAL/ENOSYS); reuse needs it.
    exchange: std::sync::atomic::AtomicBool,
    queue: Mutex<Queue>,
    wake: Condvar,
    /// Signalled when the committer stops (`running` turns false).
    stopped: Condvar,
}

/// One directory of cache files: reads, and queued atomic writes.
pub struct FileDir {
    shared: Arc<Shared>,
}

/// What a read found: the file it read, its text and an identity token (for
/// [`FileDir::quarantine`], which moves it only if it is still that file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub name: String,
    pub text: String,
    pub identity: String,
}

fn lock(m: &Mutex<Queue>) -> std::sync::MutexGuard<'_, Queue> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

type ReaderMap = std::collections::BTreeMap<u64, usize>;

fn lock_map(m: &Mutex<ReaderMap>) -> std::sync::MutexGuard<'_, ReaderMap> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl FileDir {
    pub fn new(directory: &str, extension: &str) -> Result<FileDir> {
        Self::with_auto_init(directory, extension, false)
    }

    /// A handle that creates its directory on first use.
    pub fn with_auto_init(directory: &str, extension: &str, auto_init: bool) -> Result<FileDir> {
        if directory.is_empty() || directory.contains('\0') {
            return Err(PersistError::InvalidArgument(
                "directory must be a non-empty path without NUL".into(),
            ));
        }
        Ok(FileDir {
            shared: Arc::new(Shared {
                dir: PathBuf::from(directory),
                naming: Naming::new(extension)?,
                auto_init,
                ready: std::sync::atomic::AtomicBool::new(false),
                epoch: AtomicU64::new(0),
                readers: Mutex::new(Default::default()),
                reuse: std::sync::atomic::AtomicBool::new(true),
                exchange: std::sync::atomic::AtomicBool::new(cfg!(target_os = "linux")),
                queue: Mutex::new(Queue::default()),
                wake: Condvar::new(),
                stopped: Condvar::new(),
            }),
        })
    }

    pub fn naming(&self) -> &Naming {
        &self.shared.naming
    }

    /// Turn the reuse of replaced files off (or on again). Off: no file is
    /// ever overwritten in place, so readers in other processes (the JS
    /// module, say) can never see a replaced file change under them; durable
    /// writes then pay for block allocation and freeing (much slower).
    pub fn set_reuse(&self, on: bool) {
        self.shared.reuse.store(on, Ordering::SeqCst);
    }

    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// A handle that can drain this directory's pool without keeping it alive.
    pub fn drain_handle(&self) -> DrainHandle {
        DrainHandle(Arc::downgrade(&self.shared))
    }
}

/// Drains a [`FileDir`]'s replaced files at exit (see [`DrainHandle::drain`]).
#[derive(Clone)]
pub struct DrainHandle(std::sync::Weak<Shared>);

impl DrainHandle {
    /// Wait (at most `timeout`) for the queued operations to finish, then
    /// unlink every replaced and deleted file still kept: after it, no file
    /// of ours in the directory holds a deleted or replaced value. Later
    /// calls of the handle work as before. False if it timed out.
    pub fn drain(&self, timeout: Duration) -> bool {
        self.start();
        self.wait(std::time::Instant::now() + timeout)
    }

    /// Ask for a drain without waiting (see [`DrainHandle::wait`]), so that
    /// several directories drain at once.
    pub fn start(&self) {
        if let Some(shared) = self.0.upgrade() {
            let mut q = lock(&shared.queue);
            if q.running {
                q.drain = true;
                shared.wake.notify_all();
            }
        }
    }

    /// Wait until the committer has stopped (drained), or `deadline`.
    pub fn wait(&self, deadline: std::time::Instant) -> bool {
        let Some(shared) = self.0.upgrade() else {
            return true;
        };
        let mut q = lock(&shared.queue);
        while q.running {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            q = shared
                .stopped
                .wait_timeout(q, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        true
    }

    /// Whether the directory handle is gone.
    pub fn is_dead(&self) -> bool {
        self.0.strong_count() == 0
    }
}

impl FileDir {
    /// Create the directory (and parents) and remove temporaries left by
    /// processes that are gone (or older than an hour).
    pub fn init(&self) -> Result<u32> {
        let n = init_dir(&self.shared.dir)?;
        self.shared.ready.store(true, Ordering::Release);
        Ok(n)
    }
}

fn ensure_ready(shared: &Shared) -> Result<()> {
    if shared.ready.load(Ordering::Acquire) {
        return Ok(());
    }
    init_dir(&shared.dir)?;
    shared.ready.store(true, Ordering::Release);
    Ok(())
}

fn init_dir(dir: &Path) -> Result<u32> {
    {
        fs::create_dir_all(dir).map_err(|e| io_err("mkdir", dir, e))?;
        let mut removed = 0;
        let me = std::process::id();
        for entry in fs::read_dir(dir).map_err(|e| io_err("readdir", dir, e))? {
            let Ok(entry) = entry else { continue };
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if !is_temp(name) {
                continue;
            }
            let pid = temp_pid(name);
            if pid == Some(me) {
                continue;
            }
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| SystemTime::now().duration_since(t).ok())
                .is_some_and(|age| age > STALE_TEMP);
            let dead = pid.is_none_or(|p| !process_alive(p));
            if (dead || old) && fs::remove_file(entry.path()).is_ok() {
                removed += 1;
            }
        }
        Ok(removed)
    }
}

impl FileDir {
    /// `init` once (for auto-init handles; a no-op after the first success).
    pub fn ensure_ready(&self) -> Result<()> {
        ensure_ready(&self.shared)
    }

    /// Read a key's file (its legacy name if the primary is missing).
    /// `Ok(None)`: no file. Text that is not UTF-8 is [`PersistError::Corrupt`].
    pub fn read(&self, names: &FileNames) -> Result<Option<Found>> {
        if let Some(found) = self.read_name(&names.primary)? {
            return Ok(Some(found));
        }
        match &names.legacy {
            Some(legacy) => self.read_name(legacy),
            None => Ok(None),
        }
    }

    fn read_name(&self, name: &str) -> Result<Option<Found>> {
        // A read that took less than REUSE_GRACE cannot have overlapped the
        // reuse of its file (see `Reaper`); a slower one is done again.
        let mut tries = 0;
        loop {
            let started = std::time::Instant::now();
            let epoch = self.shared.epoch.load(Ordering::SeqCst);
            *lock_map(&self.shared.readers).entry(epoch).or_insert(0) += 1;
            let found = self.read_once(name);
            {
                let mut readers = lock_map(&self.shared.readers);
                if let Some(n) = readers.get_mut(&epoch) {
                    *n -= 1;
                    if *n == 0 {
                        readers.remove(&epoch);
                    }
                }
            }
            let (found, stable) = found?;
            tries += 1;
            if stable && (started.elapsed() < REUSE_GRACE / 2 || tries >= 5) {
                return Ok(found);
            }
            if !stable && tries >= 20 {
                return Err(PersistError::corrupt(
                    self.shared.dir.join(name).display().to_string(),
                    "the file kept changing while it was read",
                ));
            }
        }
    }

    /// One read. The flag says whether the file was stable: still the one at
    /// `name`, unchanged, from open to the end of the read. A writer in
    /// another process may reuse a replaced file in place (see `Reaper`), so
    /// a file that moved or changed under the read is read again.
    fn read_once(&self, name: &str) -> Result<(Option<Found>, bool)> {
        let path = self.shared.dir.join(name);
        let mut file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok((None, true)),
            Err(e) => return Err(io_err("open", &path, e)),
        };
        let meta = file.metadata().map_err(|e| io_err("stat", &path, e))?;
        if meta.is_dir() {
            return Err(PersistError::corrupt(
                path.display().to_string(),
                "is a directory",
            ));
        }
        let mut bytes = Vec::with_capacity(meta.len() as usize);
        file.read_to_end(&mut bytes)
            .map_err(|e| io_err("read", &path, e))?;
        let id = identity(&meta);
        let after = file.metadata().map(|m| identity(&m)).ok();
        let at_path = fs::metadata(&path).map(|m| identity(&m)).ok();
        if after.as_ref() != Some(&id) || at_path.as_ref() != Some(&id) {
            return Ok((None, false));
        }
        let text = String::from_utf8(bytes).map_err(|_| {
            PersistError::corrupt(path.display().to_string(), "not valid UTF-8 text")
        })?;
        Ok((
            Some(Found {
                name: name.to_string(),
                text,
                identity: id,
            }),
            true,
        ))
    }

    /// Queue an atomic write of `data` to `name`.
    pub fn write(&self, name: String, data: Vec<u8>, durable: bool, done: Done<()>) {
        self.push(Op::Write {
            name,
            data,
            durable,
            done,
        });
    }

    /// Queue several writes at once (one group commit when the committer is idle).
    pub fn write_many(&self, writes: Vec<(String, Vec<u8>, bool, Done<()>)>) {
        self.push_all(
            writes
                .into_iter()
                .map(|(name, data, durable, done)| Op::Write {
                    name,
                    data,
                    durable,
                    done,
                })
                .collect(),
        );
    }

    /// Queue removal of `names`; done with whether any existed.
    pub fn delete(&self, names: Vec<String>, done: Done<bool>) {
        self.push(Op::Delete {
            names,
            check: None,
            done,
        });
    }

    /// Queue removal of every file of this naming scheme; done with the count.
    pub fn clear(&self, done: Done<u32>) {
        self.push(Op::Clear { done });
    }

    /// Queue moving `name` aside to `<name>.corrupt` (or `<name>.<n>.corrupt`
    /// if taken; never replacing a file), only if it is still the file read
    /// with `identity`. Done with the new name, or None if it had changed.
    pub fn quarantine(&self, name: String, identity: String, done: Done<Option<String>>) {
        self.push(Op::Quarantine {
            name,
            identity,
            done,
        });
    }

    fn push(&self, op: Op) {
        self.push_all(vec![op]);
    }

    fn push_all(&self, ops: Vec<Op>) {
        let mut q = lock(&self.shared.queue);
        q.ops.extend(ops);
        if !q.running {
            q.running = true;
            let shared = Arc::clone(&self.shared);
            let spawned = std::thread::Builder::new()
                .name("awaitly-file-commit".into())
                .spawn(move || committer(shared));
            if let Err(e) = spawned {
                q.running = false;
                let ops: Vec<Op> = q.ops.drain(..).collect();
                drop(q);
                for op in ops {
                    fail(op, PersistError::Internal(format!("spawn committer: {e}")));
                }
                return;
            }
        }
        drop(q);
        self.shared.wake.notify_one();
    }
}

impl Drop for FileDir {
    fn drop(&mut self) {
        lock(&self.shared.queue).closed = true;
        self.shared.wake.notify_all();
    }
}

fn fail(op: Op, e: PersistError) {
    match op {
        Op::Write { done, .. } => done(Err(e)),
        Op::Delete { done, .. } => done(Err(e)),
        Op::Clear { done } => done(Err(e)),
        Op::Quarantine { done, .. } => done(Err(e)),
    }
}

fn clone_err(e: &PersistError) -> PersistError {
    match e {
        PersistError::Io { op, path, source } => PersistError::io(
            op,
            path.clone(),
            std::io::Error::new(source.kind(), source.to_string()),
        ),
        other => PersistError::Internal(other.to_string()),
    }
}

fn io_err(op: &'static str, path: &Path, e: std::io::Error) -> PersistError {
    PersistError::io(op, path.display().to_string(), e)
}

#[cfg(unix)]
fn identity(meta: &fs::Metadata) -> String {
    use std::os::unix::fs::MetadataExt;
    format!(
        "{}:{}:{}:{}",
        meta.dev(),
        meta.ino(),
        meta.len(),
        meta.mtime_nsec()
    )
}

#[cfg(not(unix))]
fn identity(meta: &fs::Metadata) -> String {
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{}:{}", meta.len(), mtime)
}

#[cfg(unix)]
fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: kill with signal 0 only checks for existence/permission.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(not(unix))]
fn process_alive(_pid: u32) -> bool {
    true
}

/// Make the data of every file in `files` durable with as few syncs as possible.
fn sync_data(dir: &Path, files: &[&File]) -> std::io::Result<()> {
    if files.is_empty() {
        return Ok(());
    }
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        if files.len() > 1 {
            // SAFETY: syncfs on a valid open descriptor.
            let r = unsafe { libc::syncfs(files[0].as_raw_fd()) };
            if r == 0 {
                return Ok(());
            }
        }
    }
    let _ = dir;
    for f in files {
        f.sync_data()?;
    }
    Ok(())
}

/// Set `path`'s times to now (best effort, one syscall).
#[cfg(unix)]
fn touch(path: &Path) {
    use std::os::unix::ffi::OsStrExt;
    if let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) {
        // SAFETY: a valid NUL-terminated path; NULL times mean "now".
        unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), std::ptr::null(), 0) };
    }
}

#[cfg(not(unix))]
fn touch(_path: &Path) {}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

fn committer(shared: Arc<Shared>) {
    let mut reaper = Reaper::new();
    loop {
        let batch: Vec<Op> = {
            let mut q = lock(&shared.queue);
            loop {
                if !q.ops.is_empty() {
                    let n = q.ops.len().min(MAX_BATCH);
                    break q.ops.drain(..n).collect();
                }
                if q.closed || q.drain {
                    break Vec::new();
                }
                let (guard, timeout) = shared
                    .wake
                    .wait_timeout(q, POOL_IDLE)
                    .unwrap_or_else(|p| p.into_inner());
                q = guard;
                if timeout.timed_out() && q.ops.is_empty() {
                    break Vec::new(); // idle: let the thread go
                }
            }
        };
        if !batch.is_empty() {
            run_batch(&shared, batch, &mut reaper);
            continue;
        }
        // Stopping: unlink the pool and wait for the reaper, then go unless
        // work arrived meanwhile (a push saw `running` and did not spawn).
        reaper.finish();
        let mut q = lock(&shared.queue);
        q.drain = false;
        if q.ops.is_empty() {
            q.running = false;
            drop(q);
            shared.stopped.notify_all();
            return;
        }
    }
}

struct Temp {
    path: PathBuf,
    file: Option<File>,
    /// A reused file: its data is always synced before the rename (even for
    /// a non-durable write), so its old blocks can never surface.
    reused: bool,
}

/// Write `data` to a temporary: a recycled one (an old, unlinked version of
/// some cache file, kept under a temporary name) when available, so that no
/// blocks are allocated or freed in steady state, else a new file.
/// Open a pooled file for overwriting, only if it is still what the pool
/// took: a regular file (no symlink is followed) with no other name.
fn open_exclusive(path: &Path) -> std::io::Result<File> {
    let mut opts = OpenOptions::new();
    opts.write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(libc::O_NOFOLLOW);
    }
    let file = opts.open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() || links(&meta) != 1 {
        return Err(std::io::Error::other("not an exclusive regular file"));
    }
    Ok(file)
}

#[cfg(unix)]
fn links(meta: &fs::Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt;
    meta.nlink()
}

#[cfg(not(unix))]
fn links(_meta: &fs::Metadata) -> u64 {
    1
}

fn write_temp(dir: &Path, data: &[u8], recycled: Option<PathBuf>) -> Result<Temp> {
    if let Some(path) = recycled {
        let reused = open_exclusive(&path).and_then(|mut file| {
            file.write_all(data)?;
            file.set_len(data.len() as u64)?;
            Ok(file)
        });
        match reused {
            Ok(file) => {
                return Ok(Temp {
                    path,
                    file: Some(file),
                    reused: true,
                })
            }
            Err(_) => {
                let _ = fs::remove_file(&path);
            }
        }
    }
    let pid = std::process::id();
    loop {
        let n = TEMP_SEQ.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!("{TEMP_PREFIX}{pid}.{}.{n}", temp_nonce()));
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(mut file) => {
                if let Err(e) = file.write_all(data) {
                    drop(file);
                    let _ = fs::remove_file(&path);
                    return Err(io_err("write", &path, e));
                }
                return Ok(Temp {
                    path,
                    file: Some(file),
                    reused: false,
                });
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_err("create", &path, e)),
        }
    }
}

/// Most threads one batch uses for its file operations. Creating, renaming
/// over and unlinking files mostly wait on the file system's journal (ext4
/// frees the replaced file's blocks inside `rename`), so they overlap well.
const IO_THREADS: usize = 8;

/// Run `f` on every item, on up to [`IO_THREADS`] scoped threads.
fn par_each<T: Send>(items: &mut [T], f: impl Fn(&mut T) + Sync) {
    if items.len() <= 1 {
        items.iter_mut().for_each(&f);
        return;
    }
    let per = items.len().div_ceil(IO_THREADS.min(items.len()));
    std::thread::scope(|s| {
        let f = &f;
        let mut chunks = items.chunks_mut(per);
        let first = chunks.next();
        for chunk in chunks {
            s.spawn(move || chunk.iter_mut().for_each(f));
        }
        if let Some(chunk) = first {
            chunk.iter_mut().for_each(f);
        }
    });
}

/// A random tag of this process for its temporaries' names: two processes
/// with the same pid (in two PID namespaces, say containers sharing a
/// volume) never pick the same name.
fn temp_nonce() -> &'static str {
    static NONCE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    NONCE.get_or_init(|| {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u32(std::process::id());
        if let Ok(t) = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH) {
            h.write_u128(t.as_nanos());
        }
        format!("{:016x}", h.finish())
    })
}

/// A fresh temporary-style name (`.awaitly-tmp.<pid>.<n>`) in `dir`.
fn temp_path(dir: &Path) -> PathBuf {
    let n = TEMP_SEQ.fetch_add(1, Ordering::Relaxed);
    dir.join(format!(
        "{TEMP_PREFIX}{}.{}.{n}",
        std::process::id(),
        temp_nonce()
    ))
}

/// A replaced file set aside by [`rename_segment`]: its path, size, and
/// whether it may be reused (exclusively ours, by exchange).
type Trash = (PathBuf, u64, bool);

/// Rename each write's temporary over its target. Writes to one name stay in
/// call order (one lane per name); distinct names go in parallel.
///
/// Freeing the replaced file's blocks is the slow part of a rename on ext4
/// (journal + discard, ~1-3 ms each): so the old file is kept (see
/// [`replace`]), the replacement frees nothing, and the old files are reused
/// or unlinked later, off the callers' path. A crash leaves them as
/// temporaries, which `init` removes.
fn rename_segment(
    dir: &Path,
    exchange: &std::sync::atomic::AtomicBool,
    lanes: Vec<Vec<(String, Result<Temp>)>>,
    trash: &mut Vec<Trash>,
) -> Vec<Result<()>> {
    struct Lane {
        jobs: Vec<(String, Result<Temp>)>,
        out: Vec<Result<()>>,
        trash: Vec<Trash>,
    }
    let mut lanes: Vec<Lane> = lanes
        .into_iter()
        .map(|jobs| Lane {
            jobs,
            out: Vec::new(),
            trash: Vec::new(),
        })
        .collect();
    par_each(&mut lanes, |lane| {
        for (name, temp) in lane.jobs.drain(..) {
            let res = temp.and_then(|t| {
                let target = dir.join(&name);
                match replace(dir, &t, &target, exchange) {
                    Ok(old) => {
                        lane.trash.extend(old);
                        Ok(())
                    }
                    Err(e) => {
                        let _ = fs::remove_file(&t.path);
                        Err(io_err("rename", &target, e))
                    }
                }
            });
            lane.out.push(res);
        }
    });
    lanes
        .into_iter()
        .flat_map(|mut l| {
            trash.append(&mut l.trash);
            l.out
        })
        .collect()
}

/// Atomically put `temp` at `target`; the replaced file, if any, is kept
/// and returned (its blocks are not freed on the caller's path).
///
/// With the exchange (Linux), the replaced file ends up at the temporary's
/// name and nowhere else: reusable. Without it, it is hard-linked aside first
/// and may still be linked elsewhere (another process may have linked the
/// same file): only to be unlinked, never reused.
fn replace(
    dir: &Path,
    temp: &Temp,
    target: &Path,
    exchange: &std::sync::atomic::AtomicBool,
) -> std::io::Result<Option<Trash>> {
    #[cfg(target_os = "linux")]
    if exchange.load(Ordering::Relaxed) {
        let unsupported = |e: &std::io::Error| {
            matches!(
                e.raw_os_error(),
                Some(libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP)
            )
        };
        loop {
            match renameat2(&temp.path, target, libc::RENAME_EXCHANGE) {
                Ok(()) => {
                    let meta = fs::symlink_metadata(&temp.path)?;
                    if meta.is_dir() {
                        // a directory at the key's name: put it back, fail
                        renameat2(&temp.path, target, libc::RENAME_EXCHANGE)?;
                        return Err(std::io::Error::other("is a directory"));
                    }
                    // reusable only if no other name (a backup's hard link,
                    // say) and nothing else (a symlink) can reach it
                    let exclusive = meta.is_file() && links(&meta) == 1;
                    return Ok(Some((temp.path.clone(), meta.len(), exclusive)));
                }
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    // no target yet: place it, unless one appeared meanwhile
                    match renameat2(&temp.path, target, libc::RENAME_NOREPLACE) {
                        Ok(()) => return Ok(None),
                        Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
                        Err(e) if unsupported(&e) => {
                            exchange.store(false, Ordering::Relaxed);
                            break;
                        }
                        Err(e) => return Err(e),
                    }
                }
                Err(e) if unsupported(&e) => {
                    exchange.store(false, Ordering::Relaxed);
                    break;
                }
                Err(e) => return Err(e),
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = exchange;
    let keep = temp_path(dir);
    let kept = fs::hard_link(target, &keep).is_ok();
    if let Err(e) = fs::rename(&temp.path, target) {
        if kept {
            let _ = fs::remove_file(&keep);
        }
        return Err(e);
    }
    Ok(kept.then(|| {
        let size = fs::symlink_metadata(&keep).map_or(0, |m| m.len());
        (keep, size, false)
    }))
}

#[cfg(target_os = "linux")]
fn renameat2(from: &Path, to: &Path, flags: libc::c_uint) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| {
        std::ffi::CString::new(p.as_os_str().as_bytes())
            .map_err(|_| std::io::Error::from(ErrorKind::InvalidInput))
    };
    let (from, to) = (c(from)?, c(to)?);
    // SAFETY: two valid NUL-terminated paths, relative to the cwd. The raw
    // syscall: glibc's wrapper is missing from older glibc and musl.
    let r = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            flags,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Unlinks replaced files on its own thread, off the committer's path.
struct Reaper {
    tx: Option<std::sync::mpsc::Sender<Vec<PathBuf>>>,
    handle: Option<std::thread::JoinHandle<()>>,
    /// Replaced files kept for reuse as temporaries (see `write_temp`):
    /// path, when it was replaced, its size. Oldest first.
    pool: VecDeque<Pooled>,
    pool_bytes: u64,
}

/// A replaced file kept for reuse.
struct Pooled {
    path: PathBuf,
    since: std::time::Instant,
    size: u64,
    /// The batch epoch in which it was replaced.
    epoch: u64,
}

/// How long the committer waits for more work before it unlinks the pool
/// and lets its thread go: back-to-back batches (a loop of awaited writes)
/// keep reusing files, and no temporary stays in the directory once writes
/// are done.
const POOL_IDLE: Duration = Duration::from_millis(100);
/// Most replaced files kept for reuse, and their total size; the rest are
/// unlinked.
const POOL_MAX: usize = 4096;
const POOL_BYTES: u64 = 32 << 20;
/// A replaced file is reused only once no read of this handle that started
/// before it was replaced is still running, and at least this long after it
/// was replaced, so that readers in other processes, which opened it just
/// before, can finish reading the old content (our own reads are tracked,
/// and also retry when slower than half of this).
const REUSE_GRACE: Duration = Duration::from_millis(50);

impl Reaper {
    fn new() -> Reaper {
        Reaper {
            tx: None,
            handle: None,
            pool: VecDeque::new(),
            pool_bytes: 0,
        }
    }

    fn send(&mut self, trash: Vec<PathBuf>) {
        if trash.is_empty() {
            return;
        }
        if self.tx.is_none() {
            let (tx, rx) = std::sync::mpsc::channel::<Vec<PathBuf>>();
            let spawned = std::thread::Builder::new()
                .name("awaitly-file-reap".into())
                .spawn(move || {
                    while let Ok(mut batch) = rx.recv() {
                        while let Ok(more) = rx.try_recv() {
                            batch.extend(more);
                        }
                        par_each(&mut batch, |p| {
                            let _ = fs::remove_file(p);
                        });
                    }
                });
            match spawned {
                Ok(h) => {
                    self.tx = Some(tx);
                    self.handle = Some(h);
                }
                Err(_) => {
                    // no thread: free them here
                    for p in trash {
                        let _ = fs::remove_file(p);
                    }
                    return;
                }
            }
        }
        if let Some(tx) = &self.tx {
            if let Err(back) = tx.send(trash) {
                for p in back.0 {
                    let _ = fs::remove_file(p);
                }
            }
        }
    }

    /// Keep `trash` for reuse, unlinking what exceeds the pool. Each kept
    /// file's mtime is set to now, so that `init` in another process does
    /// not take it for a stale temporary while it waits here.
    fn recycle(&mut self, trash: Vec<(PathBuf, u64)>, epoch: u64) {
        let since = std::time::Instant::now();
        for (path, size) in trash {
            touch(&path);
            let size = size.div_ceil(4096).max(1) * 4096; // blocks on disk
            self.pool_bytes += size;
            self.pool.push_back(Pooled {
                path,
                since,
                size,
                epoch,
            });
        }
        let mut extra = Vec::new();
        while self.pool.len() > POOL_MAX || self.pool_bytes > POOL_BYTES {
            let Some(p) = self.pool.pop_front() else {
                break;
            };
            self.pool_bytes -= p.size;
            extra.push(p.path);
        }
        self.send(extra);
    }

    /// The oldest pooled file, if no reader can still be reading it.
    /// `oldest_reader`: the epoch of the oldest read in flight.
    fn take(&mut self, oldest_reader: Option<u64>) -> Option<PathBuf> {
        let front = self.pool.front()?;
        if front.since.elapsed() < REUSE_GRACE || oldest_reader.is_some_and(|r| r <= front.epoch) {
            return None;
        }
        let p = self.pool.pop_front()?;
        self.pool_bytes -= p.size;
        Some(p.path)
    }

    /// Unlink the pool and the queued files; stop the thread.
    fn finish(&mut self) {
        let pool: Vec<PathBuf> = self.pool.drain(..).map(|p| p.path).collect();
        self.pool_bytes = 0;
        self.send(pool);
        self.tx = None;
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// A write's data and, after phase 1, its temporary.
type TempSlot<'a> = (Option<&'a [u8]>, Option<PathBuf>, Option<Result<Temp>>);
/// A write waiting for its rename: name, durable, callback, temporary.
type PendingWrite = (String, bool, Done<()>, Result<Temp>);
/// A finished operation, waiting for the directory sync's verdict.
type Outcome = Box<dyn FnOnce(Option<PersistError>)>;

fn run_batch(shared: &Shared, batch: Vec<Op>, reaper: &mut Reaper) {
    let dir = &shared.dir;
    let trace = std::env::var_os("AWAITLY_FILE_TRACE").is_some();
    let t0 = std::time::Instant::now();
    let n_ops = batch.len();
    if shared.auto_init {
        if let Err(e) = ensure_ready(shared) {
            for op in batch {
                fail(op, clone_err(&e));
            }
            return;
        }
    }
    let epoch = shared.epoch.fetch_add(1, Ordering::SeqCst) + 1;
    let oldest_reader = lock_map(&shared.readers).keys().next().copied();
    let reuse = shared.reuse.load(Ordering::SeqCst) && shared.exchange.load(Ordering::Relaxed);
    // 1. temporaries, in parallel
    let mut temps: Vec<TempSlot> = batch
        .iter()
        .map(|op| match op {
            Op::Write { data, .. } => (
                Some(data.as_slice()),
                if reuse {
                    reaper.take(oldest_reader)
                } else {
                    None
                },
                None,
            ),
            _ => (None, None, None),
        })
        .collect();
    par_each(&mut temps, |(data, recycled, out)| {
        if let Some(data) = data {
            *out = Some(write_temp(dir, data, recycled.take()));
        }
    });
    let mut temps: Vec<Option<Result<Temp>>> = temps.into_iter().map(|(_, _, t)| t).collect();
    let t1 = t0.elapsed();
    // 2. one data sync for the durable ones
    let durable_files: Vec<&File> = batch
        .iter()
        .zip(temps.iter())
        .filter_map(|(op, t)| match (op, t) {
            (Op::Write { durable, .. }, Some(Ok(t))) if *durable || t.reused => t.file.as_ref(),
            _ => None,
        })
        .collect();
    if let Err(e) = sync_data(dir, &durable_files) {
        let err = io_err("fsync", dir, e);
        for (op, t) in batch.iter().zip(temps.iter_mut()) {
            if let (Op::Write { durable, .. }, Some(res)) = (op, t.as_mut()) {
                let synced = *durable || res.as_ref().is_ok_and(|t| t.reused);
                if !synced {
                    continue;
                }
                if let Ok(temp) = res {
                    let _ = fs::remove_file(&temp.path);
                }
                *res = Err(clone_err(&err));
            }
        }
    }
    for t in temps.iter_mut().flatten().flatten() {
        t.file = None; // close
    }
    let t2 = t0.elapsed();
    // 3. renames (runs of writes, in parallel by name), deletes, clears and
    //    quarantines, in call order
    let mut need_dir_sync = false;
    let mut outcomes: Vec<Outcome> = Vec::with_capacity(batch.len());
    let mut pending: Vec<PendingWrite> = Vec::new();
    let mut trash: Vec<Trash> = Vec::new();
    // deleted files: unlinked by the reaper, never reused
    let mut removed: Vec<PathBuf> = Vec::new();
    let flush = |pending: &mut Vec<PendingWrite>,
                 outcomes: &mut Vec<Outcome>,
                 need_dir_sync: &mut bool,
                 trash: &mut Vec<Trash>| {
        if pending.is_empty() {
            return;
        }
        // group by name, keeping call order inside each group
        let mut lane_of: std::collections::HashMap<String, usize> = Default::default();
        let mut lanes: Vec<Vec<(String, Result<Temp>)>> = Vec::new();
        let mut waiters: Vec<Vec<(bool, Done<()>)>> = Vec::new();
        for (name, durable, done, temp) in pending.drain(..) {
            let i = *lane_of.entry(name.clone()).or_insert_with(|| {
                lanes.push(Vec::new());
                waiters.push(Vec::new());
                lanes.len() - 1
            });
            lanes[i].push((name, temp));
            waiters[i].push((durable, done));
        }
        let results = rename_segment(dir, &shared.exchange, lanes, trash);
        for ((durable, done), res) in waiters.into_iter().flatten().zip(results) {
            *need_dir_sync |= durable && res.is_ok();
            outcomes.push(finish(res, done));
        }
    };
    for (op, temp) in batch.into_iter().zip(temps) {
        match op {
            Op::Write {
                name,
                durable,
                done,
                ..
            } => {
                let temp = temp.unwrap_or_else(|| {
                    Err(PersistError::Internal("write without temporary".into()))
                });
                pending.push((name, durable, done, temp));
            }
            Op::Delete { names, check, done } => {
                flush(&mut pending, &mut outcomes, &mut need_dir_sync, &mut trash);
                let live = check.map(|f| f()).unwrap_or(true);
                let mut res = Ok(false);
                for name in names {
                    let path = dir.join(&name);
                    // moved to a temporary name now (cheap), freed by the reaper
                    let keep = temp_path(dir);
                    if fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
                        res = Err(PersistError::io(
                            "unlink",
                            path.display().to_string(),
                            std::io::Error::other("is a directory"),
                        ));
                        continue;
                    }
                    match fs::rename(&path, &keep) {
                        Ok(()) => {
                            removed.push(keep);
                            need_dir_sync = true;
                            if let Ok(any) = res.as_mut() {
                                *any = true;
                            }
                        }
                        Err(e) if e.kind() == ErrorKind::NotFound => {}
                        Err(e) => res = Err(io_err("rename", &path, e)),
                    }
                }
                outcomes.push(finish(res.map(|removed| removed && live), done));
            }
            Op::Clear { done } => {
                flush(&mut pending, &mut outcomes, &mut need_dir_sync, &mut trash);
                let res = clear_dir(dir, &shared.naming);
                need_dir_sync |= matches!(res, Ok(n) if n > 0);
                outcomes.push(finish(res, done));
            }
            Op::Quarantine {
                name,
                identity: id,
                done,
            } => {
                flush(&mut pending, &mut outcomes, &mut need_dir_sync, &mut trash);
                let res = quarantine(dir, &name, &id);
                need_dir_sync |= matches!(res, Ok(Some(_)));
                outcomes.push(finish(res, done));
            }
        }
    }
    flush(&mut pending, &mut outcomes, &mut need_dir_sync, &mut trash);
    let t3 = t0.elapsed();
    // 4. one directory sync
    let dir_err = if need_dir_sync {
        sync_dir(dir).err().map(|e| io_err("fsync", dir, e))
    } else {
        None
    };
    if trace {
        eprintln!(
            "awaitly-file batch ops={n_ops} temps={t1:?} sync={:?} renames={:?} dirsync={:?}",
            t2 - t1,
            t3 - t2,
            t0.elapsed() - t3
        );
    }
    // 5. tell the callers
    for outcome in outcomes {
        outcome(dir_err.as_ref().map(clone_err));
    }
    let (reusable, other): (Vec<Trash>, Vec<Trash>) = trash.into_iter().partition(|t| reuse && t.2);
    reaper.recycle(
        reusable.into_iter().map(|(p, n, _)| (p, n)).collect(),
        epoch,
    );
    reaper.send(other.into_iter().map(|(p, ..)| p).collect());
    reaper.send(removed);
}

/// Pair a result with its callback; the callback runs after the dir sync,
/// with the dir-sync error (if any) replacing a success.
fn finish<T: Send + 'static>(
    res: Result<T>,
    done: Done<T>,
) -> Box<dyn FnOnce(Option<PersistError>)> {
    Box::new(move |dir_err| match (res, dir_err) {
        (Ok(_), Some(e)) => done(Err(e)),
        (res, _) => done(res),
    })
}

fn clear_dir(dir: &Path, naming: &Naming) -> Result<u32> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(io_err("readdir", dir, e)),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry.map_err(|e| io_err("readdir", dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !naming.is_own(name) {
            continue;
        }
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(true) {
            continue;
        }
        match fs::remove_file(entry.path()) {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("unlink", &entry.path(), e)),
        }
    }
    Ok(removed)
}

fn quarantine(dir: &Path, name: &str, id: &str) -> Result<Option<String>> {
    let src = dir.join(name);
    match fs::metadata(&src) {
        Ok(m) if identity(&m) == id => {}
        Ok(_) => return Ok(None),
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("stat", &src, e)),
    }
    for n in 0u32..1000 {
        let mut target = if n == 0 {
            format!("{name}{CORRUPT_SUFFIX}")
        } else {
            format!("{name}.{n}{CORRUPT_SUFFIX}")
        };
        if target.len() > crate::file::name::MAX_NAME_BYTES {
            let keep = crate::file::name::MAX_NAME_BYTES - (target.len() - name.len());
            let mut cut = keep;
            while !name.is_char_boundary(cut) {
                cut -= 1;
            }
            target = target.replacen(name, &name[..cut], 1);
        }
        let dst = dir.join(&target);
        // link + unlink: never replaces an existing file (rename would)
        match fs::hard_link(&src, &dst) {
            Ok(()) => {
                fs::remove_file(&src).map_err(|e| io_err("unlink", &src, e))?;
                return Ok(Some(target));
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_err("link", &dst, e)),
        }
    }
    Err(PersistError::corrupt(
        src.display().to_string(),
        "too many quarantined copies",
    ))
}

// ---------------------------------------------------------------------------
// Key-value store: one file per key holding {"key","value","expiresAt"}.
// ---------------------------------------------------------------------------

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    key: &'a RawValue,
    #[serde(borrow)]
    value: &'a RawValue,
    #[serde(rename = "expiresAt")]
    expires_at: Option<f64>,
}

/// A decoded store entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub key: Vec<u16>,
    pub value: Vec<u16>,
    pub expires_at: Option<f64>,
}

impl Entry {
    pub fn live(&self, now_ms: f64) -> bool {
        self.expires_at.is_none_or(|t| t > now_ms)
    }
}

/// The envelope text for a store entry (key and value as exact UTF-16).
pub fn encode_entry(key: &[u16], value: &[u16], expires_at: Option<f64>) -> String {
    let exp = match expires_at {
        Some(t) => format!("{}", t.round() as i64),
        None => "null".to_string(),
    };
    format!(
        "{{\"key\":{},\"value\":{},\"expiresAt\":{exp}}}",
        json_quote_utf16(key),
        json_quote_utf16(value)
    )
}

/// Parse an envelope; anything else is [`PersistError::Corrupt`].
pub fn decode_entry(location: &str, text: &str) -> Result<Entry> {
    let bad = |why: &str| PersistError::corrupt(location, why);
    let env: Envelope = serde_json::from_str(text).map_err(|e| bad(&e.to_string()))?;
    let key = json_unquote_utf16(env.key.get()).ok_or_else(|| bad("key is not a string"))?;
    let value = json_unquote_utf16(env.value.get()).ok_or_else(|| bad("value is not a string"))?;
    Ok(Entry {
        key,
        value,
        expires_at: env.expires_at,
    })
}

/// Hidden owner files of a file store start with this (no key's file name
/// starts with a dot).
pub const OWNER_FILE_PREFIX: &str = ".awaitly-owner.";

/// A file-backed `KeyValueStore`: arbitrary string keys, TTLs, glob listing.
pub struct KvFiles {
    files: FileDir,
    durable: bool,
}

impl KvFiles {
    pub fn new(directory: &str, extension: &str, durable: bool) -> Result<KvFiles> {
        Ok(KvFiles {
            files: FileDir::with_auto_init(directory, extension, true)?,
            durable,
        })
    }

    /// See [`FileDir::set_reuse`].
    pub fn set_reuse(&self, on: bool) {
        self.files.set_reuse(on)
    }

    /// See [`FileDir::drain_handle`].
    pub fn drain_handle(&self) -> DrainHandle {
        self.files.drain_handle()
    }

    /// Create the directory once (a store has no `init()` in its interface).
    pub fn ensure_ready(&self) -> Result<()> {
        self.files.ensure_ready()
    }

    fn name(&self, key: &[u16]) -> String {
        self.files.naming().names(key).primary
    }

    /// The stored entry of `key`, expired or not.
    pub fn entry(&self, key: &[u16]) -> Result<Option<Entry>> {
        self.ensure_ready()?;
        let name = self.name(key);
        let Some(found) = self.files.read_name(&name)? else {
            return Ok(None);
        };
        let entry = decode_entry(&found.name, &found.text)?;
        if entry.key != key {
            return Err(PersistError::corrupt(found.name, "file holds another key"));
        }
        Ok(Some(entry))
    }

    /// The live value of `key`.
    pub fn get(&self, key: &[u16], now_ms: f64) -> Result<Option<Vec<u16>>> {
        Ok(self.entry(key)?.filter(|e| e.live(now_ms)).map(|e| e.value))
    }

    pub fn exists(&self, key: &[u16], now_ms: f64) -> Result<bool> {
        Ok(self.entry(key)?.is_some_and(|e| e.live(now_ms)))
    }

    /// Queue the write of an entry; `expires_at` in ms since the epoch.
    /// Enqueued at once (call order is write order); the directory is
    /// created by the committer if needed.
    pub fn set(&self, key: &[u16], value: &[u16], expires_at: Option<f64>, done: Done<()>) {
        let text = encode_entry(key, value, expires_at);
        self.files
            .write(self.name(key), text.into_bytes(), self.durable, done);
    }

    /// Queue removal of `key`'s file; done with whether something was
    /// removed that was not an expired entry: `true` for a live entry and for
    /// a file that cannot be read as one (corrupt, another key's: `get`
    /// rejects it with ERR_CORRUPT, `delete` removes it), `false` for no file
    /// or an expired entry. The committer reads it just before unlinking, in
    /// call order.
    pub fn delete(self: &Arc<Self>, key: &[u16], now_ms: f64, done: Done<bool>) {
        let me = Arc::clone(self);
        let k = key.to_vec();
        // (with no file nothing is removed, so `true` then is never reported)
        let check = Box::new(move || !matches!(me.entry(&k), Ok(Some(e)) if !e.live(now_ms)));
        self.files.push(Op::Delete {
            names: vec![self.name(key)],
            check: Some(check),
            done,
        });
    }

    /// Record an owner marker key (a KV cache's or state persistence's, see
    /// `redis::store::Owners`) as the hidden file `.awaitly-owner.<sha256>`,
    /// holding the marker key as a JSON string: no key file (never listed by
    /// `keys()`, never removed by a clear). Written like a value (atomic, and
    /// durable if the store is).
    pub fn register_owner(&self, marker: &[u16], done: Done<()>) {
        let name = format!("{OWNER_FILE_PREFIX}{}", key_hash(marker));
        let text = json_quote_utf16(marker);
        self.files
            .write(name, text.into_bytes(), self.durable, done);
    }

    /// The marker keys recorded by [`KvFiles::register_owner`]. An owner
    /// file that cannot be read as one is ERR_CORRUPT naming it.
    pub fn owner_keys(&self) -> Result<Vec<Vec<u16>>> {
        self.ensure_ready()?;
        let dir = self.files.dir();
        let mut out = Vec::new();
        for entry in fs::read_dir(dir).map_err(|e| io_err("readdir", dir, e))? {
            let entry = entry.map_err(|e| io_err("readdir", dir, e))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if !name.starts_with(OWNER_FILE_PREFIX) {
                continue;
            }
            let Some(found) = self.files.read_name(name)? else {
                continue;
            };
            match json_unquote_utf16(&found.text) {
                Some(k) if name[OWNER_FILE_PREFIX.len()..] == key_hash(&k) => out.push(k),
                _ => return Err(PersistError::corrupt(name, "not an owner marker")),
            }
        }
        Ok(out)
    }

    /// Live keys matching the Redis-style glob `pattern`. A file of this
    /// store that may hold a matching key but cannot be read as an entry
    /// (corrupt, not UTF-8, another key's, a directory, unreadable) fails the
    /// call with the error its `get` gives (ERR_CORRUPT / ERR_IO naming the
    /// file): never skipped silently. Files whose names rule a match out are
    /// not read (a simple name is its key; a hashed name shows the key's
    /// first units, checked against the pattern's literal prefix).
    pub fn keys(&self, pattern: &[u16], now_ms: f64) -> Result<Vec<Vec<u16>>> {
        self.ensure_ready()?;
        let dir = self.files.dir();
        let naming = self.files.naming();
        let literal = glob::literal_prefix_units(pattern);
        let mut out = Vec::new();
        for entry in fs::read_dir(dir).map_err(|e| io_err("readdir", dir, e))? {
            let entry = entry.map_err(|e| io_err("readdir", dir, e))?;
            let name = entry.file_name();
            // not UTF-8: no name of this scheme
            let Some(name) = name.to_str() else { continue };
            if !naming.is_own(name) {
                continue;
            }
            let may_match = match naming.simple_key(name) {
                Some(k) => glob::matches_units(pattern, &k.encode_utf16().collect::<Vec<u16>>()),
                None => naming.may_start_with(name, &literal),
            };
            if !may_match {
                continue;
            }
            // None: removed since the listing
            let Some(found) = self.files.read_name(name)? else {
                continue;
            };
            let e = decode_entry(name, &found.text)?;
            if naming.names(&e.key).primary != name {
                return Err(PersistError::corrupt(name, "file holds another key"));
            }
            if e.live(now_ms) && glob::matches_units(pattern, &e.key) {
                out.push(e.key);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    type TR = std::result::Result<(), Box<dyn std::error::Error>>;

    fn tmpdir(tag: &str) -> PathBuf {
        let p = std::env::temp_dir().join(format!(
            "awaitly-fs-test-{tag}-{}-{}",
            std::process::id(),
            TEMP_SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&p);
        p
    }

    fn u(s: &str) -> Vec<u16> {
        s.encode_utf16().collect()
    }

    fn wait<T: Send + 'static>(f: impl FnOnce(Done<T>)) -> Result<T> {
        let (tx, rx) = mpsc::channel();
        f(Box::new(move |r| {
            let _ = tx.send(r);
        }));
        rx.recv_timeout(Duration::from_secs(10))
            .map_err(|e| PersistError::Internal(e.to_string()))?
    }

    /// Two handles on one directory (as two processes have) writing the same
    /// keys, with reuse: no file ever gets a second name, so no key can end
    /// up sharing another key's file (the hard-link scheme did exactly that).
    #[cfg(unix)]
    #[test]
    fn two_handles_one_directory_never_share_a_file() -> TR {
        use std::os::unix::fs::MetadataExt;
        let dir = tmpdir("two-handles");
        let path = dir.to_str().unwrap_or_default().to_string();
        let handles = [FileDir::new(&path, ".json")?, FileDir::new(&path, ".json")?];
        handles[0].init()?;
        for round in 0..12usize {
            if round % 4 == 3 {
                std::thread::sleep(REUSE_GRACE + Duration::from_millis(20));
            }
            let (tx, rx) = mpsc::channel();
            let mut n = 0;
            for (h, d) in handles.iter().enumerate() {
                for k in 0..40usize {
                    let tx = tx.clone();
                    let data = format!("{h}:{k}:{round}").into_bytes();
                    d.write(
                        format!("k{k}.json"),
                        data,
                        round % 2 == 0,
                        Box::new(move |r| {
                            let _ = tx.send(r);
                        }),
                    );
                    n += 1;
                }
            }
            for _ in 0..n {
                rx.recv_timeout(Duration::from_secs(10))??;
            }
            for k in 0..40usize {
                let m = fs::metadata(dir.join(format!("k{k}.json")))?;
                assert_eq!(m.nlink(), 1, "k{k} has {} names", m.nlink());
                let text = fs::read_to_string(dir.join(format!("k{k}.json")))?;
                assert!(text.starts_with("0:") || text.starts_with("1:"), "{text}");
                assert_eq!(text.split(':').nth(1), Some(k.to_string().as_str()));
            }
        }
        // drained: only the 40 key files are left
        for h in &handles {
            assert!(h.drain_handle().drain(Duration::from_secs(5)));
        }
        let left: Vec<String> = fs::read_dir(&dir)?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| is_temp(n))
            .collect();
        assert_eq!(left, Vec::<String>::new());
        // and the handles still work after a drain
        wait(|done| handles[1].write("after.json".into(), b"x".to_vec(), true, done))?;
        assert_eq!(fs::read(dir.join("after.json"))?, b"x");
        let _ = fs::remove_dir_all(&dir);
        Ok(())
    }

    /// What sits at a key's name and is not ours alone is never written
    /// through: a file with a second hard link (a backup), a symlink, a
    /// directory.
    #[cfg(unix)]
    #[test]
    fn foreign_links_symlinks_and_directories_are_never_written_through() -> TR {
        let dir = tmpdir("foreign");
        let outside = tmpdir("foreign-outside");
        fs::create_dir_all(&outside)?;
        let d = FileDir::new(dir.to_str().unwrap_or_default(), ".json")?;
        d.init()?;
        let put = |name: &str, data: &str| {
            wait(|done| d.write(name.into(), data.as_bytes().to_vec(), true, done))
        };
        // a hard link kept by a "backup", and a symlink to a file outside
        put("a.json", "a1")?;
        fs::hard_link(dir.join("a.json"), outside.join("backup-a.json"))?;
        fs::write(outside.join("target"), "outside")?;
        std::os::unix::fs::symlink(outside.join("target"), dir.join("s.json"))?;
        put("a.json", "a2")?;
        put("s.json", "s1")?;
        // let the replaced files become reusable, then write other keys
        std::thread::sleep(REUSE_GRACE + Duration::from_millis(30));
        for k in 0..8 {
            put(&format!("k{k}.json"), &format!("secret {k}"))?;
        }
        assert_eq!(fs::read_to_string(outside.join("backup-a.json"))?, "a1");
        assert_eq!(fs::read_to_string(outside.join("target"))?, "outside");
        assert_eq!(fs::read_to_string(dir.join("s.json"))?, "s1");
        // a directory at a key's name: the write fails, the directory stays
        fs::create_dir(dir.join("d.json"))?;
        fs::write(dir.join("d.json").join("inside"), "mine")?;
        assert!(put("d.json", "x").is_err());
        assert_eq!(
            fs::read_to_string(dir.join("d.json").join("inside"))?,
            "mine"
        );
        assert!(d.drain_handle().drain(Duration::from_secs(5)));
        let left: Vec<String> = fs::read_dir(&dir)?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| is_temp(n))
            .collect();
        assert_eq!(left, Vec::<String>::new());
        let _ = fs::remove_dir_all(&dir);
        let _ = fs::remove_dir_all(&outside);
        Ok(())
    }

    #[test]
    fn write_read_delete_clear() -> TR {
        let dir = tmpdir("basic");
        let d = FileDir::new(dir.to_str().unwrap_or_default(), ".json")?;
        d.init()?;
        fs::write(dir.join("notes.txt"), "keep")?;
        fs::write(dir.join("other.data"), "keep")?;
        let names = d.naming().names(&u("a:b"));
        wait(|done| d.write(names.primary.clone(), b"{\"ok\":true}".to_vec(), true, done))?;
        let found = d.read(&names)?.map(|f| f.text);
        assert_eq!(found.as_deref(), Some("{\"ok\":true}"));
        wait(|done| d.write("plain.json".into(), b"1".to_vec(), false, done))?;
        assert!(wait(|done| d.delete(vec![names.primary.clone()], done))?);
        assert!(!wait(|done| d.delete(vec![names.primary.clone()], done))?);
        assert_eq!(d.read(&names)?, None);
        assert_eq!(wait(|done| d.clear(done))?, 1);
        let mut left: Vec<String> = fs::read_dir(&dir)?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| !is_temp(n))
            .collect();
        left.sort();
        assert_eq!(left, vec!["notes.txt", "other.data"]);
        fs::remove_dir_all(&dir)?;
        Ok(())
    }

    #[test]
    fn last_write_wins_and_temps_cleaned() -> TR {
        let dir = tmpdir("order");
        let d = FileDir::new(dir.to_str().unwrap_or_default(), ".json")?;
        d.init()?;
        let (tx, rx) = mpsc::channel();
        for i in 0..200 {
            let tx = tx.clone();
            d.write(
                "k.json".into(),
                format!("{i}").into_bytes(),
                i % 2 == 0,
                Box::new(move |r| {
                    let _ = tx.send(r);
                }),
            );
        }
        for _ in 0..200 {
            rx.recv_timeout(Duration::from_secs(10))
                .map_err(|e| PersistError::Internal(e.to_string()))??;
        }
        assert_eq!(fs::read_to_string(dir.join("k.json"))?, "199");
        // a temp of a dead process goes, one of a live process stays
        fs::write(dir.join(format!("{TEMP_PREFIX}999999999.1")), "x")?;
        fs::write(dir.join(format!("{TEMP_PREFIX}1.1")), "x")?; // pid 1 is alive
        assert_eq!(d.init()?, 1);
        assert!(dir.join(format!("{TEMP_PREFIX}1.1")).exists());
        fs::remove_dir_all(&dir)?;
        Ok(())
    }

    #[test]
    fn reused_temporaries_hold_exactly_the_new_content() -> TR {
        let dir = tmpdir("reuse");
        let d = FileDir::new(dir.to_str().unwrap_or_default(), ".json")?;
        d.init()?;
        for round in 0..6usize {
            if round == 3 {
                // let the replaced files of rounds 0-2 become reusable
                std::thread::sleep(REUSE_GRACE + Duration::from_millis(50));
            }
            let (tx, rx) = mpsc::channel();
            let mut want = Vec::new();
            for k in 0..8usize {
                let size = if (round + k) % 2 == 0 {
                    100_000 + k
                } else {
                    3 + k
                };
                let byte = b'a' + ((round * 8 + k) % 26) as u8;
                want.push((format!("k{k}.json"), vec![byte; size]));
            }
            for (name, data) in &want {
                let tx = tx.clone();
                d.write(
                    name.clone(),
                    data.clone(),
                    true,
                    Box::new(move |r| {
                        let _ = tx.send(r);
                    }),
                );
            }
            for _ in 0..want.len() {
                rx.recv_timeout(Duration::from_secs(10))??;
            }
            for (name, data) in &want {
                assert_eq!(&fs::read(dir.join(name))?, data, "round {round} {name}");
            }
        }
        fs::remove_dir_all(&dir)?;
        Ok(())
    }

    #[test]
    fn quarantine_never_replaces() -> TR {
        let dir = tmpdir("quar");
        let d = FileDir::new(dir.to_str().unwrap_or_default(), ".json")?;
        d.init()?;
        let names = d.naming().names(&u("k"));
        for round in 0..2 {
            fs::write(dir.join("k.json"), format!("garbage{round}"))?;
            let found = d
                .read(&names)?
                .ok_or_else(|| PersistError::Internal("gone".into()))?;
            // a changed file is not moved
            if round == 0 {
                let stale = format!("{}x", found.identity);
                assert_eq!(
                    wait(|done| d.quarantine("k.json".into(), stale, done))?,
                    None
                );
            }
            let moved = wait(|done| d.quarantine("k.json".into(), found.identity, done))?;
            let expect = if round == 0 {
                "k.json.corrupt"
            } else {
                "k.json.1.corrupt"
            };
            assert_eq!(moved.as_deref(), Some(expect));
        }
        assert_eq!(fs::read_to_string(dir.join("k.json.corrupt"))?, "garbage0");
        assert_eq!(
            fs::read_to_string(dir.join("k.json.1.corrupt"))?,
            "garbage1"
        );
        assert!(!dir.join("k.json").exists());
        fs::remove_dir_all(&dir)?;
        Ok(())
    }

    #[test]
    fn legacy_name_read_for_device_keys_only() -> TR {
        let dir = tmpdir("legacy");
        let d = FileDir::new(dir.to_str().unwrap_or_default(), ".json")?;
        d.init()?;
        fs::write(dir.join("CON.json"), "old")?;
        fs::write(dir.join("a_b.json"), "simple")?;
        let con = d.naming().names(&u("CON"));
        if !cfg!(windows) {
            assert_eq!(d.read(&con)?.map(|f| f.text).as_deref(), Some("old"));
        }
        assert_eq!(d.read(&d.naming().names(&u("a:b")))?, None);
        fs::write(dir.join("bad.json"), [0xff, 0xfe])?;
        let bad = d.read(&d.naming().names(&u("bad")));
        assert!(matches!(bad, Err(PersistError::Corrupt { .. })));
        fs::remove_dir_all(&dir)?;
        Ok(())
    }

    #[test]
    fn kv_store_ttl_keys_and_lossless_keys() -> TR {
        let dir = tmpdir("kv");
        let kv = Arc::new(KvFiles::new(
            dir.to_str().unwrap_or_default(),
            ".kv.json",
            true,
        )?);
        let keys = [
            u("workflow:state:run_1"),
            u("workflow:state:run*[2]"),
            u("plain"),
            vec![0xd800, 0x61],
        ];
        for k in &keys {
            wait(|done| kv.set(k, &u("v\"1"), None, done))?;
        }
        wait(|done| kv.set(&u("workflow:state:ttl"), &[0xdc00], Some(1500.0), done))?;
        assert_eq!(kv.get(&keys[0], 1000.0)?, Some(u("v\"1")));
        assert_eq!(
            kv.get(&u("workflow:state:ttl"), 1000.0)?,
            Some(vec![0xdc00])
        );
        assert_eq!(kv.get(&u("workflow:state:ttl"), 1500.0)?, None);
        assert!(!kv.exists(&u("workflow:state:ttl"), 2000.0)?);
        assert!(kv.exists(&keys[3], 2000.0)?);
        let mut listed = kv.keys(&u(&format!("{}*", glob::escape("workflow:state:"))), 1000.0)?;
        listed.sort();
        let mut want = vec![keys[0].clone(), keys[1].clone(), u("workflow:state:ttl")];
        want.sort();
        assert_eq!(listed, want);
        let star = kv.keys(
            &u(&format!("{}*", glob::escape("workflow:state:run*"))),
            2000.0,
        )?;
        assert_eq!(star, vec![keys[1].clone()]);
        assert_eq!(kv.keys(&u("*"), 2000.0)?.len(), 4);
        assert!(!wait(|done| kv.delete(
            &u("workflow:state:ttl"),
            2000.0,
            done
        ))?);
        assert!(wait(|done| kv.delete(&keys[0], 2000.0, done))?);
        assert!(!wait(|done| kv.delete(&keys[0], 2000.0, done))?);
        assert_eq!(kv.get(&u("missing"), 0.0)?, None);
        fs::write(
            dir.join("plain.kv.json"),
            "{\"key\":\"other\",\"value\":\"x\",\"expiresAt\":null}",
        )?;
        assert!(matches!(
            kv.get(&u("plain"), 0.0),
            Err(PersistError::Corrupt { .. })
        ));
        fs::remove_dir_all(&dir)?;
        Ok(())
    }

    #[test]
    fn kv_store_reports_corrupt_files_in_keys_and_deletes_them() -> TR {
        let dir = tmpdir("kv-corrupt");
        let kv = Arc::new(KvFiles::new(
            dir.to_str().unwrap_or_default(),
            ".kv.json",
            true,
        )?);
        let state = u("workflow:state:run-1");
        for k in [&state, &u("workflow:cache:a"), &u("plain")] {
            wait(|done| kv.set(k, &u("v"), None, done))?;
        }
        let state_file = kv.name(&state);
        fs::write(dir.join(&state_file), "{\"key\":")?;
        let corrupt = |r: Result<Vec<Vec<u16>>>| match r {
            Err(PersistError::Corrupt { location, .. }) => location == state_file,
            _ => false,
        };
        assert!(corrupt(kv.keys(&u("*"), 0.0)));
        assert!(corrupt(kv.keys(&u("workflow:state:*"), 0.0)));
        assert!(corrupt(kv.keys(&u("workflow:*"), 0.0)));
        // names that cannot hold a match are not read
        assert_eq!(
            kv.keys(&u("workflow:cache:*"), 0.0)?,
            vec![u("workflow:cache:a")]
        );
        assert_eq!(kv.keys(&u("pl*"), 0.0)?, vec![u("plain")]);
        // a file that holds another key is corrupt for keys() as for get()
        fs::copy(dir.join(kv.name(&u("plain"))), dir.join("other.kv.json"))?;
        assert!(matches!(
            kv.keys(&u("o*"), 0.0),
            Err(PersistError::Corrupt { location, .. }) if location == "other.kv.json"
        ));
        // delete removes a corrupt file and says something was removed
        assert!(wait(|done| kv.delete(&state, 0.0, done))?);
        assert!(!dir.join(&state_file).exists());
        assert!(wait(|done| kv.delete(&u("other"), 0.0, done))?);
        assert!(!wait(|done| kv.delete(&u("other"), 0.0, done))?);
        let mut all = kv.keys(&u("*"), 0.0)?;
        all.sort();
        assert_eq!(all, vec![u("plain"), u("workflow:cache:a")]);
        fs::remove_dir_all(&dir)?;
        Ok(())
    }
}
