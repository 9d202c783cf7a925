//! The answer of a batch of run-lease ops, as both stores' `leaseExec`
//! resolve it (read by `lib/lease-batcher.js`): a code per op (0 false /
//! not taken, 1 true / taken, 4 error in `errors[i]` as `[CODE] message`)
//! and the tokens of the taken leases, in order, concatenated (32 characters
//! each).

use napi::bindgen_prelude::Uint8Array;
use napi_derive::napi;

use crate::boundary::js_error::coded;
use crate::error::Result;

const NOT_TAKEN: u8 = 0;
const TAKEN: u8 = 1;
const FAILED: u8 = 4;

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
                    codes.push(TAKEN);
                }
                Ok(false) => codes.push(NOT_TAKEN),
                Err(e) => {
                    codes.push(FAILED);
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
