//! Temporaries of the file store: every write first goes to its own file
//! `.awaitly-tmp.<pid>.<nonce>.<n>` in the target's directory (created
//! exclusively, or a pooled replaced file overwritten in place), which the
//! committer then renames over the target. Also: creating the directory and
//! removing the temporaries of processes that are gone.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use crate::error::Result;
use crate::file::name::{is_temp, temp_pid, TEMP_PREFIX};
use crate::file::platform::{io_err, open_exclusive, process_alive};

/// Temporaries of live processes younger than this are left alone by `init`.
const STALE_TEMP: Duration = Duration::from_secs(3600);

static TEMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// Create the directory (and parents) and remove temporaries left by
/// processes that are gone (or older than [`STALE_TEMP`]); the count removed.
pub(super) fn init_dir(dir: &Path) -> Result<u32> {
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

/// A write's temporary: open until the data sync, then closed.
pub(super) struct Temp {
    pub(super) path: PathBuf,
    pub(super) file: Option<File>,
    /// A reused file: its data is always synced before the rename (even for
    /// a non-durable write), so its old blocks can never surface.
    pub(super) reused: bool,
}

/// Write `data` to a temporary: a recycled one (a pooled replaced file, see
/// `reuse`) when given and still exclusively ours, else a new file.
pub(super) fn write_temp(dir: &Path, data: &[u8], recycled: Option<PathBuf>) -> Result<Temp> {
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
pub(super) fn temp_path(dir: &Path) -> PathBuf {
    let n = TEMP_SEQ.fetch_add(1, Ordering::Relaxed);
    dir.join(format!(
        "{TEMP_PREFIX}{}.{}.{n}",
        std::process::id(),
        temp_nonce()
    ))
}
