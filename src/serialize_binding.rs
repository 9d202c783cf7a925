//! Thin napi layer over `state_doc`: JSON text in, JSON text out. V8 does the
//! JSON of user values (`JSON.stringify` / `JSON.parse` in `lib/serialize.js`);
//! the Rust core owns the document envelope, its validation and the error
//! messages.

use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::js_error::{guard, throw};
use crate::state_doc;

/// Assemble the state document from `JSON.stringify([k1, e1, ..., {metadata}])`.
#[napi(catch_unwind, js_name = "assembleState")]
pub fn assemble_state(env: Env, parts: String) -> Result<String> {
    guard(|| state_doc::assemble_state(&parts)).map_err(|e| throw(&env, e))
}

/// Throw the error describing why `text` is not a state document
/// (SyntaxError `ERR_JSON_SYNTAX`, or TypeError `ERR_INVALID_DOCUMENT` naming
/// the problem). Returns normally when `text` is a valid state document.
#[napi(catch_unwind, js_name = "validateState")]
pub fn validate_state(env: Env, text: String) -> Result<()> {
    guard(|| state_doc::validate_state(&text)).map_err(|e| throw(&env, e))
}

/// Throw the TypeError (`ERR_INVALID_DOCUMENT`) for a problem the JavaScript
/// fast path found in an in-memory document; the message is the core's.
#[napi(catch_unwind, js_name = "throwDocumentError")]
pub fn throw_document_error(env: Env, path: String, expected: String, got: String) -> Result<()> {
    Err(throw(
        &env,
        state_doc::Problem::new(path, expected, got).into_error(),
    ))
}

/// Throw a TypeError (`ERR_INVALID_ARG`) for a bad argument to a public
/// function: `<fn>: <arg> must be <expected>, got <got>`.
#[napi(catch_unwind, js_name = "throwArgumentError")]
pub fn throw_argument_error(
    env: Env,
    func: String,
    arg: String,
    expected: String,
    got: String,
) -> Result<()> {
    Err(throw(
        &env,
        crate::error::PersistError::InvalidArgument(format!(
            "{func}: {arg} must be {expected}, got {got}"
        )),
    ))
}
