//! Files: the file cache's and the file store's storage, and run leases on a
//! file-store directory.
//!
//! - `name`: key → file-name encoding;
//! - `dir`: a directory handle (`FileDir`): reads, queued writes;
//! - `commit`: the group-commit committer behind it;
//! - `temp`: temporaries (naming, writing, stale cleanup);
//! - `reuse`: the pool of replaced files reused as temporaries;
//! - `platform`: system-call shims (renameat2, syncfs, …);
//! - `kv`: the key-value envelope store (`KvFiles`);
//! - `lease`: run leases;
//! - `binding`: the thin napi layer.

mod binding;
mod commit;
pub mod dir;
pub mod kv;
pub mod lease;
pub mod name;
mod platform;
mod reuse;
mod temp;
#[cfg(test)]
mod testing;
