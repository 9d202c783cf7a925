//! The data connection on the JS thread itself: the store's socket, opened
//! (and authenticated) by [`crate::redis::store::RedisStore::connect_direct`] (`connect`)
//! on tokio, is then watched by a libuv poll handle on the event loop of the
//! env that made the store. A batch is packed and written by the call that
//! sends it; its replies are read, decoded ([`crate::redis::wire`]) and
//! handed to JS in the poll callback: no thread hop in either direction, so
//! a lone call costs one round trip and no more.
//!
//! Everything here runs on that JS thread. The env is never touched after
//! its cleanup hook ran (worker terminated, process exiting): the hook closes
//! the handles and the socket, and calls in flight then simply never settle,
//! as every other pending promise of that env.
//!
//! Calls made of several batches (keys, clearing a prefix, leases: see
//! [`crate::redis::keys`], [`crate::redis::lease`]) run here too, as jobs:
//! their futures are written against the batch seam ([`Exec`], implemented
//! here by [`Link`]) and polled on this thread each time a batch of theirs
//! completes; each settles a promise.
//!
//! A Redis Cluster store runs its calls here too ([`cluster`]): one such
//! connection per primary, no JS callback of their own (their pipelines
//! are raw, [`Direct::send_raw`]), each delivery waking the cluster's jobs.
//!
//! libuv's functions are looked up in the running process (Node exports
//! them, [`crate::js_loop::uv`]); where they are not found the store keeps
//! the tokio transport. [`sock`] moves the bytes (plain, or TLS records by
//! rustls); [`jobs`] runs the calls made of several batches;
//! [`crate::js_loop::env`] holds the env and libuv handle plumbing both
//! kinds of connection share.

pub mod cluster;
mod connect;
mod jobs;
mod sock;

use std::cell::RefCell;
use std::ffi::{c_int, c_void};
use std::future::Future;
use std::os::fd::{AsRawFd, OwnedFd};
use std::ptr;
use std::rc::Rc;

use napi::bindgen_prelude::ToNapiValue;
use napi::sys;

use crate::boundary::batch::blob_value;
use crate::boundary::js_error::coded;
use crate::boundary::typed::KeptInt32;
use crate::error::PersistError;
use crate::js_loop::env::{
    add_hook, async_context, event_loop, hold_handles, release_handle, remove_hook, with_state,
};
use crate::js_loop::uv::{
    alloc_handle, free_handle, now_ms, uv, UV_POLL, UV_READABLE, UV_TIMER, UV_WRITABLE,
};
use crate::redis::batch::{Op, OpResult, Wait};
use crate::redis::results::encode_results;
use crate::redis::wire::{Replies, Wire};
pub use connect::DirectSocket;
pub use jobs::Link;
use jobs::{poll_jobs, push_job, Job, Owner, RawSlot};
use sock::{closed_by_server, Sock};
use sock::{flush_tls, read_tls};

type Cell = RefCell<State>;

struct State {
    env: sys::napi_env,
    fd: Option<OwnedFd>,
    /// The TLS session of a `rediss://` connection: records in and out of
    /// the socket, plaintext in and out of `wire`.
    tls: Option<Box<crate::tls::Session>>,
    wire: Wire<Owner>,
    /// Jobs waiting for a batch of theirs.
    jobs: Vec<Job>,
    poll: *mut c_void,
    timer: *mut c_void,
    /// `onWire(codes, lens, blob, errors, failure)`, held strongly only
    /// while batches are in flight (else the store could never be GC'd).
    callback: sys::napi_ref,
    async_ctx: sys::napi_async_context,
    /// The Int32Array that carries the outcome codes to `onWire`.
    meta: KeptInt32,
    timeout_ms: u64,
    watching_writes: bool,
    busy: bool,
    open: bool,
    /// The env cleanup hook is registered (its `Rc` is held by the hook).
    hooked: bool,
    /// Called after each delivery (a cluster's connection: its jobs).
    wake: Option<Rc<dyn Fn()>>,
}

/// The JS thread's data connection of one store (see the module docs).
pub struct Direct {
    cell: Rc<Cell>,
}

/// What a callback found, handed to JS once no borrow is held.
struct Outcome {
    done: Vec<(Owner, Replies)>,
    failure: Option<PersistError>,
}

impl Direct {
    /// Watch `fd` on `env`'s event loop; replies go to `callback`.
    ///
    /// # Safety
    /// `env` is the current env and `callback` a function value of it (or
    /// null: a cluster's connection, raw pipelines only); call on its JS
    /// thread.
    pub unsafe fn attach(
        env: sys::napi_env,
        socket: DirectSocket,
        callback: sys::napi_value,
        timeout_ms: u64,
        wait: Option<Wait>,
    ) -> Result<Direct, PersistError> {
        let uv = uv().ok_or_else(|| PersistError::Internal("libuv is not available".into()))?;
        let fail = |what: &str| PersistError::Internal(format!("direct transport: {what}"));
        let lp = event_loop(env).ok_or_else(|| fail("no event loop"))?;
        let mut callback_ref = ptr::null_mut();
        if !callback.is_null()
            && sys::napi_create_reference(env, callback, 0, &mut callback_ref)
                != sys::Status::napi_ok
        {
            return Err(fail("napi_create_reference"));
        }
        let Some(async_ctx) = async_context(env, "awaitly-persistence-native:redis") else {
            if !callback_ref.is_null() {
                sys::napi_delete_reference(env, callback_ref);
            }
            return Err(fail("napi_async_init"));
        };
        let poll = alloc_handle((uv.handle_size)(UV_POLL));
        if (uv.poll_init)(lp, poll, socket.fd.as_raw_fd()) != 0 {
            free_handle(poll, (uv.handle_size)(UV_POLL));
            sys::napi_async_destroy(env, async_ctx);
            if !callback_ref.is_null() {
                sys::napi_delete_reference(env, callback_ref);
            }
            return Err(fail("uv_poll_init"));
        }
        let timer = alloc_handle((uv.handle_size)(UV_TIMER));
        (uv.timer_init)(lp, timer);
        let cell = Rc::new(RefCell::new(State {
            env,
            fd: Some(socket.fd),
            tls: socket.tls,
            wire: Wire::new(wait),
            jobs: Vec::new(),
            poll,
            timer,
            callback: callback_ref,
            async_ctx,
            meta: KeptInt32::default(),
            timeout_ms,
            watching_writes: false,
            busy: false,
            open: true,
            hooked: false,
            wake: None,
        }));
        hold_handles(uv, &cell, &[poll, timer]);
        (uv.poll_start)(poll, UV_READABLE, on_poll);
        if add_hook(env, &cell, on_env_teardown) {
            cell.borrow_mut().hooked = true;
        }
        Ok(Direct { cell })
    }

    /// Pack and write one batch of the JS glue. An error means the
    /// connection is gone (and closed): this batch and every batch in
    /// flight failed with it.
    pub fn send(&self, ops: Vec<Op>) -> Result<(), PersistError> {
        let (mut st, uv) = writable(&self.cell)?;
        st.wire.send(ops, Owner::Js, now_ms(uv));
        if let Err(e) = st.flush() {
            st.shutdown(false, Some(&e));
            drop(st);
            poll_jobs(&self.cell, false);
            release_callback(&self.cell);
            return Err(e);
        }
        if !st.busy {
            st.set_busy(true);
        }
        Ok(())
    }

    /// Write a pipeline packed by the caller (`replies` replies back); the
    /// replies, or the connection's failure, go to `slot`.
    pub(crate) fn send_raw(
        &self,
        packed: &[u8],
        replies: usize,
        slot: Rc<RawSlot>,
    ) -> Result<(), PersistError> {
        jobs::send_with(&self.cell, |wire, now| {
            wire.send_raw(packed, replies, Owner::Raw(slot), now)
        })
    }

    /// Call `wake` after each delivery on this connection.
    pub(crate) fn on_wake(&self, wake: Rc<dyn Fn()>) {
        if let Ok(mut st) = self.cell.try_borrow_mut() {
            st.wake = Some(wake);
        }
    }

    /// Is the connection still up?
    pub fn is_open(&self) -> bool {
        self.cell.try_borrow().map(|st| st.open).unwrap_or(false)
    }

    /// The batch seam of this connection, for jobs.
    pub fn link(&self) -> Link {
        Link::new(Rc::downgrade(&self.cell))
    }

    /// Run `job` on this connection (see the module docs): its promise.
    ///
    /// # Safety
    /// `env` is the current env; call on its JS thread, from a JS call.
    pub unsafe fn start<T, F>(
        &self,
        env: sys::napi_env,
        job: F,
    ) -> Result<sys::napi_value, PersistError>
    where
        T: napi::bindgen_prelude::ToNapiValue + 'static,
        F: Future<Output = Result<T, PersistError>> + 'static,
    {
        let promise = push_job(env, job, |job| match self.cell.try_borrow_mut() {
            Ok(mut st) => {
                st.jobs.push(job);
                Ok(())
            }
            Err(_) => Err(job),
        })?;
        poll_jobs(&self.cell, false);
        Ok(promise)
    }

    /// Close now; batches in flight never settle through the callback (the
    /// caller settles them); jobs in flight fail.
    pub fn close(&self) {
        self.shut();
        poll_jobs(&self.cell, false);
        release_callback(&self.cell);
    }

    fn shut(&self) {
        if let Ok(mut st) = self.cell.try_borrow_mut() {
            st.shutdown(false, None);
        }
    }
}

impl Drop for Direct {
    fn drop(&mut self) {
        // the store was collected or replaced: nothing can await its calls
        // (a job in flight keeps the store alive, see `set_busy`)
        self.shut();
        release_callback(&self.cell);
    }
}

impl State {
    /// Write what the socket takes now; watch for writability if not all.
    fn flush(&mut self) -> Result<(), PersistError> {
        let Some(fd) = self.fd.as_ref().map(|f| f.as_raw_fd()) else {
            return Err(PersistError::Unavailable(
                "the connection was closed".into(),
            ));
        };
        if let Some(tls) = self.tls.as_deref_mut() {
            let blocked = flush_tls(tls, &mut self.wire, fd)?;
            self.watch_writes(blocked);
            return Ok(());
        }
        loop {
            let buf = self.wire.unwritten();
            if buf.is_empty() {
                break;
            }
            match Sock(fd).send(buf) {
                Ok(n) => self.wire.wrote(n),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    self.watch_writes(true);
                    return Ok(());
                }
                Err(e) => return Err(PersistError::Unavailable(e.to_string())),
            }
        }
        self.watch_writes(false);
        Ok(())
    }

    fn watch_writes(&mut self, on: bool) {
        if self.watching_writes == on || !self.open {
            return;
        }
        if let Some(uv) = uv() {
            let events = if on {
                UV_READABLE | UV_WRITABLE
            } else {
                UV_READABLE
            };
            // SAFETY: `poll` is open
            unsafe { (uv.poll_start)(self.poll, events, on_poll) };
            self.watching_writes = on;
        }
    }

    /// Batches in flight (`true`) keep the process alive, the store object
    /// too, and arm the command timeout; an idle connection holds neither.
    fn set_busy(&mut self, busy: bool) {
        let Some(uv) = uv() else { return };
        if !self.open || self.busy == busy {
            return;
        }
        self.busy = busy;
        // SAFETY: handles open, on their loop's thread
        unsafe {
            let mut count = 0u32;
            let held = !self.callback.is_null();
            if busy {
                (uv.uv_ref)(self.poll);
                if held {
                    sys::napi_reference_ref(self.env, self.callback, &mut count);
                }
                (uv.timer_start)(self.timer, on_timer, self.timeout_ms.max(1), 0);
            } else {
                (uv.uv_unref)(self.poll);
                if held {
                    sys::napi_reference_unref(self.env, self.callback, &mut count);
                }
                (uv.timer_stop)(self.timer);
            }
        }
    }

    /// Close the socket and the handles; the jobs' batches in flight fail
    /// with `why`. `teardown`: the env is going away (its cleanup hook), so
    /// no napi call is made.
    fn shutdown(&mut self, teardown: bool, why: Option<&PersistError>) {
        if !self.open {
            return;
        }
        if !teardown {
            self.set_busy(false);
        }
        self.open = false;
        let err = || match why {
            Some(e) => e.clone(),
            None => PersistError::Unavailable("the connection was closed".into()),
        };
        for owner in self.wire.abandon() {
            match owner {
                Owner::Job(slot) => {
                    if let Ok(mut s) = slot.try_borrow_mut() {
                        *s = Some(Err(err()));
                    }
                }
                Owner::Raw(slot) => {
                    if let Ok(mut s) = slot.try_borrow_mut() {
                        *s = Some(Err(err()));
                    }
                }
                Owner::Js => {}
            }
        }
        if let Some(uv) = uv() {
            // SAFETY: handles open; their close callbacks free them and
            // release the `Rc`s they hold
            unsafe {
                (uv.poll_stop)(self.poll);
                (uv.timer_stop)(self.timer);
                (uv.close)(self.poll, Some(on_poll_closed));
                (uv.close)(self.timer, Some(on_timer_closed));
            }
        }
        // the poll handle is stopped: the socket can go
        self.fd = None;
        if teardown {
            // the env frees its references and promises itself; nothing
            // may call it now
            self.jobs.clear();
            self.env = ptr::null_mut();
            self.callback = ptr::null_mut();
            self.async_ctx = ptr::null_mut();
            self.meta.forget();
            self.hooked = false;
            self.wake = None;
        }
    }
}

/// The state of an open connection, to write on, and libuv.
fn writable(
    cell: &Rc<Cell>,
) -> Result<
    (
        std::cell::RefMut<'_, State>,
        &'static crate::js_loop::uv::Uv,
    ),
    PersistError,
> {
    let st = cell
        .try_borrow_mut()
        .map_err(|_| PersistError::Internal("direct transport: re-entered".into()))?;
    if !st.open {
        return Err(PersistError::Unavailable(
            "the connection was closed".into(),
        ));
    }
    let uv = uv().ok_or_else(|| PersistError::Internal("libuv is not available".into()))?;
    Ok((st, uv))
}

unsafe extern "C" fn on_poll(h: *mut c_void, status: c_int, events: c_int) {
    with_state::<Cell>(h, |cell| {
        let outcome = {
            let Ok(mut st) = cell.try_borrow_mut() else {
                return;
            };
            if !st.open {
                return;
            }
            let mut out = Outcome {
                done: Vec::new(),
                failure: None,
            };
            if status < 0 {
                out.failure = Some(PersistError::Unavailable(format!(
                    "socket error (libuv status {status})"
                )));
            } else {
                if events & UV_WRITABLE != 0 {
                    if let Err(e) = st.flush() {
                        out.failure = Some(e);
                    }
                }
                if out.failure.is_none() && events & UV_READABLE != 0 {
                    out.failure = st.read(&mut out.done).err();
                }
            }
            if out.failure.is_some() || st.wire.in_flight() == 0 {
                st.set_busy(false);
            }
            out
        };
        deliver(cell, outcome);
    });
}

unsafe extern "C" fn on_timer(h: *mut c_void) {
    with_state::<Cell>(h, |cell| {
        let outcome = {
            let Ok(mut st) = cell.try_borrow_mut() else {
                return;
            };
            let Some(uv) = uv() else { return };
            if !st.open {
                return;
            }
            let now = now_ms(uv);
            match st.wire.oldest_sent_ms() {
                Some(sent) if now.saturating_sub(sent) >= st.timeout_ms => {
                    // no reply in time: the server is paused or the link is
                    // half-open; replies come in order, so nothing behind
                    // the oldest batch can arrive either
                    st.set_busy(false);
                    Outcome {
                        done: Vec::new(),
                        failure: Some(PersistError::Timeout(st.timeout_ms)),
                    }
                }
                Some(sent) => {
                    let left = st.timeout_ms - now.saturating_sub(sent);
                    (uv.timer_start)(st.timer, on_timer, left.max(1), 0);
                    return;
                }
                None => return,
            }
        };
        deliver(cell, outcome);
    });
}

impl State {
    /// Read what the socket has; the batches it completes go to `done`.
    fn read(&mut self, done: &mut Vec<(Owner, Replies)>) -> Result<(), PersistError> {
        let Some(fd) = self.fd.as_ref().map(|f| f.as_raw_fd()) else {
            return Ok(());
        };
        if let Some(tls) = self.tls.as_deref_mut() {
            read_tls(tls, &mut self.wire, fd, done)?;
            // records to answer with (alerts, key updates): out at once
            if tls.wants_write() {
                self.flush()?;
            }
            return Ok(());
        }
        // level-triggered: what is left is read on the next callback
        for _ in 0..16 {
            let mut cap = 0;
            let mut err = None;
            let n = self.wire.fill(|ptr, len| {
                cap = len;
                // SAFETY: `ptr` is writable for `len` bytes
                let buf = unsafe { std::slice::from_raw_parts_mut(ptr, len) };
                match Sock(fd).recv(buf) {
                    Ok(n) => n as isize,
                    Err(e) => {
                        err = Some(e);
                        -1
                    }
                }
            });
            if n > 0 {
                self.wire.parse(done)?;
                if (n as usize) < cap {
                    return Ok(());
                }
                continue;
            }
            if n == 0 {
                return Err(closed_by_server());
            }
            match err {
                Some(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
                Some(e) => return Err(PersistError::Unavailable(e.to_string())),
                None => return Ok(()),
            }
        }
        Ok(())
    }
}

/// Hand an outcome to JS: `onWire(codes, lens, blob, errors, failure)`, the
/// results of the completed batches in order, then the failure (if any) that
/// ended the connection and every batch still in flight.
fn deliver(cell: &Rc<Cell>, outcome: Outcome) {
    let mut results: Vec<OpResult> = Vec::new();
    let mut woken = false;
    for (owner, r) in outcome.done {
        match (owner, r) {
            (Owner::Js, Replies::Results(r)) => results.extend(r),
            (Owner::Job(slot), Replies::Results(r)) => {
                if let Ok(mut s) = slot.try_borrow_mut() {
                    *s = Some(Ok(r));
                    woken = true;
                }
            }
            (Owner::Raw(slot), Replies::Values(v)) => {
                if let Ok(mut s) = slot.try_borrow_mut() {
                    *s = Some(Ok(v));
                    woken = true;
                }
            }
            _ => {}
        }
    }
    let wake = cell.try_borrow().ok().and_then(|st| st.wake.clone());
    if results.is_empty() && (outcome.failure.is_none() || wake.is_some()) {
        if outcome.failure.is_some() {
            // a cluster's connection: no JS callback; its raw pipelines fail
            if let Ok(mut st) = cell.try_borrow_mut() {
                st.shutdown(false, outcome.failure.as_ref());
            }
            release_callback(cell);
            woken = true;
        }
        if woken {
            poll_jobs(cell, true);
            if let Some(wake) = wake {
                wake();
            }
        }
        return;
    }
    let (env, callback, ctx) = match cell.try_borrow() {
        Ok(st) => (st.env, st.callback, st.async_ctx),
        Err(_) => return,
    };
    let out = encode_results(results);
    let failure = outcome.failure.as_ref().map(coded);
    // SAFETY: on the env's thread, outside any JS frame (a libuv callback)
    unsafe {
        let mut scope = ptr::null_mut();
        if sys::napi_open_handle_scope(env, &mut scope) != sys::Status::napi_ok {
            return;
        }
        let mut func = ptr::null_mut();
        sys::napi_get_reference_value(env, callback, &mut func);
        let mut recv = ptr::null_mut();
        sys::napi_get_global(env, &mut recv);
        let meta = cell
            .try_borrow_mut()
            .ok()
            .and_then(|mut st| st.meta.fill(env, &out.meta));
        let args = (|| -> napi::Result<[sys::napi_value; 5]> {
            let mut count = ptr::null_mut();
            sys::napi_create_uint32(env, out.meta.len() as u32, &mut count);
            let mut null = ptr::null_mut();
            sys::napi_get_null(env, &mut null);
            Ok([
                count,
                meta.unwrap_or(null),
                blob_value(env, &out.blob)?,
                ToNapiValue::to_napi_value(env, out.errors)?,
                ToNapiValue::to_napi_value(env, failure)?,
            ])
        })();
        if let (Ok(args), false, false) =
            (args, func.is_null(), meta.is_none() && !out.meta.is_empty())
        {
            if outcome.failure.is_some() {
                // the connection is over: close it before JS runs (it may
                // open the next one at once)
                if let Ok(mut st) = cell.try_borrow_mut() {
                    st.shutdown(false, outcome.failure.as_ref());
                }
            }
            let mut result = ptr::null_mut();
            let status = sys::napi_make_callback(
                env,
                ctx,
                recv,
                func,
                args.len(),
                args.as_ptr(),
                &mut result,
            );
            if status == sys::Status::napi_pending_exception {
                let mut exc = ptr::null_mut();
                sys::napi_get_and_clear_last_exception(env, &mut exc);
                sys::napi_fatal_exception(env, exc);
            }
        } else if outcome.failure.is_some() {
            if let Ok(mut st) = cell.try_borrow_mut() {
                st.shutdown(false, outcome.failure.as_ref());
            }
        }
        sys::napi_close_handle_scope(env, scope);
    }
    poll_jobs(cell, true);
    if outcome.failure.is_some() {
        release_callback(cell);
    }
}

/// Delete the callback reference, the async context and the cleanup hook of
/// a shut-down connection (all already gone after an env teardown).
fn release_callback(cell: &Rc<Cell>) {
    let Ok(mut st) = cell.try_borrow_mut() else {
        return;
    };
    if st.open {
        return;
    }
    let env = st.env;
    if !st.async_ctx.is_null() {
        // SAFETY: env alive, on its thread
        unsafe { sys::napi_async_destroy(env, st.async_ctx) };
        st.async_ctx = ptr::null_mut();
    }
    // SAFETY: env alive, on its thread
    unsafe { st.meta.release(env) };
    if !st.callback.is_null() {
        // SAFETY: env alive, on its thread
        unsafe { sys::napi_delete_reference(env, st.callback) };
        st.callback = ptr::null_mut();
    }
    if st.hooked {
        st.hooked = false;
        drop(st);
        // SAFETY: registered by `attach`, env alive, on its thread
        unsafe { remove_hook(env, cell, on_env_teardown) };
    }
}

unsafe extern "C" fn on_env_teardown(arg: *mut c_void) {
    let _ = std::panic::catch_unwind(|| {
        let cell = Rc::from_raw(arg as *const Cell);
        if let Ok(mut st) = cell.try_borrow_mut() {
            st.hooked = false;
            st.shutdown(true, None);
        };
        drop(cell);
    });
}

unsafe extern "C" fn on_poll_closed(h: *mut c_void) {
    release_handle::<Cell>(h, UV_POLL);
}

unsafe extern "C" fn on_timer_closed(h: *mut c_void) {
    release_handle::<Cell>(h, UV_TIMER);
}
