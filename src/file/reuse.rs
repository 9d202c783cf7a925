//! The reuse pool of the file store: files replaced by a write are kept
//! and overwritten in place as later temporaries, so a steady stream of
//! writes allocates and frees no blocks (on ext4 both wait on the journal,
//! ~1 ms each; see benchmark/file.mjs).
//!
//! A file enters the pool only when the exchange (`renameat2(RENAME_EXCHANGE)`)
//! left it at a temporary name that no other name and no other process refers
//! to: exclusive ownership is what makes reuse safe with several writer
//! processes on one directory. A pooled file is reused only after every read
//! of this handle that might have opened it has finished (read epochs) and at
//! least [`REUSE_GRACE`] after it was replaced (readers in other processes,
//! whose reads re-check the file's identity and read again). At most
//! [`POOL_MAX`] files / [`POOL_BYTES`] are kept; the rest, and deleted keys,
//! are unlinked by the [`Reaper`]'s thread, and the pool is unlinked when the
//! handle has been idle for [`POOL_IDLE`], is dropped, or is drained.

use std::collections::VecDeque;
use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use crate::file::platform::{par_each, touch};

/// Unlinks replaced files on its own thread, off the committer's path.
pub(super) struct Reaper {
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
pub(super) const POOL_IDLE: Duration = Duration::from_millis(100);
/// Most replaced files kept for reuse, and their total size; the rest are
/// unlinked.
pub(super) const POOL_MAX: usize = 4096;
pub(super) const POOL_BYTES: u64 = 32 << 20;
/// A replaced file is reused only once no read of this handle that started
/// before it was replaced is still running, and at least this long after it
/// was replaced, so that readers in other processes, which opened it just
/// before, can finish reading the old content (our own reads are tracked,
/// and also retry when slower than half of this).
pub(super) const REUSE_GRACE: Duration = Duration::from_millis(50);

impl Reaper {
    pub(super) fn new() -> Reaper {
        Reaper {
            tx: None,
            handle: None,
            pool: VecDeque::new(),
            pool_bytes: 0,
        }
    }

    pub(super) fn send(&mut self, trash: Vec<PathBuf>) {
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
    pub(super) fn recycle(&mut self, trash: Vec<(PathBuf, u64)>, epoch: u64) {
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
    pub(super) fn take(&mut self, oldest_reader: Option<u64>) -> Option<PathBuf> {
        let front = self.pool.front()?;
        if front.since.elapsed() < REUSE_GRACE || oldest_reader.is_some_and(|r| r <= front.epoch) {
            return None;
        }
        let p = self.pool.pop_front()?;
        self.pool_bytes -= p.size;
        Some(p.path)
    }

    /// Unlink the pool and the queued files; stop the thread.
    pub(super) fn finish(&mut self) {
        let pool: Vec<PathBuf> = self.pool.drain(..).map(|p| p.path).collect();
        self.pool_bytes = 0;
        self.send(pool);
        self.tx = None;
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
