//! Binding side of errors: turns a [`PersistError`] into a thrown JavaScript
//! error of the right class with `error.code` set, and guards against panics.
//!
//! Sync functions call [`throw`], which throws on the env and returns a
//! `PendingException` napi error (napi-rs then leaves the pending exception
//! alone). Async functions cannot pick the class of their rejection, so they
//! return [`to_async`]: a plain `Error` whose message starts with `[CODE] `;
//! the JavaScript glue (`lib/native.js`) moves that prefix into `error.code`.

use napi::bindgen_prelude::*;

use crate::error::{JsClass, PersistError};

/// Throw `err` into `env` as the matching JS class with `code` set.
pub fn throw(env: &Env, err: PersistError) -> napi::Error {
    let msg = err.to_string();
    let code = err.code();
    match err.js_class() {
        JsClass::TypeError => {
            let _ = env.throw_type_error(&msg, Some(code));
        }
        JsClass::RangeError => {
            let _ = env.throw_range_error(&msg, Some(code));
        }
        JsClass::SyntaxError => {
            env.throw_syntax_error(&msg, Some(code));
        }
        JsClass::Error => {
            let _ = env.throw_error(&msg, Some(code));
        }
    }
    napi::Error::new(Status::PendingException, msg)
}

/// An error for an async rejection: `[CODE] message`, decoded by `lib/native.js`.
#[allow(dead_code)] // used by the async bindings
pub fn to_async(err: PersistError) -> napi::Error {
    napi::Error::new(Status::GenericFailure, format!("[{}] {}", err.code(), err))
}

/// Run `f`, turning a panic into [`PersistError::Internal`] so that no panic
/// ever unwinds into Node (which would abort the process).
pub fn guard<T>(f: impl FnOnce() -> crate::error::Result<T>) -> crate::error::Result<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            Err(PersistError::Internal(format!("panic: {what}")))
        }
    }
}
