//! A directory of cache files, as callers see it: [`FileDir`] reads a key's
//! file directly and queues writes, deletes, clears and quarantines for the
//! directory's committer thread (see `commit`), which calls each operation's
//! [`Done`] once it is durable. [`DrainHandle`] empties the reuse pool at
//! process exit and worker teardown. Pure Rust: no napi types; completions
//! are plain callbacks.
//!
//! Reads are safe against the in-place reuse of replaced files (see `reuse`),
//! also by writers in other processes: a read that saw its file move or
//! change, or that was slow enough to overlap a reuse, is done again.

use std::fs::{self, File};
use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::error::{PersistError, Result};
pub use crate::file::commit::Done;
use crate::file::commit::{committer, ensure_ready, lock, lock_map, Op, Queue, Shared};
use crate::file::name::{FileNames, Naming};
use crate::file::platform::{identity, io_err};
use crate::file::reuse::REUSE_GRACE;
use crate::file::temp::init_dir;

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
                ready: AtomicBool::new(false),
                epoch: AtomicU64::new(0),
                readers: Mutex::new(Default::default()),
                reuse: AtomicBool::new(true),
                exchange: AtomicBool::new(cfg!(target_os = "linux")),
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

    pub(super) fn read_name(&self, name: &str) -> Result<Option<Found>> {
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

    /// Like [`FileDir::delete`], with `check` run by the committer just
    /// before unlinking and ANDed into the result.
    pub(super) fn delete_checked(
        &self,
        names: Vec<String>,
        check: Box<dyn FnOnce() -> bool + Send>,
        done: Done<bool>,
    ) {
        self.push(Op::Delete {
            names,
            check: Some(check),
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
                    op.fail(PersistError::Internal(format!("spawn committer: {e}")));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::file::name::{is_temp, TEMP_PREFIX};
    use crate::file::testing::{tmpdir, u, wait, TR};
    use std::sync::mpsc;

    /// Two handles on one directory (as two processes have) writing the same
    /// keys, with reuse: no file ever gets a second name, so no key can end
    /// up sharing another key's file (see `commit::replace`: only files the
    /// exchange left with one link are reused).
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
}
