//! The file store's key-value layer (`KvFiles`, behind the JS file store):
//! one file per key holding the envelope `{"key","value","expiresAt"}`, key
//! and value as exact UTF-16 JSON strings; TTLs, Redis-style glob listing,
//! and the hidden owner-marker files. Built on [`FileDir`] for atomic,
//! durable writes.

use std::fs;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::error::{PersistError, Result};
use crate::file::dir::{Done, DrainHandle, FileDir};
use crate::file::name::key_hash;
use crate::file::platform::io_err;
use crate::glob;
use crate::json_string::{quote_utf16, unquote_utf16};

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
        quote_utf16(key),
        quote_utf16(value)
    )
}

/// Parse an envelope; anything else is [`PersistError::Corrupt`].
pub fn decode_entry(location: &str, text: &str) -> Result<Entry> {
    let bad = |why: &str| PersistError::corrupt(location, why);
    let env: Envelope = serde_json::from_str(text).map_err(|e| bad(&e.to_string()))?;
    let key = unquote_utf16(env.key.get()).ok_or_else(|| bad("key is not a string"))?;
    let value = unquote_utf16(env.value.get()).ok_or_else(|| bad("value is not a string"))?;
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
        self.files.delete_checked(vec![self.name(key)], check, done);
    }

    /// Record an owner marker key (a KV cache's or state persistence's, see
    /// `ownership::Owners`) as the hidden file `.awaitly-owner.<sha256>`,
    /// holding the marker key as a JSON string: no key file (never listed by
    /// `keys()`, never removed by a clear). Written like a value (atomic, and
    /// durable if the store is).
    pub fn register_owner(&self, marker: &[u16], done: Done<()>) {
        let name = format!("{OWNER_FILE_PREFIX}{}", key_hash(marker));
        let text = quote_utf16(marker);
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
            match unquote_utf16(&found.text) {
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
    use crate::file::testing::{tmpdir, u, wait, TR};

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
