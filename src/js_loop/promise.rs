//! Promises settled from the JS thread itself (a napi call or a libuv
//! callback of its loop), without a thread-safe function: the value is made
//! in the env at settle time.

use std::ffi::c_char;
use std::ptr;

use napi::sys;

use crate::boundary::js_error::coded;
use crate::error::PersistError;

/// What a job settles its promise with: a maker of the JS value, or the error.
pub(crate) type Settled =
    Result<Box<dyn FnOnce(sys::napi_env) -> napi::Result<sys::napi_value>>, PersistError>;

/// A new promise of `env` and its deferred.
///
/// # Safety
/// `env` is the current env; on its JS thread.
pub(crate) unsafe fn new_promise(
    env: sys::napi_env,
) -> Result<(sys::napi_deferred, sys::napi_value), PersistError> {
    let mut deferred = ptr::null_mut();
    let mut promise = ptr::null_mut();
    if sys::napi_create_promise(env, &mut deferred, &mut promise) != sys::Status::napi_ok {
        return Err(PersistError::Internal("napi_create_promise".into()));
    }
    Ok((deferred, promise))
}

/// What a call's result settles its promise with.
pub(crate) fn settled_with<T>(r: Result<T, PersistError>) -> Settled
where
    T: napi::bindgen_prelude::ToNapiValue + 'static,
{
    r.map(|v| {
        Box::new(move |env| {
            // SAFETY: called by `settle` on the env's thread
            unsafe { T::to_napi_value(env, v) }
        }) as Box<dyn FnOnce(sys::napi_env) -> napi::Result<sys::napi_value>>
    })
}

/// Resolve or reject a promise.
///
/// # Safety
/// On the env's thread, inside a handle scope; `deferred` unsettled.
pub(crate) unsafe fn settle(env: sys::napi_env, deferred: sys::napi_deferred, r: Settled) {
    let value = r.and_then(|make| make(env).map_err(|e| PersistError::Internal(e.reason.clone())));
    match value {
        Ok(v) => {
            sys::napi_resolve_deferred(env, deferred, v);
        }
        Err(e) => {
            let text = coded(&e);
            let mut msg = ptr::null_mut();
            let mut err = ptr::null_mut();
            sys::napi_create_string_utf8(
                env,
                text.as_ptr() as *const c_char,
                text.len() as isize,
                &mut msg,
            );
            sys::napi_create_error(env, ptr::null_mut(), msg, &mut err);
            sys::napi_reject_deferred(env, deferred, err);
        }
    }
}

/// A handle scope and, for a libuv callback (`from_loop`), a callback scope
/// too, whose close runs the microtasks the promises settled in it queued.
/// Closed on drop.
pub(crate) struct Scopes {
    env: sys::napi_env,
    handles: sys::napi_handle_scope,
    callback: sys::napi_callback_scope,
}

impl Scopes {
    /// # Safety
    /// On the env's thread, the env alive; `ctx` its async context (or null).
    pub(crate) unsafe fn open(
        env: sys::napi_env,
        ctx: sys::napi_async_context,
        from_loop: bool,
    ) -> Option<Scopes> {
        let mut handles = ptr::null_mut();
        if sys::napi_open_handle_scope(env, &mut handles) != sys::Status::napi_ok {
            return None;
        }
        let mut callback = ptr::null_mut();
        if from_loop && !ctx.is_null() {
            let mut resource = ptr::null_mut();
            if sys::napi_create_object(env, &mut resource) == sys::Status::napi_ok {
                sys::napi_open_callback_scope(env, resource, ctx, &mut callback);
            }
        }
        Some(Scopes {
            env,
            handles,
            callback,
        })
    }
}

impl Drop for Scopes {
    fn drop(&mut self) {
        // SAFETY: opened by `open` on this thread, closed once, innermost first
        unsafe {
            if !self.callback.is_null() {
                sys::napi_close_callback_scope(self.env, self.callback);
            }
            sys::napi_close_handle_scope(self.env, self.handles);
        }
    }
}
