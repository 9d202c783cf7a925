//! The PostgreSQL store's core: a small pool of tokio-postgres connections,
//! the schema created on first use, batches, leases, listing, clearing a
//! cache's prefix, and the background sweep of expired rows. No napi types.
//!
//! - **Pool:** `pool_size` slots, each one connection opened on first use
//!   and replaced when it closes (server restart, network) or a call on it
//!   times out. Batches take slots in turn.
//! - **Pipelining:** the ops of one batch (the calls of one JS tick) are
//!   polled together on one connection; tokio-postgres writes them back to
//!   back (each with its own Sync, so one failing op fails alone) and reads
//!   the replies in order: one round trip for the batch.
//! - **Failures:** a dropped connection fails the calls on it with
//!   `ERR_STORE_UNAVAILABLE`; a batch that outlives `command_timeout_ms`
//!   fails with `ERR_STORE_TIMEOUT` and its connection is dropped. The next
//!   call opens a new one.
//! - **Time:** every expiry is computed and compared by the server (`now()`);
//!   no client clock enters any decision.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio_postgres::{Client, Statement};

use super::config::{PgConfig, SWEEP_BATCH};
use super::sql::{self, StatementText, SCHEMA_VERSION, VERSION_KEY};
use crate::error::{PersistError, Result};
use crate::glob;
use crate::redis::batch::{Op, OpResult, Text};
use crate::redis::lease::LeaseOp;
use crate::redis::store::{Owners, MARKER_VALUE, REGISTRY_PREFIX};
use crate::wtf8;

/// Rows deleted per statement by `clear_cache_prefix`.
const DELETE_CHUNK: usize = 5000;

/// The fewest ops per part when a batch is split over connections.
const MIN_PART: usize = 4;

/// One running batch part, counted in `Inner::active` while it lives.
struct Active(Arc<Inner>);

impl Active {
    fn new(inner: &Arc<Inner>) -> Self {
        inner.active.fetch_add(1, Ordering::Relaxed);
        Active(inner.clone())
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The key an op is about (None: a ping).
fn op_key(op: &Op) -> Option<&[u8]> {
    match op {
        Op::Get(k) | Op::Set(k, ..) | Op::SetDurable(k, ..) | Op::Delete(k) | Op::Exists(k) => {
            Some(k)
        }
        _ => None,
    }
}

fn lease_key(op: &LeaseOp) -> &[u8] {
    match op {
        LeaseOp::Acquire { key, .. }
        | LeaseOp::Release { key, .. }
        | LeaseOp::Renew { key, .. }
        | LeaseOp::FencedSet { key, .. }
        | LeaseOp::FencedDelete { key, .. } => key,
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
    inner: Arc<Inner>,
}

struct Inner {
    cfg: PgConfig,
    client_cfg: tokio_postgres::Config,
    tls: bool,
    table: String,
    text: StatementText,
    slots: Vec<tokio::sync::Mutex<Option<Arc<Conn>>>>,
    next: AtomicUsize,
    closed: AtomicBool,
    schema_ready: tokio::sync::Mutex<bool>,
    sweeping: AtomicBool,
    opened: AtomicU64,
    /// Batches running now (see [`PgStore::split`]).
    active: AtomicUsize,
}

struct Conn {
    slot: usize,
    client: Client,
    st: Statements,
    /// Held while a batch writes its requests (see [`contiguous`]).
    sending: std::sync::Mutex<()>,
}

struct Statements {
    get: Statement,
    set: Statement,
    delete: Statement,
    exists: Statement,
    keys: Statement,
    acquire: Statement,
    release: Statement,
    renew: Statement,
    fenced_set: Statement,
    fenced_delete: Statement,
    delete_many: Statement,
}

impl Statements {
    async fn prepare(
        c: &Client,
        t: &StatementText,
    ) -> std::result::Result<Self, tokio_postgres::Error> {
        let (get, set, delete, exists, keys) = tokio::try_join!(
            c.prepare(&t.get),
            c.prepare(&t.set),
            c.prepare(&t.delete),
            c.prepare(&t.exists),
            c.prepare(&t.keys),
        )?;
        let (acquire, release, renew, fenced_set, fenced_delete, delete_many) = tokio::try_join!(
            c.prepare(&t.acquire),
            c.prepare(&t.release),
            c.prepare(&t.renew),
            c.prepare(&t.fenced_set),
            c.prepare(&t.fenced_delete),
            c.prepare(&t.delete_many),
        )?;
        Ok(Statements {
            get,
            set,
            delete,
            exists,
            keys,
            acquire,
            release,
            renew,
            fenced_set,
            fenced_delete,
            delete_many,
        })
    }
}

/// Our error for a client error: connection trouble is
/// `Unavailable`, anything the server rejected is `Store`.
pub fn classify(e: &tokio_postgres::Error) -> PersistError {
    if let Some(db) = e.as_db_error() {
        let code = db.code().code();
        let msg = format!("{} ({code})", db.message());
        // 08: connection exception; 57P0x: shutdown, crash, not yet
        // accepting; 53300: too many connections
        return if code.starts_with("08") || code.starts_with("57P") || code == "53300" {
            PersistError::Unavailable(msg)
        } else {
            PersistError::Store(msg)
        };
    }
    PersistError::Unavailable(e.to_string())
}

/// A stored value as JS text (ASCII as is, else decoded WTF-8).
fn text_of(key: &[u8], bytes: Vec<u8>) -> Result<Text> {
    if bytes.is_ascii() {
        return Ok(Text::Ascii(bytes));
    }
    wtf8::decode(&bytes).map(Text::Units).ok_or_else(|| {
        PersistError::corrupt(
            String::from_utf8_lossy(key).into_owned(),
            "the stored bytes are not the WTF-8 of a string",
        )
    })
}

impl PgStore {
    pub fn new(cfg: PgConfig) -> Result<Self> {
        cfg.validate()?;
        let client_cfg = cfg.client_config()?;
        let tls = cfg.wants_tls()?;
        let table = cfg.qualified_table();
        let text = StatementText::new(&table);
        let slots = (0..cfg.pool_size)
            .map(|_| tokio::sync::Mutex::new(None))
            .collect();
        Ok(PgStore {
            inner: Arc::new(Inner {
                cfg,
                client_cfg,
                tls,
                table,
                text,
                slots,
                next: AtomicUsize::new(0),
                closed: AtomicBool::new(false),
                schema_ready: tokio::sync::Mutex::new(false),
                sweeping: AtomicBool::new(false),
                opened: AtomicU64::new(0),
                active: AtomicUsize::new(0),
            }),
        })
    }

    pub fn config(&self) -> &PgConfig {
        &self.inner.cfg
    }

    pub fn connections_opened(&self) -> u64 {
        self.inner.opened.load(Ordering::Relaxed)
    }

    fn command_timeout(&self) -> Duration {
        Duration::from_millis(self.inner.cfg.command_timeout_ms.max(1))
    }

    fn check_open(&self) -> Result<()> {
        if self.inner.closed.load(Ordering::Acquire) {
            Err(PersistError::Closed)
        } else {
            Ok(())
        }
    }

    /// Open one connection (within connect_timeout_ms); its I/O task runs
    /// on tokio until the client is dropped or the server goes away.
    async fn open(&self) -> Result<Client> {
        let ms = self.inner.cfg.connect_timeout_ms.max(1);
        let cfg = &self.inner.client_cfg;
        let opening = async {
            if self.inner.tls {
                self.open_tls(cfg).await
            } else {
                let (client, conn) = cfg
                    .connect(tokio_postgres::NoTls)
                    .await
                    .map_err(|e| classify(&e))?;
                tokio::spawn(conn);
                Ok(client)
            }
        };
        let client = tokio::time::timeout(Duration::from_millis(ms), opening)
            .await
            .map_err(|_| PersistError::Timeout(ms))??;
        self.inner.opened.fetch_add(1, Ordering::Relaxed);
        Ok(client)
    }

    #[cfg(feature = "postgres-tls")]
    async fn open_tls(&self, cfg: &tokio_postgres::Config) -> Result<Client> {
        let material = self.inner.cfg.tls.clone().unwrap_or_default();
        let tls =
            tokio_postgres_rustls::MakeRustlsConnect::new(super::config::rustls_config(&material)?);
        let (client, conn) = cfg.connect(tls).await.map_err(|e| classify(&e))?;
        tokio::spawn(conn);
        Ok(client)
    }

    #[cfg(not(feature = "postgres-tls"))]
    async fn open_tls(&self, _cfg: &tokio_postgres::Config) -> Result<Client> {
        Err(PersistError::InvalidArgument(
            "createPostgresStore: this build has no TLS (feature postgres-tls)".into(),
        ))
    }

    /// The next slot's connection, opened (with the schema checked and the
    /// statements prepared) if it has none or its connection closed.
    async fn conn(&self) -> Result<Arc<Conn>> {
        self.check_open()?;
        let n = self.inner.slots.len();
        let i = self.inner.next.fetch_add(1, Ordering::Relaxed) % n;
        let mut slot = self.inner.slots[i].lock().await;
        if let Some(c) = slot.as_ref() {
            if !c.client.is_closed() {
                return Ok(c.clone());
            }
        }
        *slot = None;
        let client = self.open().await?;
        let ms = self.inner.cfg.command_timeout_ms.max(1);
        let st = tokio::time::timeout(Duration::from_millis(ms), async {
            self.ensure_schema(&client).await?;
            Statements::prepare(&client, &self.inner.text)
                .await
                .map_err(|e| classify(&e))
        })
        .await
        .map_err(|_| PersistError::Timeout(ms))??;
        self.check_open()?;
        let c = Arc::new(Conn {
            slot: i,
            client,
            st,
            sending: std::sync::Mutex::new(()),
        });
        *slot = Some(c.clone());
        drop(slot);
        self.start_sweep();
        Ok(c)
    }

    /// Forget `c` (timed out or broken): the slot opens a new connection.
    async fn discard(&self, c: &Arc<Conn>) {
        let mut slot = self.inner.slots[c.slot].lock().await;
        if slot.as_ref().is_some_and(|s| Arc::ptr_eq(s, c)) {
            *slot = None;
        }
    }

    /// Create the schema, table, index and version row if the version row
    /// is missing (under an advisory lock, so concurrent first starts are
    /// safe), then check the version. Once per store.
    async fn ensure_schema(&self, client: &Client) -> Result<()> {
        let mut ready = self.inner.schema_ready.lock().await;
        if *ready {
            return Ok(());
        }
        let read = format!("SELECT v FROM {} WHERE k = $1", self.inner.table);
        let version =
            |r: std::result::Result<Option<tokio_postgres::Row>, tokio_postgres::Error>| {
                match r {
                    Ok(Some(row)) => row
                        .try_get::<_, Vec<u8>>(0)
                        .map(Some)
                        .map_err(|e| PersistError::Store(format!("schema version row: {e}"))),
                    Ok(None) => Ok(None),
                    // 42P01 undefined_table, 3F000 invalid_schema_name
                    Err(e)
                        if e.code()
                            .is_some_and(|c| c.code() == "42P01" || c.code() == "3F000") =>
                    {
                        Ok(None)
                    }
                    Err(e) => Err(classify(&e)),
                }
            };
        let mut found = version(client.query_opt(&read, &[&VERSION_KEY]).await)?;
        if found.is_none() {
            let cfg = &self.inner.cfg;
            let ddl = sql::create_schema(
                cfg.schema.as_deref(),
                &cfg.table,
                &self.inner.table,
                cfg.schema_lock_key(),
            );
            client.batch_execute(&ddl).await.map_err(|e| classify(&e))?;
            found = version(client.query_opt(&read, &[&VERSION_KEY]).await)?;
        }
        let v = found
            .as_deref()
            .and_then(|b| std::str::from_utf8(b).ok())
            .and_then(|s| s.parse::<i32>().ok());
        if v != Some(SCHEMA_VERSION) {
            return Err(PersistError::Store(format!(
                "table {} has schema version {}; this build reads version {SCHEMA_VERSION}",
                self.inner.table,
                v.map_or_else(|| "(unreadable)".to_string(), |v| v.to_string())
            )));
        }
        *ready = true;
        Ok(())
    }

    /// Run `work` on a connection within the command timeout; on a timeout
    /// or a closed connection the connection is discarded.
    async fn with_conn<T, F, Fut>(&self, work: F) -> Result<T>
    where
        F: FnOnce(Arc<Conn>) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let c = self.conn().await?;
        let r = tokio::time::timeout(self.command_timeout(), work(c.clone())).await;
        match r {
            Ok(r) => {
                if c.client.is_closed() {
                    self.discard(&c).await;
                }
                r
            }
            Err(_) => {
                self.discard(&c).await;
                Err(PersistError::Timeout(self.inner.cfg.command_timeout_ms))
            }
        }
    }

    /// Run a batch; one result per op. See [`PgStore::split`] for how it
    /// spreads over connections.
    pub async fn exec(&self, ops: &[Op]) -> Result<Vec<OpResult>> {
        let parts = self.split(ops.iter().map(op_key));
        let mut out: Vec<Option<OpResult>> = (0..ops.len()).map(|_| None).collect();
        let runs = parts.into_iter().map(|(idx, active)| async move {
            let part: Vec<Op> = idx.iter().map(|&i| ops[i].clone()).collect();
            let r = self.exec_part(&part).await;
            drop(active);
            (idx, r)
        });
        for (idx, r) in futures_util::future::join_all(runs).await {
            match r {
                Ok(results) => {
                    for (i, res) in idx.into_iter().zip(results) {
                        out[i] = Some(res);
                    }
                }
                Err(e) => {
                    for i in idx {
                        out[i] = Some(OpResult::Failed(e.clone()));
                    }
                }
            }
        }
        Ok(out
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| OpResult::Failed(PersistError::Internal("op lost".into())))
            })
            .collect())
    }

    /// Run the ops of one part on one connection, pipelined.
    async fn exec_part(&self, ops: &[Op]) -> Result<Vec<OpResult>> {
        if ops.is_empty() {
            return Ok(Vec::new());
        }
        let writes = ops
            .iter()
            .filter(|op| matches!(op, Op::Set(..) | Op::SetDurable(..) | Op::Delete(_)))
            .count();
        self.with_conn(|c| async move {
            let run = || futures_util::future::join_all(ops.iter().map(|op| run_op(&c, op)));
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
    /// at least [`MIN_PART`] ops per part is split by key hash over them, so
    /// their commits happen together (the server groups concurrent commits
    /// into one WAL flush) instead of one after another on one connection.
    /// One key's ops always share a part, in call order. Each part holds an
    /// [`Active`] guard while it runs.
    fn split<'k>(
        &self,
        keys: impl ExactSizeIterator<Item = Option<&'k [u8]>>,
    ) -> Vec<(Vec<usize>, Active)> {
        let n = keys.len();
        let busy = self.inner.active.load(Ordering::Relaxed);
        let idle = self.inner.slots.len().saturating_sub(busy);
        let parts = idle.min(n / MIN_PART).max(1);
        let mut idx: Vec<Vec<usize>> = vec![Vec::new(); parts];
        for (i, k) in keys.enumerate() {
            idx[k.map_or(0, |k| part_of(k, parts))].push(i);
        }
        idx.into_iter()
            .filter(|p| !p.is_empty())
            .map(|p| (p, Active::new(&self.inner)))
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

    /// A batch of lease ops, split as [`PgStore::exec`] splits; one result per op.
    pub async fn lease_exec(&self, ops: &[LeaseOp]) -> Result<Vec<Result<bool>>> {
        let parts = self.split(ops.iter().map(|op| Some(lease_key(op))));
        let mut out: Vec<Option<Result<bool>>> = (0..ops.len()).map(|_| None).collect();
        let runs = parts.into_iter().map(|(idx, active)| async move {
            let part: Vec<LeaseOp> = idx.iter().map(|&i| ops[i].clone()).collect();
            let r = self.lease_part(&part).await;
            drop(active);
            (idx, r)
        });
        for (idx, r) in futures_util::future::join_all(runs).await {
            match r {
                Ok(results) => {
                    for (i, res) in idx.into_iter().zip(results) {
                        out[i] = Some(res);
                    }
                }
                Err(e) => {
                    for i in idx {
                        out[i] = Some(Err(e.clone()));
                    }
                }
            }
        }
        Ok(out
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(PersistError::Internal("lease op lost".into()))))
            .collect())
    }

    /// The lease ops of one part on one connection, pipelined.
    async fn lease_part(&self, ops: &[LeaseOp]) -> Result<Vec<Result<bool>>> {
        if ops.is_empty() {
            return Ok(Vec::new());
        }
        self.with_conn(|c| async move {
            let run = || futures_util::future::join_all(ops.iter().map(|op| run_lease(&c, op)));
            // a fenced-off write is an answer, not a failed statement
            let failed =
                |r: &Result<bool>| matches!(r, Err(e) if !matches!(e, PersistError::LeaseLost(_)));
            Ok(batch_transaction(&c, ops.len(), run, failed, Err).await)
        })
        .await
    }

    /// Delete expired rows, [`SWEEP_BATCH`] per statement, until a statement
    /// deletes fewer. Returns the number deleted.
    pub async fn sweep(&self) -> Result<u64> {
        let text = &self.inner.text.sweep;
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
        let every = Duration::from_millis(self.inner.cfg.sweep_interval_ms.max(1));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(inner) = weak.upgrade() else { return };
                if inner.closed.load(Ordering::Acquire) {
                    return;
                }
                let _ = PgStore { inner }.sweep().await;
            }
        });
    }

    /// Close: later calls fail with ERR_STORE_CLOSED; connections close
    /// once the calls in flight on them are done.
    pub async fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
        for s in &self.inner.slots {
            s.lock().await.take();
        }
    }
}

/// Run a batch's statements (`run`, pipelined) on `c`. With two or more
/// writes they go inside ONE transaction, `BEGIN` and `COMMIT` pipelined
/// with them: one commit (one WAL flush) for the batch instead of one per
/// write, which a single connection would otherwise wait for in turn.
/// Statements run in call order and see each other's writes, as before.
///
/// If a statement failed (`failed`), the server rolled the transaction back
/// and the batch is run again without one, each statement on its own, so
/// that one bad op fails alone. If the connection broke, whether the commit
/// happened is unknown: every op fails with that error (`fail`).
async fn batch_transaction<T, F, Fut>(
    c: &Conn,
    writes: usize,
    run: F,
    failed: impl Fn(&T) -> bool,
    fail: impl Fn(PersistError) -> T,
) -> Vec<T>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Vec<T>>,
{
    if writes < 2 {
        return contiguous(c, run()).await;
    }
    // polled in this order on their first poll: each is written then
    let (begin, results, commit) = contiguous(
        c,
        futures_util::future::join3(
            c.client.batch_execute("BEGIN"),
            run(),
            c.client.batch_execute("COMMIT"),
        ),
    )
    .await;
    let broken = begin.err().or(commit.err());
    if broken.is_none() && !results.iter().any(&failed) {
        return results;
    }
    if c.client.is_closed() {
        let e = broken.map_or_else(
            || PersistError::Unavailable("connection closed".into()),
            |e| classify(&e),
        );
        return results.iter().map(|_| fail(e.clone())).collect();
    }
    contiguous(c, run()).await
}

/// Await `fut`, its first poll under the connection's `sending` lock. A
/// statement's request is written on its future's first poll, so a batch's
/// requests go out back to back: another batch on the same connection never
/// lands inside its transaction.
async fn contiguous<F: std::future::Future>(c: &Conn, fut: F) -> F::Output {
    use std::task::Poll;
    let mut fut = std::pin::pin!(fut);
    let first = std::future::poll_fn(|cx| {
        let _sending = c.sending.lock().unwrap_or_else(|p| p.into_inner());
        Poll::Ready(fut.as_mut().poll(cx))
    })
    .await;
    match first {
        Poll::Ready(v) => v,
        Poll::Pending => fut.await,
    }
}

async fn run_op(c: &Conn, op: &Op) -> OpResult {
    let r: std::result::Result<OpResult, tokio_postgres::Error> =
        async {
            Ok(match op {
                Op::Get(k) => match c.client.query_opt(&c.st.get, &[k]).await? {
                    None => OpResult::Value(None),
                    Some(row) => match row.try_get::<_, Vec<u8>>(0) {
                        Ok(v) => match text_of(k, v) {
                            Ok(t) => OpResult::Value(Some(t)),
                            Err(e) => OpResult::Failed(e),
                        },
                        Err(e) => OpResult::Failed(PersistError::Store(format!("get: {e}"))),
                    },
                },
                Op::Set(k, v, ttl) | Op::SetDurable(k, v, ttl) => {
                    let secs = ttl.unwrap_or(0) as f64;
                    c.client.execute(&c.st.set, &[k, v, &secs]).await?;
                    OpResult::Done
                }
                Op::Delete(k) => {
                    let row = c.client.query_opt(&c.st.delete, &[k]).await?;
                    OpResult::Bool(row.is_some_and(|r| {
                        r.try_get::<_, Option<bool>>(0).ok().flatten() == Some(true)
                    }))
                }
                Op::Exists(k) => {
                    OpResult::Bool(c.client.query_opt(&c.st.exists, &[k]).await?.is_some())
                }
                Op::Ping => {
                    c.client.simple_query("").await?;
                    OpResult::Done
                }
                other => OpResult::Failed(PersistError::Internal(format!(
                    "not an op of the PostgreSQL store: {other:?}"
                ))),
            })
        }
        .await;
    r.unwrap_or_else(|e| OpResult::Failed(classify(&e)))
}

async fn run_lease(c: &Conn, op: &LeaseOp) -> Result<bool> {
    let r = match op {
        LeaseOp::Acquire { key, token, ttl_ms } => {
            let ms = (*ttl_ms).max(1) as f64;
            c.client
                .query_opt(&c.st.acquire, &[key, &token.as_bytes(), &ms])
                .await
                .map(|row| row.is_some())
        }
        LeaseOp::Release { key, token } => c
            .client
            .query_opt(&c.st.release, &[key, &token.as_bytes()])
            .await
            .map(|row| {
                row.is_some_and(|r| r.try_get::<_, Option<bool>>(0).ok().flatten() == Some(true))
            }),
        LeaseOp::Renew { key, token, ttl_ms } => {
            let ms = (*ttl_ms).max(1) as f64;
            c.client
                .execute(&c.st.renew, &[key, &token.as_bytes(), &ms])
                .await
                .map(|n| n > 0)
        }
        LeaseOp::FencedSet {
            key,
            token,
            state,
            value,
        } => {
            return fenced(
                c.client
                    .query_opt(&c.st.fenced_set, &[key, &token.as_bytes(), state, value])
                    .await,
            )
        }
        LeaseOp::FencedDelete { key, token, state } => {
            return fenced(
                c.client
                    .query_opt(&c.st.fenced_delete, &[key, &token.as_bytes(), state])
                    .await,
            )
        }
    };
    r.map_err(|e| classify(&e))
}

/// A fenced write's answer: written (a row came back) or `ERR_LEASE_LOST`.
fn fenced(
    row: std::result::Result<Option<tokio_postgres::Row>, tokio_postgres::Error>,
) -> Result<bool> {
    match row {
        Ok(Some(_)) => Ok(true),
        Ok(None) => Err(PersistError::lease_lost()),
        Err(e) => Err(classify(&e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A store on a private schema of the local server (`test` database).
    fn store(tag: &str) -> Result<PgStore> {
        PgStore::new(PgConfig {
            host: Some("127.0.0.1".into()),
            user: Some("postgres".into()),
            database: Some("test".into()),
            schema: Some(format!("rs_{tag}_{}", std::process::id())),
            pool_size: 2,
            ..PgConfig::default()
        })
    }

    async fn drop_schema(s: &PgStore) -> Result<()> {
        let c = s.open().await?;
        let schema = s.config().schema.clone().unwrap_or_default();
        c.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
            .await
            .map_err(|e| classify(&e))
    }

    fn u(s: &str) -> Vec<u16> {
        s.encode_utf16().collect()
    }

    #[tokio::test]
    async fn kv_keys_and_exact_bytes_against_local_postgres() -> Result<()> {
        let s = store("kv")?;
        let odd: Vec<u16> = vec![0x61, 0, 0xD800, 0x25, 0x5F, 0x5C];
        let r = s
            .exec(&[
                Op::Set(b"a:1".to_vec(), b"one".to_vec(), None),
                Op::Set(wtf8::encode(&odd), wtf8::encode(&odd), None),
                Op::Set(b"a:2".to_vec(), "é".as_bytes().to_vec(), Some(100)),
                Op::Get(b"a:1".to_vec()),
                Op::Get(wtf8::encode(&odd)),
                Op::Get(b"a:2".to_vec()),
                Op::Get(b"nope".to_vec()),
                Op::Exists(b"a:1".to_vec()),
                Op::Delete(b"a:1".to_vec()),
                Op::Delete(b"a:1".to_vec()),
            ])
            .await?;
        assert_eq!(r[3], OpResult::Value(Some(Text::of("one"))));
        assert_eq!(r[4], OpResult::Value(Some(Text::Units(odd.clone()))));
        assert_eq!(r[5], OpResult::Value(Some(Text::of("é"))));
        assert_eq!(r[6], OpResult::Value(None));
        assert_eq!(r[7], OpResult::Bool(true));
        assert_eq!(
            (&r[8], &r[9]),
            (&OpResult::Bool(true), &OpResult::Bool(false))
        );
        assert_eq!(s.keys(&u("a:*")).await?, vec![u("a:2")]);
        // % _ \ in the key are literal, a class is exact
        let mut p = glob::escape_units(&odd);
        p.push(u16::from(b'*'));
        assert_eq!(s.keys(&p).await?, vec![odd.clone()]);
        assert_eq!(s.keys(&u("a%")).await?, Vec::<Vec<u16>>::new());
        assert_eq!(s.keys(&u("a:[12]")).await?, vec![u("a:2")]);
        // the version row is never a key
        assert_eq!(s.keys(&u("*")).await?.len(), 2);
        drop_schema(&s).await
    }

    #[tokio::test]
    async fn a_batch_is_one_transaction_in_call_order_and_batches_never_mix() -> Result<()> {
        let s = store("txn")?;
        let k = || b"k".to_vec();
        let r = s
            .exec(&[
                Op::Set(k(), b"a".to_vec(), None),
                Op::Get(k()),
                Op::Delete(k()),
                Op::Delete(k()),
                Op::Get(k()),
                Op::Set(k(), b"b".to_vec(), None),
            ])
            .await?;
        assert_eq!(
            r,
            vec![
                OpResult::Done,
                OpResult::Value(Some(Text::of("a"))),
                OpResult::Bool(true),
                OpResult::Bool(false),
                OpResult::Value(None),
                OpResult::Done
            ]
        );
        // 40 batches at once on 2 connections: each sees only its own order
        let runs = (0..40).map(|i| {
            let s = s.clone();
            async move {
                let key = format!("b{i}").into_bytes();
                let v1 = format!("{i}.1");
                let v2 = format!("{i}.2");
                let r = s
                    .exec(&[
                        Op::Set(key.clone(), v1.clone().into_bytes(), None),
                        Op::Get(key.clone()),
                        Op::Set(key.clone(), v2.clone().into_bytes(), None),
                        Op::Get(key.clone()),
                    ])
                    .await?;
                assert_eq!(r[1], OpResult::Value(Some(Text::of(&v1))));
                assert_eq!(r[3], OpResult::Value(Some(Text::of(&v2))));
                Ok::<_, PersistError>(())
            }
        });
        for r in futures_util::future::join_all(runs).await {
            r?;
        }
        drop_schema(&s).await
    }

    #[tokio::test]
    async fn expiry_is_the_servers_and_the_sweep_deletes() -> Result<()> {
        let s = store("ttl")?;
        s.exec(&[Op::Set(b"t".to_vec(), b"x".to_vec(), Some(1))])
            .await?;
        assert_eq!(
            s.exec(&[Op::Exists(b"t".to_vec())]).await?[0],
            OpResult::Bool(true)
        );
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let r = s
            .exec(&[Op::Get(b"t".to_vec()), Op::Exists(b"t".to_vec())])
            .await?;
        assert_eq!(r, vec![OpResult::Value(None), OpResult::Bool(false)]);
        assert_eq!(s.keys(&u("*")).await?.len(), 0);
        assert_eq!(s.sweep().await?, 1, "the expired row is deleted");
        assert_eq!(s.sweep().await?, 0);
        drop_schema(&s).await
    }

    #[tokio::test]
    async fn leases_take_release_renew_and_expire() -> Result<()> {
        let s = store("lease")?;
        let k = b"p\0lease:x".to_vec();
        let acq = |t: &str, ms| LeaseOp::Acquire {
            key: k.clone(),
            token: t.into(),
            ttl_ms: ms,
        };
        let rel = |t: &str| LeaseOp::Release {
            key: k.clone(),
            token: t.into(),
        };
        let ren = |t: &str, ms| LeaseOp::Renew {
            key: k.clone(),
            token: t.into(),
            ttl_ms: ms,
        };
        let r: Vec<bool> = s
            .lease_exec(&[
                acq("a", 10_000),
                acq("b", 10_000),
                ren("b", 10_000),
                rel("b"),
                ren("a", 100),
            ])
            .await?
            .into_iter()
            .collect::<Result<_>>()?;
        assert_eq!(r, [true, false, false, false, true]);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let r: Vec<bool> = s
            .lease_exec(&[
                ren("a", 100),
                acq("b", 10_000),
                rel("a"),
                rel("b"),
                rel("b"),
            ])
            .await?
            .into_iter()
            .collect::<Result<_>>()?;
        assert_eq!(r, [false, true, false, true, false]);
        drop_schema(&s).await
    }

    #[tokio::test]
    async fn fenced_writes_land_only_while_the_lease_is_the_writers() -> Result<()> {
        let s = store("fence")?;
        let k = b"p\0lease:x".to_vec();
        let state = b"px".to_vec();
        let acq = |t: &str, ms| LeaseOp::Acquire {
            key: k.clone(),
            token: t.into(),
            ttl_ms: ms,
        };
        let set = |t: &str, v: &str| LeaseOp::FencedSet {
            key: k.clone(),
            token: t.into(),
            state: state.clone(),
            value: v.as_bytes().to_vec(),
        };
        let del = |t: &str| LeaseOp::FencedDelete {
            key: k.clone(),
            token: t.into(),
            state: state.clone(),
        };
        let lost = |r: &Result<bool>| matches!(r, Err(PersistError::LeaseLost(_)));
        let get = || async {
            s.exec(&[Op::Get(state.clone())])
                .await
                .map(|mut r| r.remove(0))
        };
        let value = |v: &str| OpResult::Value(Some(Text::Ascii(v.as_bytes().to_vec())));

        // no lease row: nothing written
        let r = s.lease_exec(&[set("a", "A0")]).await?;
        assert!(lost(&r[0]), "{r:?}");
        assert_eq!(get().await?, OpResult::Value(None));
        // A holds it: A writes (twice in one batch), B is fenced off
        let r = s
            .lease_exec(&[
                acq("a", 300),
                set("a", "A1"),
                set("b", "B1"),
                set("a", "A2"),
            ])
            .await?;
        assert!(matches!(r[..], [Ok(true), Ok(true), _, Ok(true)]), "{r:?}");
        assert!(lost(&r[2]), "{r:?}");
        assert_eq!(get().await?, value("A2"));
        // A's lease expires (no one took it): A's write and delete are refused
        tokio::time::sleep(Duration::from_millis(400)).await;
        let r = s.lease_exec(&[set("a", "A3"), del("a")]).await?;
        assert!(r.iter().all(lost), "{r:?}");
        assert_eq!(get().await?, value("A2"));
        // B takes over and writes; A stays fenced off; B deletes
        let r = s
            .lease_exec(&[acq("b", 10_000), set("b", "B2"), set("a", "A4"), del("a")])
            .await?;
        assert!(matches!(r[..2], [Ok(true), Ok(true)]), "{r:?}");
        assert!(lost(&r[2]) && lost(&r[3]), "{r:?}");
        assert_eq!(get().await?, value("B2"));
        let r = s.lease_exec(&[del("b")]).await?;
        assert!(matches!(r[..], [Ok(true)]), "{r:?}");
        assert_eq!(get().await?, OpResult::Value(None));
        drop_schema(&s).await
    }

    #[test]
    fn a_batch_splits_over_idle_connections_keeping_each_keys_ops_together() -> Result<()> {
        let s = PgStore::new(PgConfig::default())?; // pool_size 4, never connected
        let keys: Vec<Vec<u8>> = (0..32)
            .map(|i| format!("k{}", i % 16).into_bytes())
            .collect();
        let parts = s.split(keys.iter().map(|k| Some(k.as_slice())));
        assert_eq!(parts.len(), 4);
        assert_eq!(s.inner.active.load(Ordering::Relaxed), 4);
        let mut seen = 0;
        for (idx, _) in &parts {
            assert!(
                idx.windows(2).all(|w| w[0] < w[1]),
                "call order within a part"
            );
            for &i in idx {
                // both calls on key i % 16 are in this part
                assert!(idx.contains(&(i % 16)) && idx.contains(&(i % 16 + 16)));
            }
            seen += idx.len();
        }
        assert_eq!(seen, 32);
        // the connections are busy now: the next batch is not split
        let again = s.split(keys.iter().map(|k| Some(k.as_slice())));
        assert_eq!(again.len(), 1);
        drop(parts);
        drop(again);
        assert_eq!(s.inner.active.load(Ordering::Relaxed), 0);
        // small batches stay whole
        assert_eq!(
            s.split(keys[..7].iter().map(|k| Some(k.as_slice()))).len(),
            1
        );
        Ok(())
    }

    #[tokio::test]
    async fn a_dead_server_is_unavailable_and_a_closed_store_closed() -> Result<()> {
        let s = PgStore::new(PgConfig {
            port: Some(1),
            connect_timeout_ms: 500,
            ..PgConfig::default()
        })?;
        // each op of the batch fails with the connection's error
        let r = s.exec(&[Op::Get(b"k".to_vec()), Op::Ping]).await?;
        for res in r {
            assert!(
                matches!(&res, OpResult::Failed(e) if e.code() == "ERR_STORE_UNAVAILABLE"),
                "{res:?}"
            );
        }
        let l = s
            .lease_exec(&[LeaseOp::Release {
                key: b"k".to_vec(),
                token: "t".into(),
            }])
            .await?;
        assert_eq!(
            l[0].as_ref().err().map(|e| e.code()),
            Some("ERR_STORE_UNAVAILABLE")
        );
        s.close().await;
        let e = s.ping().await.err();
        assert_eq!(e.map(|e| e.code()), Some("ERR_STORE_CLOSED"));
        Ok(())
    }
}
