//! Jobs: calls made of several batches (keys, clearing a prefix, leases)
//! running on a JS-thread connection. Their futures are written against the
//! batch seam ([`Exec`], here [`Link`]); each batch's results wait in a
//! [`Slot`] until the job is polled ([`poll_jobs`], after every delivery);
//! a finished job settles its promise.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll};

use napi::sys;

use super::{writable, Cell};
use crate::error::PersistError;
use crate::js_loop::promise::{new_promise, settle, settled_with, Scopes, Settled};
use crate::js_loop::uv::now_ms;
use crate::redis::batch::{Exec, Op, OpResult};

/// Where a job's batch results wait for the job to be polled.
pub(super) type Slot = RefCell<Option<Result<Vec<OpResult>, PersistError>>>;

/// Where a raw pipeline's replies (a cluster's, see [`super::cluster`])
/// wait for its job to be polled.
pub(crate) type RawSlot = RefCell<Option<Result<Vec<redis::Value>, PersistError>>>;

/// Who gets a batch's results.
pub(super) enum Owner {
    /// The JS glue's batch: through `onWire`, in order.
    Js,
    /// A job's batch.
    Job(Rc<Slot>),
    /// A raw pipeline of a cluster job.
    Raw(Rc<RawSlot>),
}

/// A call made of several batches, running on this connection.
pub(super) struct Job {
    pub(super) fut: Pin<Box<dyn Future<Output = Settled>>>,
    pub(super) deferred: sys::napi_deferred,
}

/// The batch seam ([`Exec`]) on a JS-thread connection, for jobs: a batch
/// is written at once; its results wait in a [`Slot`] until the job is
/// polled. A connection gone fails it.
pub struct Link {
    cell: Weak<Cell>,
}

impl Link {
    pub(super) fn new(cell: Weak<Cell>) -> Link {
        Link { cell }
    }
}

impl Exec for Link {
    fn exec(&self, ops: Vec<Op>) -> impl Future<Output = Result<Vec<OpResult>, PersistError>> {
        let slot: Rc<Slot> = Rc::new(RefCell::new(None));
        let sent = match self.cell.upgrade() {
            Some(cell) => send_job(&cell, ops, slot.clone()),
            None => Err(PersistError::Unavailable(
                "the connection was closed".into(),
            )),
        };
        async move {
            sent?;
            std::future::poll_fn(
                |_| match slot.try_borrow_mut().ok().and_then(|mut s| s.take()) {
                    Some(r) => Poll::Ready(r),
                    None => Poll::Pending,
                },
            )
            .await
        }
    }
}

/// Write a job's batch; its results go to `slot`.
pub(super) fn send_job(cell: &Rc<Cell>, ops: Vec<Op>, slot: Rc<Slot>) -> Result<(), PersistError> {
    send_with(cell, |wire, now| wire.send(ops, Owner::Job(slot), now))
}

/// Queue a batch of a job (`write` puts it on the wire at `now`) and write
/// it. A write error is left to the poll callback, which meets it again and
/// ends the connection through the one failure path (JS batches and jobs
/// alike).
pub(super) fn send_with(
    cell: &Rc<Cell>,
    write: impl FnOnce(&mut crate::redis::wire::Wire<Owner>, u64),
) -> Result<(), PersistError> {
    let (mut st, uv) = writable(cell)?;
    write(&mut st.wire, now_ms(uv));
    if st.flush().is_err() {
        st.watching_writes = false;
        st.watch_writes(true);
    }
    if !st.busy {
        st.set_busy(true);
    }
    Ok(())
}

/// Poll every job once (each waits on one batch at a time), settling the
/// promises of those done (see [`poll_list`]).
pub(super) fn poll_jobs(cell: &Rc<Cell>, from_loop: bool) {
    let (env, ctx, mut jobs) = match cell.try_borrow_mut() {
        Ok(mut st) if !st.jobs.is_empty() && !st.env.is_null() => {
            (st.env, st.async_ctx, std::mem::take(&mut st.jobs))
        }
        _ => return,
    };
    // SAFETY: on the env's thread; the env is alive (its cleanup hook, which
    // drops the jobs unpolled, has not run)
    unsafe { poll_list(env, ctx, &mut jobs, from_loop) };
    if let Ok(mut st) = cell.try_borrow_mut() {
        let newer = std::mem::take(&mut st.jobs);
        st.jobs = jobs;
        st.jobs.extend(newer);
    }
}

/// Poll each of `jobs` once, settling (and removing) those done.
/// `from_loop`: called from a libuv callback, so a callback scope is opened
/// (its close runs the microtasks the settled promises queued).
///
/// # Safety
/// On the env's thread, the env alive; `ctx` its async context (or null).
pub(super) unsafe fn poll_list(
    env: sys::napi_env,
    ctx: sys::napi_async_context,
    jobs: &mut Vec<Job>,
    from_loop: bool,
) {
    let Some(_scope) = Scopes::open(env, ctx, from_loop) else {
        return;
    };
    let mut cx = Context::from_waker(std::task::Waker::noop());
    jobs.retain_mut(|job| match job.fut.as_mut().poll(&mut cx) {
        Poll::Pending => true,
        Poll::Ready(r) => {
            settle(env, job.deferred, r);
            false
        }
    });
}

/// Make a job of `job` and hand it to `push` (which gives it back when its
/// transport is busy: the promise then rejects): the promise it settles.
///
/// # Safety
/// `env` is the current env; on its JS thread, from a JS call.
pub(super) unsafe fn push_job<T, F>(
    env: sys::napi_env,
    job: F,
    push: impl FnOnce(Job) -> Result<(), Job>,
) -> Result<sys::napi_value, PersistError>
where
    T: napi::bindgen_prelude::ToNapiValue + 'static,
    F: Future<Output = Result<T, PersistError>> + 'static,
{
    let (job, promise) = make_job(env, job)?;
    if let Err(job) = push(job) {
        settle(
            env,
            job.deferred,
            Err(PersistError::Internal(
                "direct transport: re-entered".into(),
            )),
        );
    }
    Ok(promise)
}

/// A job of `job` and the promise it settles.
///
/// # Safety
/// `env` is the current env; on its JS thread.
unsafe fn make_job<T, F>(env: sys::napi_env, job: F) -> Result<(Job, sys::napi_value), PersistError>
where
    T: napi::bindgen_prelude::ToNapiValue + 'static,
    F: Future<Output = Result<T, PersistError>> + 'static,
{
    let (deferred, promise) = new_promise(env)?;
    let fut = async move { settled_with(job.await) };
    Ok((
        Job {
            fut: Box::pin(fut),
            deferred,
        },
        promise,
    ))
}
