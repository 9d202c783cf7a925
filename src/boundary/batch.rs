//! The data batch across the boundary, for every server store's `exec`
//! (Redis, PostgreSQL): the calls of one JS tick decoded ([`decode_batch`]:
//! op kinds, ttls, and keys and values as ONE string with their UTF-16
//! lengths; a napi string per key and value cost ~0.9-1.7 µs per op, one
//! for the batch is a copy), and the answers' shapes ([`ExecOut`]: codes,
//! lengths, one string; [`KeysOut`], [`ScanPageOut`]).

use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::boundary::text::{js_text, JsText};
use crate::error::PersistError;
use crate::redis::batch::Op;
use crate::redis::codes::RedisOp;
use crate::redis::results::Blob;
use crate::wtf8;

#[napi(object)]
pub struct ExecOut {
    /// One int per op: a `RedisOutcome`, or `RedisOutcome.Value + n` for a
    /// GET hit (its value: the next `n` UTF-16 units of `blob`).
    pub meta: Int32Array,
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

/// One page of `scanPage`: the next cursor and the keys (as `KeysOut`).
#[napi(object)]
pub struct ScanPageOut {
    pub cursor: String,
    pub lens: Uint32Array,
    #[napi(ts_type = "string")]
    pub blob: JsText,
}

#[napi(object)]
pub struct KeysOut {
    pub lens: Uint32Array,
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
        lens: Uint32Array::new(lens),
        blob: js_text(blob),
    }
}

/// Split `blob` into pieces of the given UTF-16 lengths (JS string lengths).
fn split_units<'a>(blob: &'a [u16], lens: &[u32]) -> crate::error::Result<Vec<&'a [u16]>> {
    let mut out = Vec::with_capacity(lens.len());
    let mut pos = 0usize;
    for &l in lens {
        let end = pos + l as usize;
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

/// The ops of one `exec` call, keys and values as WTF-8 bytes.
pub fn decode_batch(
    ops: &[u8],
    ttls: &[u32],
    lens: &[u32],
    blob: &[u16],
) -> crate::error::Result<Vec<Op>> {
    let n = ops.len();
    let fail = |m: &str| PersistError::Internal(format!("exec: {m}"));
    if ttls.len() != n {
        return Err(fail("batch arrays differ in length"));
    }
    let mut pieces = split_units(blob, lens)?.into_iter().map(wtf8::encode);
    let mut batch = Vec::with_capacity(n);
    for (&kind, &ttl) in ops.iter().zip(ttls) {
        let key = pieces.next().ok_or_else(|| fail("missing key"))?;
        let op = RedisOp::from_code(i32::from(kind))
            .ok_or_else(|| fail(&format!("unknown op {kind}")))?;
        let ttl = (ttl > 0).then_some(u64::from(ttl));
        batch.push(match op {
            RedisOp::Get => Op::Get(key),
            RedisOp::Set => Op::Set(
                key,
                pieces.next().ok_or_else(|| fail("missing value"))?,
                ttl,
            ),
            RedisOp::SetDurable => Op::SetDurable(
                key,
                pieces.next().ok_or_else(|| fail("missing value"))?,
                ttl,
            ),
            RedisOp::Delete => Op::Delete(key),
            RedisOp::Exists => Op::Exists(key),
            RedisOp::Ping => Op::Ping,
        });
    }
    Ok(batch)
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
}
