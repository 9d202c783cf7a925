//! A connected socket for tokio's I/O traits, for futures run by the JS
//! thread's executor ([`super::executor`]): reads and writes are
//! non-blocking syscalls made where the future is polled; when one would
//! block, a libuv poll handle on the loop watches for that readiness and
//! its callback runs a pass of the executor (which polls every task, so no
//! per-socket waker is kept). The handle is made on first use, on the JS
//! thread; a socket used on any other thread fails with an error, never
//! touching libuv there.

use std::cell::Cell;
use std::ffi::{c_int, c_void};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::env::{release_handle, with_state};
use super::executor::run_current;
use super::uv::{
    alloc_handle, free_handle, set_handle_data, uv, UV_POLL, UV_READABLE, UV_WRITABLE,
};

thread_local! {
    static MARK: u8 = const { 0 };
}

/// This thread, cheaply: the address of a thread-local, unique among the
/// threads alive.
pub(crate) fn this_thread() -> usize {
    MARK.with(|m| m as *const u8 as usize)
}

/// Readiness, shared with the poll handle's callback.
#[derive(Default)]
struct Ready {
    /// Not known to be blocked (a read or write may be tried).
    readable: Cell<bool>,
    writable: Cell<bool>,
    /// The events the handle watches now.
    watching: Cell<c_int>,
}

/// See the module docs.
pub(crate) struct LoopSocket {
    fd: OwnedFd,
    /// The JS thread ([`this_thread`]).
    thread: usize,
    event_loop: usize,
    /// The poll handle (null until first needed) and its readiness.
    poll: *mut c_void,
    ready: Rc<Ready>,
}

// SAFETY: the Rc and the handle are only touched on `thread` (every method
// checks); elsewhere the socket only fails calls, and a drop there (its
// executor's env gone before it was first polled) finds no handle.
unsafe impl Send for LoopSocket {}

impl LoopSocket {
    /// `fd` (connected, non-blocking) for the executor of the JS thread
    /// `thread`, whose loop is `event_loop`.
    pub(crate) fn new(fd: OwnedFd, thread: usize, event_loop: usize) -> LoopSocket {
        let ready = Ready::default();
        ready.readable.set(true);
        ready.writable.set(true);
        LoopSocket {
            fd,
            thread,
            event_loop,
            poll: std::ptr::null_mut(),
            ready: Rc::new(ready),
        }
    }

    fn check_thread(&self) -> io::Result<()> {
        if this_thread() == self.thread {
            Ok(())
        } else {
            Err(io::Error::other(
                "a JS-thread socket used on another thread",
            ))
        }
    }

    /// Watch for `event` (UV_READABLE or UV_WRITABLE) too.
    fn watch(&mut self, event: c_int) -> io::Result<()> {
        let uv = uv().ok_or_else(|| io::Error::other("libuv is not available"))?;
        if self.poll.is_null() {
            // SAFETY: no state
            let size = unsafe { (uv.handle_size)(UV_POLL) };
            let h = alloc_handle(size);
            // SAFETY: on the loop's thread (checked by every caller); a
            // fresh handle on our open fd
            if unsafe { (uv.poll_init)(self.event_loop as *mut c_void, h, self.fd.as_raw_fd()) }
                != 0
            {
                // SAFETY: never initialised, so libuv holds no reference
                unsafe { free_handle(h, size) };
                return Err(io::Error::other("uv_poll_init failed"));
            }
            // SAFETY: an initialised handle of this thread; its data owns a
            // clone of `ready`, released by its close callback
            unsafe {
                set_handle_data(h, Rc::into_raw(self.ready.clone()) as *mut c_void);
                (uv.uv_unref)(h);
            }
            self.poll = h;
        }
        let want = self.ready.watching.get() | event;
        if want != self.ready.watching.get() {
            self.ready.watching.set(want);
            // SAFETY: our open poll handle, on its thread
            unsafe { (uv.poll_start)(self.poll, want, on_poll) };
        }
        Ok(())
    }

    /// The syscall `op` on the fd, or Pending (watching `event`) when it
    /// would block.
    fn attempt<T>(
        &mut self,
        event: c_int,
        mut op: impl FnMut(c_int) -> isize,
        done: impl FnOnce(usize) -> T,
    ) -> Poll<io::Result<T>> {
        if let Err(e) = self.check_thread() {
            return Poll::Ready(Err(e));
        }
        let ready = self.ready.clone();
        let flag = if event == UV_READABLE {
            &ready.readable
        } else {
            &ready.writable
        };
        if flag.get() {
            loop {
                let n = op(self.fd.as_raw_fd());
                if n >= 0 {
                    return Poll::Ready(Ok(done(n as usize)));
                }
                let e = io::Error::last_os_error();
                match e.kind() {
                    io::ErrorKind::Interrupted => continue,
                    io::ErrorKind::WouldBlock => break,
                    _ => return Poll::Ready(Err(e)),
                }
            }
            flag.set(false);
        }
        match self.watch(event) {
            Ok(()) => Poll::Pending,
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

impl AsyncRead for LoopSocket {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // SAFETY: recv only writes the bytes it reports, which are then
        // marked initialised; nothing is read from the rest
        let space = unsafe { buf.unfilled_mut() };
        let (ptr, len) = (space.as_mut_ptr(), space.len());
        let n = match this.attempt(
            UV_READABLE,
            // SAFETY: `ptr` is `len` writable bytes of `buf`
            |fd| unsafe { libc::recv(fd, ptr as *mut c_void, len, 0) },
            |n| n,
        ) {
            Poll::Ready(Ok(n)) => n,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        };
        // SAFETY: recv wrote these `n` bytes
        unsafe { buf.assume_init(n) };
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for LoopSocket {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().attempt(
            UV_WRITABLE,
            // SAFETY: `buf` is readable; no SIGPIPE on a closed peer
            |fd| unsafe {
                libc::send(
                    fd,
                    buf.as_ptr() as *const c_void,
                    buf.len(),
                    libc::MSG_NOSIGNAL,
                )
            },
            |n| n,
        )
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // SAFETY: our open fd
        unsafe { libc::shutdown(self.fd.as_raw_fd(), libc::SHUT_WR) };
        Poll::Ready(Ok(()))
    }
}

impl Drop for LoopSocket {
    fn drop(&mut self) {
        if self.poll.is_null() || self.check_thread().is_err() {
            return;
        }
        if let Some(uv) = uv() {
            // SAFETY: our open handle, on its thread: stopped before the fd
            // closes (with this struct), closed once; the close callback
            // frees it and its `Ready`
            unsafe {
                (uv.poll_stop)(self.poll);
                (uv.close)(self.poll, Some(on_poll_closed));
            }
        }
    }
}

unsafe extern "C" fn on_poll(h: *mut c_void, status: c_int, events: c_int) {
    with_state::<Ready>(h, |ready| {
        // an error: let the next read and write meet it
        let fired = if status < 0 {
            UV_READABLE | UV_WRITABLE
        } else {
            events
        };
        // readability stays watched (a socket waits for replies most of
        // its life) unless nobody read since it was last reported, which
        // would report it again each loop turn; writability is watched
        // only while a write waits
        let mut done = fired & UV_WRITABLE;
        if fired & UV_READABLE != 0 && ready.readable.replace(true) {
            done |= UV_READABLE;
        }
        if fired & UV_WRITABLE != 0 {
            ready.writable.set(true);
        }
        let left = ready.watching.get() & !done;
        if status < 0 {
            // libuv stopped the handle before reporting the error: nothing
            // is watched now; the next read or write meets the error and
            // watches again if it would block
            ready.watching.set(0);
            return;
        }
        if left != ready.watching.get() {
            ready.watching.set(left);
            if let Some(uv) = uv() {
                if left == 0 {
                    (uv.poll_stop)(h);
                } else {
                    (uv.poll_start)(h, left, on_poll);
                }
            }
        }
    });
    let _ = std::panic::catch_unwind(run_current);
}

unsafe extern "C" fn on_poll_closed(h: *mut c_void) {
    release_handle::<Ready>(h, UV_POLL);
}
