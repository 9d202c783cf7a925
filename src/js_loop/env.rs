//! The env and libuv plumbing the JS-thread connections share (Redis's,
//! [`crate::redis::direct`], and PostgreSQL's, [`super::executor`]): the
//! env's event loop and async context, handles that own an `Rc` of their
//! state, env cleanup hooks that own one too.

use std::ffi::{c_char, c_int, c_void};
use std::ptr;
use std::rc::Rc;

use napi::sys;

use super::uv::{free_handle, handle_data, set_handle_data, uv, Uv};

/// The event loop of `env`.
///
/// # Safety
/// `env` is the current env.
pub(crate) unsafe fn event_loop(env: sys::napi_env) -> Option<*mut c_void> {
    let mut lp: *mut sys::uv_loop_s = ptr::null_mut();
    if sys::napi_get_uv_event_loop(env, &mut lp) != sys::Status::napi_ok || lp.is_null() {
        return None;
    }
    Some(lp as *mut c_void)
}

/// An async context for the callbacks this transport makes into `env`.
///
/// # Safety
/// `env` is the current env.
pub(crate) unsafe fn async_context(
    env: sys::napi_env,
    label: &str,
) -> Option<sys::napi_async_context> {
    let mut resource = ptr::null_mut();
    let mut name = ptr::null_mut();
    let mut async_ctx = ptr::null_mut();
    let ok = sys::napi_create_object(env, &mut resource) == sys::Status::napi_ok
        && sys::napi_create_string_utf8(
            env,
            label.as_ptr() as *const c_char,
            label.len() as isize,
            &mut name,
        ) == sys::Status::napi_ok
        && sys::napi_async_init(env, resource, name, &mut async_ctx) == sys::Status::napi_ok;
    ok.then_some(async_ctx)
}

/// Run `f` on the state behind a handle's data pointer, without panicking
/// across the C boundary.
///
/// # Safety
/// `h` is one of our live handles.
pub(crate) unsafe fn with_state<T>(h: *mut c_void, f: impl FnOnce(&Rc<T>)) {
    let data = handle_data(h) as *const T;
    if data.is_null() {
        return;
    }
    // borrow the handle's Rc without taking it over
    let rc = std::mem::ManuallyDrop::new(Rc::from_raw(data));
    let rc: &Rc<T> = &rc;
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(rc)));
}

/// Give each of `handles` a clone of `cell` as its data (released by its
/// close callback, [`release_handle`]), and let none keep the loop alive.
///
/// # Safety
/// `handles` are initialised libuv handles of this thread's loop.
pub(crate) unsafe fn hold_handles<T>(uv: &Uv, cell: &Rc<T>, handles: &[*mut c_void]) {
    for &h in handles {
        set_handle_data(h, Rc::into_raw(cell.clone()) as *mut c_void);
        (uv.uv_unref)(h);
    }
}

pub(crate) type Hook = unsafe extern "C" fn(*mut c_void);

/// Register `hook` to run at `env`'s teardown with a clone of `cell` (the
/// hook owns it); false if napi refused.
///
/// # Safety
/// `env` is the current env; on its thread.
pub(crate) unsafe fn add_hook<T>(env: sys::napi_env, cell: &Rc<T>, hook: Hook) -> bool {
    let arg = Rc::into_raw(cell.clone()) as *mut c_void;
    if sys::napi_add_env_cleanup_hook(env, Some(hook), arg) == sys::Status::napi_ok {
        return true;
    }
    drop(Rc::from_raw(arg as *const T));
    false
}

/// Unregister the `hook` [`add_hook`] registered for `cell`, releasing its
/// clone.
///
/// # Safety
/// `env` alive, on its thread; `hook` registered for `cell` and not run.
pub(crate) unsafe fn remove_hook<T>(env: sys::napi_env, cell: &Rc<T>, hook: Hook) {
    let arg = Rc::as_ptr(cell) as *mut c_void;
    if sys::napi_remove_env_cleanup_hook(env, Some(hook), arg) == sys::Status::napi_ok {
        drop(Rc::from_raw(arg as *const T));
    }
}

/// Free a closed handle and release the `Rc<T>` its data holds.
///
/// # Safety
/// `h` is a handle of `kind` closed by libuv, its data an `Rc<T>` or null.
pub(crate) unsafe fn release_handle<T>(h: *mut c_void, kind: c_int) {
    let _ = std::panic::catch_unwind(|| {
        let data = handle_data(h) as *const T;
        if !data.is_null() {
            drop(Rc::from_raw(data));
        }
        if let Some(uv) = uv() {
            free_handle(h, (uv.handle_size)(kind));
        }
    });
}
