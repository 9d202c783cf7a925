//! Typed arrays going to JS ([`Copied`]): the answers' small arrays (a
//! batch's outcome codes, key lengths) copied into an ArrayBuffer that V8
//! allocates. Handing V8 our own buffer instead (napi-rs's `Int32Array`
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
