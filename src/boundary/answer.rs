//! A store's data batches answered through one JS callback, on the JS
//! thread: `onBatch(token, count, meta, blob, errors, failure)`, with the
//! outcome codes in a kept Int32Array ([`KeptInt32`]) and the values' text in
//! one string: no promise, result object or typed array per batch. The
//! JS-thread transports whose batches are futures (a Redis Cluster's, a
//! PostgreSQL store's) answer through it; JS matches `token` to its batch.
//!
//! The function is held strongly only while batches are in flight, so an
//! idle store can be collected.

use std::ptr;

use napi::bindgen_prelude::ToNapiValue;
use napi::sys;

use super::batch::blob_value;
use super::js_error::coded;
use super::typed::KeptInt32;
use crate::error::PersistError;
use crate::redis::batch::OpResult;
use crate::redis::results::encode_results;

/// `onBatch` and what its calls carry (see the module docs).
pub struct BatchAnswers {
    env: sys::napi_env,
    callback: sys::napi_ref,
    in_flight: usize,
    meta: KeptInt32,
}

/// The function to call and its arguments.
pub type Answer = (sys::napi_value, [sys::napi_value; 6]);

impl Default for BatchAnswers {
    fn default() -> Self {
        BatchAnswers {
            env: ptr::null_mut(),
            callback: ptr::null_mut(),
            in_flight: 0,
            meta: KeptInt32::default(),
        }
    }
}

impl BatchAnswers {
    /// Take `on_batch` as the function that answers (replacing an earlier one).
    ///
    /// # Safety
    /// `env` is the current env, `on_batch` a function of it; on its JS thread.
    pub unsafe fn attach(
        &mut self,
        env: sys::napi_env,
        on_batch: sys::napi_value,
    ) -> Result<(), PersistError> {
        let mut r = ptr::null_mut();
        let strong = u32::from(self.in_flight > 0);
        if sys::napi_create_reference(env, on_batch, strong, &mut r) != sys::Status::napi_ok {
            return Err(PersistError::Internal("napi_create_reference".into()));
        }
        if !self.callback.is_null() {
            sys::napi_delete_reference(env, self.callback);
        }
        self.env = env;
        self.callback = r;
        Ok(())
    }

    pub fn attached(&self) -> bool {
        !self.callback.is_null()
    }

    /// One more batch in flight (the function is held from the first).
    ///
    /// # Safety
    /// On the env's thread, the env alive.
    pub unsafe fn sent(&mut self) {
        self.in_flight += 1;
        if self.in_flight == 1 && !self.callback.is_null() {
            let mut count = 0;
            sys::napi_reference_ref(self.env, self.callback, &mut count);
        }
    }

    /// A batch done: the call that answers it (`failure` null and its
    /// results, or its failure and the rest null), None if the function is
    /// gone. The caller makes the call ([`call`]) once it holds no borrow of
    /// this (JS may call in again).
    ///
    /// # Safety
    /// On the env's thread, the env alive, inside a handle scope.
    pub unsafe fn prepare(
        &mut self,
        token: u32,
        r: Result<Vec<OpResult>, PersistError>,
    ) -> Option<Answer> {
        let env = self.env;
        if self.callback.is_null() {
            return None;
        }
        let mut func = ptr::null_mut();
        sys::napi_get_reference_value(env, self.callback, &mut func);
        self.in_flight = self.in_flight.saturating_sub(1);
        if self.in_flight == 0 {
            let mut count = 0;
            sys::napi_reference_unref(env, self.callback, &mut count);
        }
        if func.is_null() {
            return None;
        }
        let args = match self.args(token, r) {
            Ok(a) => a,
            // V8 could not make the answer: the batch fails with why
            Err(e) => self
                .args(token, Err(PersistError::Internal(e.reason.clone())))
                .ok()?,
        };
        Some((func, args))
    }

    unsafe fn args(
        &mut self,
        token: u32,
        r: Result<Vec<OpResult>, PersistError>,
    ) -> napi::Result<[sys::napi_value; 6]> {
        let env = self.env;
        let mut null = ptr::null_mut();
        sys::napi_get_null(env, &mut null);
        let tok = ToNapiValue::to_napi_value(env, token)?;
        Ok(match r {
            Ok(results) => {
                let out = encode_results(results);
                let meta = self.meta.fill(env, &out.meta).ok_or_else(|| {
                    napi::Error::new(napi::Status::GenericFailure, "no outcome array")
                })?;
                [
                    tok,
                    ToNapiValue::to_napi_value(env, out.meta.len() as u32)?,
                    meta,
                    blob_value(env, &out.blob)?,
                    ToNapiValue::to_napi_value(env, out.errors)?,
                    null,
                ]
            }
            Err(e) => [
                tok,
                ToNapiValue::to_napi_value(env, 0u32)?,
                null,
                null,
                null,
                ToNapiValue::to_napi_value(env, coded(&e))?,
            ],
        })
    }

    /// Drop the function and the array.
    ///
    /// # Safety
    /// On the env's thread, the env alive.
    pub unsafe fn release(&mut self) {
        if !self.callback.is_null() {
            sys::napi_delete_reference(self.env, self.callback);
        }
        if !self.env.is_null() {
            self.meta.release(self.env);
        }
        *self = BatchAnswers::default();
    }

    /// Forget both without a napi call: the env is gone and freed them.
    pub fn forget(&mut self) {
        self.meta.forget();
        *self = BatchAnswers::default();
    }
}

/// Make the call `prepare` gave; an exception it throws is the process's
/// (as any exception thrown from a callback of the loop).
///
/// # Safety
/// On the env's thread, the env alive, inside the handle scope `prepare` ran in.
pub unsafe fn call(env: sys::napi_env, (func, args): Answer) {
    let mut recv = ptr::null_mut();
    sys::napi_get_global(env, &mut recv);
    let mut result = ptr::null_mut();
    let status = sys::napi_call_function(env, recv, func, args.len(), args.as_ptr(), &mut result);
    if status == sys::Status::napi_pending_exception {
        let mut exc = ptr::null_mut();
        sys::napi_get_and_clear_last_exception(env, &mut exc);
        sys::napi_fatal_exception(env, exc);
    }
}
