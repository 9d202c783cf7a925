//! An executor of Rust futures on the JS thread's event loop, one per env
//! (a thread-local): the PostgreSQL store's calls and connections run here,
//! so a call's query is written by the napi call that makes it and its
//! answer settles the promise in the libuv callback that read it. No
//! thread hop either way.
//!
//! - **Passes.** A pass polls every task, again while any woke meanwhile
//!   (bounded: the rest goes to the next loop turn). One waker serves all:
//!   a task woken on the JS thread during a pass only marks the pass to
//!   repeat; woken from another thread (a tokio timer, DNS, a sender on
//!   tokio) it also signals the loop's async handle, whose callback runs a
//!   pass. Sockets ([`super::stream`]) run a pass from their poll callback.
//! - **Tokio.** Passes run inside napi's tokio runtime context, so tokio's
//!   timers and DNS work from here; their wake-ups arrive as above.
//! - **Promises and answers.** A task made by [`Executor::spawn_promise`]
//!   settles its promise when done; one made by
//!   [`Executor::spawn_answered`] (a data batch) calls its store's
//!   `onBatch` ([`crate::boundary::answer`]). While any of those is pending
//!   the async handle keeps the loop (the process) alive. Other tasks
//!   (connections) do not.
//! - **Teardown.** At env cleanup (worker terminated, process exiting) the
//!   tasks are dropped unpolled, their promises never settle (as every
//!   other pending promise of that env), tasks spawned later from other
//!   threads are dropped, and the env is never touched again.

use std::cell::{Cell, RefCell};
use std::ffi::c_void;
use std::future::Future;
use std::pin::Pin;
use std::ptr;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use napi::sys;

use super::env::{add_hook, async_context, event_loop, release_handle};
use super::promise::{new_promise, settle, settled_with, Scopes, Settled};
use super::uv::{alloc_handle, free_handle, uv, Uv, UV_ASYNC};
use crate::boundary::answer::{self, BatchAnswers};
use crate::error::PersistError;
use crate::redis::batch::OpResult;

/// A task spawned from any thread.
pub(crate) type SendTask = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Rounds of a pass before the rest waits for the next loop turn.
const MAX_ROUNDS: usize = 64;

thread_local! {
    static CURRENT: RefCell<Option<Rc<Executor>>> = const { RefCell::new(None) };
    static IN_PASS: Cell<bool> = const { Cell::new(false) };
}

/// Marks this thread out of a pass when dropped, even by an unwind.
struct PassGuard;

impl Drop for PassGuard {
    fn drop(&mut self) {
        IN_PASS.with(|p| p.set(false));
    }
}

struct Handle(*mut c_void);
// SAFETY: only `uv_async_send`, safe from any thread, is called through it
// off the JS thread, and only while the handle is open (under the lock).
unsafe impl Send for Handle {}

/// What other threads (and wakers) reach.
pub(crate) struct Shared {
    woken: AtomicBool,
    /// Tasks spawned from any thread, taken in by the next pass; None once
    /// the env is gone.
    inbox: Mutex<Option<Vec<SendTask>>>,
    /// The async handle, null once closed.
    handle: Mutex<Handle>,
    /// The event loop, for the sockets the tasks register on it.
    pub(crate) event_loop: usize,
}

impl Shared {
    fn signal(&self) {
        let Some(uv) = uv() else { return };
        if let Ok(h) = self.handle.lock() {
            if !h.0.is_null() {
                // SAFETY: an open async handle (cleared under this lock before it closes)
                unsafe { (uv.async_send)(h.0) };
            }
        }
    }

    /// Run `task` on the JS thread (dropped if the env is gone).
    pub(crate) fn spawn(&self, task: SendTask) {
        let refused = match self.inbox.lock() {
            Ok(mut inbox) => match inbox.as_mut() {
                Some(v) => {
                    v.push(task);
                    None
                }
                None => Some(task),
            },
            Err(_) => Some(task),
        };
        match refused {
            // dropped outside the lock: its drop may spawn again
            Some(task) => drop(task),
            None => self.wake(),
        }
    }

    fn wake(&self) {
        self.woken.store(true, Ordering::Release);
        // a pass running on this thread sees the flag; else the loop must run one
        if !IN_PASS.with(Cell::get) {
            self.signal();
        }
    }
}

impl Wake for Shared {
    fn wake(self: Arc<Self>) {
        Shared::wake(&self);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        Shared::wake(self);
    }
}

struct Task {
    fut: Pin<Box<dyn Future<Output = Out>>>,
    /// Who learns how it ended.
    then: Then,
}

/// How a task ended.
enum Out {
    Nothing,
    Settled(Settled),
    Results(Result<Vec<OpResult>, PersistError>),
}

/// Who learns how a task ended (each but `Nothing` keeps the loop alive
/// until then).
enum Then {
    Nothing,
    /// Its promise.
    Settle(sys::napi_deferred),
    /// A data batch's `onBatch`, with its token.
    Answer(Rc<RefCell<BatchAnswers>>, u32),
}

/// The executor of one env (see the module docs).
pub(crate) struct Executor {
    env: sys::napi_env,
    async_ctx: sys::napi_async_context,
    handle: *mut c_void,
    rt: Option<tokio::runtime::Handle>,
    shared: Arc<Shared>,
    waker: Waker,
    tasks: RefCell<Vec<Task>>,
    /// Tasks with a promise not yet settled.
    pending: Cell<usize>,
    refd: Cell<bool>,
    closed: Cell<bool>,
}

impl Executor {
    /// The executor of `env`, made on first use.
    ///
    /// # Safety
    /// `env` is the current env; on its JS thread.
    pub(crate) unsafe fn of(env: sys::napi_env) -> Result<Rc<Executor>, PersistError> {
        if let Some(e) = CURRENT.with(|c| c.borrow().clone()) {
            if e.env == env && !e.closed.get() {
                return Ok(e);
            }
        }
        let e = Executor::new(env)?;
        CURRENT.with(|c| *c.borrow_mut() = Some(e.clone()));
        Ok(e)
    }

    unsafe fn new(env: sys::napi_env) -> Result<Rc<Executor>, PersistError> {
        let fail = |what: &str| PersistError::Internal(format!("JS-thread executor: {what}"));
        let uv = uv().ok_or_else(|| fail("libuv is not available"))?;
        let lp = event_loop(env).ok_or_else(|| fail("no event loop"))?;
        let async_ctx = async_context(env, "awaitly-persistence-native:postgres")
            .ok_or_else(|| fail("napi_async_init"))?;
        let size = (uv.handle_size)(UV_ASYNC);
        let handle = alloc_handle(size);
        if (uv.async_init)(lp, handle, on_async) != 0 {
            free_handle(handle, size);
            sys::napi_async_destroy(env, async_ctx);
            return Err(fail("uv_async_init"));
        }
        (uv.uv_unref)(handle);
        let rt = std::panic::catch_unwind(|| {
            napi::bindgen_prelude::within_runtime_if_available(|| {
                tokio::runtime::Handle::try_current().ok()
            })
        })
        .ok()
        .flatten();
        let shared = Arc::new(Shared {
            woken: AtomicBool::new(false),
            inbox: Mutex::new(Some(Vec::new())),
            handle: Mutex::new(Handle(handle)),
            event_loop: lp as usize,
        });
        let e = Rc::new(Executor {
            env,
            async_ctx,
            handle,
            rt,
            waker: Waker::from(shared.clone()),
            shared,
            tasks: RefCell::new(Vec::new()),
            pending: Cell::new(0),
            refd: Cell::new(false),
            closed: Cell::new(false),
        });
        if !add_hook(env, &e, on_env_teardown) {
            e.close(uv);
            return Err(fail("napi_add_env_cleanup_hook"));
        }
        Ok(e)
    }

    /// Closed: the env's teardown began (or it failed to start).
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.get()
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Run `fut` here; its promise. The pass that starts it runs now, so
    /// whatever it writes is written before this returns.
    ///
    /// # Safety
    /// `env` is this executor's env, current; on its JS thread, from a JS call.
    pub(crate) unsafe fn spawn_promise<T, F>(
        self: &Rc<Self>,
        fut: F,
    ) -> Result<sys::napi_value, PersistError>
    where
        T: napi::bindgen_prelude::ToNapiValue + 'static,
        F: Future<Output = Result<T, PersistError>> + 'static,
    {
        if self.closed.get() {
            return Err(PersistError::Internal("JS-thread executor: closed".into()));
        }
        let (deferred, promise) = new_promise(self.env)?;
        self.start(Task {
            fut: Box::pin(async move { Out::Settled(settled_with(fut.await)) }),
            then: Then::Settle(deferred),
        });
        Ok(promise)
    }

    /// Run the data batch `fut` here; its results go to `answers`' `onBatch`
    /// with `token` (see [`crate::boundary::answer`]). The pass that starts
    /// it runs now, as for [`Executor::spawn_promise`].
    ///
    /// # Safety
    /// `env` is this executor's env, current; on its JS thread, from a JS call.
    pub(crate) unsafe fn spawn_answered<F>(
        self: &Rc<Self>,
        answers: Rc<RefCell<BatchAnswers>>,
        token: u32,
        fut: F,
    ) -> Result<(), PersistError>
    where
        F: Future<Output = Result<Vec<OpResult>, PersistError>> + 'static,
    {
        if self.closed.get() {
            return Err(PersistError::Internal("JS-thread executor: closed".into()));
        }
        answers
            .try_borrow_mut()
            .map_err(|_| PersistError::Internal("batchSend: re-entered".into()))?
            .sent();
        self.start(Task {
            fut: Box::pin(async move { Out::Results(fut.await) }),
            then: Then::Answer(answers, token),
        });
        Ok(())
    }

    /// Take in a task that settles or answers, and run a pass.
    fn start(self: &Rc<Self>, task: Task) {
        self.tasks.borrow_mut().push(task);
        self.pending.set(self.pending.get() + 1);
        self.hold_loop();
        self.shared.woken.store(true, Ordering::Release);
        self.run(false);
    }

    /// A pass (see the module docs). `from_loop`: called from a libuv
    /// callback, so the microtasks of the promises settled run at its end.
    pub(crate) fn run(self: &Rc<Self>, from_loop: bool) {
        if self.closed.get() || IN_PASS.with(Cell::get) {
            return;
        }
        // SAFETY: on the env's thread; the env is alive (its cleanup hook
        // marks this executor closed)
        let Some(scopes) = (unsafe { Scopes::open(self.env, self.async_ctx, from_loop) }) else {
            return;
        };
        IN_PASS.with(|p| p.set(true));
        let pass = PassGuard;
        let rt = self.rt.as_ref().map(|h| h.enter());
        let mut cx = Context::from_waker(&self.waker);
        let mut rounds = 0;
        while self.shared.woken.swap(false, Ordering::AcqRel) && !self.closed.get() {
            rounds += 1;
            if rounds > MAX_ROUNDS {
                self.shared.woken.store(true, Ordering::Release);
                self.shared.signal();
                break;
            }
            let arrived = match self.shared.inbox.lock() {
                Ok(mut inbox) => inbox.as_mut().map(std::mem::take).unwrap_or_default(),
                Err(_) => Vec::new(),
            };
            let mut tasks = std::mem::take(&mut *self.tasks.borrow_mut());
            tasks.extend(arrived.into_iter().map(|t| Task {
                fut: Box::pin(async move {
                    t.await;
                    Out::Nothing
                }),
                then: Then::Nothing,
            }));
            let mut pending = Vec::with_capacity(tasks.len());
            let mut finished = Vec::new();
            for mut task in tasks {
                let polled = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    task.fut.as_mut().poll(&mut cx)
                }));
                match polled {
                    Ok(Poll::Pending) => pending.push(task),
                    Ok(Poll::Ready(r)) => finished.push((task, r)),
                    Err(_) => finished.push((
                        task,
                        Out::Settled(Err(PersistError::Internal(
                            "a PostgreSQL call panicked".into(),
                        ))),
                    )),
                }
            }
            for (Task { fut, then }, done) in finished {
                // neither a future's drop nor making the JS value may unwind
                // out of the pass
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(fut)));
                if matches!(then, Then::Nothing) {
                    continue;
                }
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    // SAFETY: on the env's thread, in the handle scope opened above
                    unsafe { self.finish(then, done) }
                }));
                self.pending.set(self.pending.get().saturating_sub(1));
            }
            let mut tasks = pending;
            let mut slot = self.tasks.borrow_mut();
            tasks.append(&mut slot);
            *slot = tasks;
        }
        drop(rt);
        drop(pass);
        self.hold_loop();
        // closing the callback scope runs the microtasks (JS may call in again)
        drop(scopes);
    }

    /// Tell `then` how a task ended.
    ///
    /// # Safety
    /// On the env's thread, inside a handle scope.
    unsafe fn finish(&self, then: Then, done: Out) {
        let failed = |what: &str| PersistError::Internal(format!("a PostgreSQL call {what}"));
        match then {
            Then::Nothing => {}
            Then::Settle(deferred) => {
                let r = match done {
                    Out::Settled(r) => r,
                    Out::Results(_) | Out::Nothing => Err(failed("gave no value")),
                };
                settle(self.env, deferred, r);
            }
            Then::Answer(answers, token) => {
                let r = match done {
                    Out::Results(r) => r,
                    Out::Settled(Err(e)) => Err(e),
                    Out::Settled(Ok(_)) | Out::Nothing => Err(failed("gave no results")),
                };
                let answer = match answers.try_borrow_mut() {
                    Ok(mut a) => a.prepare(token, r),
                    Err(_) => None,
                };
                if let Some(a) = answer {
                    answer::call(self.env, a);
                }
            }
        }
    }

    /// Keep the loop alive exactly while a promise is pending.
    fn hold_loop(&self) {
        let Some(uv) = uv() else { return };
        let want = self.pending.get() > 0 && !self.closed.get();
        if want != self.refd.get() {
            self.refd.set(want);
            // SAFETY: the async handle is open (closing sets `closed` first)
            unsafe {
                if want {
                    (uv.uv_ref)(self.handle);
                } else {
                    (uv.uv_unref)(self.handle);
                }
            }
        }
    }

    /// Drop every task unpolled, refuse new ones, close the async handle.
    fn close(&self, uv: &Uv) {
        if self.closed.replace(true) {
            return;
        }
        // taken under the lock, dropped outside it (a drop may spawn again)
        let queued = self
            .shared
            .inbox
            .lock()
            .ok()
            .and_then(|mut inbox| inbox.take());
        if let Ok(mut h) = self.shared.handle.lock() {
            h.0 = ptr::null_mut();
        }
        let tasks = std::mem::take(&mut *self.tasks.borrow_mut());
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop((tasks, queued))));
        // SAFETY: on the env's thread, the env still valid (its cleanup hook or
        // creation), the context ours and destroyed once
        unsafe { sys::napi_async_destroy(self.env, self.async_ctx) };
        // SAFETY: our open handle, closed once; its close callback frees it
        unsafe { (uv.close)(self.handle, Some(on_async_closed)) };
    }
}

/// Run a pass of this thread's executor, every task polled (a socket's
/// readiness arrived).
pub(crate) fn run_current() {
    if let Some(e) = CURRENT.with(|c| c.borrow().clone()) {
        e.shared.woken.store(true, Ordering::Release);
        e.run(true);
    }
}

unsafe extern "C" fn on_async(_h: *mut c_void) {
    let _ = std::panic::catch_unwind(run_current);
}

unsafe extern "C" fn on_async_closed(h: *mut c_void) {
    // its data is null: nothing but the memory to release
    release_handle::<()>(h, UV_ASYNC);
}

unsafe extern "C" fn on_env_teardown(arg: *mut c_void) {
    let _ = std::panic::catch_unwind(|| {
        let e = Rc::from_raw(arg as *const Executor);
        if let Some(uv) = uv() {
            e.close(uv);
        }
        let _ = CURRENT.try_with(|c| {
            if let Ok(mut c) = c.try_borrow_mut() {
                if c.as_ref().is_some_and(|cur| Rc::ptr_eq(cur, &e)) {
                    c.take();
                }
            }
        });
        drop(e);
    });
}
