//! libuv, as Node exports it: the functions the JS-thread connection uses,
//! looked up in the running process (`dlsym`), and the handle memory.

use std::ffi::{c_char, c_int, c_void};
use std::ptr;
use std::sync::OnceLock;

pub(crate) type PollCb = unsafe extern "C" fn(*mut c_void, c_int, c_int);
pub(crate) type TimerCb = unsafe extern "C" fn(*mut c_void);
pub(crate) type CloseCb = unsafe extern "C" fn(*mut c_void);
pub(crate) type AsyncCb = unsafe extern "C" fn(*mut c_void);

pub(crate) const UV_ASYNC: c_int = 1;
pub(crate) const UV_POLL: c_int = 8;
pub(crate) const UV_TIMER: c_int = 13;
pub(crate) const UV_READABLE: c_int = 1;
pub(crate) const UV_WRITABLE: c_int = 2;

/// The libuv functions we use, from the Node binary.
pub(crate) struct Uv {
    pub(crate) handle_size: unsafe extern "C" fn(c_int) -> usize,
    pub(crate) poll_init: unsafe extern "C" fn(*mut c_void, *mut c_void, c_int) -> c_int,
    pub(crate) poll_start: unsafe extern "C" fn(*mut c_void, c_int, PollCb) -> c_int,
    pub(crate) poll_stop: unsafe extern "C" fn(*mut c_void) -> c_int,
    pub(crate) timer_init: unsafe extern "C" fn(*mut c_void, *mut c_void) -> c_int,
    pub(crate) timer_start: unsafe extern "C" fn(*mut c_void, TimerCb, u64, u64) -> c_int,
    pub(crate) timer_stop: unsafe extern "C" fn(*mut c_void) -> c_int,
    pub(crate) close: unsafe extern "C" fn(*mut c_void, Option<CloseCb>),
    pub(crate) uv_ref: unsafe extern "C" fn(*mut c_void),
    pub(crate) uv_unref: unsafe extern "C" fn(*mut c_void),
    pub(crate) hrtime: unsafe extern "C" fn() -> u64,
    pub(crate) async_init: unsafe extern "C" fn(*mut c_void, *mut c_void, AsyncCb) -> c_int,
    /// The one libuv function safe to call from any thread.
    pub(crate) async_send: unsafe extern "C" fn(*mut c_void) -> c_int,
}

/// libuv of this process, if it exports its functions.
pub(crate) fn uv() -> Option<&'static Uv> {
    static UV: OnceLock<Option<Uv>> = OnceLock::new();
    UV.get_or_init(|| {
        /// # Safety
        /// `T` must be the C function type of `name`.
        unsafe fn sym<T: Copy>(name: &[u8]) -> Option<T> {
            let p = libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr() as *const c_char);
            (!p.is_null()).then(|| std::mem::transmute_copy::<*mut c_void, T>(&p))
        }
        // SAFETY: each name is a libuv function of the type given (uv.h,
        // a stable ABI since libuv 1.0).
        unsafe {
            Some(Uv {
                handle_size: sym(b"uv_handle_size\0")?,
                poll_init: sym(b"uv_poll_init\0")?,
                poll_start: sym(b"uv_poll_start\0")?,
                poll_stop: sym(b"uv_poll_stop\0")?,
                timer_init: sym(b"uv_timer_init\0")?,
                timer_start: sym(b"uv_timer_start\0")?,
                timer_stop: sym(b"uv_timer_stop\0")?,
                close: sym(b"uv_close\0")?,
                uv_ref: sym(b"uv_ref\0")?,
                uv_unref: sym(b"uv_unref\0")?,
                hrtime: sym(b"uv_hrtime\0")?,
                async_init: sym(b"uv_async_init\0")?,
                async_send: sym(b"uv_async_send\0")?,
            })
        }
    })
    .as_ref()
}

/// Real monotonic time in ms. Not the loop's cached `uv_now`: a JS thread
/// that blocked (a sync call, a long loop) would stamp a batch with a time
/// from before the block and time it out at once.
pub(crate) fn now_ms(uv: &Uv) -> u64 {
    // SAFETY: no arguments, no state
    unsafe { (uv.hrtime)() / 1_000_000 }
}

/// Can this process run the direct transport?
pub fn available() -> bool {
    uv().is_some()
}

/// A zeroed, 8-aligned block of `size` bytes for a libuv handle.
pub(crate) fn alloc_handle(size: usize) -> *mut c_void {
    let words = size.div_ceil(8).max(1);
    Box::into_raw(vec![0u64; words].into_boxed_slice()) as *mut c_void
}

/// # Safety
/// `h` came from [`alloc_handle`] with the same `size`, and libuv is done with it.
pub(crate) unsafe fn free_handle(h: *mut c_void, size: usize) {
    let words = size.div_ceil(8).max(1);
    drop(Box::from_raw(ptr::slice_from_raw_parts_mut(
        h as *mut u64,
        words,
    )));
}

/// `handle->data`, the first field of every libuv handle.
///
/// # Safety
/// `h` is a live libuv handle.
pub(crate) unsafe fn handle_data(h: *mut c_void) -> *mut c_void {
    *(h as *mut *mut c_void)
}

pub(crate) unsafe fn set_handle_data(h: *mut c_void, data: *mut c_void) {
    *(h as *mut *mut c_void) = data;
}
