//! Thin napi layer over `state::validate`. V8 does the JSON of user values
//! (`JSON.stringify` / `JSON.parse` in `lib/serialize.js`); the Rust core owns
//! the document's validation and the error messages.
//!
//! Text crosses as UTF-16 code units (`boundary::text`; measured: 22 µs vs
//! 270 µs for a UTF-8 transcode of a 370 KB document).

use napi::bindgen_prelude::*;
use napi::JsString;
use napi_derive::napi;

use crate::boundary::js_error::{guard, throw};
use crate::boundary::text::units_of;
use crate::state::validate;

/// Throw the error describing why `text` is not a state document
/// (SyntaxError `ERR_JSON_SYNTAX`, or TypeError `ERR_INVALID_DOCUMENT` naming
/// the problem). Returns normally when `text` is a valid state document.
#[napi(catch_unwind, js_name = "validateState")]
pub fn validate_state(env: &Env, text: JsString<'_>) -> Result<()> {
    let units = units_of(text)?;
    guard(|| validate::validate_state_units(&units)).map_err(|e| throw(env, e))
}

/// Throw the TypeError (`ERR_INVALID_DOCUMENT`) for a problem the JavaScript
/// fast path found in an in-memory document; the message is the core's.
#[napi(catch_unwind, js_name = "throwDocumentError")]
pub fn throw_document_error(env: &Env, path: String, expected: String, got: String) -> Result<()> {
    Err(throw(
        env,
        validate::Problem::new(path, expected, got).into_error(),
    ))
}

/// Throw a TypeError (`ERR_INVALID_ARG`) for a bad argument to a public
/// function: `<fn>: <arg> must be <expected>, got <got>`.
#[napi(catch_unwind, js_name = "throwArgumentError")]
pub fn throw_argument_error(
    env: &Env,
    func: String,
    arg: String,
    expected: String,
    got: String,
) -> Result<()> {
    Err(throw(
        env,
        crate::error::PersistError::InvalidArgument(format!(
            "{func}: {arg} must be {expected}, got {got}"
        )),
    ))
}
