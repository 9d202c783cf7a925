//! Typed arrays going to JS: the answers' small arrays (a batch's outcome
//! codes, key lengths) copied into an ArrayBuffer that V8 allocates
//! ([`Copied`]), or, for answers handed to a JS callback that reads them at
//! once, into one Int32Array kept across calls ([`KeptInt32`]). Handing V8 our own buffer instead (napi-rs's `Int32Array`
//! and friends: an external ArrayBuffer) costs a backing store with a
//! finalizer and a weak handle per array, ~6% of the JS thread's time per
//! PostgreSQL call at 1 in flight (perf).

use std::ptr;

use napi::bindgen_prelude::{check_status, Result, ToNapiValue, TypeName, ValueType};
use napi::sys;

/// An element type of a typed array, and which one.
pub trait Element: Copy {
    const KIND: sys::napi_typedarray_type;
}

impl Element for i32 {
    const KIND: sys::napi_typedarray_type = sys::TypedarrayType::int32_array;
}

impl Element for u32 {
    const KIND: sys::napi_typedarray_type = sys::TypedarrayType::uint32_array;
}

impl Element for u8 {
    const KIND: sys::napi_typedarray_type = sys::TypedarrayType::uint8_array;
}

/// A typed array of `T` for JS, made by copying these values.
pub struct Copied<T: Element>(pub Vec<T>);

impl<T: Element> TypeName for Copied<T> {
    fn type_name() -> &'static str {
        "TypedArray"
    }

    fn value_type() -> ValueType {
        ValueType::Object
    }
}

impl<T: Element> ToNapiValue for Copied<T> {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> Result<sys::napi_value> {
        let bytes = std::mem::size_of_val(val.0.as_slice());
        let mut data = ptr::null_mut();
        let mut buffer = ptr::null_mut();
        check_status!(
            sys::napi_create_arraybuffer(env, bytes, &mut data, &mut buffer),
            "could not make an ArrayBuffer"
        )?;
        if bytes > 0 && !data.is_null() {
            // SAFETY: `data` is the new buffer's `bytes` bytes, ours alone
            ptr::copy_nonoverlapping(val.0.as_ptr() as *const u8, data as *mut u8, bytes);
        }
        let mut array = ptr::null_mut();
        check_status!(
            sys::napi_create_typedarray(env, T::KIND, val.0.len(), buffer, 0, &mut array),
            "could not make a typed array"
        )?;
        Ok(array)
    }
}

/// An Int32Array kept across deliveries (held by a strong reference) and
/// refilled for each: no typed array made per callback. Replaced by a larger
/// one when a delivery carries more values than it holds. Its reader must
/// be done with it before the next fill (a callback reading it at once).
pub struct KeptInt32 {
    array: sys::napi_ref,
    data: *mut i32,
    cap: usize,
}

impl Default for KeptInt32 {
    fn default() -> Self {
        KeptInt32 {
            array: ptr::null_mut(),
            data: ptr::null_mut(),
            cap: 0,
        }
    }
}

impl KeptInt32 {
    /// The array, holding `values` from index 0 (None if V8 refused one).
    ///
    /// # Safety
    /// On `env`'s thread, inside a handle scope; `env` the one of every
    /// earlier fill.
    pub unsafe fn fill(&mut self, env: sys::napi_env, values: &[i32]) -> Option<sys::napi_value> {
        if self.array.is_null() || self.cap < values.len() {
            let cap = values.len().max(1024).next_power_of_two();
            let mut data = ptr::null_mut();
            let mut buffer = ptr::null_mut();
            if sys::napi_create_arraybuffer(env, cap * 4, &mut data, &mut buffer)
                != sys::Status::napi_ok
            {
                return None;
            }
            let mut array = ptr::null_mut();
            if sys::napi_create_typedarray(
                env,
                sys::TypedarrayType::int32_array,
                cap,
                buffer,
                0,
                &mut array,
            ) != sys::Status::napi_ok
            {
                return None;
            }
            let mut r = ptr::null_mut();
            if sys::napi_create_reference(env, array, 1, &mut r) != sys::Status::napi_ok {
                return None;
            }
            self.release(env);
            self.array = r;
            self.data = data as *mut i32;
            self.cap = cap;
        }
        let mut array = ptr::null_mut();
        sys::napi_get_reference_value(env, self.array, &mut array);
        if array.is_null() {
            return None;
        }
        // SAFETY: `cap` ints at `data`, kept alive by the reference
        ptr::copy_nonoverlapping(values.as_ptr(), self.data, values.len());
        Some(array)
    }

    /// Drop the array.
    ///
    /// # Safety
    /// On `env`'s thread, `env` alive (the one it was filled in).
    pub unsafe fn release(&mut self, env: sys::napi_env) {
        if !self.array.is_null() {
            sys::napi_delete_reference(env, self.array);
        }
        *self = KeptInt32::default();
    }

    /// Forget the array without a napi call: its env is gone and freed it.
    pub fn forget(&mut self) {
        *self = KeptInt32::default();
    }
}
