//! Native Redis `KeyValueStore` core on tokio: the store's options, the
//! sockets of the JS-thread connections opened here (`connect_direct`, a
//! cluster node's `connect_direct_node`: connect, DNS, TLS handshake,
//! AUTH/SELECT; a cluster's slot map, `cluster_map`), and the tokio
//! connections for `transport: 'tokio'`: one multiplexed connection to one
//! server, replaced when it breaks, or a Redis Cluster routed by
//! [`crate::redis::cluster`] (one connection per primary); every call
//! bounded by the configured timeouts. Batches go through the batch seam
//! ([`Batch`]: one pipeline; in a cluster one pipeline per primary node, all
//! in flight at once); keys, prefix clearing and leases are written once
//! over [`Exec`] (`keys`, `lease`), in a cluster with SCAN of every primary
//! and UNLINK split per slot.
//!
//! Also the prefix-ownership rules ([`Owners`]) that keep a cache's
//! `clearAsync()` away from state documents and from the keys of another
//! cache with a longer prefix sharing the same store. They are pure and used
//! for every store (the JS glue calls them through the binding for stores
//! written in JavaScript).
//!
//! No napi types here: `cargo test` drives it against the Redis on
//! 127.0.0.1:6379 (the CI starts one).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{AsyncConnectionConfig, Client, RedisError, ServerErrorKind, Value};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::error::{PersistError, Result};
use crate::redis::batch::{scan_server, unlink_server, Batch, Exec, Wait};
pub use crate::redis::batch::{Op, OpResult, Text, SCAN_COUNT};
use crate::redis::cluster::client::Cluster;
use crate::redis::cluster::slots::Node;
use crate::redis::keys;

/// Reserved key space of the owner registry: `__awaitly:owner:<kind>:<prefix>`.
pub const REGISTRY_PREFIX: &str = "__awaitly:owner:";
/// The JS module's default state prefix: always protected from caches.
pub const DEFAULT_STATE_PREFIX: &str = "workflow:state:";

/// Options of [`RedisStore::new`].
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// `redis://`, `rediss://` (only if built with TLS), `unix:` / `redis+unix:`.
    /// Unused when `cluster_nodes` is set.
    pub url: String,
    /// Redis Cluster seed nodes (`redis://` / `rediss://` URLs); empty: one
    /// server at `url`.
    pub cluster_nodes: Vec<String>,
    /// `WAIT <n>` after durable writes ([`Op::SetDurable`]); 0: off.
    pub wait_replicas: u32,
    /// Upper bound for obtaining a connection (connect + handshake), ms.
    pub connect_timeout_ms: u64,
    /// Upper bound for one command / pipeline once connected, ms.
    pub command_timeout_ms: u64,
    /// TLS material (PEM) for `rediss://`: a CA to trust instead of the
    /// system roots, and a client certificate + key for mutual TLS.
    pub tls_ca: Option<String>,
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: "redis://127.0.0.1:6379".into(),
            cluster_nodes: Vec::new(),
            wait_replicas: 0,
            connect_timeout_ms: 5000,
            command_timeout_ms: 5000,
            tls_ca: None,
            tls_cert: None,
            tls_key: None,
        }
    }
}

/// The transport: one server, or a Redis Cluster ([`Cluster`]: our own
/// routing over one connection per primary). One per store: the size of
/// its variants does not matter.
#[allow(clippy::large_enum_variant)]
enum Transport {
    Single(Client),
    Cluster(Cluster),
}

struct Slot {
    conn: Option<MultiplexedConnection>,
    generation: u64,
}

struct Inner {
    transport: Transport,
    config: RedisConfig,
    slot: Mutex<Slot>,
    closed: AtomicBool,
    reconnects: AtomicU64,
}

/// A socket for the JS-thread connection, connected, its TLS handshake
/// (if any) and `AUTH`/`SELECT` done ([`RedisStore::connect_direct`]).
#[cfg(unix)]
pub struct DirectSocket {
    pub fd: std::os::fd::OwnedFd,
    /// The TLS session of a `rediss://` store.
    #[cfg(feature = "redis-tls")]
    pub tls: Option<Box<crate::redis::tls::Session>>,
}

#[cfg(unix)]
impl DirectSocket {
    fn plain(fd: std::os::fd::OwnedFd) -> DirectSocket {
        DirectSocket {
            fd,
            #[cfg(feature = "redis-tls")]
            tls: None,
        }
    }
}

/// A Redis-backed key-value store. Cheap to clone (shared inner state).
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

fn ms(d: u64) -> Duration {
    Duration::from_millis(d.max(1))
}

/// A failed call: our error, and whether the connection must be replaced.
pub(crate) struct Fail {
    pub(crate) err: PersistError,
    pub(crate) replace: bool,
}

impl Fail {
    /// No answer within `timeout_ms`: the connection is wedged or the
    /// server paused, so it is replaced.
    fn timeout(timeout_ms: u64) -> Fail {
        Fail {
            err: PersistError::Timeout(timeout_ms),
            replace: true,
        }
    }
}

/// A call's outcome within its deadline: its value, or why it failed.
fn outcome<T>(
    r: std::result::Result<redis::RedisResult<T>, tokio::time::error::Elapsed>,
    timeout_ms: u64,
) -> std::result::Result<T, Fail> {
    match r {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(classify(&e, timeout_ms)),
        Err(_) => Err(Fail::timeout(timeout_ms)),
    }
}

/// Map a client error to ours; `replace` when the connection must be replaced.
pub(crate) fn classify(e: &RedisError, timeout_ms: u64) -> Fail {
    let (err, replace) = if e.is_timeout() {
        (PersistError::Timeout(timeout_ms), true)
    } else if e.is_io_error()
        || e.is_connection_refusal()
        || e.is_connection_dropped()
        || e.is_unrecoverable_error()
    {
        (PersistError::Unavailable(e.to_string()), true)
    } else if matches!(
        e.kind(),
        redis::ErrorKind::Server(
            ServerErrorKind::ClusterDown | ServerErrorKind::MasterDown | ServerErrorKind::TryAgain
        )
    ) {
        // a shard without a reachable primary (failover under way)
        (PersistError::Unavailable(e.to_string()), false)
    } else {
        (PersistError::Store(e.to_string()), false)
    };
    Fail { err, replace }
}

/// Check the PEM material of `tls` now, so that a bad CA, certificate or key
/// is a TypeError naming the option when the store is created (redis-rs
/// skips PEM text without a certificate block: `tls: { ca: 'garbage' }` gave
/// an empty trust store and calls that failed only at connect time).
/// - `ca`: one or more certificates, each a valid X.509 trust anchor;
/// - `cert`: one or more certificates, the first (the client's) valid X.509;
/// - `key`: one private key (PKCS#1, PKCS#8 or SEC1) that rustls can sign
///   with, and that belongs to `cert`.
#[cfg(feature = "redis-tls")]
fn check_tls_material(config: &RedisConfig) -> Result<()> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    fn bad(field: &str, why: impl std::fmt::Display) -> PersistError {
        PersistError::InvalidArgument(format!("createRedisStore: tls.{field}: {why}"))
    }
    fn certs(field: &str, pem: &str) -> Result<Vec<CertificateDer<'static>>> {
        let list = CertificateDer::pem_slice_iter(pem.as_bytes())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| bad(field, format!("not valid PEM: {e}")))?;
        if list.is_empty() {
            return Err(bad(
                field,
                "no certificate found (expected PEM text with a -----BEGIN CERTIFICATE----- block)",
            ));
        }
        Ok(list)
    }

    if let Some(ca) = &config.tls_ca {
        let mut roots = rustls::RootCertStore::empty();
        for cert in certs("ca", ca)? {
            roots
                .add(cert)
                .map_err(|e| bad("ca", format!("not a usable CA certificate: {e}")))?;
        }
    }
    if let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) {
        let chain = certs("cert", cert)?;
        let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).map_err(|e| {
            bad(
                "key",
                format!("no private key found (expected PEM text with a -----BEGIN ... PRIVATE KEY----- block): {e}"),
            )
        })?;
        let signer = rustls::crypto::ring::sign::any_supported_type(&key)
            .map_err(|e| bad("key", format!("not a usable private key: {e}")))?;
        match rustls::sign::CertifiedKey::new(chain, signer).keys_match() {
            Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
            Err(rustls::Error::InconsistentKeys(_)) => {
                return Err(bad("key", "does not belong to the certificate in tls.cert"))
            }
            Err(e) => return Err(bad("cert", format!("not a usable certificate: {e}"))),
        }
    }
    Ok(())
}

impl RedisStore {
    /// Parse the URL (or the cluster nodes) and set up the store. Does not
    /// connect: the first call (or [`RedisStore::ping`]) does.
    pub fn new(config: RedisConfig) -> Result<Self> {
        let cluster = !config.cluster_nodes.is_empty();
        let urls: Vec<&str> = if cluster {
            config.cluster_nodes.iter().map(|u| u.trim()).collect()
        } else {
            vec![config.url.trim()]
        };
        let field = if cluster { "cluster.nodes" } else { "url" };
        let tls = urls.iter().any(|u| u.starts_with("rediss://"));
        if tls && !cfg!(feature = "redis-tls") {
            return Err(PersistError::InvalidArgument(format!(
                "createRedisStore: {field}: rediss:// (TLS) is not supported by this build"
            )));
        }
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
        let has_tls_material =
            config.tls_ca.is_some() || config.tls_cert.is_some() || config.tls_key.is_some();
        if has_tls_material && !tls {
            return Err(PersistError::InvalidArgument(format!(
                "createRedisStore: tls options need a rediss:// {field}"
            )));
        }
        if config.tls_cert.is_some() != config.tls_key.is_some() {
            return Err(PersistError::InvalidArgument(
                "createRedisStore: tls.cert and tls.key go together".into(),
            ));
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
            infos.push(info.set_tcp_settings(nodelay.clone()));
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
            if tls {
                // the TLS material is checked now, not at the first call
                Self::tls_client(template.clone(), &config)?;
            }
            let tls_config = config.clone();
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
                let info = template.clone().set_addr(addr);
                if tls {
                    Self::tls_client(info, &tls_config)
                } else {
                    Client::open(info).map_err(|e| PersistError::Unavailable(e.to_string()))
                }
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
            ))
        } else {
            let info = infos.remove(0);
            Transport::Single(if tls {
                Self::tls_client(info, &config)?
            } else {
                Client::open(info).map_err(bad_url)?
            })
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

    #[cfg(feature = "redis-tls")]
    fn tls_certs(config: &RedisConfig) -> Result<redis::TlsCertificates> {
        check_tls_material(config)?;
        Ok(redis::TlsCertificates {
            client_tls: match (&config.tls_cert, &config.tls_key) {
                (Some(c), Some(k)) => Some(redis::ClientTlsConfig {
                    client_cert: c.as_bytes().to_vec(),
                    client_key: k.as_bytes().to_vec(),
                }),
                _ => None,
            },
            root_cert: config.tls_ca.as_ref().map(|c| c.as_bytes().to_vec()),
        })
    }

    #[cfg(feature = "redis-tls")]
    fn tls_client(url: redis::ConnectionInfo, config: &RedisConfig) -> Result<Client> {
        Client::build_with_tls(url, Self::tls_certs(config)?)
            .map_err(|e| PersistError::InvalidArgument(format!("createRedisStore: tls: {e}")))
    }

    #[cfg(not(feature = "redis-tls"))]
    fn tls_client(_url: redis::ConnectionInfo, _config: &RedisConfig) -> Result<Client> {
        Err(PersistError::InvalidArgument(
            "createRedisStore: rediss:// (TLS) is not supported by this build".into(),
        ))
    }

    pub fn config(&self) -> &RedisConfig {
        &self.inner.config
    }

    /// Is this a Redis Cluster store?
    pub fn is_cluster(&self) -> bool {
        self.cluster().is_some()
    }

    fn cluster(&self) -> Option<&Cluster> {
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
                client
                    .get_multiplexed_async_connection_with_config(&cfg)
                    .await
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
                let addr_ok = match info.addr() {
                    redis::ConnectionAddr::Tcp(..) | redis::ConnectionAddr::Unix(..) => true,
                    redis::ConnectionAddr::TcpTls { insecure, .. } => {
                        cfg!(feature = "redis-tls") && !insecure
                    }
                    _ => false,
                };
                addr_ok && info.redis_settings().protocol() == redis::ProtocolVersion::RESP2
            }
            None => false,
        }
    }

    /// Open a socket to the cluster primary `node` as
    /// [`RedisStore::connect_direct`] does for one server.
    #[cfg(unix)]
    pub async fn connect_direct_node(&self, node: &Node) -> Result<DirectSocket> {
        let Some(c) = self.cluster() else {
            return Err(PersistError::Internal(
                "connect_direct_node: not a cluster".into(),
            ));
        };
        let client = c.client_of(node)?;
        self.connect_socket(client.get_connection_info()).await
    }

    /// The cluster's slot map, read again now (`CLUSTER SLOTS`, on tokio).
    pub async fn cluster_map(&self) -> Result<crate::redis::cluster::slots::SlotMap> {
        match self.cluster() {
            Some(c) => c.fresh_map().await,
            None => Err(PersistError::Internal("cluster_map: not a cluster".into())),
        }
    }

    /// Open a socket for the data connection of [`RedisStore::direct_capable`]
    /// stores, within `connect_timeout_ms`: connected, `AUTH` and `SELECT`
    /// done as the URL says, non-blocking. Counts as a connection opened.
    #[cfg(unix)]
    pub async fn connect_direct(&self) -> Result<DirectSocket> {
        let Transport::Single(client) = &self.inner.transport else {
            return Err(PersistError::Internal("connect_direct on a cluster".into()));
        };
        self.connect_socket(client.get_connection_info()).await
    }

    #[cfg(unix)]
    async fn connect_socket(&self, info: &redis::ConnectionInfo) -> Result<DirectSocket> {
        use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
        use tokio_util::codec::Decoder;
        if self.is_closed() {
            return Err(PersistError::Closed);
        }
        let settings = info.redis_settings();
        let mut hello = Vec::new();
        let mut replies = 0;
        if let Some(pw) = settings.password() {
            let mut c = redis::cmd("AUTH");
            if let Some(user) = settings.username() {
                c.arg(user);
            }
            c.arg(pw).write_packed_command(&mut hello);
            replies += 1;
        }
        if settings.db() != 0 {
            redis::cmd("SELECT")
                .arg(settings.db())
                .write_packed_command(&mut hello);
            replies += 1;
        }
        async fn handshake<S: AsyncRead + AsyncWrite + Unpin>(
            s: &mut S,
            hello: &[u8],
            replies: usize,
        ) -> Result<()> {
            let io = |e: std::io::Error| PersistError::Unavailable(e.to_string());
            if replies == 0 {
                return Ok(());
            }
            s.write_all(hello).await.map_err(io)?;
            let mut codec = redis::ValueCodec::default();
            let mut buf = bytes::BytesMut::with_capacity(256);
            let mut got = 0;
            while got < replies {
                match codec.decode(&mut buf) {
                    Ok(Some(Value::ServerError(e))) => {
                        // e.g. a wrong password: the server answered
                        return Err(PersistError::Store(format!(
                            "{} {}",
                            e.code(),
                            e.details().unwrap_or("")
                        )));
                    }
                    Ok(Some(_)) => got += 1,
                    Ok(None) => {
                        if s.read_buf(&mut buf).await.map_err(io)? == 0 {
                            return Err(PersistError::Unavailable(
                                "the server closed the connection during the handshake".into(),
                            ));
                        }
                    }
                    Err(e) => return Err(PersistError::Store(e.to_string())),
                }
            }
            Ok(())
        }
        let cto = self.inner.config.connect_timeout_ms;
        let refused = |e: std::io::Error| PersistError::Unavailable(e.to_string());
        let attempt = async {
            let socket = match info.addr() {
                redis::ConnectionAddr::Tcp(host, port) => {
                    let mut s = tokio::net::TcpStream::connect((host.as_str(), *port))
                        .await
                        .map_err(refused)?;
                    s.set_nodelay(true).map_err(refused)?;
                    handshake(&mut s, &hello, replies).await?;
                    DirectSocket::plain(s.into_std().map_err(refused)?.into())
                }
                #[cfg(feature = "redis-tls")]
                redis::ConnectionAddr::TcpTls { host, port, .. } => {
                    let s = tokio::net::TcpStream::connect((host.as_str(), *port))
                        .await
                        .map_err(refused)?;
                    s.set_nodelay(true).map_err(refused)?;
                    let mut s = crate::redis::tls::handshake(s, host, &self.inner.config).await?;
                    handshake(&mut s, &hello, replies).await?;
                    let (tcp, session) = s.into_inner();
                    DirectSocket {
                        fd: tcp.into_std().map_err(refused)?.into(),
                        tls: Some(Box::new(session)),
                    }
                }
                redis::ConnectionAddr::Unix(path) => {
                    let mut s = tokio::net::UnixStream::connect(path)
                        .await
                        .map_err(refused)?;
                    handshake(&mut s, &hello, replies).await?;
                    DirectSocket::plain(s.into_std().map_err(refused)?.into())
                }
                _ => {
                    return Err(PersistError::Internal(
                        "connect_direct: not a TCP, TLS or unix address".into(),
                    ))
                }
            };
            Ok(socket)
        };
        let socket = match tokio::time::timeout(ms(cto), attempt).await {
            Ok(r) => r?,
            Err(_) => return Err(PersistError::Timeout(cto)),
        };
        self.inner.reconnects.fetch_add(1, Ordering::Relaxed);
        Ok(socket)
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

    /// PING: connects if needed.
    pub async fn ping(&self) -> Result<()> {
        if let Some(c) = self.cluster() {
            return c.ping().await;
        }
        let mut p = redis::pipe();
        p.cmd("PING");
        self.run(&p).await.map(|_| ())
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

/// Who owns which keys of a shared store. Each cache and state persistence
/// writes a marker key *inside its own prefix* before its first write:
/// `<prefix>__awaitly:owner:cache` or `<prefix>__awaitly:owner:state`, value
/// [`MARKER_VALUE`] (not JSON, so no cache entry or state document is ever
/// taken for a marker). A longer prefix's marker lies inside every shorter
/// prefix's range, so a clearing cache finds, in the one SCAN of its own
/// prefix, every owner that can hold keys there; a user whose ACL allows only
/// `~<prefix>*` can use it. `workflow:state:` is always a state prefix.
/// A key belongs to the *longest* known prefix it starts with; a cache
/// deletes a key only if that owner is the cache's own prefix and that prefix
/// is not (also) a state prefix. Markers themselves are never deleted.
///
/// Registry keys of older builds (`__awaitly:owner:<kind>:<prefix>`, outside
/// the prefix) are still honoured when found, never written.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Owners {
    /// (prefix, is_state), prefixes as bytes (WTF-8)
    entries: Vec<(Vec<u8>, bool)>,
    /// verified marker keys (never deleted)
    markers: HashSet<Vec<u8>>,
}

/// Kinds of owners.
pub const KIND_CACHE: &str = "cache";
pub const KIND_STATE: &str = "state";
/// Marker key suffixes (after the owner's prefix).
pub const MARKER_CACHE: &str = "__awaitly:owner:cache";
pub const MARKER_STATE: &str = "__awaitly:owner:state";
/// The value of every marker key.
pub const MARKER_VALUE: &str = "awaitly-owner/1";

impl Owners {
    /// The marker key of a prefix of the given kind.
    pub fn marker_key(kind: &str, prefix: &[u8]) -> Vec<u8> {
        let mut k = prefix.to_vec();
        k.extend_from_slice(
            if kind == KIND_STATE {
                MARKER_STATE
            } else {
                MARKER_CACHE
            }
            .as_bytes(),
        );
        k
    }

    /// Does `key` have the shape of a marker key (it still has to hold
    /// [`MARKER_VALUE`] to be one)?
    pub fn looks_like_marker(key: &[u8]) -> bool {
        key.ends_with(MARKER_CACHE.as_bytes()) || key.ends_with(MARKER_STATE.as_bytes())
    }

    /// Build from verified marker keys and legacy registry keys (others are
    /// ignored); adds the default state prefix.
    pub fn from_keys<'a>(keys: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let mut o = Owners {
            entries: vec![(DEFAULT_STATE_PREFIX.as_bytes().to_vec(), true)],
            markers: HashSet::new(),
        };
        for k in keys {
            if let Some(rest) = k.strip_prefix(REGISTRY_PREFIX.as_bytes()) {
                if let Some(p) = rest.strip_prefix(b"state:") {
                    o.entries.push((p.to_vec(), true));
                } else if let Some(p) = rest.strip_prefix(b"cache:") {
                    o.entries.push((p.to_vec(), false));
                }
            } else if let Some(p) = k.strip_suffix(MARKER_STATE.as_bytes()) {
                o.entries.push((p.to_vec(), true));
                o.markers.insert(k.to_vec());
            } else if let Some(p) = k.strip_suffix(MARKER_CACHE.as_bytes()) {
                o.entries.push((p.to_vec(), false));
                o.markers.insert(k.to_vec());
            }
        }
        o
    }

    /// May the cache with prefix `cache_prefix` delete `key` in `clearAsync`?
    pub fn cache_may_delete(&self, cache_prefix: &[u8], key: &[u8]) -> bool {
        if key.starts_with(REGISTRY_PREFIX.as_bytes())
            || !key.starts_with(cache_prefix)
            || self.markers.contains(key)
        {
            return false;
        }
        // Longest known prefix of `key` (the cache's own counts too).
        let mut best_len = cache_prefix.len();
        let mut best_is_state = false;
        for (p, is_state) in &self.entries {
            if !key.starts_with(p) {
                continue;
            }
            if p.len() > best_len {
                best_len = p.len();
                best_is_state = *is_state;
            } else if p.len() == best_len && *is_state {
                best_is_state = true;
            }
        }
        best_len == cache_prefix.len() && !best_is_state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::glob;

    #[test]
    fn ownership_longest_prefix_wins_and_state_is_protected() {
        let o = Owners::from_keys(
            [
                "workflow:__awaitly:owner:cache",
                "workflow:a:__awaitly:owner:cache",
                "app:state:__awaitly:owner:state",
                "__awaitly:owner:state:old:state:",
                "unrelated",
            ]
            .map(str::as_bytes),
        );
        let may = |p: &str, k: &str| o.cache_may_delete(p.as_bytes(), k.as_bytes());
        // the JS module's trap: cache `workflow:` vs state `workflow:state:`
        assert!(may("workflow:", "workflow:step1"));
        assert!(!may("workflow:", "workflow:state:run1"));
        // a longer cache prefix owns its keys
        assert!(!may("workflow:", "workflow:a:x"));
        assert!(may("workflow:a:", "workflow:a:x"));
        // state prefixes: by marker, and by an older build's registry key
        assert!(!may("app:", "app:state:r"));
        assert!(may("app:", "app:other"));
        assert!(!may("old:", "old:state:r"));
        assert!(may("old:", "old:x"));
        // a cache on a state prefix never deletes states
        assert!(!may("workflow:state:", "workflow:state:r"));
        // markers and registry keys are never deleted; a key merely shaped
        // like a marker (not verified) is an ordinary key
        assert!(!may("workflow:", "workflow:__awaitly:owner:cache"));
        assert!(!may("workflow:", "workflow:a:__awaitly:owner:cache"));
        assert!(!may("", "__awaitly:owner:cache:workflow:"));
        assert!(may("x:", "x:y__awaitly:owner:cache"));
        assert!(may("", "zzz"));
        assert!(!may("x:", "y:1"));
        assert_eq!(
            Owners::marker_key(KIND_STATE, b"s:"),
            b"s:__awaitly:owner:state".to_vec()
        );
        assert!(Owners::looks_like_marker(b"s:__awaitly:owner:cache"));
        assert!(!Owners::looks_like_marker(b"s:__awaitly:owner:cachex"));
    }

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
