//! The PostgreSQL store: its handle ([`PgStore`]) and the calls on it, a
//! batch of ops split over the pool's connections, listing, clearing a
//! cache's prefix, and the background sweep of expired rows. No napi types.
//! The pool and schema are in `pool`, how a batch runs on one connection
//! in `pipeline`, leases and fenced writes in `lease`.
//!
//! - **Failures:** a dropped connection fails the calls on it with
//!   `ERR_STORE_UNAVAILABLE`; a batch that outlives `command_timeout_ms`
//!   fails with `ERR_STORE_TIMEOUT` and its connection is dropped. The next
//!   call opens a new one.
//! - **Time:** every expiry is computed and compared by the server (`now()`,
//!   `clock_timestamp()`); no client clock enters any decision.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::config::{PgConfig, SWEEP_BATCH};
use super::connect::Runner;
use super::failure::classify;
use super::pipeline::{batch_transaction, run_as_one, run_op};
use super::pool::{Busy, Conn, Pool};
use super::sql;
use crate::boundary::lease::{decode_lease, LeaseRow};
use crate::error::{PersistError, Result};
use crate::glob;
use crate::lease_op::LeaseOp;
use crate::ownership::{Owners, MARKER_VALUE, REGISTRY_PREFIX};
use crate::redis::batch::{Op, OpResult, Text};
use crate::wtf8;

/// Rows deleted per statement by `clear_cache_prefix`.
const DELETE_CHUNK: usize = 5000;

/// The fewest ops per part when a batch is split over connections.
pub(super) const MIN_PART: usize = 4;

/// The same for a batch of only gets or only sets (or only acquires or
/// only releases), whose part is ONE statement (`pipeline::run_as_one`,
/// `lease::lease_as_one`): the server runs one statement per
/// part, so a part holds more before the batch is split.
pub(super) const MIN_PART_ONE_STATEMENT: usize = 64;

/// The key an op is about (None: a ping).
fn op_key(op: &Op) -> Option<&[u8]> {
    match op {
        Op::Get(k) | Op::Set(k, ..) | Op::SetDurable(k, ..) | Op::Delete(k) | Op::Exists(k) => {
            Some(k)
        }
        _ => None,
    }
}

/// One op of the store's data batch: a data call, or a run-lease op or
/// fenced snapshot write (see `lease`).
#[derive(Debug)]
pub enum PgOp {
    Data(Op),
    Lease(LeaseOp),
}

impl From<Op> for PgOp {
    fn from(op: Op) -> PgOp {
        PgOp::Data(op)
    }
}

/// The op of a run-lease row of the data batch (`boundary::batch::decode_batch`),
/// its row key named by [`sql::lease_key`].
pub fn lease_op(row: LeaseRow) -> Result<PgOp> {
    decode_lease(row, |prefix, id, _| Ok(sql::lease_key(prefix, id))).map(PgOp::Lease)
}

/// A lease op's answer as a data batch's result (as the Redis store's
/// lease ops answer): an acquire's token or None, a release's or renew's
/// verdict, a fenced write done (or `ERR_LEASE_LOST`).
fn lease_result(op: LeaseOp, r: Result<bool>) -> OpResult {
    match (op, r) {
        (_, Err(e)) => OpResult::Failed(e),
        (LeaseOp::Acquire { token, .. }, Ok(taken)) => {
            OpResult::Value(taken.then(|| Text::Ascii(token.into_bytes())))
        }
        (LeaseOp::Release { .. } | LeaseOp::Renew { .. }, Ok(b)) => OpResult::Bool(b),
        (LeaseOp::FencedSet { .. } | LeaseOp::FencedDelete { .. }, Ok(_)) => OpResult::Done,
    }
}

/// Which of `parts` a key goes to (FNV-1a: stable, cheap).
fn part_of(key: &[u8], parts: usize) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in key {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % parts as u64) as usize
}

/// A store handle; clones share the pool.
#[derive(Clone)]
pub struct PgStore {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) pool: Pool,
    sweeping: AtomicBool,
}

impl PgStore {
    /// A store whose connections run where `runner` runs them.
    pub fn new(cfg: PgConfig, runner: Runner) -> Result<Self> {
        Ok(PgStore {
            inner: Arc::new(Inner {
                pool: Pool::new(cfg, runner)?,
                sweeping: AtomicBool::new(false),
            }),
        })
    }

    pub fn config(&self) -> &PgConfig {
        &self.inner.pool.cfg
    }

    pub fn connections_opened(&self) -> u64 {
        self.inner.pool.opened()
    }

    /// Run `work` on the least busy connection of the pool (see [`Pool`]).
    pub(super) async fn with_conn<T, F, Fut>(&self, work: F) -> Result<T>
    where
        F: FnOnce(Arc<Conn>) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        self.with_slot(self.inner.pool.take_slot(), work).await
    }

    /// Run `work` on the connection of the slot `busy` holds (see
    /// [`Pool::with_slot`]); the first that succeeds starts the background
    /// sweep.
    pub(super) async fn with_slot<T, F, Fut>(&self, busy: Busy<'_>, work: F) -> Result<T>
    where
        F: FnOnce(Arc<Conn>) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let r = self.inner.pool.with_slot(busy, work).await;
        if r.is_ok() && !self.inner.sweeping.load(Ordering::Relaxed) {
            self.start_sweep();
        }
        r
    }

    /// Run a batch; one result per op. See [`PgStore::split`] for how it
    /// spreads over connections.
    pub async fn exec(&self, ops: &[Op]) -> Result<Vec<OpResult>> {
        let min_part = if ops.iter().all(|op| matches!(op, Op::Get(_)))
            || ops
                .iter()
                .all(|op| matches!(op, Op::Set(..) | Op::SetDurable(..)))
        {
            MIN_PART_ONE_STATEMENT
        } else {
            MIN_PART
        };
        Ok(self
            .run_split(
                ops,
                op_key,
                min_part,
                |p, slot| async move { self.exec_part(&p, slot).await },
                OpResult::Failed,
            )
            .await)
    }

    /// Run a data batch whose ops may include lease ops: its data ops as
    /// [`PgStore::exec`] runs them and its lease ops as
    /// [`PgStore::lease_exec`] does, both at once; one result per op, in
    /// call order.
    pub async fn exec_batch(&self, ops: Vec<PgOp>) -> Result<Vec<OpResult>> {
        let mut data = Vec::new();
        let mut leases = Vec::new();
        let is_lease: Vec<bool> = ops
            .into_iter()
            .map(|op| match op {
                PgOp::Data(op) => {
                    data.push(op);
                    false
                }
                PgOp::Lease(op) => {
                    leases.push(op);
                    true
                }
            })
            .collect();
        let lease_results = |leases: Vec<LeaseOp>, results: Vec<Result<bool>>| {
            leases
                .into_iter()
                .zip(results)
                .map(|(op, r)| lease_result(op, r))
        };
        if leases.is_empty() {
            return self.exec(&data).await;
        }
        if data.is_empty() {
            let results = self.lease_exec(&leases).await?;
            return Ok(lease_results(leases, results).collect());
        }
        let (data_results, results) =
            futures_util::future::join(self.exec(&data), self.lease_exec(&leases)).await;
        let mut data_results = data_results?.into_iter();
        let mut lease_results = lease_results(leases, results?);
        let lost = || OpResult::Failed(PersistError::Internal("op lost".into()));
        Ok(is_lease
            .into_iter()
            .map(|l| {
                let next = if l {
                    lease_results.next()
                } else {
                    data_results.next()
                };
                next.unwrap_or_else(lost)
            })
            .collect())
    }

    /// Run a batch split as [`PgStore::split`] splits it, each part by
    /// `part` on the slot it reserved, all at once: the results in call
    /// order, a part's error (`fail`) standing for each of its ops.
    pub(super) async fn run_split<'s, 'o, O, R, F, Fut>(
        &'s self,
        ops: &'o [O],
        key: impl Fn(&'o O) -> Option<&'o [u8]>,
        min_part: usize,
        part: F,
        fail: impl Fn(PersistError) -> R,
    ) -> Vec<R>
    where
        O: Clone,
        F: Fn(Vec<O>, Busy<'s>) -> Fut,
        Fut: std::future::Future<Output = Result<Vec<R>>>,
    {
        let runs = self
            .split(ops.iter().map(key), min_part)
            .into_iter()
            .map(|(idx, slot)| {
                // boxed: a part's future is large, and join_all moves it
                let run = Box::pin(part(idx.iter().map(|&i| ops[i].clone()).collect(), slot));
                async move { (idx, run.await) }
            });
        let mut out: Vec<Option<R>> = (0..ops.len()).map(|_| None).collect();
        for (idx, r) in futures_util::future::join_all(runs).await {
            match r {
                Ok(results) => {
                    for (i, res) in idx.into_iter().zip(results) {
                        out[i] = Some(res);
                    }
                }
                Err(e) => {
                    for i in idx {
                        out[i] = Some(fail(e.clone()));
                    }
                }
            }
        }
        out.into_iter()
            .map(|r| r.unwrap_or_else(|| fail(PersistError::Internal("op lost".into()))))
            .collect()
    }

    /// Run the ops of one part on the connection of its slot, pipelined.
    async fn exec_part(&self, ops: &[Op], slot: Busy<'_>) -> Result<Vec<OpResult>> {
        if ops.is_empty() {
            return Ok(Vec::new());
        }
        let writes = ops
            .iter()
            .filter(|op| matches!(op, Op::Set(..) | Op::SetDurable(..) | Op::Delete(_)))
            .count();
        self.with_slot(slot, |c| async move {
            if let Some(results) = run_as_one(&c, ops).await {
                return Ok(results);
            }
            // boxed: join_all moves each op's (large) future
            let run =
                || futures_util::future::join_all(ops.iter().map(|op| Box::pin(run_op(&c, op))));
            let rolled_back = |r: &OpResult| {
                matches!(r, OpResult::Failed(e) if !matches!(e, PersistError::Corrupt { .. }))
            };
            Ok(batch_transaction(&c, writes, run, rolled_back, OpResult::Failed).await)
        })
        .await
    }

    /// The parts a batch of ops on these keys runs as, each on its own
    /// connection at once: indexes into the batch, in call order. With
    /// connections idle (fewer batches running than `pool_size`), a batch of
    /// at least `min_part` ops per part is split by key hash over them, so
    /// their commits happen together (the server groups concurrent commits
    /// into one WAL flush) instead of one after another on one connection.
    /// One key's ops always share a part, in call order. Each part holds
    /// its slot of the pool ([`Busy`], the least busy one) from here on, so
    /// the connections it takes count as busy for the next batch at once.
    ///
    /// A part runs in key order (its indexes sorted by key, stable: one
    /// key's ops keep their call order; ops of different keys are
    /// independent, and parts of one batch already run at once). So every
    /// batch transaction, of this process or another, locks rows in
    /// ascending key order, and two that write the same keys (acquires of
    /// live leases included: `ON CONFLICT DO UPDATE` locks the row) never
    /// deadlock. In call order they could, crosswise, each costing the
    /// server's `deadlock_timeout` and a rerun of the aborted batch.
    pub(super) fn split<'k>(
        &self,
        keys: impl ExactSizeIterator<Item = Option<&'k [u8]>>,
        min_part: usize,
    ) -> Vec<(Vec<usize>, Busy<'_>)> {
        let keys: Vec<Option<&[u8]>> = keys.collect();
        let idle = self.inner.pool.idle_slots();
        let parts = idle.min(keys.len() / min_part).max(1);
        let mut idx: Vec<Vec<usize>> = vec![Vec::new(); parts];
        for (i, k) in keys.iter().enumerate() {
            idx[k.map_or(0, |k| part_of(k, parts))].push(i);
        }
        idx.into_iter()
            .filter(|p| !p.is_empty())
            .map(|mut p| {
                p.sort_by_key(|&i| keys[i]);
                (p, self.inner.pool.take_slot())
            })
            .collect()
    }

    /// Keys (WTF-8) matching the glob `pattern` (UTF-16 units), live only,
    /// each the WTF-8 of a string (the version row never is).
    async fn matching_keys(&self, pattern: &[u16]) -> Result<Vec<(Vec<u8>, Vec<u16>)>> {
        let scan = sql::key_scan(pattern);
        let rows = self
            .with_conn(|c| async move {
                c.client
                    .query(&c.st.keys, &[&scan.lo, &scan.hi, &scan.like])
                    .await
                    .map_err(|e| classify(&e))
            })
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let k: Vec<u8> = row
                .try_get(0)
                .map_err(|e| PersistError::Store(format!("keys: {e}")))?;
            if let Some(units) = wtf8::decode(&k) {
                if glob::matches_units(pattern, &units) {
                    out.push((k, units));
                }
            }
        }
        Ok(out)
    }

    /// Keys matching a Redis glob, as JS strings (UTF-16 units).
    pub async fn keys(&self, pattern: &[u16]) -> Result<Vec<Vec<u16>>> {
        Ok(self
            .matching_keys(pattern)
            .await?
            .into_iter()
            .map(|(_, u)| u)
            .collect())
    }

    /// `clearAsync` of the KV cache with `prefix`: delete the keys under it
    /// that it owns (`Owners`: not a longer prefix's, not a state prefix,
    /// never a marker). Returns the number of rows deleted.
    pub async fn clear_cache_prefix(&self, prefix: &[u16]) -> Result<u64> {
        let mut pattern = glob::escape_units(prefix);
        pattern.push(u16::from(b'*'));
        let legacy: Vec<u16> = format!("{}*", glob::escape(REGISTRY_PREFIX))
            .encode_utf16()
            .collect();
        let (keys, legacy) =
            tokio::try_join!(self.matching_keys(&pattern), self.matching_keys(&legacy))?;
        let mut owner_keys: Vec<Vec<u8>> = legacy.into_iter().map(|(k, _)| k).collect();
        let shaped: Vec<Op> = keys
            .iter()
            .filter(|(k, _)| Owners::looks_like_marker(k))
            .map(|(k, _)| Op::Get(k.clone()))
            .collect();
        if !shaped.is_empty() {
            let marker = Text::of(MARKER_VALUE);
            for (op, v) in shaped.iter().zip(self.exec(&shaped).await?) {
                if let (Op::Get(k), OpResult::Value(Some(t))) = (op, v) {
                    if t == marker {
                        owner_keys.push(k.clone());
                    }
                }
            }
        }
        let owners = Owners::from_keys(owner_keys.iter().map(Vec::as_slice));
        let prefix = wtf8::encode(prefix);
        let doomed: Vec<Vec<u8>> = keys
            .into_iter()
            .map(|(k, _)| k)
            .filter(|k| owners.cache_may_delete(&prefix, k))
            .collect();
        let mut total = 0;
        for chunk in doomed.chunks(DELETE_CHUNK) {
            let chunk = chunk.to_vec();
            total += self
                .with_conn(|c| async move {
                    c.client
                        .execute(&c.st.delete_many, &[&chunk])
                        .await
                        .map_err(|e| classify(&e))
                })
                .await?;
        }
        Ok(total)
    }

    /// Connect if needed and run an empty query.
    pub async fn ping(&self) -> Result<()> {
        self.with_conn(|c| async move {
            c.client
                .simple_query("")
                .await
                .map(|_| ())
                .map_err(|e| classify(&e))
        })
        .await
    }

    /// Delete expired rows, [`SWEEP_BATCH`] per statement, until a statement
    /// deletes fewer. Returns the number deleted.
    pub async fn sweep(&self) -> Result<u64> {
        let text = &self.inner.pool.text.sweep;
        let mut total = 0;
        loop {
            let n = self
                .with_conn(|c| async move {
                    c.client
                        .execute(text.as_str(), &[&SWEEP_BATCH])
                        .await
                        .map_err(|e| classify(&e))
                })
                .await?;
            total += n;
            if n < SWEEP_BATCH as u64 {
                return Ok(total);
            }
            tokio::task::yield_now().await;
        }
    }

    /// Start the background sweep (once): every `sweep_interval_ms`, while
    /// the store lives and is open. It holds only a weak reference.
    fn start_sweep(&self) {
        if self.inner.sweeping.swap(true, Ordering::AcqRel) {
            return;
        }
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        let every = Duration::from_millis(self.inner.pool.cfg.sweep_interval_ms.max(1));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(inner) = weak.upgrade() else { return };
                if inner.pool.is_closed() {
                    return;
                }
                let _ = PgStore { inner }.sweep().await;
            }
        });
    }

    /// Close: later calls fail with ERR_STORE_CLOSED; connections close
    /// once the calls in flight on them are done.
    pub async fn close(&self) {
        self.inner.pool.close().await;
    }
}
