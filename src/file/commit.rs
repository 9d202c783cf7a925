//! The group-commit committer of the file store: one thread per directory
//! handle takes everything queued while the previous batch was syncing (at
//! most [`MAX_BATCH`] operations) and commits it at once:
//! 1. each write goes to its own temporary (see `temp`), in parallel;
//! 2. one data sync covers all of them (`syncfs(2)` on Linux, one
//!    `fdatasync` per file elsewhere);
//! 3. in call order, each temporary replaces its target, deletes move the
//!    key's file to a temporary name, clears remove the cache's own files,
//!    quarantines move a corrupt file aside;
//! 4. one `fsync` of the directory makes the renames and unlinks durable;
//! 5. only then is each caller told it is done.
//!
//! A crash at any instant leaves each target with its old or its new
//! content, never a torn or empty file (the replacement is atomic; the new
//! content was on disk before it). Calls of one handle are applied in call
//! order, so the last write of a key wins. With `durable = false`, steps 2
//! and 4 are skipped: still atomic against a process crash, not against
//! power loss (a reused file's data is synced anyway, so another key's old
//! blocks can never surface).
//!
//! Replacing: on Linux the temporary is *exchanged* with the target
//! (`renameat2(RENAME_EXCHANGE)`), so the target holds the new content and
//! the temporary's name holds the replaced file, which goes to the reuse pool
//! (see `reuse`). Where the exchange is not available (other systems, file
//! systems without it) the replaced file is hard-linked aside, renamed over,
//! and unlinked by the reaper: never reused, since another process may have
//! linked the same file.
//!
//! Setting `AWAITLY_FILE_TRACE` (any value) prints each batch's phase
//! timings to stderr.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fs::{self, File};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use crate::error::{PersistError, Result};
use crate::file::name::{Naming, CORRUPT_SUFFIX, MAX_NAME_BYTES};
#[cfg(target_os = "linux")]
use crate::file::platform::renameat2;
use crate::file::platform::{identity, io_err, links, par_each, sync_data, sync_dir};
use crate::file::reuse::{Reaper, POOL_IDLE};
use crate::file::temp::{init_dir, temp_path, write_temp, Temp};

/// A completion callback, called once from the committer thread.
pub type Done<T> = Box<dyn FnOnce(Result<T>) + Send>;

/// Most operations one group commit takes from the queue: each write of a
/// batch holds its temporary open until the commit, so the batch size bounds
/// the file descriptors in use (a tick may queue a hundred thousand writes).
/// The rest stay queued, in order, for the next batch.
const MAX_BATCH: usize = 512;

pub(super) enum Op {
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

impl Op {
    /// Complete the operation with `e`, unapplied.
    pub(super) fn fail(self, e: PersistError) {
        match self {
            Op::Write { done, .. } => done(Err(e)),
            Op::Delete { done, .. } => done(Err(e)),
            Op::Clear { done } => done(Err(e)),
            Op::Quarantine { done, .. } => done(Err(e)),
        }
    }
}

#[derive(Default)]
pub(super) struct Queue {
    pub(super) ops: VecDeque<Op>,
    pub(super) closed: bool,
    pub(super) running: bool,
    /// Asked by [`DrainHandle::drain`]: once the queue is empty, unlink the
    /// pool, finish the reaper and let the committer go.
    pub(super) drain: bool,
}

pub(super) struct Shared {
    pub(super) dir: PathBuf,
    pub(super) naming: Naming,
    /// Create the directory before the first write (stores have no `init`).
    pub(super) auto_init: bool,
    pub(super) ready: AtomicBool,
    /// Batch counter: bumped by the committer before each batch's renames.
    pub(super) epoch: AtomicU64,
    /// Reads in flight, by the epoch they started in (count per epoch).
    pub(super) readers: Mutex<ReaderMap>,
    /// Reuse replaced files as later temporaries (see `Reaper`); when off,
    /// replaced files are unlinked on the reaper thread.
    pub(super) reuse: AtomicBool,
    /// `renameat2(RENAME_EXCHANGE)` works here (cleared on the first
    /// EINVAL/ENOSYS); reuse needs it.
    pub(super) exchange: AtomicBool,
    pub(super) queue: Mutex<Queue>,
    pub(super) wake: Condvar,
    /// Signalled when the committer stops (`running` turns false).
    pub(super) stopped: Condvar,
}

/// Reads in flight per batch epoch (see `Shared::readers`).
pub(super) type ReaderMap = BTreeMap<u64, usize>;

pub(super) fn lock(m: &Mutex<Queue>) -> MutexGuard<'_, Queue> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub(super) fn lock_map(m: &Mutex<ReaderMap>) -> MutexGuard<'_, ReaderMap> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// `init` the directory once (for auto-init handles).
pub(super) fn ensure_ready(shared: &Shared) -> Result<()> {
    if shared.ready.load(Ordering::Acquire) {
        return Ok(());
    }
    init_dir(&shared.dir)?;
    shared.ready.store(true, Ordering::Release);
    Ok(())
}

/// The committer thread: runs batches until the queue stays empty for
/// [`POOL_IDLE`], the handle is dropped, or a drain is asked.
pub(super) fn committer(shared: Arc<Shared>) {
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

/// A replaced file set aside by [`replace`], off the callers' path: pooled
/// for reuse or unlinked by the reaper after the batch.
struct Replaced {
    path: PathBuf,
    /// Its size in bytes.
    size: u64,
    /// Exclusively ours (left by the exchange, one link): may be reused.
    reusable: bool,
}

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
    exchange: &AtomicBool,
    lanes: Vec<Vec<(String, Result<Temp>)>>,
    trash: &mut Vec<Replaced>,
) -> Vec<Result<()>> {
    struct Lane {
        jobs: Vec<(String, Result<Temp>)>,
        out: Vec<Result<()>>,
        trash: Vec<Replaced>,
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
    exchange: &AtomicBool,
) -> std::io::Result<Option<Replaced>> {
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
                    return Ok(Some(Replaced {
                        path: temp.path.clone(),
                        size: meta.len(),
                        reusable: exclusive,
                    }));
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
        Replaced {
            path: keep,
            size,
            reusable: false,
        }
    }))
}

/// One operation's phase-1 job: a write's data, the pooled file it may
/// reuse, and its temporary once written.
struct TempJob<'a> {
    data: Option<&'a [u8]>,
    recycled: Option<PathBuf>,
    temp: Option<Result<Temp>>,
}

/// A write waiting for its rename.
struct PendingWrite {
    name: String,
    durable: bool,
    done: Done<()>,
    temp: Result<Temp>,
}

/// A finished operation, waiting for the directory sync's verdict.
type Outcome = Box<dyn FnOnce(Option<PersistError>)>;

/// Phase 3 of a batch: the operations applied in call order so far.
#[derive(Default)]
struct Applied {
    outcomes: Vec<Outcome>,
    /// Writes not yet renamed: a run of writes is renamed at once.
    pending: Vec<PendingWrite>,
    replaced: Vec<Replaced>,
    /// Deleted files, moved to temporary names: unlinked by the reaper,
    /// never reused.
    removed: Vec<PathBuf>,
    need_dir_sync: bool,
}

/// Commit one batch (steps 1-5 of the module comment).
fn run_batch(shared: &Shared, batch: Vec<Op>, reaper: &mut Reaper) {
    let dir = &shared.dir;
    let trace = std::env::var_os("AWAITLY_FILE_TRACE").is_some();
    let t0 = std::time::Instant::now();
    let n_ops = batch.len();
    if shared.auto_init {
        if let Err(e) = ensure_ready(shared) {
            for op in batch {
                op.fail(e.clone());
            }
            return;
        }
    }
    let epoch = shared.epoch.fetch_add(1, Ordering::SeqCst) + 1;
    let oldest_reader = lock_map(&shared.readers).keys().next().copied();
    let reuse = shared.reuse.load(Ordering::SeqCst) && shared.exchange.load(Ordering::Relaxed);
    // 1. temporaries, in parallel
    let mut temps = write_temps(dir, &batch, || {
        if reuse {
            reaper.take(oldest_reader)
        } else {
            None
        }
    });
    let t1 = t0.elapsed();
    // 2. one data sync for the durable ones
    sync_temps(dir, &batch, &mut temps);
    let t2 = t0.elapsed();
    // 3. renames (runs of writes, in parallel by name), deletes, clears and
    //    quarantines, in call order
    let mut applied = Applied::default();
    for (op, temp) in batch.into_iter().zip(temps) {
        applied.apply(shared, op, temp);
    }
    applied.flush(shared);
    let t3 = t0.elapsed();
    // 4. one directory sync
    let dir_err = if applied.need_dir_sync {
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
    for outcome in applied.outcomes {
        outcome(dir_err.clone());
    }
    let (reusable, other): (Vec<Replaced>, Vec<Replaced>) = applied
        .replaced
        .into_iter()
        .partition(|r| reuse && r.reusable);
    reaper.recycle(
        reusable.into_iter().map(|r| (r.path, r.size)).collect(),
        epoch,
    );
    reaper.send(other.into_iter().map(|r| r.path).collect());
    reaper.send(applied.removed);
}

/// Step 1: each write's temporary, written in parallel (`recycled` gives the
/// pooled file a write may reuse). None for the other operations.
fn write_temps(
    dir: &Path,
    batch: &[Op],
    mut recycled: impl FnMut() -> Option<PathBuf>,
) -> Vec<Option<Result<Temp>>> {
    let mut jobs: Vec<TempJob> = batch
        .iter()
        .map(|op| match op {
            Op::Write { data, .. } => TempJob {
                data: Some(data.as_slice()),
                recycled: recycled(),
                temp: None,
            },
            _ => TempJob {
                data: None,
                recycled: None,
                temp: None,
            },
        })
        .collect();
    par_each(&mut jobs, |job| {
        if let Some(data) = job.data {
            job.temp = Some(write_temp(dir, data, job.recycled.take()));
        }
    });
    jobs.into_iter().map(|j| j.temp).collect()
}

/// Step 2: one data sync for the temporaries of durable writes and reused
/// files; if it fails, those writes fail. Then every temporary is closed.
fn sync_temps(dir: &Path, batch: &[Op], temps: &mut [Option<Result<Temp>>]) {
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
                *res = Err(err.clone());
            }
        }
    }
    for t in temps.iter_mut().flatten().flatten() {
        t.file = None; // close
    }
}

impl Applied {
    /// Step 3 for one operation: a write waits for the run of writes it
    /// belongs to; any other operation first renames the writes before it.
    fn apply(&mut self, shared: &Shared, op: Op, temp: Option<Result<Temp>>) {
        let dir = &shared.dir;
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
                self.pending.push(PendingWrite {
                    name,
                    durable,
                    done,
                    temp,
                });
            }
            Op::Delete { names, check, done } => {
                self.flush(shared);
                let live = check.map(|f| f()).unwrap_or(true);
                let res = self.delete(dir, names);
                self.outcomes
                    .push(finish(res.map(|removed| removed && live), done));
            }
            Op::Clear { done } => {
                self.flush(shared);
                let res = clear_dir(dir, &shared.naming);
                self.need_dir_sync |= matches!(res, Ok(n) if n > 0);
                self.outcomes.push(finish(res, done));
            }
            Op::Quarantine {
                name,
                identity: id,
                done,
            } => {
                self.flush(shared);
                let res = quarantine(dir, &name, &id);
                self.need_dir_sync |= matches!(res, Ok(Some(_)));
                self.outcomes.push(finish(res, done));
            }
        }
    }

    /// Move each of `names` to a temporary name now (cheap); the reaper
    /// frees it later. Ok(whether any existed).
    fn delete(&mut self, dir: &Path, names: Vec<String>) -> Result<bool> {
        let mut res = Ok(false);
        for name in names {
            let path = dir.join(&name);
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
                    self.removed.push(keep);
                    self.need_dir_sync = true;
                    if let Ok(any) = res.as_mut() {
                        *any = true;
                    }
                }
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => res = Err(io_err("rename", &path, e)),
            }
        }
        res
    }

    /// Rename the pending writes over their targets: grouped by name (call
    /// order kept inside each group), the groups in parallel.
    fn flush(&mut self, shared: &Shared) {
        if self.pending.is_empty() {
            return;
        }
        let mut lane_of: HashMap<String, usize> = HashMap::new();
        let mut lanes: Vec<Vec<(String, Result<Temp>)>> = Vec::new();
        let mut waiters: Vec<Vec<(bool, Done<()>)>> = Vec::new();
        for w in self.pending.drain(..) {
            let i = *lane_of.entry(w.name.clone()).or_insert_with(|| {
                lanes.push(Vec::new());
                waiters.push(Vec::new());
                lanes.len() - 1
            });
            lanes[i].push((w.name, w.temp));
            waiters[i].push((w.durable, w.done));
        }
        let results = rename_segment(&shared.dir, &shared.exchange, lanes, &mut self.replaced);
        for ((durable, done), res) in waiters.into_iter().flatten().zip(results) {
            self.need_dir_sync |= durable && res.is_ok();
            self.outcomes.push(finish(res, done));
        }
    }
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

/// Remove every file of `naming` in `dir` (not directories); the count.
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

/// Move `name` aside (see `FileDir::quarantine`) if it is still the file
/// with identity `id`.
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
        if target.len() > MAX_NAME_BYTES {
            let keep = MAX_NAME_BYTES - (target.len() - name.len());
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
