//! Batch results on their way to JS, without napi types: one int per op
//! ([`RedisOutcome`] codes, or `Value + n` for a GET hit) and the GET
//! values concatenated into one text, so one string crosses per batch
//! instead of one per value. Used by the tokio `exec` and by the JS
//! thread's `onWire` alike.

use crate::boundary::js_error::coded;
use crate::error::PersistError;
use crate::redis::batch::{OpResult, Text};
use crate::redis::codes::RedisOutcome;

/// Results on their way to JS.
pub struct Encoded {
    pub meta: Vec<i32>,
    pub blob: Blob,
    /// Per-op failures (`[CODE] message`), only when some op failed.
    pub errors: Option<Vec<Option<String>>>,
}

/// The GET values of a batch, concatenated: ASCII bytes when every value
/// is ASCII (becoming a one-byte JS string), else UTF-16 units.
pub enum Blob {
    Ascii(Vec<u8>),
    Units(Vec<u16>),
}

/// Encode a batch's results (see the module docs).
pub fn encode_results(results: Vec<OpResult>) -> Encoded {
    let n = results.len();
    let mut meta = Vec::with_capacity(n);
    let mut errors: Option<Vec<Option<String>>> = None;
    // one-byte text when every value is ASCII (JSON usually is): its bytes
    // as they came from the socket, no UTF-16 step
    let all_ascii = results
        .iter()
        .all(|r| !matches!(r, OpResult::Value(Some(t)) if !t.is_ascii()));
    let total: usize = results
        .iter()
        .map(|r| match r {
            OpResult::Value(Some(t)) => t.len_units(),
            _ => 0,
        })
        .sum();
    let mut bytes: Vec<u8> = Vec::with_capacity(if all_ascii { total } else { 0 });
    let mut units: Vec<u16> = Vec::with_capacity(if all_ascii { 0 } else { total });
    for (i, r) in results.into_iter().enumerate() {
        match r {
            OpResult::Value(Some(text)) => {
                meta.push((RedisOutcome::Value as i32).saturating_add(text.len_units() as i32));
                match text {
                    Text::Ascii(b) if all_ascii => bytes.extend_from_slice(&b),
                    t => t.push_units(&mut units),
                }
            }
            OpResult::Value(None) | OpResult::Done => meta.push(RedisOutcome::None as i32),
            OpResult::Bool(true) => meta.push(RedisOutcome::True as i32),
            OpResult::Bool(false) => meta.push(RedisOutcome::False as i32),
            OpResult::Failed(e) => {
                meta.push(RedisOutcome::Error as i32);
                errors.get_or_insert_with(|| vec![None; n])[i] = Some(coded(&e));
            }
            other => {
                meta.push(RedisOutcome::Error as i32);
                let e = PersistError::Internal(format!("no JS form for {other:?}"));
                errors.get_or_insert_with(|| vec![None; n])[i] = Some(coded(&e));
            }
        }
    }
    let blob = if all_ascii {
        Blob::Ascii(bytes)
    } else {
        Blob::Units(units)
    };
    Encoded { meta, blob, errors }
}
