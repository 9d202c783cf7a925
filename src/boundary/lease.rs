//! Run-lease batches across the boundary, for both stores' `leaseExec`
//! (read by `lib/lease-batcher.js`): the op kinds ([`LeaseKind`]) and the
//! answer, a [`LeaseOutcome`] per op (`errors[i]` as `[CODE] message` for
//! an error) and the tokens of the taken leases, in order, concatenated (32
//! characters each).

use napi::bindgen_prelude::Uint8Array;
use napi_derive::napi;

use crate::boundary::js_error::coded;
use crate::error::Result;

/// The kind of one run-lease op.
#[napi]
#[derive(Debug, PartialEq, Eq)]
pub enum LeaseKind {
    Acquire = 0,
    Release = 1,
    Renew = 2,
}

impl LeaseKind {
    pub fn from_code(code: u8) -> Option<LeaseKind> {
        Some(match code {
            0 => LeaseKind::Acquire,
            1 => LeaseKind::Release,
            2 => LeaseKind::Renew,
            _ => return None,
        })
    }
}

/// The outcome of one run-lease op: taken / released / renewed or not, or
/// failed.
#[napi]
#[derive(Debug, PartialEq, Eq)]
pub enum LeaseOutcome {
    No = 0,
    Yes = 1,
    Error = 4,
}

#[napi(object)]
pub struct LeaseOut {
    pub codes: Uint8Array,
    pub tokens: String,
    pub errors: Option<Vec<Option<String>>>,
}

impl LeaseOut {
    /// Encode each op's result; `acquired` is the token of an acquire op
    /// (reported when it was taken), None for a release or renew.
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
            codes: Uint8Array::new(codes),
            tokens,
            errors,
        }
    }
}
