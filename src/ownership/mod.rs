//! Who owns which keys of a shared store ([`Owners`]): the prefix-ownership
//! rules that keep a cache's `clearAsync()` away from state documents and
//! from the keys of another cache with a longer prefix sharing the same
//! store. Pure, and used for every store: Redis and PostgreSQL clear with
//! them, the file store keeps its owners as hidden files, and the JS glue
//! calls them through `binding` for stores written in JavaScript.

use std::collections::HashSet;

pub(crate) mod binding;

/// Reserved key space of the owner registry: `__awaitly:owner:<kind>:<prefix>`.
pub const REGISTRY_PREFIX: &str = "__awaitly:owner:";
/// The JS module's default state prefix: always protected from caches.
pub const DEFAULT_STATE_PREFIX: &str = "workflow:state:";

/// Who owns which keys of a shared store. Each cache and state persistence
/// writes a marker key *inside its own prefix* before its first write:
/// `<prefix>__awaitly:owner:cache` or `<prefix>__awaitly:owner:state`, value
/// [`MARKER_VALUE`] (not JSON, so no cache entry or state document is ever
/// taken for a marker). A longer prefix's marker lies inside every shorter
/// prefix's range, so a clearing cache finds, in the one SCAN of its own
/// prefix, every owner that can hold keys there; a user whose ACL allows only
/// `~<prefix>*` can use it. `workflow:state:` is always a state prefix.
/// A key belongs to the *longest* known prefix it starts with; a cache
/// deletes a key only if that owner is the cache's own prefix and that prefix
/// is not (also) a state prefix. Markers themselves are never deleted.
///
/// Registry keys of older builds (`__awaitly:owner:<kind>:<prefix>`, outside
/// the prefix) are still honoured when found, never written.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Owners {
    /// (prefix, is_state), prefixes as bytes (WTF-8)
    entries: Vec<(Vec<u8>, bool)>,
    /// verified marker keys (never deleted)
    markers: HashSet<Vec<u8>>,
}

/// Kinds of owners.
pub const KIND_CACHE: &str = "cache";
pub const KIND_STATE: &str = "state";
/// Marker key suffixes (after the owner's prefix).
pub const MARKER_CACHE: &str = "__awaitly:owner:cache";
pub const MARKER_STATE: &str = "__awaitly:owner:state";
/// The value of every marker key.
pub const MARKER_VALUE: &str = "awaitly-owner/1";

impl Owners {
    /// The marker key of a prefix of the given kind.
    pub fn marker_key(kind: &str, prefix: &[u8]) -> Vec<u8> {
        let mut k = prefix.to_vec();
        k.extend_from_slice(
            if kind == KIND_STATE {
                MARKER_STATE
            } else {
                MARKER_CACHE
            }
            .as_bytes(),
        );
        k
    }

    /// Does `key` have the shape of a marker key (it still has to hold
    /// [`MARKER_VALUE`] to be one)?
    pub fn looks_like_marker(key: &[u8]) -> bool {
        key.ends_with(MARKER_CACHE.as_bytes()) || key.ends_with(MARKER_STATE.as_bytes())
    }

    /// Build from verified marker keys and legacy registry keys (others are
    /// ignored); adds the default state prefix.
    pub fn from_keys<'a>(keys: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let mut o = Owners {
            entries: vec![(DEFAULT_STATE_PREFIX.as_bytes().to_vec(), true)],
            markers: HashSet::new(),
        };
        for k in keys {
            if let Some(rest) = k.strip_prefix(REGISTRY_PREFIX.as_bytes()) {
                if let Some(p) = rest.strip_prefix(b"state:") {
                    o.entries.push((p.to_vec(), true));
                } else if let Some(p) = rest.strip_prefix(b"cache:") {
                    o.entries.push((p.to_vec(), false));
                }
            } else if let Some(p) = k.strip_suffix(MARKER_STATE.as_bytes()) {
                o.entries.push((p.to_vec(), true));
                o.markers.insert(k.to_vec());
            } else if let Some(p) = k.strip_suffix(MARKER_CACHE.as_bytes()) {
                o.entries.push((p.to_vec(), false));
                o.markers.insert(k.to_vec());
            }
        }
        o
    }

    /// May the cache with prefix `cache_prefix` delete `key` in `clearAsync`?
    pub fn cache_may_delete(&self, cache_prefix: &[u8], key: &[u8]) -> bool {
        if key.starts_with(REGISTRY_PREFIX.as_bytes())
            || !key.starts_with(cache_prefix)
            || self.markers.contains(key)
        {
            return false;
        }
        // Longest known prefix of `key` (the cache's own counts too).
        let mut best_len = cache_prefix.len();
        let mut best_is_state = false;
        for (p, is_state) in &self.entries {
            if !key.starts_with(p) {
                continue;
            }
            if p.len() > best_len {
                best_len = p.len();
                best_is_state = *is_state;
            } else if p.len() == best_len && *is_state {
                best_is_state = true;
            }
        }
        best_len == cache_prefix.len() && !best_is_state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ownership_longest_prefix_wins_and_state_is_protected() {
        let o = Owners::from_keys(
            [
                "workflow:__awaitly:owner:cache",
                "workflow:a:__awaitly:owner:cache",
                "app:state:__awaitly:owner:state",
                "__awaitly:owner:state:old:state:",
                "unrelated",
            ]
            .map(str::as_bytes),
        );
        let may = |p: &str, k: &str| o.cache_may_delete(p.as_bytes(), k.as_bytes());
        // the JS module's trap: cache `workflow:` vs state `workflow:state:`
        assert!(may("workflow:", "workflow:step1"));
        assert!(!may("workflow:", "workflow:state:run1"));
        // a longer cache prefix owns its keys
        assert!(!may("workflow:", "workflow:a:x"));
        assert!(may("workflow:a:", "workflow:a:x"));
        // state prefixes: by marker, and by an older build's registry key
        assert!(!may("app:", "app:state:r"));
        assert!(may("app:", "app:other"));
        assert!(!may("old:", "old:state:r"));
        assert!(may("old:", "old:x"));
        // a cache on a state prefix never deletes states
        assert!(!may("workflow:state:", "workflow:state:r"));
        // markers and registry keys are never deleted; a key merely shaped
        // like a marker (not verified) is an ordinary key
        assert!(!may("workflow:", "workflow:__awaitly:owner:cache"));
        assert!(!may("workflow:", "workflow:a:__awaitly:owner:cache"));
        assert!(!may("", "__awaitly:owner:cache:workflow:"));
        assert!(may("x:", "x:y__awaitly:owner:cache"));
        assert!(may("", "zzz"));
        assert!(!may("x:", "y:1"));
        assert_eq!(
            Owners::marker_key(KIND_STATE, b"s:"),
            b"s:__awaitly:owner:state".to_vec()
        );
        assert!(Owners::looks_like_marker(b"s:__awaitly:owner:cache"));
        assert!(!Owners::looks_like_marker(b"s:__awaitly:owner:cachex"));
    }
}
