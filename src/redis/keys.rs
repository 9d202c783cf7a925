//! Listing keys and clearing a cache's prefix, written once against the
//! batch seam ([`Exec`]): SCAN (never KEYS), the ownership rules
//! ([`Owners`]) and UNLINK, on whichever connection the store uses.

use std::collections::HashSet;

use crate::error::{PersistError, Result};
use crate::glob;
use crate::ownership::{Owners, MARKER_VALUE, REGISTRY_PREFIX};
use crate::redis::batch::{Exec, Op, OpResult, Text, SCAN_COUNT};

/// Every key matching the Redis glob `pattern`, by SCAN (deduplicated;
/// order unspecified). Reserved registry keys are left out unless the
/// pattern asks for them explicitly (starts with the registry prefix).
pub async fn keys<X: Exec + ?Sized>(x: &X, pattern: &[u8]) -> Result<Vec<Vec<u8>>> {
    let want_registry = pattern.starts_with(b"__awaitly");
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for k in x.scan(pattern).await? {
        if !want_registry && k.starts_with(REGISTRY_PREFIX.as_bytes()) {
            continue;
        }
        if seen.insert(k.clone()) {
            out.push(k);
        }
    }
    Ok(out)
}

/// One SCAN page of one server: `(next cursor, keys)`; cursor 0 starts a
/// pass and a returned 0 ends it (a key may come twice: SCAN's own
/// guarantee). For callers that must not hold every key at once (the
/// inspector's listing of many runs); a cluster has one cursor per primary
/// and no such page.
pub async fn scan_page<X: Exec + ?Sized>(
    x: &X,
    cursor: u64,
    pattern: &[u8],
) -> Result<(u64, Vec<Vec<u8>>)> {
    let op = Op::Scan {
        cursor,
        pattern: pattern.to_vec(),
    };
    match x.exec(vec![op]).await?.pop() {
        Some(OpResult::Scan(next, keys)) => Ok((next, keys)),
        Some(OpResult::Failed(e)) => Err(e),
        other => Err(PersistError::Internal(format!(
            "SCAN: unexpected result {other:?}"
        ))),
    }
}

/// Delete every key under `prefix` that the cache with that prefix owns
/// (see [`Owners::cache_may_delete`]): one SCAN of the prefix (every owner
/// marker that matters lies in it), the candidate markers checked with one
/// batch of GETs, then UNLINK in pages, all in flight together. Registry
/// keys of older builds are scanned alongside. Returns how many keys were
/// removed.
pub async fn clear_cache_prefix<X: Exec + ?Sized>(x: &X, prefix: &[u8]) -> Result<u64> {
    let mut pattern = glob::escape_bytes(prefix);
    pattern.push(b'*');
    let legacy = format!("{}*", glob::escape(REGISTRY_PREFIX));
    let (keys, legacy) =
        futures_util::future::try_join(keys(x, &pattern), keys(x, legacy.as_bytes())).await?;
    let candidates: Vec<&Vec<u8>> = keys
        .iter()
        .filter(|k| Owners::looks_like_marker(k))
        .collect();
    let mut owner_keys: Vec<&[u8]> = legacy.iter().map(Vec::as_slice).collect();
    if !candidates.is_empty() {
        let gets: Vec<Op> = candidates.iter().map(|k| Op::Get(k.to_vec())).collect();
        let marker = Text::of(MARKER_VALUE);
        for (k, v) in candidates.iter().zip(x.exec(gets).await?) {
            if matches!(&v, OpResult::Value(Some(u)) if *u == marker) {
                owner_keys.push(k.as_slice());
            }
        }
    }
    let owners = Owners::from_keys(owner_keys);
    let doomed: Vec<&Vec<u8>> = keys
        .iter()
        .filter(|k| owners.cache_may_delete(prefix, k))
        .collect();
    let pages = doomed
        .chunks(SCAN_COUNT)
        .map(|page| x.unlink(page.iter().map(|k| k.to_vec()).collect()));
    let mut total = 0u64;
    let mut first_err: Option<PersistError> = None;
    for r in futures_util::future::join_all(pages).await {
        match r {
            Ok(n) => total += n,
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(total),
    }
}
