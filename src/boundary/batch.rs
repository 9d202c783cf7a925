//! The data batch across the boundary, for every server store's `exec`
//! (Redis, PostgreSQL): the calls of one JS tick decoded ([`decode_batch`]:
//! op kinds (on Redis also its run-lease ops), ttls, and keys, values and
//! lease names as ONE string with their UTF-16
//! lengths; a napi string per key and value cost ~0.9-1.7 µs per op, one
//! for the batch is a copy), and the answers' shapes ([`ExecOut`]: codes,
//! lengths, one string; [`KeysOut`], [`ScanPageOut`]).

use std::ffi::c_char;
use std::ptr;

use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::boundary::lease::{LeaseKind, LeaseRow};
use crate::boundary::text::{js_text, JsText};
use crate::boundary::typed::Copied;
use crate::error::PersistError;
use crate::redis::batch::Op;
use crate::redis::codes::RedisOp;
use crate::redis::results::Blob;
use crate::wtf8;

#[napi(object, object_from_js = false)]
pub struct ExecOut {
    /// One int per op: a `RedisOutcome`, or `RedisOutcome.Value + n` for a
    /// GET hit (its value: the next `n` UTF-16 units of `blob`).
    #[napi(ts_type = "Int32Array")]
    pub meta: Copied<i32>,
    #[napi(ts_type = "string")]
    pub blob: JsText,
    /// Per-op failures, only when some op failed.
    pub errors: Option<Vec<Option<String>>>,
}

/// The values' text as a JS string (ASCII as one-byte latin1).
pub fn blob_text(blob: Blob) -> JsText {
    match blob {
        Blob::Ascii(bytes) => match String::from_utf8(bytes) {
            Ok(ascii) => Either::A(Latin1String::from(ascii)),
            Err(e) => Either::B(Utf16String::from(
                e.into_bytes()
                    .iter()
                    .map(|&b| u16::from(b))
                    .collect::<Vec<u16>>(),
            )),
        },
        Blob::Units(units) => Either::B(Utf16String::from(units)),
    }
}

/// The values' text as a JS string, made from our buffer (V8 copies it).
///
/// # Safety
/// On the env's thread, inside a handle scope.
pub unsafe fn blob_value(env: sys::napi_env, blob: &Blob) -> napi::Result<sys::napi_value> {
    let mut v = ptr::null_mut();
    let status = match blob {
        // ASCII is latin1: one byte per unit
        Blob::Ascii(b) => sys::napi_create_string_latin1(
            env,
            b.as_ptr() as *const c_char,
            b.len() as isize,
            &mut v,
        ),
        Blob::Units(u) => sys::napi_create_string_utf16(env, u.as_ptr(), u.len() as isize, &mut v),
    };
    if status != sys::Status::napi_ok || v.is_null() {
        return Err(napi::Error::new(
            napi::Status::GenericFailure,
            "could not make the reply string",
        ));
    }
    Ok(v)
}

/// One page of `scanPage`: the next cursor and the keys (as `KeysOut`).
#[napi(object, object_from_js = false)]
pub struct ScanPageOut {
    pub cursor: String,
    #[napi(ts_type = "Uint32Array")]
    pub lens: Copied<u32>,
    #[napi(ts_type = "string")]
    pub blob: JsText,
}

#[napi(object, object_from_js = false)]
pub struct KeysOut {
    #[napi(ts_type = "Uint32Array")]
    pub lens: Copied<u32>,
    #[napi(ts_type = "string")]
    pub blob: JsText,
}

/// The keys found, as they go to JS (not-text keys left out).
pub fn keys_out(keys: Vec<Vec<u8>>) -> KeysOut {
    let mut lens = Vec::with_capacity(keys.len());
    let mut blob = Vec::with_capacity(keys.iter().map(Vec::len).sum());
    for k in &keys {
        let before = blob.len();
        if wtf8::decode_into(k, &mut blob) {
            lens.push((blob.len() - before) as u32);
        }
    }
    KeysOut {
        lens: Copied(lens),
        blob: js_text(blob),
    }
}

/// Split `blob` into pieces of the given UTF-16 lengths (JS string lengths).
fn split_units<'a>(blob: &'a [u16], lens: &[i32]) -> crate::error::Result<Vec<&'a [u16]>> {
    let mut out = Vec::with_capacity(lens.len());
    let mut pos = 0usize;
    for &l in lens {
        let len = usize::try_from(l)
            .map_err(|_| PersistError::Internal("exec: a negative text length".into()))?;
        let end = pos + len;
        let piece = blob.get(pos..end).ok_or_else(|| {
            PersistError::Internal("exec: batch text shorter than its lengths".into())
        })?;
        out.push(piece);
        pos = end;
    }
    if pos != blob.len() {
        return Err(PersistError::Internal(
            "exec: batch text longer than its lengths".into(),
        ));
    }
    Ok(out)
}

/// How a store makes the op of a run-lease row of its data batch (the Redis
/// store: `redis::lease::data_op`; PostgreSQL: `postgres::store::lease_op`).
pub type LeaseOps<'a, T> = &'a dyn Fn(LeaseRow) -> crate::error::Result<T>;

/// The ops of one `exec` call, keys and values as WTF-8 bytes: `ops[i]` a
/// `RedisOp` code, `ttls[i]` its ttl, `lens` the UTF-16 lengths of the
/// pieces of `blob`. A data op's pieces of text: its key, then a SET's
/// value; a run-lease op's: prefix, id, then the owner token (not for an
/// acquire, whose fresh token is made here), then a fenced set's value (see
/// `RedisOp`); its ttl in ms.
pub fn decode_batch<T: From<Op>>(
    ops: &[i32],
    ttls: &[i32],
    lens: &[i32],
    blob: &[u16],
    lease_op: LeaseOps<'_, T>,
) -> crate::error::Result<Vec<T>> {
    let n = ops.len();
    let fail = |m: &str| PersistError::Internal(format!("exec: {m}"));
    if ttls.len() != n {
        return Err(fail("batch arrays differ in length"));
    }
    let mut pieces = split_units(blob, lens)?.into_iter();
    let mut next = || pieces.next().ok_or_else(|| fail("missing text"));
    let acquires = ops
        .iter()
        .filter(|&&k| RedisOp::from_code(k) == Some(RedisOp::LeaseAcquire))
        .count();
    let mut fresh = if acquires > 0 {
        crate::token::new_tokens(acquires)?
    } else {
        Vec::new()
    };
    let mut batch = Vec::with_capacity(n);
    for (&kind, &ttl) in ops.iter().zip(ttls) {
        let op = RedisOp::from_code(kind).ok_or_else(|| fail(&format!("unknown op {kind}")))?;
        let ttl = u64::try_from(ttl).map_err(|_| fail("negative ttl"))?;
        let secs = (ttl > 0).then_some(ttl);
        let lease = match op {
            RedisOp::LeaseAcquire => Some(LeaseKind::Acquire),
            RedisOp::LeaseRelease => Some(LeaseKind::Release),
            RedisOp::LeaseRenew => Some(LeaseKind::Renew),
            RedisOp::FencedSet => Some(LeaseKind::FencedSet),
            RedisOp::FencedDelete => Some(LeaseKind::FencedDelete),
            _ => None,
        };
        if let Some(kind) = lease {
            let (prefix, id) = (next()?.to_vec(), next()?.to_vec());
            let token = match kind {
                LeaseKind::Acquire => fresh.pop().ok_or_else(|| fail("missing token"))?,
                _ => String::from_utf16_lossy(next()?),
            };
            let value = match kind {
                LeaseKind::FencedSet => next()?.to_vec(),
                _ => Vec::new(),
            };
            batch.push(lease_op(LeaseRow {
                kind,
                ttl_ms: ttl,
                prefix,
                id,
                token,
                value,
            })?);
            continue;
        }
        let key = wtf8::encode(next()?);
        batch.push(T::from(match op {
            RedisOp::Get => Op::Get(key),
            RedisOp::Set => Op::Set(key, wtf8::encode(next()?), secs),
            RedisOp::SetDurable => Op::SetDurable(key, wtf8::encode(next()?), secs),
            RedisOp::Delete => Op::Delete(key),
            RedisOp::Exists => Op::Exists(key),
            RedisOp::Ping => Op::Ping,
            other => return Err(fail(&format!("op {other:?} has no key"))),
        }));
    }
    if pieces.next().is_some() {
        return Err(fail("batch text longer than its ops"));
    }
    Ok(batch)
}

/// The ops of a batch as the JS glue packs them (`lib/stores/kv-batch.js`
/// `packIo`): ONE Int32Array `io` holding the op kinds (`n_ops`), then
/// their ttls (`n_ops`), then the text pieces' UTF-16 lengths (`n_lens`);
/// the text as one string (see [`decode_batch`]).
pub fn decode_io<T: From<Op>>(
    env: &Env,
    io: &Unknown,
    n_ops: u32,
    n_lens: u32,
    blob: &[u16],
    lease: LeaseOps<'_, T>,
) -> crate::error::Result<Vec<T>> {
    let (n_ops, n_lens) = (n_ops as usize, n_lens as usize);
    let ints = int32_view(env, io)?;
    let ints = ints
        .get(..2 * n_ops + n_lens)
        .ok_or_else(|| PersistError::Internal("exec: io buffer shorter than the batch".into()))?;
    let (ops, rest) = ints.split_at(n_ops);
    let (ttls, lens) = rest.split_at(n_ops);
    decode_batch(ops, ttls, lens, blob, lease)
}

/// The ints of an Int32Array argument (borrowed for this call).
fn int32_view<'a>(env: &Env, v: &'a Unknown) -> crate::error::Result<&'a [i32]> {
    let mut kind = 0;
    let mut len = 0usize;
    let mut data = std::ptr::null_mut();
    let mut ab = std::ptr::null_mut();
    let mut offset = 0usize;
    // SAFETY: `v` is a value of `env`, alive for this call; a typed array's
    // data stays put while it is referenced (it is an argument)
    let status = unsafe {
        napi::sys::napi_get_typedarray_info(
            env.raw(),
            v.raw(),
            &mut kind,
            &mut len,
            &mut data,
            &mut ab,
            &mut offset,
        )
    };
    if status != napi::sys::Status::napi_ok
        || kind != napi::sys::TypedarrayType::int32_array
        || (data.is_null() && len > 0)
    {
        return Err(PersistError::Internal("expected an Int32Array".into()));
    }
    if len == 0 {
        return Ok(&[]);
    }
    // SAFETY: `len` int32s at `data`, per napi_get_typedarray_info
    Ok(unsafe { std::slice::from_raw_parts(data as *const i32, len) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_by_utf16_lengths() -> crate::error::Result<()> {
        let u = |s: &str| s.encode_utf16().collect::<Vec<u16>>();
        let units = u("abcde");
        assert_eq!(
            split_units(&units, &[2, 0, 3])?,
            vec![&units[..2], &[][..], &units[2..]]
        );
        assert!(split_units(&units, &[1]).is_err());
        assert!(split_units(&units, &[6]).is_err());
        // a lone surrogate is one unit like any other
        let lone = [0x61, 0xD800, 0x62];
        assert_eq!(split_units(&lone, &[1, 2])?, vec![&lone[..1], &lone[1..]]);
        Ok(())
    }

    #[test]
    fn lease_ops_travel_in_the_data_batch_of_a_store_that_takes_them() -> crate::error::Result<()> {
        let u = |s: &str| s.encode_utf16().collect::<Vec<u16>>();
        // GET k; acquire p:/run (fresh token); fenced set p:/run by tok to v
        let blob = u("kp:runp:runtokv");
        let lens = [1, 2, 3, 2, 3, 3, 1];
        let kinds = [
            RedisOp::Get as i32,
            RedisOp::LeaseAcquire as i32,
            RedisOp::FencedSet as i32,
        ];
        let ttls = [0, 30_000, 0];
        let seen = std::cell::RefCell::new(Vec::new());
        let make = |row: LeaseRow| {
            seen.borrow_mut().push((
                row.kind, row.ttl_ms, row.prefix, row.id, row.token, row.value,
            ));
            Ok(Op::Ping)
        };
        let ops = decode_batch(&kinds, &ttls, &lens, &blob, &make)?;
        assert_eq!(ops.len(), 3);
        assert!(matches!(&ops[0], Op::Get(k) if k == b"k"));
        let seen = seen.borrow().clone();
        assert_eq!(seen[0].0, LeaseKind::Acquire);
        assert_eq!(
            (seen[0].1, &seen[0].2, &seen[0].3),
            (30_000, &u("p:"), &u("run"))
        );
        assert_eq!(seen[0].4.len(), 32, "a fresh token");
        assert_eq!(seen[1].0, LeaseKind::FencedSet);
        assert_eq!((&seen[1].4, &seen[1].5), (&"tok".to_string(), &u("v")));
        // pieces left over, or missing: refused
        assert!(decode_batch(&kinds[..1], &ttls[..1], &lens, &blob, &make).is_err());
        assert!(decode_batch(&kinds, &ttls, &lens[..6], &blob[..14], &make).is_err());
        Ok(())
    }
}
