//! Key → file name, pure. Keys are JavaScript strings, handled as their exact
//! UTF-16 code units (lone surrogates included), so no two keys ever map to
//! one file.
//!
//! Naming scheme (`ext` is the cache's extension, e.g. `.json`):
//! - **Simple** key: only `[A-Za-z0-9_-]`, the name `<key><ext>` is at most
//!   255 bytes, is neither empty, `.` nor `..`, and the key is not a Windows
//!   device name (`CON`, `PRN`, `AUX`, `NUL`, `COM0-9`, `LPT0-9`, any case).
//!   Its file is `<key><ext>`, the JS module's own name, so existing caches are
//!   found and the JS module finds ours.
//! - **Any other** key: `<prefix>~<sha256><ext>`, where `sha256` is 64
//!   lowercase hex digits of SHA-256 over the key's UTF-16LE code units and
//!   `prefix` is the first 48 code units of the key with every unit outside
//!   `[A-Za-z0-9_-]` replaced by `_` (readability only). The `~` never occurs
//!   in a simple name's stem, so hashed and simple names never meet; two hashed
//!   names are equal only if their hashes are. At most 48 + 1 + 64 + 64 bytes.
//!   Only `[A-Za-z0-9_~-]` plus the extension: no separator, no NUL, no `..`,
//!   no device name, never an absolute path.
//!
//! Old-name fallback: the JS module named every key `sanitize(key)<ext>`
//! (each UTF-16 unit outside `[A-Za-z0-9_-]` replaced by `_`). Its file holds
//! only the serialized result, not the key, so content can never prove which
//! key wrote it. For a key with any character outside `[A-Za-z0-9_-]`, the
//! lossy name contains a `_` that any other key could also have produced (and
//! it is exactly the simple key `a_b`'s own file for `a:b`), so it is NEVER
//! used. For a key made only of `[A-Za-z0-9_-]` that we still hash (a device
//! name, or a name over 255 bytes), the lossy mapping is the identity and only
//! that key can have produced `<key><ext>`: that file is read when ours is
//! missing ([`FileNames::legacy`]), deleted by `deleteAsync`, never written.

use sha2::{Digest, Sha256};

use crate::error::{PersistError, Result};

/// Longest file name most file systems accept, in bytes.
pub const MAX_NAME_BYTES: usize = 255;
/// Longest extension accepted, in bytes.
pub const MAX_EXT_BYTES: usize = 64;
/// Readable prefix of a hashed name, in code units.
pub const PREFIX_UNITS: usize = 48;
/// Every temporary file starts with this (never a cache file name).
pub const TEMP_PREFIX: &str = ".awaitly-tmp.";
/// Suffix of a file moved aside because it could not be read.
pub const CORRUPT_SUFFIX: &str = ".corrupt";

const DEVICE_NAMES: [&str; 4] = ["CON", "PRN", "AUX", "NUL"];

/// The file (and, for a few simple keys, the JS module's old file) of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileNames {
    /// Where the key is read from and written to.
    pub primary: String,
    /// The JS module's name for this key, proven to belong to it (see module docs).
    pub legacy: Option<String>,
}

/// The naming scheme of one cache / store (its extension).
#[derive(Debug, Clone)]
pub struct Naming {
    ext: String,
}

fn is_simple_unit(u: u16) -> bool {
    matches!(u, 0x30..=0x39 | 0x41..=0x5a | 0x61..=0x7a | 0x5f | 0x2d)
}

fn is_simple_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// Is `stem` (ASCII) a Windows reserved device name, in any case?
pub fn is_device_name(stem: &str) -> bool {
    let up = stem.to_ascii_uppercase();
    if DEVICE_NAMES.contains(&up.as_str()) {
        return true;
    }
    let b = up.as_bytes();
    b.len() == 4 && (up.starts_with("COM") || up.starts_with("LPT")) && b[3].is_ascii_digit()
}

/// SHA-256 of the key's UTF-16LE code units, lowercase hex.
pub fn key_hash(key: &[u16]) -> String {
    let mut h = Sha256::new();
    for u in key {
        h.update(u.to_le_bytes());
    }
    let digest = h.finalize();
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push(char::from(b"0123456789abcdef"[(b >> 4) as usize]));
        out.push(char::from(b"0123456789abcdef"[(b & 15) as usize]));
    }
    out
}

impl Naming {
    /// A scheme for `ext`: a string without `/`, `\`, NUL or control
    /// characters, at most 64 bytes (TypeError otherwise).
    pub fn new(ext: &str) -> Result<Naming> {
        if ext.len() > MAX_EXT_BYTES {
            return Err(PersistError::InvalidArgument(format!(
                "extension must be at most {MAX_EXT_BYTES} bytes, got {}",
                ext.len()
            )));
        }
        if ext.chars().any(|c| c == '/' || c == '\\' || c.is_control()) {
            return Err(PersistError::InvalidArgument(
                "extension must not contain '/', '\\', NUL or control characters".into(),
            ));
        }
        Ok(Naming {
            ext: ext.to_string(),
        })
    }

    pub fn extension(&self) -> &str {
        &self.ext
    }

    /// The file names of `key` (UTF-16 code units).
    pub fn names(&self, key: &[u16]) -> FileNames {
        let all_simple = key.iter().all(|&u| is_simple_unit(u));
        if all_simple {
            // ASCII, so one byte per unit.
            let stem: String = key.iter().map(|&u| char::from(u as u8)).collect();
            let name = format!("{stem}{}", self.ext);
            let valid = !name.is_empty() && name != "." && name != "..";
            if valid && !is_device_name(&stem) && name.len() <= MAX_NAME_BYTES {
                return FileNames {
                    primary: name,
                    legacy: None,
                };
            }
            // Hashed, but the JS module's name is the key itself: only this
            // key can have written it (a device name is only safe off Windows).
            let legacy = (valid
                && name.len() <= MAX_NAME_BYTES
                && !(cfg!(windows) && is_device_name(&stem)))
            .then_some(name);
            return FileNames {
                primary: self.hashed(key),
                legacy,
            };
        }
        FileNames {
            primary: self.hashed(key),
            legacy: None,
        }
    }

    fn hashed(&self, key: &[u16]) -> String {
        let mut name = String::with_capacity(PREFIX_UNITS + 1 + 64 + self.ext.len());
        for &u in key.iter().take(PREFIX_UNITS) {
            name.push(if is_simple_unit(u) {
                char::from(u as u8)
            } else {
                '_'
            });
        }
        name.push('~');
        name.push_str(&key_hash(key));
        name.push_str(&self.ext);
        name
    }

    /// Is `file` a name this scheme produces (a simple or hashed name, or an
    /// old JS-module name of a simple key)? `clearAsync` removes only these.
    pub fn is_own(&self, file: &str) -> bool {
        let Some(stem) = file.strip_suffix(self.ext.as_str()) else {
            return false;
        };
        if file.is_empty() || file == "." || file == ".." {
            return false;
        }
        if stem.bytes().all(is_simple_byte) {
            return true;
        }
        match stem.split_once('~') {
            Some((prefix, hash)) => {
                prefix.len() <= PREFIX_UNITS
                    && prefix.bytes().all(is_simple_byte)
                    && hash.len() == 64
                    && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            }
            None => false,
        }
    }

    /// The key of a simple name (`None` for hashed names: read the file).
    pub fn simple_key(&self, file: &str) -> Option<String> {
        let stem = file.strip_suffix(self.ext.as_str())?;
        if self.is_own(file) && stem.bytes().all(is_simple_byte) {
            Some(stem.to_string())
        } else {
            None
        }
    }
}

impl Naming {
    /// Could `file` be the file of a key starting with `prefix` (UTF-16
    /// units)? For a hashed name this is judged from its readable part (the
    /// key's first [`PREFIX_UNITS`] units, sanitised): `false` only when no
    /// such key has that name. For a simple name, whether its key starts with
    /// `prefix`; `true` for any other name (it cannot be ruled out).
    pub fn may_start_with(&self, file: &str, prefix: &[u16]) -> bool {
        let Some(stem) = file.strip_suffix(self.ext.as_str()) else {
            return true;
        };
        if let Some(key) = self.simple_key(file) {
            return key.len() >= prefix.len()
                && prefix
                    .iter()
                    .zip(key.bytes())
                    .all(|(&u, b)| u == u16::from(b));
        }
        let Some((shown, _)) = stem.split_once('~') else {
            return true;
        };
        let shown = shown.as_bytes();
        for (i, &u) in prefix.iter().take(PREFIX_UNITS).enumerate() {
            // a readable part shorter than PREFIX_UNITS is the whole key
            let Some(&b) = shown.get(i) else {
                return false;
            };
            let want = if is_simple_unit(u) { u as u8 } else { b'_' };
            if b != want {
                return false;
            }
        }
        true
    }
}

/// Is `file` one of our temporary files?
pub fn is_temp(file: &str) -> bool {
    file.starts_with(TEMP_PREFIX)
}

/// The process id recorded in a temporary file name (`.awaitly-tmp.<pid>.<n>`).
pub fn temp_pid(file: &str) -> Option<u32> {
    file.strip_prefix(TEMP_PREFIX)?
        .split('.')
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn u(s: &str) -> Vec<u16> {
        s.encode_utf16().collect()
    }

    fn json() -> Naming {
        Naming::new(".json").expect("ext")
    }

    fn assert_safe(name: &str) {
        assert!(!name.is_empty() && name != "." && name != "..", "{name}");
        assert!(name.len() <= MAX_NAME_BYTES, "{} bytes", name.len());
        assert!(!name.contains('/') && !name.contains('\\') && !name.contains('\0'));
        assert!(!name.contains(".."), "{name}");
        assert!(!name.starts_with('.') || name == ".json");
        let stem = name.split('.').next().unwrap_or("");
        assert!(!is_device_name(stem), "{name}");
    }

    #[test]
    fn simple_keys_keep_the_js_module_name() {
        let n = json();
        assert_eq!(n.names(&u("user-1_A")).primary, "user-1_A.json");
        assert_eq!(n.names(&u("user-1_A")).legacy, None);
        assert_eq!(n.names(&u("")).primary, ".json");
        assert!(n.is_own("user-1_A.json"));
        assert_eq!(n.simple_key("user-1_A.json").as_deref(), Some("user-1_A"));
    }

    #[test]
    fn lossy_keys_get_distinct_hashed_names() {
        let n = json();
        let names: Vec<String> = ["user:1", "user/1", "user.1", "user_1", "user\\1", "user 1"]
            .iter()
            .map(|k| n.names(&u(k)).primary)
            .collect();
        let set: HashSet<&String> = names.iter().collect();
        assert_eq!(set.len(), names.len());
        assert_eq!(names[3], "user_1.json");
        assert!(names[0].starts_with("user_1~") && names[0].ends_with(".json"));
        for name in &names {
            assert_safe(name);
            assert!(n.is_own(name));
            assert_eq!(n.names(&u("user:1")).legacy, None);
        }
    }

    #[test]
    fn traversal_absolute_nul_devices() {
        let n = json();
        for k in [
            "../etc/passwd",
            "..",
            ".",
            "/abs/path",
            "C:\\Windows\\x",
            "a\0b",
            "CON",
            "con",
            "Lpt1",
            "COM9",
            "NUL",
            "aux",
        ] {
            let names = n.names(&u(k));
            assert_safe(&names.primary);
            assert!(names.primary.contains('~'), "{k} -> {}", names.primary);
        }
        // a device-name key: the JS module's file is proven to be its own
        let con = n.names(&u("CON"));
        if cfg!(windows) {
            assert_eq!(con.legacy, None);
        } else {
            assert_eq!(con.legacy.as_deref(), Some("CON.json"));
        }
        assert_eq!(n.names(&u("../x")).legacy, None);
    }

    #[test]
    fn long_multibyte_and_surrogate_keys_fit() {
        let n = json();
        let long_simple = "a".repeat(1000);
        let ls = n.names(&u(&long_simple));
        assert_safe(&ls.primary);
        assert_eq!(ls.legacy, None, "a 1004-byte name never existed");
        let edge = "b".repeat(255 - 5);
        assert_eq!(n.names(&u(&edge)).primary, format!("{edge}.json"));
        let over = "b".repeat(255 - 4);
        assert!(n.names(&u(&over)).primary.contains('~'));
        assert_safe(&n.names(&u(&"é".repeat(1000))).primary);
        assert_safe(&n.names(&u(&"😀".repeat(1000))).primary);
        let a = n.names(&[0xd800]).primary;
        let b = n.names(&[0xdc00]).primary;
        let c = n.names(&[0xfffd]).primary;
        assert_ne!(a, b);
        assert_ne!(a, c);
        let wide = Naming::new(&".x".repeat(32)).expect("64-byte ext");
        assert_safe(&wide.names(&u(&"z:".repeat(500))).primary);
    }

    #[test]
    fn case_differences_stay_distinct() {
        let n = json();
        assert_ne!(n.names(&u("Abc")).primary, n.names(&u("abc")).primary);
        assert_ne!(n.names(&u("A:b")).primary, n.names(&u("a:b")).primary);
    }

    #[test]
    fn injective_over_random_keys() {
        // xorshift: deterministic, no dependency
        let mut s: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let alphabet: Vec<u16> = u("aA_-.:/\\ ~0é😀")
            .into_iter()
            .chain([0xd800, 0xdfff, 0])
            .collect();
        let n = json();
        let mut keys = HashSet::new();
        let mut names = HashSet::new();
        while keys.len() < 10_000 {
            let len = (next() % 12) as usize + if next() % 50 == 0 { 1000 } else { 0 };
            let key: Vec<u16> = (0..len)
                .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                .collect();
            if keys.insert(key.clone()) {
                let name = n.names(&key).primary;
                assert_safe(&name);
                assert!(n.is_own(&name));
                assert!(names.insert(name), "collision for {key:?}");
            }
        }
    }

    #[test]
    fn may_start_with_rules_out_only_impossible_names() {
        let n = json();
        let (long20, long10, long30) = ("long:".repeat(20), "long:".repeat(10), "long:".repeat(30));
        let keys: [&str; 7] = [
            "workflow:state:run-1",
            "workflow:cache:run-1",
            "wf",
            "plain_key",
            "é:x",
            "\u{1F600}k",
            &long20,
        ];
        let prefixes: [&str; 11] = [
            "",
            "workflow:",
            "workflow:state:",
            "workflow_state_",
            "wf",
            "wf:",
            "plain",
            "é",
            "\u{1F600}",
            &long10,
            &long30,
        ];
        for key in keys {
            let name = n.names(&u(key)).primary;
            for prefix in prefixes {
                let possible = n.may_start_with(&name, &u(prefix));
                // never rules out a key that does start with the prefix
                if key.starts_with(prefix) {
                    assert!(possible, "{key} / {prefix}");
                }
            }
        }
        let state = n.names(&u("workflow:state:run-1")).primary;
        assert!(!n.may_start_with(&state, &u("workflow:cache:")));
        assert!(!n.may_start_with(&state, &u("workflow:state:run-1:more")));
        // the readable part cannot tell `:` from `_`
        assert!(n.may_start_with(&state, &u("workflow_state_")));
        assert!(!n.may_start_with("plain_key.json", &u("plainkey")));
        assert!(n.may_start_with("plain_key.json", &u("plain_")));
        assert!(!n.may_start_with("wf.json", &u("wf:")));
        assert!(n.may_start_with("other.txt", &u("x")));
    }

    #[test]
    fn own_names_exclude_others() {
        let n = json();
        for other in [
            "notes.txt",
            "a.b.json",
            "x~123.json",
            ".awaitly-tmp.1.2",
            "k.json.corrupt",
            "dir",
            "a b.json",
        ] {
            assert!(!n.is_own(other), "{other}");
        }
        assert!(is_temp(".awaitly-tmp.42.7"));
        assert_eq!(temp_pid(".awaitly-tmp.42.7"), Some(42));
        assert!(Naming::new("a/b").is_err());
        assert!(Naming::new("\0").is_err());
        assert!(Naming::new(&"x".repeat(65)).is_err());
    }
}
