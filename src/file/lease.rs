//! Run leases (awaitly's `WorkflowLock`) on a file-store directory. Pure
//! Rust, injected clock.
//!
//! Scheme: one lease record per (prefix, id) in `<dir>/.awaitly-leases/`,
//! holding `{"token","clock","expiresAt"}`. Every decision (acquire, release,
//! renew) is taken while holding an exclusive `flock` on
//! `<dir>/.awaitly-leases/.lock` (and, inside one process, a mutex: a flock
//! belongs to an open file, not to a thread): read the record, decide, write
//! the new record to `.tmp` and rename it over the old one (or unlink it),
//! unlock. The lock dies with its holder, so a SIGKILLed process never wedges
//! the directory, and a rename is atomic, so a record is never torn. The
//! single `.tmp` is safe because only the lock holder writes it.
//!
//! Fenced writes (a snapshot save or delete by the store holding the run's
//! lease): under the same lock, the record is checked (this token, not
//! expired), the store's write is started and waited for, then the lock is
//! released. A lost lease writes nothing (`ERR_LEASE_LOST`), and a takeover
//! waits for a write in progress.
//!
//! No fsync: a lease only matters while its holder's host is up, and a host
//! crash kills every holder on it (the record from before the crash then
//! belongs to another boot, see below, and is expired).
//!
//! One clock judges expiry: [`HostClock`], this host's CLOCK_BOOTTIME on
//! Linux (monotonic, shared by every process of the host, not moved by NTP or
//! by setting the date), tagged with the boot id, so a record written before
//! a reboot is expired. Elsewhere the wall clock (tag `realtime`). Processes
//! on several hosts sharing a network file system do NOT agree on either
//! clock (nor, on many, on flock): use the Redis store there.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::error::{PersistError, Result};
use crate::file::name::Naming;
use crate::json_string::quote_utf16;
#[cfg(test)]
use crate::token::new_token;

/// The clock leases are judged by: a tag naming the clock (records written
/// under another tag are expired) and its reading in ms.
pub trait LeaseClock: Send + Sync {
    fn tag(&self) -> &str;
    fn now_ms(&self) -> u64;
}

/// This host's clock (see the module docs).
pub struct HostClock {
    tag: String,
}

impl HostClock {
    pub fn new() -> Self {
        #[cfg(target_os = "linux")]
        {
            if let Ok(id) = fs::read_to_string("/proc/sys/kernel/random/boot_id") {
                return HostClock {
                    tag: format!("boottime:{}", id.trim()),
                };
            }
        }
        HostClock {
            tag: "realtime".into(),
        }
    }
}

impl Default for HostClock {
    fn default() -> Self {
        Self::new()
    }
}

impl LeaseClock for HostClock {
    fn tag(&self) -> &str {
        &self.tag
    }

    fn now_ms(&self) -> u64 {
        #[cfg(target_os = "linux")]
        if self.tag.starts_with("boottime:") {
            let mut ts = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: `ts` is a valid timespec we own.
            if unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &mut ts) } == 0 {
                return ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000;
            }
        }
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }
}

#[derive(Serialize, Deserialize)]
struct Record {
    token: String,
    clock: String,
    #[serde(rename = "expiresAt")]
    expires_at: u64,
    /// The lease's prefix and run id as JSON strings (every UTF-16 unit
    /// kept, lone surrogates escaped), so [`FileLeases::list`] can name it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    prefix: Option<Box<RawValue>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<Box<RawValue>>,
}

/// One record of [`FileLeases::list`].
pub struct LeaseEntry {
    /// The record's file name in `.awaitly-leases/`.
    pub file: String,
    /// The prefix and id as JSON strings (None in a record without them).
    pub prefix: Option<String>,
    pub id: Option<String>,
    /// Ms until it expires; None when it has expired (or is of another boot).
    pub remaining_ms: Option<u64>,
    /// Why the record cannot be read, when it cannot.
    pub corrupt: Option<String>,
}

fn raw_json_string(units: &[u16]) -> Result<Box<RawValue>> {
    RawValue::from_string(quote_utf16(units)).map_err(|e| PersistError::Internal(e.to_string()))
}

/// The subdirectory of a store directory that holds its leases (never a
/// store file name: those have no leading dot).
pub const LEASE_DIR: &str = ".awaitly-leases";

/// The leases of one store directory.
pub struct FileLeases {
    dir: PathBuf,
    naming: Naming,
    clock: Box<dyn LeaseClock>,
    /// The open lock file (opened on first use), guarded for this process.
    lock: Mutex<Option<File>>,
}

fn io(op: &'static str, path: &Path, e: std::io::Error) -> PersistError {
    PersistError::io(op, path.display().to_string(), e)
}

impl FileLeases {
    pub fn new(store_dir: &str, clock: Box<dyn LeaseClock>) -> Result<FileLeases> {
        Ok(FileLeases {
            dir: Path::new(store_dir).join(LEASE_DIR),
            naming: Naming::new(".lease")?,
            clock,
            lock: Mutex::new(None),
        })
    }

    /// The record file of `id` under `prefix`: the key `<len(prefix)>:<prefix><id>`
    /// (injective), named by the store's key-to-file scheme.
    fn record_path(&self, prefix: &[u16], id: &[u16]) -> PathBuf {
        let mut key: Vec<u16> = format!("{}:", prefix.len()).encode_utf16().collect();
        key.extend_from_slice(prefix);
        key.extend_from_slice(id);
        self.dir.join(self.naming.names(&key).primary)
    }

    /// Run `f` holding the directory's lease lock.
    fn locked<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let mut guard = self
            .lock
            .lock()
            .map_err(|_| PersistError::Internal("lease lock poisoned".into()))?;
        if guard.is_none() {
            fs::create_dir_all(&self.dir).map_err(|e| io("mkdir", &self.dir, e))?;
            let p = self.dir.join(".lock");
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&p)
                .map_err(|e| io("open", &p, e))?;
            *guard = Some(file);
        }
        let file = guard
            .as_ref()
            .ok_or_else(|| PersistError::Internal("lease lock file missing".into()))?;
        file.lock().map_err(|e| io("flock", &self.dir, e))?;
        let out = f();
        let _ = file.unlock();
        out
    }

    fn read(&self, path: &Path) -> Result<Option<Record>> {
        let mut text = String::new();
        match File::open(path) {
            Ok(mut f) => f
                .read_to_string(&mut text)
                .map_err(|e| io("read", path, e))?,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io("open", path, e)),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| PersistError::corrupt(path.display().to_string(), e.to_string()))
    }

    fn write(&self, path: &Path, rec: &Record) -> Result<()> {
        let tmp = self.dir.join(".tmp");
        let text = serde_json::to_vec(rec).map_err(|e| PersistError::Internal(e.to_string()))?;
        let mut f = File::create(&tmp).map_err(|e| io("create", &tmp, e))?;
        f.write_all(&text).map_err(|e| io("write", &tmp, e))?;
        drop(f);
        fs::rename(&tmp, path).map_err(|e| io("rename", path, e))
    }

    /// Is `rec` held now (by anyone)?
    fn live(&self, rec: &Record) -> bool {
        rec.clock == self.clock.tag() && rec.expires_at > self.clock.now_ms()
    }

    /// Every lease record of the directory, live or expired, read without
    /// the lock (records are replaced by rename, so never seen torn). A
    /// record that cannot be read is listed with `corrupt` set.
    pub fn list(&self) -> Result<Vec<LeaseEntry>> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io("readdir", &self.dir, e)),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| io("readdir", &self.dir, e))?;
            let file = entry.file_name().to_string_lossy().into_owned();
            if file.starts_with('.') || !file.ends_with(".lease") {
                continue; // the lock file and the temporary
            }
            let (rec, corrupt) = match self.read(&entry.path()) {
                Ok(Some(r)) => (Some(r), None),
                Ok(None) => continue, // released since listed
                Err(e) => (None, Some(e.to_string())),
            };
            out.push(LeaseEntry {
                file,
                prefix: rec
                    .as_ref()
                    .and_then(|r| r.prefix.as_ref().map(|p| p.get().to_owned())),
                id: rec
                    .as_ref()
                    .and_then(|r| r.id.as_ref().map(|p| p.get().to_owned())),
                remaining_ms: rec.as_ref().and_then(|r| self.remaining(r)),
                corrupt,
            });
        }
        Ok(out)
    }

    /// Remove the lease of `id` under `prefix` whoever holds it (an
    /// operator's release of a dead worker's lease). Whether a live lease
    /// was removed; an expired record is removed too.
    pub fn evict(&self, prefix: &[u16], id: &[u16]) -> Result<bool> {
        let path = self.record_path(prefix, id);
        self.locked(|| {
            let rec = match self.read(&path) {
                Ok(Some(r)) => Some(r),
                Ok(None) => return Ok(false),
                Err(PersistError::Corrupt { .. }) => None,
                Err(e) => return Err(e),
            };
            fs::remove_file(&path).map_err(|e| io("unlink", &path, e))?;
            Ok(rec.is_some_and(|r| self.live(&r)))
        })
    }

    fn remaining(&self, rec: &Record) -> Option<u64> {
        let now = self.clock.now_ms();
        (rec.clock == self.clock.tag() && rec.expires_at > now).then(|| rec.expires_at - now)
    }

    /// Decide `ops` in order, holding the directory's lease lock once for
    /// all of them; one result per op (a failed op does not stop the others).
    /// A fenced op whose lease `token` still holds starts its write with
    /// `write` (the store's own write path); every write started is waited
    /// for before the lock is released (one group commit for the batch).
    pub fn exec(
        &self,
        ops: &[FileLeaseOp],
        write: &dyn Fn(&FileLeaseOp) -> Pending,
    ) -> Result<Vec<Result<bool>>> {
        self.locked(|| {
            let mut out = Vec::with_capacity(ops.len());
            let mut started = Vec::new();
            for (i, op) in ops.iter().enumerate() {
                out.push(match op.kind {
                    LeaseKind::FencedSet | LeaseKind::FencedDelete => match self.holds(op) {
                        Ok(true) => {
                            started.push((i, write(op)));
                            Ok(true)
                        }
                        Ok(false) => Err(PersistError::lease_lost()),
                        Err(e) => Err(e),
                    },
                    _ => self.decide(op),
                });
            }
            for (i, wait) in started {
                if let Err(e) = wait() {
                    out[i] = Err(e);
                }
            }
            Ok(out)
        })
    }

    /// Does `op.token` hold the lease of `op`'s id now?
    fn holds(&self, op: &FileLeaseOp) -> Result<bool> {
        let path = self.record_path(&op.prefix, &op.id);
        Ok(self
            .read(&path)?
            .is_some_and(|r| r.token == op.token && self.live(&r)))
    }

    fn decide(&self, op: &FileLeaseOp) -> Result<bool> {
        let path = self.record_path(&op.prefix, &op.id);
        let held = self.read(&path)?;
        match op.kind {
            // taken if nobody holds it (absent or expired)
            LeaseKind::Acquire { ttl_ms } => {
                if held.as_ref().is_some_and(|r| self.live(r)) {
                    return Ok(false);
                }
                let rec = Record {
                    token: op.token.clone(),
                    clock: self.clock.tag().into(),
                    expires_at: self.clock.now_ms().saturating_add(ttl_ms),
                    prefix: Some(raw_json_string(&op.prefix)?),
                    id: Some(raw_json_string(&op.id)?),
                };
                self.write(&path, &rec)?;
                Ok(true)
            }
            // dropped if `token` holds it; an expired lease was no longer
            // ours: the record goes, the answer is false (lost)
            LeaseKind::Release => match held {
                Some(rec) if rec.token == op.token => {
                    fs::remove_file(&path).map_err(|e| io("unlink", &path, e))?;
                    Ok(self.live(&rec))
                }
                _ => Ok(false),
            },
            // extended if `token` holds it and it has not expired
            LeaseKind::Renew { ttl_ms } => match held {
                Some(mut rec) if rec.token == op.token && self.live(&rec) => {
                    rec.expires_at = self.clock.now_ms().saturating_add(ttl_ms);
                    self.write(&path, &rec)?;
                    Ok(true)
                }
                _ => Ok(false),
            },
            // decided in `exec`, which starts their writes
            LeaseKind::FencedSet | LeaseKind::FencedDelete => Err(PersistError::Internal(
                "lease: a fenced write outside exec".into(),
            )),
        }
    }
}

/// What a [`FileLeaseOp`] does.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LeaseKind {
    Acquire {
        ttl_ms: u64,
    },
    Release,
    Renew {
        ttl_ms: u64,
    },
    /// Write the snapshot `prefix + id` (to `value`) if `token` holds the lease.
    FencedSet,
    /// Delete the snapshot `prefix + id` if `token` holds the lease.
    FencedDelete,
}

/// One lease decision: the lease of `id` under `prefix` (UTF-16), by
/// `token`; `value` is the snapshot text of a fenced set (else empty).
#[derive(Debug, Clone, PartialEq)]
pub struct FileLeaseOp {
    pub kind: LeaseKind,
    pub prefix: Vec<u16>,
    pub id: Vec<u16>,
    pub token: String,
    pub value: Vec<u16>,
}

/// A fenced write started under the lease lock: waits for it, its outcome.
pub type Pending = Box<dyn FnOnce() -> Result<()> + Send>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    struct Manual(Arc<AtomicU64>, &'static str);
    impl LeaseClock for Manual {
        fn tag(&self) -> &str {
            self.1
        }
        fn now_ms(&self) -> u64 {
            self.0.load(Ordering::SeqCst)
        }
    }

    fn tmpdir(tag: &str) -> String {
        let p = std::env::temp_dir().join(format!(
            "awaitly-lease-test-{tag}-{}-{}",
            std::process::id(),
            new_token().unwrap_or_default()
        ));
        p.display().to_string()
    }

    fn u(s: &str) -> Vec<u16> {
        s.encode_utf16().collect()
    }

    fn op(kind: LeaseKind, p: &[u16], id: &[u16], token: &str) -> FileLeaseOp {
        FileLeaseOp {
            kind,
            prefix: p.to_vec(),
            id: id.to_vec(),
            token: token.into(),
            value: Vec::new(),
        }
    }

    fn no_write(_: &FileLeaseOp) -> Pending {
        Box::new(|| Err(PersistError::Internal("no write expected".into())))
    }

    impl FileLeases {
        fn one(&self, o: FileLeaseOp) -> Result<bool> {
            self.exec(&[o], &no_write)?
                .pop()
                .unwrap_or_else(|| Err(PersistError::Internal("no result".into())))
        }
        fn acquire(&self, p: &[u16], id: &[u16], token: &str, ttl_ms: u64) -> Result<bool> {
            self.one(op(LeaseKind::Acquire { ttl_ms }, p, id, token))
        }
        fn release(&self, p: &[u16], id: &[u16], token: &str) -> Result<bool> {
            self.one(op(LeaseKind::Release, p, id, token))
        }
        fn renew(&self, p: &[u16], id: &[u16], token: &str, ttl_ms: u64) -> Result<bool> {
            self.one(op(LeaseKind::Renew { ttl_ms }, p, id, token))
        }
    }

    fn leases(dir: &str, tag: &'static str) -> (FileLeases, Arc<AtomicU64>) {
        let t = Arc::new(AtomicU64::new(1_000));
        let l = FileLeases::new(dir, Box::new(Manual(Arc::clone(&t), tag)));
        (l.unwrap_or_else(|e| panic!("{e}")), t)
    }

    #[test]
    fn acquire_release_renew_expire_with_a_manual_clock() -> Result<()> {
        let dir = tmpdir("basic");
        let (l, t) = leases(&dir, "test");
        let (p, id) = (u("pre:"), u("wf-1"));
        assert!(l.acquire(&p, &id, "A", 100)?);
        assert!(!l.acquire(&p, &id, "B", 100)?, "held: nobody else");
        assert!(!l.release(&p, &id, "B")?, "foreign token never releases");
        assert!(!l.renew(&p, &id, "B", 100)?, "foreign token never renews");
        t.fetch_add(60, Ordering::SeqCst);
        assert!(l.renew(&p, &id, "A", 100)?, "owner renews");
        t.fetch_add(60, Ordering::SeqCst); // 120 after acquire, 60 after renew
        assert!(!l.acquire(&p, &id, "B", 100)?, "renewed lease still held");
        t.fetch_add(41, Ordering::SeqCst); // renewal expired
        assert!(
            !l.renew(&p, &id, "A", 100)?,
            "an expired lease is not renewed"
        );
        assert!(l.acquire(&p, &id, "B", 100)?, "expired: taken over");
        assert!(!l.release(&p, &id, "A")?, "stale token never releases");
        assert!(l.release(&p, &id, "B")?);
        assert!(l.acquire(&p, &id, "C", 100)?, "released: free");
        let _ = fs::remove_dir_all(&dir);
        Ok(())
    }

    #[test]
    fn one_batch_decides_in_order_and_a_bad_record_fails_only_its_op() -> Result<()> {
        let dir = tmpdir("batch");
        let (l, _) = leases(&dir, "test");
        let (p, a, b) = (u("p"), u("a"), u("b"));
        assert!(l.acquire(&p, &u("bad"), "Z", 100)?);
        let bad = l.record_path(&p, &u("bad"));
        fs::write(&bad, b"garbage").map_err(|e| io("write", &bad, e))?;
        let r = l.exec(
            &[
                op(LeaseKind::Acquire { ttl_ms: 100 }, &p, &a, "A"),
                op(LeaseKind::Acquire { ttl_ms: 100 }, &p, &a, "B"),
                op(LeaseKind::Acquire { ttl_ms: 100 }, &p, &u("bad"), "B"),
                op(LeaseKind::Renew { ttl_ms: 100 }, &p, &a, "A"),
                op(LeaseKind::Release, &p, &a, "A"),
                op(LeaseKind::Acquire { ttl_ms: 100 }, &p, &a, "B"),
                op(LeaseKind::Acquire { ttl_ms: 100 }, &p, &b, "B"),
            ],
            &no_write,
        )?;
        let codes: Vec<std::result::Result<bool, &str>> = r
            .iter()
            .map(|x| x.as_ref().map(|b| *b).map_err(|e| e.code()))
            .collect();
        assert_eq!(
            codes,
            [
                Ok(true),
                Ok(false),
                Err("ERR_CORRUPT"),
                Ok(true),
                Ok(true),
                Ok(true),
                Ok(true)
            ]
        );
        let _ = fs::remove_dir_all(&dir);
        Ok(())
    }

    #[test]
    fn prefixes_and_ids_never_share_a_record() -> Result<()> {
        let dir = tmpdir("scope");
        let (l, _) = leases(&dir, "test");
        assert!(l.acquire(&u("a:"), &u("b:x"), "A", 100)?);
        assert!(l.acquire(&u("a:b:"), &u("x"), "B", 100)?);
        assert!(l.acquire(&u(""), &u("a:b:x"), "C", 100)?);
        assert!(l.acquire(&u("a:"), &u("b:x\u{0}"), "D", 100)?);
        let _ = fs::remove_dir_all(&dir);
        Ok(())
    }

    #[test]
    fn another_clock_tag_means_expired_and_garbage_is_corrupt() -> Result<()> {
        let dir = tmpdir("boot");
        let (before, _) = leases(&dir, "boot-1");
        assert!(before.acquire(&u("p"), &u("i"), "A", 1_000_000)?);
        // after a reboot (another boot id) every old lease is dead
        let (after, _) = leases(&dir, "boot-2");
        assert!(after.acquire(&u("p"), &u("i"), "B", 1_000)?);
        let path = after.record_path(&u("p"), &u("i"));
        fs::write(&path, b"{not json").map_err(|e| io("write", &path, e))?;
        let e = after.acquire(&u("p"), &u("i"), "C", 1_000).err();
        assert_eq!(e.map(|e| e.code()), Some("ERR_CORRUPT"));
        let _ = fs::remove_dir_all(&dir);
        Ok(())
    }

    #[test]
    fn threads_racing_never_share_a_lease() -> Result<()> {
        let dir = tmpdir("race");
        let (l, _) = leases(&dir, "test");
        let l = Arc::new(l);
        let wins = Arc::new(AtomicU64::new(0));
        let hs: Vec<_> = (0..8)
            .map(|i| {
                let (l, wins) = (Arc::clone(&l), Arc::clone(&wins));
                std::thread::spawn(move || {
                    if let Ok(true) = l.acquire(&u("p"), &u("same"), &format!("T{i}"), 1_000_000) {
                        wins.fetch_add(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for h in hs {
            let _ = h.join();
        }
        assert_eq!(wins.load(Ordering::SeqCst), 1);
        let _ = fs::remove_dir_all(&dir);
        Ok(())
    }

    #[test]
    fn host_clock_moves_forward_and_tokens_differ() -> Result<()> {
        let c = HostClock::new();
        let a = c.now_ms();
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert!(c.now_ms() >= a + 4);
        #[cfg(target_os = "linux")]
        assert!(c.tag().starts_with("boottime:"), "{}", c.tag());
        let (t1, t2) = (new_token()?, new_token()?);
        assert_eq!(t1.len(), 32);
        assert_ne!(t1, t2);
        Ok(())
    }

    #[test]
    fn fenced_writes_start_only_for_the_live_holder_and_finish_under_the_lock() -> Result<()> {
        let dir = tmpdir("fenced");
        let (l, t) = leases(&dir, "test");
        let l = Arc::new(l);
        let (p, id) = (u("p:"), u("run"));
        let written = Arc::new(Mutex::new(Vec::<String>::new()));
        let write = {
            let (l, written) = (Arc::clone(&l), Arc::clone(&written));
            move |o: &FileLeaseOp| -> Pending {
                let (l, written, o) = (Arc::clone(&l), Arc::clone(&written), o.clone());
                Box::new(move || {
                    // waited for under the lease lock: this thread holds it
                    // (the process mutex is taken), so no takeover can interleave
                    assert!(l.lock.try_lock().is_err(), "the lease lock is held");
                    let what = match o.kind {
                        LeaseKind::FencedSet => String::from_utf16_lossy(&o.value),
                        _ => "delete".into(),
                    };
                    written
                        .lock()
                        .map_err(|_| PersistError::Internal("poisoned".into()))?
                        .push(what);
                    Ok(())
                })
            }
        };
        let set = |token: &str, v: &str| FileLeaseOp {
            value: u(v),
            ..op(LeaseKind::FencedSet, &p, &id, token)
        };
        let codes = |r: Vec<Result<bool>>| -> Vec<std::result::Result<bool, &'static str>> {
            r.iter()
                .map(|x| x.as_ref().map(|b| *b).map_err(|e| e.code()))
                .collect()
        };
        assert!(l.acquire(&p, &id, "A", 100)?);
        let r = l.exec(
            &[
                set("A", "a1"),
                set("B", "b1"),
                op(LeaseKind::FencedDelete, &p, &id, "A"),
            ],
            &write,
        )?;
        assert_eq!(codes(r), [Ok(true), Err("ERR_LEASE_LOST"), Ok(true)]);
        t.fetch_add(150, Ordering::SeqCst); // expired, nobody took it
        assert_eq!(
            codes(l.exec(&[set("A", "a2")], &write)?),
            [Err("ERR_LEASE_LOST")]
        );
        assert!(l.acquire(&p, &id, "B", 100)?);
        assert_eq!(
            codes(l.exec(&[set("A", "a3"), set("B", "b2")], &write)?),
            [Err("ERR_LEASE_LOST"), Ok(true)]
        );
        // a failed write is that op's error
        let failing = |_: &FileLeaseOp| -> Pending {
            Box::new(|| Err(PersistError::Store("disk full".into())))
        };
        assert_eq!(
            codes(l.exec(&[set("B", "b3")], &failing)?),
            [Err("ERR_STORE")]
        );
        let got = written
            .lock()
            .map_err(|_| PersistError::Internal("poisoned".into()))?
            .clone();
        assert_eq!(got, ["a1", "delete", "b2"]);
        let _ = fs::remove_dir_all(&dir);
        Ok(())
    }

    #[test]
    fn list_names_each_lease_and_evict_removes_whoever_holds_it() -> Result<()> {
        let dir = tmpdir("list");
        let (l, t) = leases(&dir, "test");
        let odd: Vec<u16> = vec![0x77, 0xD800, 0x22]; // w, a lone surrogate, a quote
        assert!(l.acquire(&u("p:"), &odd, "A", 100)?);
        assert!(l.acquire(&u("p:"), &u("short"), "B", 10)?);
        t.fetch_add(20, Ordering::SeqCst);
        let mut got = l.list()?;
        got.sort_by_key(|e| e.remaining_ms);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].id.as_deref(), Some("\"short\""));
        assert_eq!(got[0].remaining_ms, None, "expired");
        assert_eq!(got[1].id.as_deref(), Some("\"w\\ud800\\\"\""));
        assert_eq!(got[1].prefix.as_deref(), Some("\"p:\""));
        assert_eq!(got[1].remaining_ms, Some(80));
        // a corrupt record is listed, not skipped
        let bad = Path::new(&dir).join(LEASE_DIR).join("x.lease");
        fs::write(&bad, b"{nope").map_err(|e| io("write", &bad, e))?;
        assert!(l
            .list()?
            .iter()
            .any(|e| e.file == "x.lease" && e.corrupt.is_some()));
        assert!(l.evict(&u("p:"), &odd)?, "a live lease of another token");
        assert!(
            !l.evict(&u("p:"), &u("short"))?,
            "expired: removed, not live"
        );
        assert!(!l.evict(&u("p:"), &u("none"))?);
        assert!(l.acquire(&u("p:"), &odd, "C", 100)?, "free again");
        assert_eq!(l.list()?.iter().filter(|e| e.corrupt.is_none()).count(), 1);
        let _ = fs::remove_dir_all(&dir);
        Ok(())
    }
}
