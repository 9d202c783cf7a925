//! A Redis Cluster store's calls on the JS thread: one [`Direct`]
//! connection per primary (opened on tokio by
//! [`RedisStore::connect_direct_node`], then watched here), and each call a
//! future polled here whenever something it may wait for happened. Each
//! runs its batches through [`ClusterLink`] (`link`: the routing core's
//! pipelines written per node, replies handed back, redirects and retries
//! followed). Jobs (keys, clearing, leases) settle a promise; the JS glue's
//! data batches (`batchSend`) are answered like a single server's:
//! through one JS callback (`onBatch(token, count, meta, blob, errors,
//! failure)`), the outcome codes in a kept Int32Array, with no promise or
//! result object per batch.
//!
//! What must not block the JS thread runs on tokio: connecting a node and
//! reading the slot map (`CLUSTER SLOTS`, [`RedisStore::cluster_map`]).
//! Their outcomes arrive in an [`Inbox`] whose libuv async handle wakes
//! the jobs; a timer wakes them for a paused retry or a deadline, and every
//! delivery on a node's connection wakes them too.
//!
//! The env is never touched after its cleanup hook ran: the hook drops the
//! jobs unsettled and closes the handles (each node's connection has its
//! own hook). A collected or closed store shuts down once its jobs are done.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::c_void;
use std::future::Future;
use std::pin::Pin;
use std::ptr;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use napi::sys;

use super::jobs::{poll_list, push_job, Job};
use super::{Direct, DirectSocket};
use crate::boundary::answer::{self, BatchAnswers};
use crate::error::PersistError;
use crate::js_loop::env::{
    add_hook, async_context, event_loop, hold_handles, release_handle, remove_hook, with_state,
};
use crate::js_loop::promise::Scopes;
use crate::js_loop::uv::{alloc_handle, free_handle, now_ms, uv, UV_ASYNC, UV_TIMER};
use crate::redis::batch::{Op, OpResult, Wait};
use crate::redis::cluster::slots::{Node, SlotMap};

mod link;
use crate::redis::store::RedisStore;
use link::closed;
pub use link::ClusterLink;

type CCell = RefCell<CState>;

/// A data batch of the JS glue running over the cluster.
type BatchFut = Pin<Box<dyn Future<Output = Result<Vec<OpResult>, PersistError>>>>;

/// What tokio hands to the JS thread.
enum Arrival {
    Map(Result<SlotMap, PersistError>),
    Conn(Node, u64, Result<DirectSocket, PersistError>),
}

/// Where tokio puts its outcomes; `handle` (the async handle, as an
/// address; 0 once closed) is sent to under its lock, so never after it
/// was closed.
struct Inbox {
    handle: Mutex<usize>,
    got: Mutex<Vec<Arrival>>,
}

impl Inbox {
    fn post(&self, a: Arrival) {
        if let Ok(mut got) = self.got.lock() {
            got.push(a);
        }
        if let (Ok(h), Some(uv)) = (self.handle.lock(), uv()) {
            if *h != 0 {
                // SAFETY: the handle is open while its address is here
                unsafe { (uv.async_send)(*h as *mut c_void) };
            }
        }
    }
}

/// How a node's connection attempt ended.
enum Attempt {
    Connecting(u64),
    Failed(u64, PersistError),
}

struct CState {
    env: sys::napi_env,
    async_ctx: sys::napi_async_context,
    core: RedisStore,
    timeout_ms: u64,
    wait: Option<Wait>,
    jobs: Vec<Job>,
    /// The JS glue's data batches in flight, each with its token.
    batches: Vec<(u32, BatchFut)>,
    /// Batches taken out by polls under way (see [`CState::idle`]).
    batches_polled: usize,
    /// How the batches are answered (`onBatch`).
    answers: BatchAnswers,
    map: SlotMap,
    refreshing: bool,
    /// The last reading of the map failed: why (for calls waiting on one).
    map_error: Option<PersistError>,
    /// Readings of the map finished so far.
    maps_read: u64,
    /// Read the map again once the reading under way is done.
    refresh_again: bool,
    nodes: HashMap<Node, Direct>,
    attempts: HashMap<Node, Attempt>,
    next_attempt: u64,
    inbox: Arc<Inbox>,
    async_h: *mut c_void,
    timer: *mut c_void,
    /// The earliest time a job asked to be polled again, since the timer
    /// was last armed.
    wake_at: Option<u64>,
    open: bool,
    /// No more calls (closed, or the store collected): shut down once the
    /// jobs are done.
    ending: bool,
    hooked: bool,
}

/// The JS-thread transport of one cluster store (see the module docs).
pub struct DirectCluster {
    cell: Rc<CCell>,
}

impl DirectCluster {
    /// Set up on `env`'s event loop; nothing connects before the first call.
    ///
    /// # Safety
    /// `env` is the current env; call on its JS thread.
    pub unsafe fn new(env: sys::napi_env, core: RedisStore) -> Result<DirectCluster, PersistError> {
        let fail = |what: &str| PersistError::Internal(format!("direct cluster: {what}"));
        let uv = uv().ok_or_else(|| fail("libuv is not available"))?;
        let lp = event_loop(env).ok_or_else(|| fail("no event loop"))?;
        let async_ctx = async_context(env, "awaitly-persistence-native:redis")
            .ok_or_else(|| fail("napi_async_init"))?;
        let async_h = alloc_handle((uv.handle_size)(UV_ASYNC));
        if (uv.async_init)(lp, async_h, on_async) != 0 {
            free_handle(async_h, (uv.handle_size)(UV_ASYNC));
            sys::napi_async_destroy(env, async_ctx);
            return Err(fail("uv_async_init"));
        }
        let timer = alloc_handle((uv.handle_size)(UV_TIMER));
        (uv.timer_init)(lp, timer);
        let cfg = core.config();
        let timeout_ms = cfg.command_timeout_ms;
        let wait = core.wait();
        let cell = Rc::new(RefCell::new(CState {
            env,
            async_ctx,
            core,
            timeout_ms,
            wait,
            jobs: Vec::new(),
            batches: Vec::new(),
            batches_polled: 0,
            answers: BatchAnswers::default(),
            map: SlotMap::default(),
            refreshing: false,
            map_error: None,
            maps_read: 0,
            refresh_again: false,
            nodes: HashMap::new(),
            attempts: HashMap::new(),
            next_attempt: 0,
            inbox: Arc::new(Inbox {
                handle: Mutex::new(async_h as usize),
                got: Mutex::new(Vec::new()),
            }),
            async_h,
            timer,
            wake_at: None,
            open: true,
            ending: false,
            hooked: false,
        }));
        hold_handles(uv, &cell, &[async_h, timer]);
        if add_hook(env, &cell, on_env_teardown) {
            cell.borrow_mut().hooked = true;
        }
        Ok(DirectCluster { cell })
    }

    /// Run `ops` as one batch over the cluster: a promise of one result
    /// per op, in order.
    ///
    /// # Safety
    /// `env` is the current env; call on its JS thread, from a JS call.
    pub unsafe fn start<T, F>(
        &self,
        env: sys::napi_env,
        job: impl FnOnce(ClusterLink) -> F,
    ) -> Result<sys::napi_value, PersistError>
    where
        T: napi::bindgen_prelude::ToNapiValue + 'static,
        F: Future<Output = Result<T, PersistError>> + 'static,
    {
        if self.cell.try_borrow().map(|st| st.ending).unwrap_or(true) {
            return Err(PersistError::Closed);
        }
        let link = ClusterLink {
            cell: Rc::downgrade(&self.cell),
        };
        let promise = push_job(env, job(link), |job| match self.cell.try_borrow_mut() {
            Ok(mut st) => {
                st.jobs.push(job);
                Ok(())
            }
            Err(_) => Err(job),
        })?;
        poll(&self.cell, false);
        Ok(promise)
    }

    /// Take `on_batch` as the function the data batches of [`send`] answer
    /// (`onBatch(token, count, meta, blob, errors, failure)`).
    ///
    /// # Safety
    /// `env` is the current env, `on_batch` a function of it; on its JS thread.
    ///
    /// [`send`]: DirectCluster::send
    pub unsafe fn attach(
        &self,
        env: sys::napi_env,
        on_batch: sys::napi_value,
    ) -> Result<(), PersistError> {
        let mut st = self.cell.try_borrow_mut().map_err(|_| closed())?;
        if !st.open || st.ending {
            return Err(PersistError::Closed);
        }
        st.answers.attach(env, on_batch)
    }

    /// Run the JS glue's data batch `ops` over the cluster; its results go
    /// to `onBatch` with `token`.
    ///
    /// Call on the env's JS thread, from a JS call.
    pub fn send(&self, token: u32, ops: Vec<Op>) -> Result<(), PersistError> {
        {
            let mut st = self.cell.try_borrow_mut().map_err(|_| closed())?;
            if st.ending || !st.open {
                return Err(PersistError::Closed);
            }
            if !st.answers.attached() {
                return Err(PersistError::Internal(
                    "batchSend before batchAttach".into(),
                ));
            }
            let link = ClusterLink {
                cell: Rc::downgrade(&self.cell),
            };
            st.batches
                .push((token, Box::pin(async move { link.exec(ops).await })));
            // SAFETY: from a JS call, on the env's thread
            unsafe { st.answers.sent() };
        }
        poll(&self.cell, false);
        Ok(())
    }

    /// No more calls; the connections close once the calls in flight are
    /// done.
    pub fn close(&self) {
        end(&self.cell);
    }
}

impl Drop for DirectCluster {
    fn drop(&mut self) {
        end(&self.cell);
    }
}

fn end(cell: &Rc<CCell>) {
    let idle = match cell.try_borrow_mut() {
        Ok(mut st) => {
            st.ending = true;
            st.idle()
        }
        Err(_) => false,
    };
    if idle {
        shutdown(cell, false);
    }
}

/// Close the nodes' connections and the handles. `teardown`: the env is
/// going away (no napi call may be made; the jobs are dropped unsettled).
fn shutdown(cell: &Rc<CCell>, teardown: bool) {
    let (nodes, hooked, env) = {
        let Ok(mut st) = cell.try_borrow_mut() else {
            return;
        };
        if !st.open {
            return;
        }
        st.open = false;
        if let Ok(mut h) = st.inbox.handle.lock() {
            *h = 0;
        }
        if let Some(uv) = uv() {
            // SAFETY: handles open; their close callbacks free them and
            // release the `Rc`s they hold
            unsafe {
                (uv.timer_stop)(st.timer);
                (uv.close)(st.async_h, Some(on_async_closed));
                (uv.close)(st.timer, Some(on_timer_closed));
            }
        }
        if teardown {
            // the env frees its references itself; nothing may call it now
            st.jobs.clear();
            st.batches.clear();
            st.async_ctx = ptr::null_mut();
            st.answers.forget();
            st.hooked = false;
        } else {
            let env = st.env;
            // SAFETY: env alive, on its thread
            unsafe {
                if !st.async_ctx.is_null() {
                    sys::napi_async_destroy(env, st.async_ctx);
                    st.async_ctx = ptr::null_mut();
                }
                st.answers.release();
            }
        }
        let hooked = std::mem::replace(&mut st.hooked, false);
        (std::mem::take(&mut st.nodes), hooked, st.env)
    };
    if !teardown {
        for d in nodes.values() {
            d.close();
        }
    }
    drop(nodes);
    if hooked {
        // SAFETY: registered by `new`, env alive, on its thread
        unsafe { remove_hook(env, cell, on_env_teardown) };
    }
}

/// Take in what tokio delivered, poll every job and batch, arm the timer
/// for the earliest wake asked for; shut down an ended store once idle.
fn poll(cell: &Rc<CCell>, from_loop: bool) {
    let (env, arrived) = match cell.try_borrow() {
        Ok(st) if st.open => (
            st.env,
            st.inbox.got.lock().map(|g| !g.is_empty()).unwrap_or(false),
        ),
        _ => return,
    };
    if arrived {
        // SAFETY: on the env's thread, the env alive (the transport is
        // open); attaching a socket makes napi values
        unsafe {
            let mut hs = ptr::null_mut();
            if sys::napi_open_handle_scope(env, &mut hs) != sys::Status::napi_ok {
                return;
            }
            take_inbox(cell);
            sys::napi_close_handle_scope(env, hs);
        }
    }
    let (env, ctx, mut jobs, mut batches) = match cell.try_borrow_mut() {
        Ok(mut st) if st.open && !st.idle() => {
            let batches = std::mem::take(&mut st.batches);
            st.batches_polled += batches.len();
            (st.env, st.async_ctx, std::mem::take(&mut st.jobs), batches)
        }
        _ => return,
    };
    let polled = batches.len();
    // SAFETY: on the env's thread; the env is alive (its cleanup hook
    // closes this transport first)
    unsafe {
        if !jobs.is_empty() {
            poll_list(env, ctx, &mut jobs, from_loop);
        }
        if !batches.is_empty() {
            poll_batches(cell, env, ctx, &mut batches, from_loop);
        }
    }
    let ended = {
        let Ok(mut st) = cell.try_borrow_mut() else {
            return;
        };
        let newer = std::mem::take(&mut st.jobs);
        st.jobs = jobs;
        st.jobs.extend(newer);
        let newer = std::mem::take(&mut st.batches);
        st.batches = batches;
        st.batches.extend(newer);
        st.batches_polled -= polled;
        if let Some(uv) = uv() {
            // SAFETY: handles open, on their loop's thread
            unsafe {
                if st.idle() {
                    (uv.uv_unref)(st.async_h);
                    (uv.timer_stop)(st.timer);
                } else {
                    // calls in flight keep the process alive
                    (uv.uv_ref)(st.async_h);
                    // every job polled asked again for its wake; a poll
                    // nested in this one (a call made by the JS this poll
                    // settled) armed the earliest asked before it
                    if let Some(at) = st.wake_at.take() {
                        let left = at.saturating_sub(now_ms(uv)).max(1);
                        (uv.timer_start)(st.timer, on_timer, left, 0);
                    }
                }
            }
        }
        st.ending && st.idle()
    };
    if ended {
        shutdown(cell, false);
    }
}

/// Poll each of `batches` once; hand those done to `onBatch` (and remove
/// them). `from_loop`: as [`poll_list`]'s.
///
/// # Safety
/// On the env's thread, the env alive; `ctx` its async context (or null).
unsafe fn poll_batches(
    cell: &Rc<CCell>,
    env: sys::napi_env,
    ctx: sys::napi_async_context,
    batches: &mut Vec<(u32, BatchFut)>,
    from_loop: bool,
) {
    let Some(_scope) = Scopes::open(env, ctx, from_loop) else {
        return;
    };
    let mut cx = Context::from_waker(std::task::Waker::noop());
    batches.retain_mut(|(token, fut)| match fut.as_mut().poll(&mut cx) {
        Poll::Pending => true,
        Poll::Ready(r) => {
            let answer = match cell.try_borrow_mut() {
                Ok(mut st) => st.answers.prepare(*token, r),
                Err(_) => None,
            };
            if let Some(a) = answer {
                answer::call(env, a);
            }
            false
        }
    });
}

/// Attach the sockets that arrived, note the maps read.
fn take_inbox(cell: &Rc<CCell>) {
    let Ok(mut st) = cell.try_borrow_mut() else {
        return;
    };
    let got = match st.inbox.got.lock() {
        Ok(mut g) => std::mem::take(&mut *g),
        Err(_) => return,
    };
    for a in got {
        match a {
            Arrival::Map(r) => {
                st.refreshing = false;
                st.maps_read += 1;
                match r {
                    Ok(m) => {
                        st.map_error = None;
                        st.map = m;
                    }
                    Err(e) => st.map_error = Some(e),
                }
                if std::mem::take(&mut st.refresh_again) {
                    st.refresh_soon();
                }
            }
            Arrival::Conn(node, id, r) => {
                if !matches!(st.attempts.get(&node), Some(Attempt::Connecting(a)) if *a == id) {
                    continue;
                }
                let attached = r.and_then(|socket| {
                    // SAFETY: on the env's thread (a libuv callback or a JS
                    // call); the env is alive (the transport is open)
                    unsafe { Direct::attach(st.env, socket, ptr::null_mut(), st.timeout_ms, None) }
                });
                match attached {
                    Ok(d) => {
                        let weak = Rc::downgrade(cell);
                        d.on_wake(Rc::new(move || {
                            if let Some(c) = weak.upgrade() {
                                poll(&c, true);
                            }
                        }));
                        st.attempts.remove(&node);
                        st.nodes.insert(node, d);
                    }
                    Err(e) => {
                        st.attempts.insert(node, Attempt::Failed(id, e));
                    }
                }
            }
        }
    }
}

impl CState {
    /// No job and no batch in flight.
    fn idle(&self) -> bool {
        self.jobs.is_empty() && self.batches.is_empty() && self.batches_polled == 0
    }

    /// Read the map again on tokio (one reading at a time).
    fn refresh_soon(&mut self) {
        if self.refreshing || !self.open {
            return;
        }
        self.refreshing = true;
        let core = self.core.clone();
        let inbox = self.inbox.clone();
        napi::bindgen_prelude::spawn(async move {
            inbox.post(Arrival::Map(core.cluster_map().await));
        });
    }

    /// Connect `node` on tokio: the attempt's id.
    fn connect(&mut self, node: &Node) -> u64 {
        self.next_attempt += 1;
        let id = self.next_attempt;
        self.attempts.insert(node.clone(), Attempt::Connecting(id));
        let core = self.core.clone();
        let inbox = self.inbox.clone();
        let n = node.clone();
        napi::bindgen_prelude::spawn(async move {
            let r = core.connect_direct_node(&n).await;
            inbox.post(Arrival::Conn(n, id, r));
        });
        id
    }

    fn wake_by(&mut self, at: u64) {
        self.wake_at = Some(self.wake_at.map_or(at, |w| w.min(at)));
    }
}

unsafe extern "C" fn on_async(h: *mut c_void) {
    with_state::<CCell>(h, |cell| poll(cell, true));
}

unsafe extern "C" fn on_timer(h: *mut c_void) {
    with_state::<CCell>(h, |cell| poll(cell, true));
}

unsafe extern "C" fn on_env_teardown(arg: *mut c_void) {
    let _ = std::panic::catch_unwind(|| {
        let cell = Rc::from_raw(arg as *const CCell);
        if let Ok(mut st) = cell.try_borrow_mut() {
            st.hooked = false;
        }
        shutdown(&cell, true);
        drop(cell);
    });
}

unsafe extern "C" fn on_async_closed(h: *mut c_void) {
    release_handle::<CCell>(h, UV_ASYNC);
}

unsafe extern "C" fn on_timer_closed(h: *mut c_void) {
    release_handle::<CCell>(h, UV_TIMER);
}
