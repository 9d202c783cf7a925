//! Helpers for the unit tests of `dir` and `kv`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use crate::error::{PersistError, Result};
use crate::file::dir::Done;

pub(super) type TR = std::result::Result<(), Box<dyn std::error::Error>>;

static SEQ: AtomicU64 = AtomicU64::new(0);

/// A fresh, absent directory under the system temp dir.
pub(super) fn tmpdir(tag: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!(
        "awaitly-fs-test-{tag}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&p);
    p
}

pub(super) fn u(s: &str) -> Vec<u16> {
    s.encode_utf16().collect()
}

/// Run an operation and wait for its completion.
pub(super) fn wait<T: Send + 'static>(f: impl FnOnce(Done<T>)) -> Result<T> {
    let (tx, rx) = mpsc::channel();
    f(Box::new(move |r| {
        let _ = tx.send(r);
    }));
    rx.recv_timeout(Duration::from_secs(10))
        .map_err(|e| PersistError::Internal(e.to_string()))?
}
