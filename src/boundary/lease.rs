//! Run-lease ops across the boundary: the op kinds ([`LeaseKind`]), a row
//! as it crossed ([`LeaseRow`]) and its [`LeaseOp`] ([`decode_lease`]:
//! the server stores' data batches carry them, `boundary::batch`), and
//! the file store's `leaseExec` batch (read by `lib/stores/leases.js`,
//! [`lease_rows`]) with its answer, a [`LeaseOutcome`] per op (`errors[i]`
//! as `[CODE] message` for an error, e.g. `ERR_LEASE_LOST` for a
//! fenced-off snapshot write) and the tokens of the taken leases, in
//! order, concatenated (32 characters each).

use napi::bindgen_prelude::Utf16String;
use napi_derive::napi;

use crate::boundary::js_error::coded;
use crate::boundary::typed::Copied;
use crate::error::{PersistError, Result};
use crate::lease_op::LeaseOp;
use crate::wtf8;

/// The kind of one run-lease op.
#[napi]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseKind {
    Acquire = 0,
    Release = 1,
    Renew = 2,
    /// Write the snapshot `prefix + id` if the caller still holds its lease.
    FencedSet = 3,
    /// Delete the snapshot `prefix + id` if the caller still holds its lease.
    FencedDelete = 4,
}

impl LeaseKind {
    pub fn from_code(code: u8) -> Option<LeaseKind> {
        Some(match code {
            0 => LeaseKind::Acquire,
            1 => LeaseKind::Release,
            2 => LeaseKind::Renew,
            3 => LeaseKind::FencedSet,
            4 => LeaseKind::FencedDelete,
            _ => return None,
        })
    }
}

/// The outcome of one run-lease op: taken / released / renewed / written or
/// not, or failed.
#[napi]
#[derive(Debug, PartialEq, Eq)]
pub enum LeaseOutcome {
    No = 0,
    Yes = 1,
    Error = 4,
}

#[napi(object, object_from_js = false)]
pub struct LeaseOut {
    #[napi(ts_type = "Uint8Array")]
    pub codes: Copied<u8>,
    pub tokens: String,
    pub errors: Option<Vec<Option<String>>>,
}

impl LeaseOut {
    /// Encode each op's result; `acquired` is the token of an acquire op
    /// (reported when it was taken), None for a release, renew or fenced write.
    pub fn encode<'a>(ops: impl ExactSizeIterator<Item = (Option<&'a str>, Result<bool>)>) -> Self {
        let n = ops.len();
        let mut codes = Vec::with_capacity(n);
        let mut tokens = String::new();
        let mut errors: Option<Vec<Option<String>>> = None;
        for (i, (acquired, r)) in ops.enumerate() {
            match r {
                Ok(true) => {
                    if let Some(token) = acquired {
                        tokens.push_str(token);
                    }
                    codes.push(LeaseOutcome::Yes as u8);
                }
                Ok(false) => codes.push(LeaseOutcome::No as u8),
                Err(e) => {
                    codes.push(LeaseOutcome::Error as u8);
                    errors.get_or_insert_with(|| vec![None; n])[i] = Some(coded(&e));
                }
            }
        }
        LeaseOut {
            codes: Copied(codes),
            tokens,
            errors,
        }
    }
}

/// One run-lease op as it crossed the boundary (a row of a server store's
/// data batch, or of the file store's `leaseExec` batch): about the
/// lease of snapshot `id` under `prefix` (UTF-16), by `token` (an
/// acquire's fresh one, made here), `value` a fenced set's.
pub struct LeaseRow {
    pub kind: LeaseKind,
    pub ttl_ms: u64,
    pub prefix: Vec<u16>,
    pub id: Vec<u16>,
    pub token: String,
    pub value: Vec<u16>,
}

/// The ops of one `leaseExec` call (the file store's): `kinds[i]` a
/// [`LeaseKind`], `tokens[i]` the owner token ("" for an acquire, which
/// gets a fresh one here), `values[i]` a fenced set's value ("" otherwise).
pub fn lease_rows(
    kinds: &[u8],
    ttls: &[u32],
    prefixes: Vec<Utf16String>,
    ids: Vec<Utf16String>,
    tokens: Vec<String>,
    values: Vec<Utf16String>,
) -> Result<Vec<LeaseRow>> {
    let n = kinds.len();
    if ttls.len() != n
        || prefixes.len() != n
        || ids.len() != n
        || tokens.len() != n
        || values.len() != n
    {
        return Err(PersistError::Internal(
            "lease_exec: batch arrays differ in length".into(),
        ));
    }
    let acquires = kinds
        .iter()
        .filter(|&&k| LeaseKind::from_code(k) == Some(LeaseKind::Acquire))
        .count();
    let mut fresh = crate::token::new_tokens(acquires)?;
    let rows = kinds.iter().zip(ttls).zip(prefixes).zip(ids);
    rows.zip(tokens.into_iter().zip(values))
        .map(|((((&kind, &ttl), prefix), id), (token, value))| {
            let kind = LeaseKind::from_code(kind)
                .ok_or_else(|| PersistError::Internal(format!("lease_exec: unknown op {kind}")))?;
            Ok(LeaseRow {
                kind,
                ttl_ms: u64::from(ttl),
                prefix: prefix.to_vec(),
                id: id.to_vec(),
                token: if kind == LeaseKind::Acquire {
                    fresh.pop().unwrap_or_default()
                } else {
                    token
                },
                value: value.to_vec(),
            })
        })
        .collect()
}

/// One run-lease op of a server store's data batch (Redis, PostgreSQL):
/// its lease key named by the store, `lease_key(prefix, id, state)`, all
/// WTF-8, `state` the snapshot key (prefix and id as ONE text).
pub fn decode_lease(
    r: LeaseRow,
    lease_key: impl Fn(&[u8], &[u8], &[u8]) -> Result<Vec<u8>>,
) -> Result<LeaseOp> {
    let mut units = r.prefix.clone();
    units.extend_from_slice(&r.id);
    let state = wtf8::encode(&units);
    let key = lease_key(&wtf8::encode(&r.prefix), &wtf8::encode(&r.id), &state)?;
    let (token, ttl_ms) = (r.token, r.ttl_ms);
    Ok(match r.kind {
        LeaseKind::Acquire => LeaseOp::Acquire { key, token, ttl_ms },
        LeaseKind::Release => LeaseOp::Release { key, token },
        LeaseKind::Renew => LeaseOp::Renew { key, token, ttl_ms },
        LeaseKind::FencedSet => LeaseOp::FencedSet {
            key,
            token,
            state,
            value: wtf8::encode(&r.value),
        },
        LeaseKind::FencedDelete => LeaseOp::FencedDelete { key, token, state },
    })
}
