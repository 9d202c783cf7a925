//! The PostgreSQL store's connections: a pool of `pool_size` slots, each one
//! tokio-postgres connection opened on first use (`connect`) and
//! replaced when it closes (server restart, network) or a call on it times
//! out; the schema created on first use (under an advisory lock) and its
//! version checked; and the statements each connection prepares.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::{Client, Statement};

use super::config::PgConfig;
use super::connect::{self, Named, Runner};
use super::failure::classify;
use super::sql::{self, StatementText, SCHEMA_VERSION, VERSION_KEY};
use crate::error::{PersistError, Result};

pub(super) struct Conn {
    pub(super) slot: usize,
    pub(super) client: Client,
    pub(super) st: Statements,
    /// Held while a batch writes its requests (see `pipeline::contiguous`).
    pub(super) sending: std::sync::Mutex<()>,
}

pub(super) struct Statements {
    pub(super) get: Statement,
    pub(super) get_many: Statement,
    pub(super) set: Statement,
    pub(super) set_many: Statement,
    pub(super) delete: Statement,
    pub(super) exists: Statement,
    pub(super) keys: Statement,
    pub(super) acquire: Statement,
    pub(super) acquire_many: Statement,
    pub(super) release: Statement,
    pub(super) release_many: Statement,
    pub(super) renew: Statement,
    pub(super) fenced_set: Statement,
    pub(super) fenced_delete: Statement,
    pub(super) delete_many: Statement,
}

impl Statements {
    async fn prepare(
        c: &Client,
        t: &StatementText,
    ) -> std::result::Result<Self, tokio_postgres::Error> {
        let (
            get,
            get_many,
            set,
            set_many,
            delete,
            exists,
            keys,
            acquire,
            acquire_many,
            release,
            release_many,
            renew,
            fenced_set,
            fenced_delete,
            delete_many,
        ) = tokio::try_join!(
            c.prepare(&t.get),
            c.prepare(&t.get_many),
            c.prepare(&t.set),
            c.prepare(&t.set_many),
            c.prepare(&t.delete),
            c.prepare(&t.exists),
            c.prepare(&t.keys),
            c.prepare(&t.acquire),
            c.prepare(&t.acquire_many),
            c.prepare(&t.release),
            c.prepare(&t.release_many),
            c.prepare(&t.renew),
            c.prepare(&t.fenced_set),
            c.prepare(&t.fenced_delete),
            c.prepare(&t.delete_many),
        )?;
        Ok(Statements {
            get,
            get_many,
            set,
            set_many,
            delete,
            exists,
            keys,
            acquire,
            acquire_many,
            release,
            release_many,
            renew,
            fenced_set,
            fenced_delete,
            delete_many,
        })
    }
}

/// The connections of one store: `pool_size` slots, each opened on first
/// use. A call takes the slot with the fewest calls on it, the first of
/// those on a tie: one call at a time keeps to one connection (its server
/// backend stays hot), concurrent calls spread over the pool.
pub(super) struct Pool {
    pub(super) cfg: PgConfig,
    client_cfg: tokio_postgres::Config,
    /// rustls, when the connection uses TLS.
    tls: Option<Arc<Named>>,
    runner: Runner,
    /// The quoted, qualified table name.
    pub(super) table: String,
    pub(super) text: StatementText,
    slots: Vec<tokio::sync::Mutex<Option<Arc<Conn>>>>,
    /// Calls running on each slot.
    busy: Vec<AtomicUsize>,
    closed: AtomicBool,
    schema_ready: tokio::sync::Mutex<bool>,
    opened: AtomicU64,
}

impl Pool {
    /// Check `cfg` and set up the slots; connects nothing.
    pub(super) fn new(cfg: PgConfig, runner: Runner) -> Result<Self> {
        cfg.validate()?;
        let client_cfg = cfg.client_config()?;
        let tls = match cfg.wants_tls()? {
            true => Some(Arc::new(Named::new(&cfg.tls.clone().unwrap_or_default())?)),
            false => None,
        };
        let table = cfg.qualified_table();
        let text = StatementText::new(&table);
        let slots = (0..cfg.pool_size)
            .map(|_| tokio::sync::Mutex::new(None))
            .collect();
        let busy = (0..cfg.pool_size).map(|_| AtomicUsize::new(0)).collect();
        Ok(Pool {
            cfg,
            client_cfg,
            tls,
            runner,
            table,
            text,
            slots,
            busy,
            closed: AtomicBool::new(false),
            schema_ready: tokio::sync::Mutex::new(false),
            opened: AtomicU64::new(0),
        })
    }

    /// Connections opened so far (reconnects add one each).
    pub(super) fn opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }

    pub(super) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    fn check_open(&self) -> Result<()> {
        if self.is_closed() {
            Err(PersistError::Closed)
        } else {
            Ok(())
        }
    }

    fn command_timeout(&self) -> Duration {
        Duration::from_millis(self.cfg.command_timeout_ms.max(1))
    }

    /// Close: later calls fail with ERR_STORE_CLOSED; connections close
    /// once the calls in flight on them are done.
    pub(super) async fn close(&self) {
        self.closed.store(true, Ordering::Release);
        for s in &self.slots {
            s.lock().await.take();
        }
    }

    /// Open one connection (within connect_timeout_ms) where the runner
    /// runs connections.
    pub(super) async fn open(&self) -> Result<Client> {
        let timeout = Duration::from_millis(self.cfg.connect_timeout_ms.max(1));
        let client =
            connect::open(&self.client_cfg, self.tls.clone(), &self.runner, timeout).await?;
        self.opened.fetch_add(1, Ordering::Relaxed);
        Ok(client)
    }

    /// Slots with no call on them.
    pub(super) fn idle_slots(&self) -> usize {
        self.busy
            .iter()
            .filter(|b| b.load(Ordering::Relaxed) == 0)
            .count()
    }

    /// The least busy slot (see [`Pool`]), counted busy until the guard drops.
    pub(super) fn take_slot(&self) -> Busy<'_> {
        let i = (0..self.busy.len())
            .min_by_key(|&i| self.busy[i].load(Ordering::Relaxed))
            .unwrap_or(0);
        self.busy[i].fetch_add(1, Ordering::Relaxed);
        Busy { pool: self, i }
    }

    /// Slot `i`'s connection, opened (with the schema checked and the
    /// statements prepared) if it has none or its connection closed.
    async fn conn(&self, i: usize) -> Result<Arc<Conn>> {
        self.check_open()?;
        let mut slot = self.slots[i].lock().await;
        if let Some(c) = slot.as_ref() {
            if !c.client.is_closed() {
                return Ok(c.clone());
            }
        }
        *slot = None;
        let client = self.open().await?;
        let ms = self.cfg.command_timeout_ms.max(1);
        let st = tokio::time::timeout(Duration::from_millis(ms), async {
            self.ensure_schema(&client).await?;
            Statements::prepare(&client, &self.text)
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
        Ok(c)
    }

    /// Forget `c` (timed out or broken): the slot opens a new connection.
    async fn discard(&self, c: &Arc<Conn>) {
        let mut slot = self.slots[c.slot].lock().await;
        if slot.as_ref().is_some_and(|s| Arc::ptr_eq(s, c)) {
            *slot = None;
        }
    }

    /// Create the schema, table, index and version row if the version row
    /// is missing (under an advisory lock, so concurrent first starts are
    /// safe), then check the version. Once per store.
    async fn ensure_schema(&self, client: &Client) -> Result<()> {
        let mut ready = self.schema_ready.lock().await;
        if *ready {
            return Ok(());
        }
        let read = format!("SELECT v FROM {} WHERE k = $1", self.table);
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
            let cfg = &self.cfg;
            let ddl = sql::create_schema(
                cfg.schema.as_deref(),
                &cfg.table,
                &self.table,
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
                self.table,
                v.map_or_else(|| "(unreadable)".to_string(), |v| v.to_string())
            )));
        }
        *ready = true;
        Ok(())
    }

    /// Run `work` on the connection of the slot `busy` holds, within the
    /// command timeout; on a timeout or a closed connection the connection
    /// is discarded.
    pub(super) async fn with_slot<T, F, Fut>(&self, busy: Busy<'_>, work: F) -> Result<T>
    where
        F: FnOnce(Arc<Conn>) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let c = self.conn(busy.i).await?;
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
                Err(PersistError::Timeout(self.cfg.command_timeout_ms))
            }
        }
    }
}

/// A call on slot `i` of `pool`, uncounted when dropped.
pub(super) struct Busy<'p> {
    pool: &'p Pool,
    i: usize,
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.pool.busy[self.i].fetch_sub(1, Ordering::Relaxed);
    }
}
