//! Native Redis `KeyValueStore` core on tokio: the store's options, a
//! cluster's slot map for the JS-thread transport (`cluster_map`), and the
//! tokio connections for `transport: 'tokio'`: one multiplexed connection
//! to one server, replaced when it breaks, or a Redis Cluster routed by
//! [`crate::redis::cluster`] (one connection per primary); every call
//! bounded by the configured timeouts. Batches go through the batch seam
//! ([`Batch`]: one pipeline; in a cluster one pipeline per primary node, all
//! in flight at once); keys, prefix clearing and leases are written once
//! over [`Exec`] (`keys`, `lease`), in a cluster with SCAN of every primary
//! and UNLINK split per slot.
//!
//! No napi types here: `cargo test` drives it against the Redis on
//! 127.0.0.1:6379 (the CI starts one).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{AsyncConnectionConfig, Client, RedisError, Value};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::error::{PersistError, Result};
use crate::redis::batch::{scan_server, unlink_server, Batch, Exec, Wait};
pub use crate::redis::batch::{Op, OpResult, Text, SCAN_COUNT};
use crate::redis::cluster::client::Cluster;
use crate::redis::cluster::slots::Node;
use crate::redis::config::RedisConfig;
use crate::redis::failure::{classify, outcome, Fail};
use crate::redis::keys;
use crate::redis::tokio_conn;
use crate::tls::TlsOptions;

/// The transport: one server, or a Redis Cluster ([`Cluster`]: our own
/// routing over one connection per primary). One per store: the size of
/// its variants does not matter.
#[allow(clippy::large_enum_variant)]
pub(in crate::redis) enum Transport {
    Single(Client),
    Cluster(Cluster),
}

struct Slot {
    conn: Option<MultiplexedConnection>,
    generation: u64,
}

pub(in crate::redis) struct Inner {
    pub(in crate::redis) transport: Transport,
    pub(in crate::redis) config: RedisConfig,
    slot: Mutex<Slot>,
    pub(in crate::redis) closed: AtomicBool,
    pub(in crate::redis) reconnects: AtomicU64,
}

/// A Redis-backed key-value store. Cheap to clone (shared inner state).
#[derive(Clone)]
pub struct RedisStore {
    pub(in crate::redis) inner: Arc<Inner>,
}

fn ms(d: u64) -> Duration {
    Duration::from_millis(d.max(1))
}

impl RedisStore {
    /// Parse the URL (or the cluster nodes) and set up the store. Does not
    /// connect: the first call (a ping included) does.
    pub fn new(mut config: RedisConfig) -> Result<Self> {
        let cluster = !config.cluster_nodes.is_empty();
        let urls: Vec<&str> = if cluster {
            config.cluster_nodes.iter().map(|u| u.trim()).collect()
        } else {
            vec![config.url.trim()]
        };
        let field = if cluster { "cluster.nodes" } else { "url" };
        let tls = urls.iter().any(|u| u.starts_with("rediss://"));
        if cluster && urls.iter().any(|u| u.starts_with("rediss://") != tls) {
            return Err(PersistError::InvalidArgument(
                "createRedisStore: cluster.nodes: all redis:// or all rediss://, not both".into(),
            ));
        }
        let bad_url = |e: RedisError| {
            PersistError::InvalidArgument(format!(
                "createRedisStore: {field}: invalid Redis URL: {e}"
            ))
        };
        if config.tls != TlsOptions::default() && !tls {
            return Err(PersistError::InvalidArgument(format!(
                "createRedisStore: tls options need a rediss:// {field}"
            )));
        }
        // TCP_NODELAY, as every Redis client sets it: pipelined writes must
        // not wait for the ACK of the previous one (Nagle).
        let nodelay = redis::io::tcp::TcpSettings::default().set_nodelay(true);
        let mut infos = Vec::with_capacity(urls.len());
        for u in &urls {
            let info = redis::IntoConnectionInfo::into_connection_info(*u).map_err(bad_url)?;
            if cluster
                && !matches!(info.addr(), redis::ConnectionAddr::Tcp(..))
                && !matches!(info.addr(), redis::ConnectionAddr::TcpTls { .. })
            {
                return Err(PersistError::InvalidArgument(format!(
                    "createRedisStore: cluster.nodes: {u}: a cluster node is a redis:// or rediss:// address"
                )));
            }
            // `rediss://…#insecure` is `tls: { rejectUnauthorized: false }`
            if let redis::ConnectionAddr::TcpTls { insecure: true, .. } = info.addr() {
                config.tls.reject_unauthorized = false;
            }
            infos.push(info.set_tcp_settings(nodelay.clone()));
        }
        if tls {
            // the TLS options are checked now, not at the first call
            config.tls.check("createRedisStore")?;
        }
        let transport = if cluster {
            let mut seeds = Vec::with_capacity(infos.len());
            for info in &infos {
                if let redis::ConnectionAddr::Tcp(host, port)
                | redis::ConnectionAddr::TcpTls { host, port, .. } = info.addr()
                {
                    seeds.push(Node::new(host.clone(), *port));
                }
            }
            // every node with the first seed's credentials and TLS
            let template = infos.remove(0);
            let make = move |node: &Node| {
                let addr = match template.addr() {
                    redis::ConnectionAddr::TcpTls { insecure, .. } => {
                        redis::ConnectionAddr::TcpTls {
                            host: node.host.clone(),
                            port: node.port,
                            insecure: *insecure,
                            tls_params: None,
                        }
                    }
                    _ => redis::ConnectionAddr::Tcp(node.host.clone(), node.port),
                };
                Client::open(template.clone().set_addr(addr))
                    .map_err(|e| PersistError::Unavailable(e.to_string()))
            };
            let wait = (config.wait_replicas > 0).then(|| Wait {
                replicas: config.wait_replicas,
                timeout_ms: (config.command_timeout_ms / 2).max(1),
            });
            Transport::Cluster(Cluster::new(
                seeds,
                Box::new(make),
                config.connect_timeout_ms,
                config.command_timeout_ms,
                wait,
                config.tls.clone(),
            ))
        } else {
            Transport::Single(Client::open(infos.remove(0)).map_err(bad_url)?)
        };
        Ok(RedisStore {
            inner: Arc::new(Inner {
                transport,
                config,
                slot: Mutex::new(Slot {
                    conn: None,
                    generation: 0,
                }),
                closed: AtomicBool::new(false),
                reconnects: AtomicU64::new(0),
            }),
        })
    }

    pub fn config(&self) -> &RedisConfig {
        &self.inner.config
    }

    /// Is this a Redis Cluster store?
    pub fn is_cluster(&self) -> bool {
        self.cluster().is_some()
    }

    pub(in crate::redis) fn cluster(&self) -> Option<&Cluster> {
        match &self.inner.transport {
            Transport::Cluster(c) => Some(c),
            Transport::Single(_) => None,
        }
    }

    /// How many connections were opened so far (1 after the first call; in
    /// a cluster, one per primary reached).
    pub fn connections_opened(&self) -> u64 {
        // a cluster's JS-thread sockets count in `reconnects`
        match self.cluster() {
            Some(c) => c.connections_opened() + self.inner.reconnects.load(Ordering::Relaxed),
            None => self.inner.reconnects.load(Ordering::Relaxed),
        }
    }

    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::SeqCst)
    }

    /// Close: drop the connection; every later call fails with `Closed`.
    pub async fn close(&self) {
        self.inner.closed.store(true, Ordering::SeqCst);
        if let Some(c) = self.cluster() {
            c.close();
        }
        let mut slot = self.inner.slot.lock().await;
        slot.conn = None;
        slot.generation += 1;
    }

    async fn open(&self) -> redis::RedisResult<MultiplexedConnection> {
        let cto = ms(self.inner.config.connect_timeout_ms);
        match &self.inner.transport {
            Transport::Single(client) => {
                let cfg = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(cto))
                    .set_response_timeout(None);
                tokio_conn::open(client, &self.inner.config.tls, &cfg).await
            }
            Transport::Cluster(_) => Err(RedisError::from((
                redis::ErrorKind::Client,
                "a cluster store has one connection per primary",
            ))),
        }
    }

    /// The current connection, or a new one, within `connect_timeout_ms`
    /// (waiting for another caller's connect attempt counts too).
    async fn connection(&self) -> Result<(MultiplexedConnection, u64)> {
        if self.is_closed() {
            return Err(PersistError::Closed);
        }
        let cto = self.inner.config.connect_timeout_ms;
        let attempt = async {
            let mut slot = self.inner.slot.lock().await;
            if let Some(c) = &slot.conn {
                return Ok((c.clone(), slot.generation));
            }
            if self.is_closed() {
                return Err(PersistError::Closed);
            }
            match self.open().await {
                Ok(c) => {
                    slot.generation += 1;
                    slot.conn = Some(c.clone());
                    self.inner.reconnects.fetch_add(1, Ordering::Relaxed);
                    Ok((c, slot.generation))
                }
                Err(e) => {
                    if e.is_timeout() {
                        Err(PersistError::Timeout(cto))
                    } else if matches!(
                        e.kind(),
                        redis::ErrorKind::Server(_) | redis::ErrorKind::AuthenticationFailed
                    ) {
                        // e.g. wrong password: the server answered
                        Err(PersistError::Store(e.to_string()))
                    } else {
                        Err(PersistError::Unavailable(e.to_string()))
                    }
                }
            }
        };
        match tokio::time::timeout(ms(cto), attempt).await {
            Ok(r) => r,
            Err(_) => Err(PersistError::Timeout(cto)),
        }
    }

    /// Can the connections be sockets of the JS thread's own
    /// (`redis::direct`)? One server over TCP, TLS or a unix socket, or a
    /// cluster's primaries (their client made as the first seed's), RESP2.
    pub fn direct_capable(&self) -> bool {
        let client = match &self.inner.transport {
            Transport::Single(c) => Some(c.clone()),
            Transport::Cluster(c) => c.seed_client().ok(),
        };
        match client {
            Some(c) => {
                let info = c.get_connection_info();
                let addr_ok = matches!(
                    info.addr(),
                    redis::ConnectionAddr::Tcp(..)
                        | redis::ConnectionAddr::TcpTls { .. }
                        | redis::ConnectionAddr::Unix(..)
                );
                addr_ok && info.redis_settings().protocol() == redis::ProtocolVersion::RESP2
            }
            None => false,
        }
    }

    /// The cluster's slot map, read again now (`CLUSTER SLOTS`, on tokio).
    pub async fn cluster_map(&self) -> Result<crate::redis::cluster::slots::SlotMap> {
        match self.cluster() {
            Some(c) => c.fresh_map().await,
            None => Err(PersistError::Internal("cluster_map: not a cluster".into())),
        }
    }

    /// Forget the connection of `generation` (if still current) so that the
    /// next call opens a new one.
    async fn invalidate(&self, generation: u64) {
        let mut slot = self.inner.slot.lock().await;
        if slot.generation == generation {
            slot.conn = None;
        }
    }

    /// Run `f` on the shared connection within the command timeout; a
    /// broken or wedged connection (error or no answer in time: server
    /// paused, half-open socket) is replaced.
    async fn call<T, F, Fut>(&self, f: F) -> Result<T>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let (conn, generation) = self.connection().await?;
        let cmd_to = self.inner.config.command_timeout_ms;
        match outcome(tokio::time::timeout(ms(cmd_to), f(conn)).await, cmd_to) {
            Ok(v) => Ok(v),
            Err(fail) => Err(self.failed(fail, generation).await),
        }
    }

    /// The error of a failed call, after replacing its connection (of
    /// `generation`) if the failure says so.
    async fn failed(&self, fail: Fail, generation: u64) -> PersistError {
        if fail.replace {
            self.invalidate(generation).await;
        }
        fail.err
    }

    /// Run `pipe` on the shared connection within the timeouts (one
    /// server; a cluster store's commands go by their keys' slots, through
    /// [`RedisStore::exec`]).
    pub async fn run(&self, pipe: &redis::Pipeline) -> Result<Vec<Value>> {
        if self.is_cluster() {
            return Err(PersistError::Internal(
                "run on a cluster store: commands go by slot (exec)".into(),
            ));
        }
        self.call(|mut c| async move { pipe.query_async::<Vec<Value>>(&mut c).await })
            .await
    }

    /// The `WAIT` after durable writes, when the store waits for replicas:
    /// for half the command timeout.
    pub fn wait(&self) -> Option<Wait> {
        let n = self.inner.config.wait_replicas;
        (n > 0).then(|| Wait {
            replicas: n,
            timeout_ms: self.wait_timeout_ms(),
        })
    }

    fn wait_timeout_ms(&self) -> u64 {
        (self.inner.config.command_timeout_ms / 2).max(1)
    }

    /// Send `ops` as one batch (one round trip; in a cluster one pipeline
    /// per primary node, all in flight together, see
    /// [`crate::redis::cluster::dispatch`]) and return one result per op, in
    /// order. On one server a connection failure or timeout fails the whole
    /// batch; in a cluster it fails the ops of that shard only.
    pub async fn exec(&self, ops: Vec<Op>) -> Result<Vec<OpResult>> {
        if ops.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(c) = self.cluster() {
            return c.exec(ops).await;
        }
        let (mut c, generation) = self.connection().await?;
        let cmd_to = self.inner.config.command_timeout_ms;
        let deadline = Instant::now() + ms(cmd_to);
        let batch = Batch::new(ops, self.wait());
        let mut p = redis::Pipeline::with_capacity(batch.replies());
        p.ignore_errors();
        for cmd in batch.commands() {
            p.add_command(cmd);
        }
        let fail =
            match tokio::time::timeout_at(deadline, c.req_packed_commands(&p, 0, p.len())).await {
                Ok(Ok(values)) => return Ok(batch.finish(values)),
                Ok(Err(e)) => classify(&e, cmd_to),
                Err(_) => Fail::timeout(cmd_to),
            };
        // a connection failure or timeout fails the whole batch
        Err(self.failed(fail, generation).await)
    }

    /// Every key matching the Redis glob `pattern` (see [`keys::keys`]).
    pub async fn keys(&self, pattern: &[u8]) -> Result<Vec<Vec<u8>>> {
        keys::keys(self, pattern).await
    }

    /// `clearAsync` of the cache with `prefix` (see [`keys::clear_cache_prefix`]).
    pub async fn clear_cache_prefix(&self, prefix: &[u8]) -> Result<u64> {
        keys::clear_cache_prefix(self, prefix).await
    }
}

/// Batches on the store's connection (tokio); in a cluster, SCAN of every
/// primary and UNLINK split per slot ([`Cluster`]).
impl Exec for RedisStore {
    fn exec(&self, ops: Vec<Op>) -> impl std::future::Future<Output = Result<Vec<OpResult>>> {
        RedisStore::exec(self, ops)
    }

    async fn scan(&self, pattern: &[u8]) -> Result<Vec<Vec<u8>>> {
        match self.cluster() {
            Some(c) => c.scan(pattern).await,
            None => scan_server(self, pattern.to_vec()).await,
        }
    }

    async fn unlink(&self, keys: Vec<Vec<u8>>) -> Result<u64> {
        match self.cluster() {
            Some(c) => c.unlink(keys).await,
            None => unlink_server(self, keys).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::glob;
    use crate::ownership::MARKER_VALUE;

    #[tokio::test]
    async fn scan_page_walks_a_pass_to_cursor_zero() -> Result<()> {
        let store = RedisStore::new(RedisConfig::default())?;
        let pre = unique("scanpage");
        let written: Vec<Vec<u8>> = (0..50).map(|i| format!("{pre}{i}").into_bytes()).collect();
        let ops = written
            .iter()
            .map(|k| Op::Set(k.clone(), b"v".to_vec(), None))
            .collect();
        store.exec(ops).await?;
        let pattern = format!("{}*", glob::escape(&pre)).into_bytes();
        let (mut cursor, mut seen, mut pages) = (0u64, HashSet::new(), 0);
        loop {
            let (next, page) = keys::scan_page(&store, cursor, &pattern).await?;
            seen.extend(page);
            pages += 1;
            if next == 0 {
                break;
            }
            cursor = next;
        }
        assert!(pages >= 1);
        assert_eq!(seen, written.iter().cloned().collect::<HashSet<_>>());
        assert_eq!(Exec::unlink(&store, written).await?, 50);
        Ok(())
    }

    #[tokio::test]
    async fn clear_keeps_markers_longer_prefixes_and_states() -> Result<()> {
        let store = RedisStore::new(RedisConfig::default())?;
        let pre = unique("own");
        let k = |s: &str| format!("{pre}{s}").into_bytes();
        let v = |s: &str| s.as_bytes().to_vec();
        let marker = MARKER_VALUE.as_bytes().to_vec();
        store
            .exec(vec![
                Op::Set(k("__awaitly:owner:cache"), marker.clone(), None),
                Op::Set(k("a:__awaitly:owner:cache"), marker.clone(), None),
                Op::Set(k("s:__awaitly:owner:state"), marker.clone(), None),
                // shaped like a marker, but a value: an ordinary key
                Op::Set(k("fake:__awaitly:owner:state"), v("{}"), None),
                Op::Set(k("fake:x"), v("1"), None),
                Op::Set(k("x"), v("1"), None),
                Op::Set(k("a:x"), v("1"), None),
                Op::Set(k("s:run"), v("1"), None),
            ])
            .await?;
        assert_eq!(store.clear_cache_prefix(pre.as_bytes()).await?, 3);
        let all = format!("{}*", glob::escape(&pre)).into_bytes();
        let mut left = store.keys(&all).await?;
        left.sort();
        assert_eq!(
            left,
            vec![
                k("__awaitly:owner:cache"),
                k("a:__awaitly:owner:cache"),
                k("a:x"),
                k("s:__awaitly:owner:state"),
                k("s:run"),
            ]
        );
        let mut p = redis::pipe();
        p.cmd("UNLINK").arg(&left);
        store.run(&p).await?;
        Ok(())
    }

    #[test]
    fn bad_url_is_invalid_argument() {
        let e = RedisStore::new(RedisConfig {
            url: "http://nope".into(),
            ..Default::default()
        })
        .err()
        .map(|e| e.code());
        assert_eq!(e, Some("ERR_INVALID_ARG"));
    }

    fn unique(tag: &str) -> String {
        format!(
            "rs-test:{tag}:{}:{}:",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis())
        )
    }

    #[tokio::test]
    async fn roundtrip_scan_clear_against_local_redis() -> Result<()> {
        let store = RedisStore::new(RedisConfig::default())?;
        let pre = unique("rt");
        let k = |s: &str| format!("{pre}{s}").into_bytes();
        let res = store
            .exec(vec![
                Op::Set(k("a"), b"1".to_vec(), None),
                Op::Set(k("b*"), b"2".to_vec(), Some(60)),
                Op::Get(k("a")),
                Op::Get(k("missing")),
                Op::Exists(k("b*")),
                Op::Delete(k("missing")),
            ])
            .await?;
        assert_eq!(
            res,
            vec![
                OpResult::Done,
                OpResult::Done,
                OpResult::Value(Some(Text::of("1"))),
                OpResult::Value(None),
                OpResult::Bool(true),
                OpResult::Bool(false),
            ]
        );
        let all = format!("{}*", glob::escape(&pre)).into_bytes();
        let mut keys = store.keys(&all).await?;
        keys.sort();
        assert_eq!(keys, vec![k("a"), k("b*")]);
        let only_star = store
            .keys(format!("{}b\\*", glob::escape(&pre)).as_bytes())
            .await?;
        assert_eq!(only_star, vec![k("b*")]);
        assert_eq!(store.clear_cache_prefix(pre.as_bytes()).await?, 2);
        assert!(store.keys(&all).await?.is_empty());
        assert_eq!(store.connections_opened(), 1);
        store.close().await;
        assert_eq!(
            store
                .exec(vec![Op::Get(k("a"))])
                .await
                .err()
                .map(|e| e.code()),
            Some("ERR_STORE_CLOSED")
        );
        Ok(())
    }

    #[tokio::test]
    async fn refused_connection_is_unavailable_quickly() -> Result<()> {
        // port 1 on loopback: nothing listens there
        let store = RedisStore::new(RedisConfig {
            url: "redis://127.0.0.1:1".into(),
            connect_timeout_ms: 300,
            command_timeout_ms: 300,
            ..Default::default()
        })?;
        let t = std::time::Instant::now();
        let e = store.exec(vec![Op::Get(b"x".to_vec())]).await.err();
        assert!(t.elapsed() < Duration::from_millis(1000));
        let code = e.map(|e| e.code());
        assert!(
            code == Some("ERR_STORE_UNAVAILABLE") || code == Some("ERR_STORE_TIMEOUT"),
            "{code:?}"
        );
        Ok(())
    }

    #[tokio::test]
    async fn server_error_fails_only_that_op() -> Result<()> {
        let store = RedisStore::new(RedisConfig::default())?;
        let pre = unique("werr");
        let hash = format!("{pre}h");
        let mut p = redis::pipe();
        p.cmd("HSET").arg(&hash).arg("f").arg("v");
        store.run(&p).await?;
        let res = store
            .exec(vec![
                Op::Get(hash.clone().into_bytes()),
                Op::Set(format!("{pre}ok").into_bytes(), b"v".to_vec(), None),
            ])
            .await?;
        assert!(
            matches!(&res[0], OpResult::Failed(PersistError::Store(m)) if m.contains("WRONGTYPE"))
        );
        assert_eq!(res[1], OpResult::Done);
        store.clear_cache_prefix(pre.as_bytes()).await?;
        Ok(())
    }
}
