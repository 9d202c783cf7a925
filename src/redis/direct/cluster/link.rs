//! Running one batch over the cluster on the JS thread: [`ClusterLink`],
//! the batch seam ([`Exec`], [`NodeIo`]) the jobs and the JS glue's data
//! batches run on. The routing core ([`Dispatch`]) says which pipeline goes
//! to which node; here each is written on its node's connection (or waits
//! for that connection), its replies handed back, redirects and retries
//! followed within the command timeout.

use std::cell::RefCell;
use std::future::Future;
use std::rc::{Rc, Weak};
use std::task::Poll;

use redis::Cmd;

use super::{Attempt, CCell, CState};
use crate::error::PersistError;
use crate::js_loop::uv::{now_ms, uv};
use crate::redis::batch::{op_key, pack, settle as settle_op, Exec, Op, OpResult, SCAN_COUNT};
use crate::redis::cluster::dispatch::{Dispatch, Reply, Send};
use crate::redis::cluster::keyspace::{scan_cluster, unlink_by_slot, NodeIo};
use crate::redis::cluster::slots::{key_slot, Node, SlotMap};
use crate::redis::direct::jobs::RawSlot;

/// Where a pipeline for one node stands.
enum Route {
    /// Written: its replies (or its connection's failure) come to the slot.
    Sent(Rc<RawSlot>),
    /// Waiting for the node's connection attempt of this id (0: none yet).
    Connecting(u64),
    /// Not written: the node could not be reached.
    Failed(PersistError),
}

impl CState {
    /// Write `packed` (`replies` replies back) to `node` if it is connected;
    /// else wait for its connection attempt, or start one. `waited`: the
    /// attempt this pipeline waited for so far (its failure is this
    /// pipeline's; an older one's is not).
    fn route(&mut self, node: &Node, waited: u64, packed: &[u8], replies: usize) -> Route {
        if let Some(conn) = self.nodes.get(node) {
            if conn.is_open() {
                let slot: Rc<RawSlot> = Rc::new(RefCell::new(None));
                return match conn.send_raw(packed, replies, slot.clone()) {
                    Ok(()) => Route::Sent(slot),
                    Err(e) => Route::Failed(e),
                };
            }
            self.nodes.remove(node);
        }
        match self.attempts.get(node) {
            Some(Attempt::Connecting(a)) => Route::Connecting(*a),
            Some(Attempt::Failed(a, e)) if *a == waited => Route::Failed(e.clone()),
            _ => Route::Connecting(self.connect(node)),
        }
    }

    /// Has `route` to `node` moved on (replies in, its attempt over)?
    fn moved_on(&self, node: &Node, route: &Route) -> bool {
        match route {
            Route::Sent(slot) => slot.try_borrow().map(|s| s.is_some()).unwrap_or(true),
            Route::Connecting(a) => !matches!(
                self.attempts.get(node),
                Some(Attempt::Connecting(b)) if b == a
            ),
            Route::Failed(_) => true,
        }
    }
}

/// The replies a sent route got, if they are in.
fn taken(route: &Route) -> Option<Result<Vec<redis::Value>, PersistError>> {
    match route {
        Route::Sent(slot) => slot.try_borrow_mut().ok().and_then(|mut r| r.take()),
        _ => None,
    }
}

/// The batch seam on a cluster's JS-thread transport, for jobs.
pub struct ClusterLink {
    pub(super) cell: Weak<CCell>,
}

pub(super) fn closed() -> PersistError {
    PersistError::Unavailable("the connection was closed".into())
}

fn no_uv() -> PersistError {
    PersistError::Internal("libuv is not available".into())
}

impl ClusterLink {
    fn cell(&self) -> Result<Rc<CCell>, PersistError> {
        self.cell.upgrade().ok_or_else(closed)
    }

    /// Until `ready` says so, `at` (ms, if any) passes, or the transport
    /// closes. Without `at`, only what `ready` waits for ends the wait (a
    /// pipeline written: its connection's own timer bounds it).
    async fn until(&self, cell: &Rc<CCell>, ready: impl Fn(&CState) -> bool, at: Option<u64>) {
        std::future::poll_fn(|_| {
            let Ok(mut st) = cell.try_borrow_mut() else {
                return Poll::Ready(());
            };
            let due = match (at, uv()) {
                (Some(at), Some(uv)) => now_ms(uv) >= at,
                (Some(_), None) => true,
                (None, _) => false,
            };
            if !st.open || ready(&st) || due {
                return Poll::Ready(());
            }
            if let Some(at) = at {
                st.wake_by(at);
            }
            Poll::Pending
        })
        .await
    }

    /// Run `ops` over the cluster (see the module docs).
    pub async fn exec(&self, ops: Vec<Op>) -> Result<Vec<OpResult>, PersistError> {
        if ops.is_empty() {
            return Ok(Vec::new());
        }
        let uv = uv().ok_or_else(no_uv)?;
        let cell = self.cell()?;
        let (timeout, wait, empty) = {
            let st = cell.try_borrow().map_err(|_| closed())?;
            (st.timeout_ms, st.wait, st.map.is_empty())
        };
        let start = now_ms(uv);
        let deadline = start + timeout.max(1);
        if empty {
            self.fresh_map().await?;
        }
        let mut d = Dispatch::new(
            ops.iter().map(|op| (key_slot(op_key(op)), op.is_durable())),
            start,
            timeout,
            wait,
        );
        let wait_cmd = wait.map(|w| w.cmd().get_packed_command());
        let mut flights: Vec<(Send, Route)> = Vec::new();
        let mut packed = Vec::new();
        loop {
            let now = now_ms(uv);
            {
                let mut st = cell.try_borrow_mut().map_err(|_| closed())?;
                if !st.open {
                    return Err(closed());
                }
                let (sends, effect) = d.sends(&st.map, now);
                if effect.refresh {
                    st.refresh_soon();
                }
                flights.extend(sends.into_iter().map(|s| (s, Route::Connecting(0))));
                // write what can go; connect the nodes not connected
                for (s, r) in std::mem::take(&mut flights) {
                    let Route::Connecting(waited) = r else {
                        flights.push((s, r));
                        continue;
                    };
                    packed.clear();
                    for (&i, &asking) in s.items.iter().zip(&s.asking) {
                        if asking {
                            redis::cmd("ASKING").write_packed_command(&mut packed);
                        }
                        pack(&ops[i], &mut packed);
                    }
                    if let (true, Some(w)) = (s.wait, &wait_cmd) {
                        packed.extend_from_slice(w);
                    }
                    match st.route(&s.node, waited, &packed, s.replies()) {
                        Route::Failed(e) => {
                            d.failed(&s, e, false, now);
                            st.refresh_soon();
                        }
                        r => flights.push((s, r)),
                    }
                }
            }
            if flights.is_empty() && d.is_done() {
                break;
            }
            // until a pipeline's replies, a connection, or the time to
            // send again (a paused retry; the deadline, for a connection
            // still being made)
            let connecting = flights
                .iter()
                .any(|(_, r)| matches!(r, Route::Connecting(_)));
            let at = match d.next_wake() {
                Some(w) => Some(w.min(deadline)),
                None => connecting.then_some(deadline),
            };
            self.until(
                &cell,
                |st| flights.iter().any(|(s, r)| st.moved_on(&s.node, r)),
                at,
            )
            .await;
            let now = now_ms(uv);
            let mut st = cell.try_borrow_mut().map_err(|_| closed())?;
            if !st.open {
                return Err(closed());
            }
            for (s, r) in std::mem::take(&mut flights) {
                let effect = match (taken(&r), &r) {
                    (Some(Ok(values)), _) => {
                        let st = &mut *st;
                        d.replies(&s, values, &mut st.map, now)
                    }
                    (Some(Err(e)), _) => d.failed(&s, e, true, now),
                    // the node did not answer in time: nothing written
                    (None, Route::Connecting(_)) if now >= deadline => {
                        d.failed(&s, PersistError::Timeout(timeout), false, now)
                    }
                    (None, _) => {
                        flights.push((s, r));
                        continue;
                    }
                };
                if effect.refresh {
                    st.refresh_soon();
                }
            }
            d.expire(now);
        }
        Ok(ops
            .iter()
            .zip(d.results())
            .map(|(op, r)| match r {
                Ok(Reply { value, waited }) => settle_op(op, value, waited.as_ref()),
                Err(e) => OpResult::Failed(e),
            })
            .collect())
    }

    /// The slot map, read again now on tokio (within the command timeout).
    async fn fresh_map(&self) -> Result<SlotMap, PersistError> {
        let uv = uv().ok_or_else(no_uv)?;
        let cell = self.cell()?;
        let (want, timeout) = {
            let mut st = cell.try_borrow_mut().map_err(|_| closed())?;
            // a reading under way may have begun before this call: the next
            // one then answers it
            let want = st.maps_read + if st.refreshing { 2 } else { 1 };
            st.refresh_again |= st.refreshing;
            st.refresh_soon();
            (want, st.timeout_ms)
        };
        let deadline = now_ms(uv) + timeout.max(1);
        self.until(&cell, |st| st.maps_read >= want, Some(deadline))
            .await;
        let st = cell.try_borrow().map_err(|_| closed())?;
        if !st.open {
            return Err(closed());
        }
        if st.maps_read < want {
            return Err(PersistError::Timeout(timeout));
        }
        match &st.map_error {
            Some(e) => Err(e.clone()),
            None => Ok(st.map.clone()),
        }
    }
}

impl NodeIo for ClusterLink {
    fn fresh_map(&self) -> impl Future<Output = Result<SlotMap, PersistError>> {
        ClusterLink::fresh_map(self)
    }

    async fn on_nodes(&self, cmds: Vec<(Node, Cmd)>) -> Vec<Result<redis::Value, PersistError>> {
        let mut out: Vec<Option<Result<redis::Value, PersistError>>> =
            cmds.iter().map(|_| None).collect();
        let mut routes: Vec<Route> = cmds.iter().map(|_| Route::Connecting(0)).collect();
        let packed: Vec<Vec<u8>> = cmds.iter().map(|(_, c)| c.get_packed_command()).collect();
        let (cell, uv) = match (self.cell(), uv()) {
            (Ok(c), Some(uv)) => (c, uv),
            (Err(e), _) => return cmds.iter().map(|_| Err(e.clone())).collect(),
            (_, None) => return cmds.iter().map(|_| Err(no_uv())).collect(),
        };
        let timeout = cell.try_borrow().map(|st| st.timeout_ms).unwrap_or(1);
        let deadline = now_ms(uv) + timeout.max(1);
        loop {
            let now = now_ms(uv);
            if let Ok(mut st) = cell.try_borrow_mut() {
                for (i, (node, _)) in cmds.iter().enumerate() {
                    if out[i].is_some() {
                        continue;
                    }
                    if let Route::Connecting(waited) = routes[i] {
                        routes[i] = if !st.open {
                            Route::Failed(closed())
                        } else if now >= deadline {
                            Route::Failed(PersistError::Timeout(timeout))
                        } else {
                            st.route(node, waited, &packed[i], 1)
                        };
                    }
                    out[i] = match &routes[i] {
                        Route::Failed(e) => Some(Err(e.clone())),
                        r => taken(r).map(|r| {
                            r.and_then(|mut v| {
                                v.pop()
                                    .ok_or_else(|| PersistError::Internal("no reply".into()))
                            })
                        }),
                    };
                }
            }
            if out.iter().all(Option::is_some) {
                break;
            }
            // the deadline, for a connection still being made
            let connecting = routes
                .iter()
                .zip(&out)
                .any(|(r, o)| o.is_none() && matches!(r, Route::Connecting(_)));
            self.until(
                &cell,
                |st| {
                    cmds.iter()
                        .zip(&routes)
                        .zip(&out)
                        .any(|(((n, _), r), o)| o.is_none() && st.moved_on(n, r))
                },
                connecting.then_some(deadline),
            )
            .await;
        }
        out.into_iter().flatten().collect()
    }
}

/// The batch seam over the cluster on the JS thread: batches routed by
/// slot, SCAN of every primary, UNLINK split per slot.
impl Exec for ClusterLink {
    fn exec(&self, ops: Vec<Op>) -> impl Future<Output = Result<Vec<OpResult>, PersistError>> {
        ClusterLink::exec(self, ops)
    }

    async fn scan(&self, pattern: &[u8]) -> Result<Vec<Vec<u8>>, PersistError> {
        let mut out = Vec::new();
        scan_cluster(self, pattern, SCAN_COUNT, |page| out.extend(page)).await?;
        Ok(out)
    }

    fn unlink(&self, keys: Vec<Vec<u8>>) -> impl Future<Output = Result<u64, PersistError>> {
        unlink_by_slot(self, keys, SCAN_COUNT)
    }
}
