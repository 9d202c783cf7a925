//! Platform shims for the file store: the few system calls std does not
//! offer (`renameat2` exchange / no-replace, `syncfs`, `utimensat`,
//! `kill(pid, 0)`, `O_NOFOLLOW`), each with its fallback on other systems,
//! plus the file identity token reads compare, the `io::Error` wrapper and
//! the small thread fan-out the committer and the reaper share. Nothing here knows about
//! batches, pools or keys.

use std::fs::{self, File, OpenOptions};
#[cfg(target_os = "linux")]
use std::io::ErrorKind;
use std::path::Path;
#[cfg(not(unix))]
use std::time::SystemTime;

use crate::error::PersistError;

/// A token that changes when the file at a path is replaced or rewritten
/// (device, inode, size, mtime): reads compare it before and after, and
/// quarantine moves a file only if it is still the one read.
#[cfg(unix)]
pub(super) fn identity(meta: &fs::Metadata) -> String {
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
pub(super) fn identity(meta: &fs::Metadata) -> String {
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{}:{}", meta.len(), mtime)
}

/// Whether a process with this pid exists (for stale temporaries).
#[cfg(unix)]
pub(super) fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: kill with signal 0 only checks for existence/permission.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(not(unix))]
pub(super) fn process_alive(_pid: u32) -> bool {
    true
}

/// Make the data of every file in `files` durable with as few syncs as possible.
pub(super) fn sync_data(dir: &Path, files: &[&File]) -> std::io::Result<()> {
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
pub(super) fn touch(path: &Path) {
    use std::os::unix::ffi::OsStrExt;
    if let Ok(c) = std::ffi::CString::new(path.as_os_str().as_bytes()) {
        // SAFETY: a valid NUL-terminated path; NULL times mean "now".
        unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), std::ptr::null(), 0) };
    }
}

#[cfg(not(unix))]
pub(super) fn touch(_path: &Path) {}

/// Make a directory's entries (renames, unlinks) durable.
pub(super) fn sync_dir(dir: &Path) -> std::io::Result<()> {
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

/// Open a pooled file for overwriting, only if it is still what the pool
/// took: a regular file (no symlink is followed) with no other name.
pub(super) fn open_exclusive(path: &Path) -> std::io::Result<File> {
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

/// The number of names (hard links) a file has.
#[cfg(unix)]
pub(super) fn links(meta: &fs::Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt;
    meta.nlink()
}

#[cfg(not(unix))]
pub(super) fn links(_meta: &fs::Metadata) -> u64 {
    1
}

/// `renameat2(2)` with `RENAME_EXCHANGE` or `RENAME_NOREPLACE`.
#[cfg(target_os = "linux")]
pub(super) fn renameat2(from: &Path, to: &Path, flags: libc::c_uint) -> std::io::Result<()> {
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

/// An I/O error naming the operation and the path.
pub(super) fn io_err(op: &'static str, path: &Path, e: std::io::Error) -> PersistError {
    PersistError::io(op, path.display().to_string(), e)
}

/// Most threads one batch uses for its file operations. Creating, renaming
/// over and unlinking files mostly wait on the file system's journal (ext4
/// frees the replaced file's blocks inside `rename`), so they overlap well.
const IO_THREADS: usize = 8;

/// Run `f` on every item, on up to [`IO_THREADS`] scoped threads.
pub(super) fn par_each<T: Send>(items: &mut [T], f: impl Fn(&mut T) + Sync) {
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
