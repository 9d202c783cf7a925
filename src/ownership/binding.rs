//! The ownership rules as JS reads them: marker keys and values, and which
//! keys a clearing cache may delete (for stores written in JavaScript and
//! the file store's owner files).

// napi registers these at load time; `cargo test` builds never call them.
#![cfg_attr(test, allow(dead_code))]

use napi::bindgen_prelude::Utf16String;
use napi_derive::napi;

use super::{Owners, KIND_STATE, MARKER_CACHE, MARKER_STATE, MARKER_VALUE};
use crate::wtf8;

/// The marker key (inside `prefix`) that records `prefix` as a `kind`
/// ('cache' | 'state') owner, and the value it holds.
#[napi(catch_unwind)]
pub fn owner_marker_key(kind: String, prefix: Utf16String) -> Utf16String {
    let suffix = if kind == KIND_STATE {
        MARKER_STATE
    } else {
        MARKER_CACHE
    };
    let mut key: Vec<u16> = prefix.to_vec();
    key.extend(suffix.encode_utf16());
    Utf16String::from(key)
}

#[napi(catch_unwind)]
pub fn owner_marker_value() -> String {
    MARKER_VALUE.to_string()
}

/// The suffixes of marker keys: a key ending in one is reserved in a KV
/// cache or state persistence.
#[napi(catch_unwind)]
pub fn owner_marker_suffixes() -> Vec<String> {
    vec![MARKER_CACHE.to_string(), MARKER_STATE.to_string()]
}

/// Of `candidates`, the keys a cache with `prefix` may delete, given the
/// owner keys found in the store: verified markers and legacy registry keys
/// (for stores written in JavaScript, and the file store's owner files).
#[napi(catch_unwind)]
pub fn cache_deletable_keys(
    prefix: Utf16String,
    owner_keys: Vec<Utf16String>,
    candidates: Vec<Utf16String>,
) -> Vec<Utf16String> {
    let owner_keys: Vec<Vec<u8>> = owner_keys.iter().map(|k| wtf8::encode(k)).collect();
    let owners = Owners::from_keys(owner_keys.iter().map(Vec::as_slice));
    let prefix = wtf8::encode(&prefix);
    candidates
        .into_iter()
        .filter(|k| owners.cache_may_delete(&prefix, &wtf8::encode(k)))
        .collect()
}
