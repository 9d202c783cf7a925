//! Native Redis `KeyValueStore` core on tokio: the store's options, the
//! socket of the JS-thread connection opened here (`connect_direct`:
//! connect, DNS, TLS handshake, AUTH/SELECT), and the tokio connection
//! ([`Conn`]: a multiplexed connection to one server, or a cluster
//! connection of the `redis` crate) for `transport: 'tokio'` and clusters,
//! replaced when it breaks, every call bounded by the configured timeouts.
//! Batches go through the batch seam ([`Batch`]: one pipeline; in a cluster
//! one pipeline per primary node, all in flight at once); keys, prefix
//! clearing and leases are written once over [`Exec`] (`keys`, `lease`), in
//! a cluster with SCAN of every primary and UNLINK split per slot.
//!
//! Also the prefix-ownership rules ([`Owners`]) that keep a cache's
//! `clearAsync()` away from state documents and from the keys of another
//! cache with a longer prefix sharing the same store. They are pure and used
//! for every store (the JS glue calls them through the binding for stores
//! written in JavaScript).
//!
//! No napi types here: `cargo test` drives it against the Redis on
//! 127.0.0.1:6379 (the CI starts one).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{AsyncConnectionConfig, Client, Cmd, RedisError, ServerErrorKind, Value};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::error::{PersistError, Result};
use crate::redis::batch::{op_key, scan_server, unlink_server, Batch, Exec, Wait};
pub use crate::redis::batch::{Op, OpResult, Text, SCAN_COUNT};
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

/// The transport: one server, or a Redis Cluster through the `redis` crate's
/// cluster client (which follows MOVED/ASK, refreshes its slot map and
/// reconnects to nodes itself). Everything above goes through [`Conn`].
/// One per store: the size of its variants does not matter.
#[allow(clippy::large_enum_variant)]
enum Transport {
    Single(Client),
    Cluster(ClusterClient),
}

/// One open connection of either kind (cheap to clone: both multiplex).
#[derive(Clone)]
enum Conn {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

/// Where a SCAN goes: the one server, or one cluster primary.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum ScanTarget {
    Only,
    Node(String, u16),
}

struct Slot {
    conn: Option<Conn>,
    generation: u64,
    /// The slot map of the cluster connection of `generation` (read once
    /// per connection, see [`RedisStore::node_map`]).
    nodes: Option<(u64, Arc<NodeMap>)>,
}

struct Inner {
    transport: Transport,
    config: RedisConfig,
    slot: Mutex<Slot>,
    closed: AtomicBool,
    reconnects: AtomicU64,
    /// The latest generation of cluster connection given up after a MOVED
    /// (see [`RedisStore::abandon`]): calls still waiting on it or on an
    /// older one go again on the current one.
    abandoned: tokio::sync::watch::Sender<u64>,
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
struct Fail {
    err: PersistError,
    replace: bool,
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
fn classify(e: &RedisError, timeout_ms: u64) -> Fail {
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
        redis::ErrorKind::ClusterConnectionNotFound
            | redis::ErrorKind::Server(
                ServerErrorKind::ClusterDown
                    | ServerErrorKind::MasterDown
                    | ServerErrorKind::TryAgain
            )
    ) {
        // a shard without a reachable primary (failover under way): the
        // cluster client recovers by itself once a replica is promoted
        (PersistError::Unavailable(e.to_string()), false)
    } else {
        (PersistError::Store(e.to_string()), false)
    };
    Fail { err, replace }
}

fn is_moved(e: &RedisError) -> bool {
    matches!(e.kind(), redis::ErrorKind::Server(ServerErrorKind::Moved))
}

/// The primaries in a `CLUSTER NODES` reply, and whether the topology is in
/// motion (a slot migrating or importing, a node failing).
fn parse_cluster_nodes(text: &str) -> (Vec<ScanTarget>, bool) {
    let mut primaries = Vec::new();
    let mut moving = false;
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 8 {
            continue;
        }
        let flags = f[2];
        let slots = &f[8..];
        if slots.iter().any(|s| s.starts_with('[')) || flags.contains("fail") {
            moving = true;
        }
        if !flags.split(',').any(|x| x == "master") || flags.contains("noaddr") {
            continue;
        }
        // a failed primary that still owns slots is scanned (and fails the
        // call): its keys must not be missed silently
        if flags.split(',').any(|x| x == "fail") && slots.is_empty() {
            continue;
        }
        // ip:port@cport[,hostname]
        let addr = f[1].split('@').next().unwrap_or("");
        if let Some((host, port)) = addr.rsplit_once(':') {
            if let Ok(port) = port.parse::<u16>() {
                primaries.push(ScanTarget::Node(host.to_string(), port));
            }
        }
    }
    primaries.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
    (primaries, moving)
}

/// The hash slot of `key` (CRC16-XMODEM of the key or of its `{hash tag}`,
/// mod 16384), as Redis Cluster computes it (the crate keeps its own
/// private).
fn key_slot(key: &[u8]) -> u16 {
    let tagged = key
        .iter()
        .position(|&b| b == b'{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            let close = rest.iter().position(|&b| b == b'}')?;
            (close > 0).then(|| &rest[..close])
        })
        .unwrap_or(key);
    let mut crc: u16 = 0;
    for &b in tagged {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc % 16384
}

/// Which primary serves which slots, from `CLUSTER SLOTS`: how the calls
/// of a tick are grouped into one pipeline per node ([`RedisStore::exec`]).
/// Only a grouping: each pipeline is still routed by the crate (by the
/// slot of its first key, through its own slot map and connections), and a
/// stale entry costs a MOVED, after which the ops go again on a new
/// connection with a new map.
#[derive(Debug, Default, PartialEq)]
struct NodeMap {
    /// (first slot, last slot, node index), sorted by first slot
    ranges: Vec<(u16, u16, usize)>,
}

impl NodeMap {
    fn from_cluster_slots(v: &Value) -> Option<NodeMap> {
        let Value::Array(entries) = v else {
            return None;
        };
        let mut nodes: Vec<(Vec<u8>, i64)> = Vec::new();
        let mut ranges = Vec::with_capacity(entries.len());
        for e in entries {
            let Value::Array(f) = e else { return None };
            let (Some(Value::Int(a)), Some(Value::Int(b)), Some(Value::Array(primary))) =
                (f.first(), f.get(1), f.get(2))
            else {
                return None;
            };
            let host = match primary.first() {
                Some(Value::BulkString(h)) => h.clone(),
                Some(Value::SimpleString(h)) => h.clone().into_bytes(),
                _ => Vec::new(),
            };
            let Some(Value::Int(port)) = primary.get(1) else {
                return None;
            };
            let node = (host, *port);
            let idx = match nodes.iter().position(|n| *n == node) {
                Some(i) => i,
                None => {
                    nodes.push(node);
                    nodes.len() - 1
                }
            };
            let (a, b) = (u16::try_from(*a).ok()?, u16::try_from(*b).ok()?);
            ranges.push((a, b, idx));
        }
        ranges.sort_unstable();
        Some(NodeMap { ranges })
    }

    /// The node that serves `slot`, if the map covers it.
    fn node_of(&self, slot: u16) -> Option<usize> {
        let i = self.ranges.partition_point(|r| r.0 <= slot);
        let (a, b, node) = *self.ranges.get(i.checked_sub(1)?)?;
        (a <= slot && slot <= b).then_some(node)
    }
}

/// The outcome of one op of a cluster batch on one connection.
enum Step {
    Done(OpResult),
    Fail(Fail),
    /// Not answered on this connection (its slot moved, or the connection
    /// was given up): the op goes again on a new one. `true`: a MOVED.
    Again(bool),
}

/// Send `cmds` (the commands of one slot) again after `err`, a MOVED, ASK,
/// TRYAGAIN or CLUSTERDOWN, until an answer that is not one of those: to
/// the node MOVED names; to the node ASK names with `ASKING` in the same
/// pipeline (so no other call on that multiplexed connection can take the
/// one-shot flag); after a short pause for TRYAGAIN (keys of the slot on
/// both nodes) and CLUSTERDOWN. Replies as values (server errors included).
/// The caller bounds it by the command deadline. With `stop_at_moved`, a
/// MOVED is returned as the error instead of followed (the crate is then
/// refreshing its slot map, see [`RedisStore::exec`]).
async fn follow_redirects(
    c: &mut ClusterConnection,
    cmds: &[Cmd],
    mut err: RedisError,
    stop_at_moved: bool,
) -> redis::RedisResult<Vec<Value>> {
    loop {
        if stop_at_moved && is_moved(&err) {
            return Err(err);
        }
        let mut p = redis::pipe();
        p.ignore_errors();
        let asking = matches!(err.kind(), redis::ErrorKind::Server(ServerErrorKind::Ask));
        let route = match err.redirect_node() {
            Some((addr, _slot)) => {
                let Some((host, port)) = addr
                    .rsplit_once(':')
                    .and_then(|(h, p)| Some((h.to_string(), p.parse::<u16>().ok()?)))
                else {
                    return Err(err);
                };
                if asking {
                    p.cmd("ASKING");
                }
                SingleNodeRoutingInfo::ByAddress { host, port }
            }
            None if err.is_cluster_error() => {
                tokio::time::sleep(Duration::from_millis(20)).await;
                SingleNodeRoutingInfo::Random
            }
            None => return Err(err),
        };
        for cmd in cmds {
            p.add_command(cmd.clone());
        }
        let n = p.len();
        let r = if matches!(route, SingleNodeRoutingInfo::Random) {
            // by the slot of the first key, as the crate routes a pipeline
            c.req_packed_commands(&p, 0, n).await
        } else {
            c.route_pipeline(p, 0, n, route).await
        };
        match r {
            Ok(mut vals) => {
                if asking {
                    vals.remove(0);
                }
                return Ok(vals);
            }
            Err(e) if e.is_cluster_error() => err = e,
            Err(e) => return Err(e),
        }
    }
}

impl Conn {
    /// Run `pipe`. In a cluster a one-command pipeline goes through the
    /// client's routing of that command (MOVED/ASK followed, multi-key
    /// commands split per slot); a longer one goes to the slot of its first
    /// key, and is re-sent command by command if a slot moved under it.
    async fn query(&mut self, pipe: &redis::Pipeline) -> redis::RedisResult<Vec<Value>> {
        match self {
            Conn::Single(c) => pipe.query_async::<Vec<Value>>(c).await,
            Conn::Cluster(c) => {
                let cmds: Vec<Cmd> = pipe.cmd_iter().cloned().collect();
                let r = if let [one] = &cmds[..] {
                    c.req_packed_command(one).await.map(|v| vec![v])
                } else {
                    pipe.query_async::<Vec<Value>>(c).await
                };
                match r {
                    Err(e) if e.is_cluster_error() => {
                        let vals = follow_redirects(c, &cmds, e, false).await?;
                        let first_error = vals.iter().find_map(|v| match v {
                            Value::ServerError(e) => Some(e.clone()),
                            _ => None,
                        });
                        match first_error {
                            // as on one server: a command error fails the call
                            Some(e) => Err(e.into()),
                            None => Ok(vals),
                        }
                    }
                    r => r,
                }
            }
        }
    }

    /// One page of `SCAN cursor MATCH pattern COUNT n` on `target`.
    async fn scan(
        &mut self,
        target: &ScanTarget,
        cursor: u64,
        pattern: &[u8],
    ) -> redis::RedisResult<Value> {
        let mut cmd = redis::cmd("SCAN");
        cmd.arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(SCAN_COUNT);
        match (self, target) {
            (Conn::Cluster(c), ScanTarget::Node(host, port)) => {
                let to = SingleNodeRoutingInfo::ByAddress {
                    host: host.clone(),
                    port: *port,
                };
                c.route_command(cmd, RoutingInfo::SingleNode(to)).await
            }
            (c, _) => c.req_packed_command_any(&cmd).await,
        }
    }

    async fn req_packed_command_any(&mut self, cmd: &Cmd) -> redis::RedisResult<Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd).await,
            Conn::Cluster(c) => c.req_packed_command(cmd).await,
        }
    }

    /// What to SCAN: the server, or every primary of the cluster (and
    /// whether its topology is in motion).
    async fn scan_targets(&mut self) -> redis::RedisResult<(Vec<ScanTarget>, String)> {
        match self {
            Conn::Single(_) => Ok((vec![ScanTarget::Only], String::new())),
            Conn::Cluster(c) => {
                let nodes = || {
                    let mut cmd = redis::cmd("CLUSTER");
                    cmd.arg("NODES");
                    cmd
                };
                let v = c
                    .route_command(
                        nodes(),
                        RoutingInfo::SingleNode(SingleNodeRoutingInfo::RandomPrimary),
                    )
                    .await?;
                let text: String = redis::from_redis_value(v)?;
                let (targets, mut moving) = parse_cluster_nodes(&text);
                // a slot migrating shows only in the "myself" lines of its
                // source and target: ask every primary about itself
                let asks = targets.iter().map(|t| {
                    let mut c = c.clone();
                    let to = match t {
                        ScanTarget::Node(host, port) => SingleNodeRoutingInfo::ByAddress {
                            host: host.clone(),
                            port: *port,
                        },
                        ScanTarget::Only => SingleNodeRoutingInfo::Random,
                    };
                    let cmd = nodes();
                    async move { c.route_command(cmd, RoutingInfo::SingleNode(to)).await }
                });
                let mut views = Vec::new();
                for v in futures_util::future::join_all(asks).await {
                    let text: String = redis::from_redis_value(v?)?;
                    let own = text
                        .lines()
                        .find(|l| l.contains("myself"))
                        .unwrap_or("")
                        .to_string();
                    moving |= own.contains('[');
                    // id, flags and slots (not the ping/pong times)
                    let f: Vec<&str> = own.split_whitespace().collect();
                    views.push(format!(
                        "{} {} {}",
                        f.first().unwrap_or(&""),
                        f.get(2).unwrap_or(&""),
                        f.get(8..).map(|s| s.join(" ")).unwrap_or_default()
                    ));
                }
                views.sort();
                if moving {
                    views.push("moving".into());
                }
                Ok((targets, views.join("\n")))
            }
        }
    }
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
            let cto = ms(config.connect_timeout_ms);
            let mut b = ClusterClientBuilder::new(infos)
                .connection_timeout(cto)
                .response_timeout(ms(config.command_timeout_ms))
                // our own deadline bounds every call; no retries inside the
                // crate: it follows an ASK by sending ASKING as a command
                // of its own, which another call multiplexed on that
                // connection can take first (the op then bounces between
                // the two nodes; under load the connection wedged), so
                // redirects are followed here ([`follow_redirects`]); a
                // shard failing over fails its calls with
                // ERR_STORE_UNAVAILABLE at once, as one server down does
                .overall_response_timeout(None)
                .retries(0)
                .tcp_settings(nodelay);
            if tls {
                b = Self::cluster_tls(b, &config)?;
            }
            Transport::Cluster(b.build().map_err(bad_url)?)
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
                    nodes: None,
                }),
                closed: AtomicBool::new(false),
                reconnects: AtomicU64::new(0),
                abandoned: tokio::sync::watch::Sender::new(0),
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

    #[cfg(feature = "redis-tls")]
    fn cluster_tls(b: ClusterClientBuilder, config: &RedisConfig) -> Result<ClusterClientBuilder> {
        Ok(b.certs(Self::tls_certs(config)?))
    }

    #[cfg(not(feature = "redis-tls"))]
    fn tls_client(_url: redis::ConnectionInfo, _config: &RedisConfig) -> Result<Client> {
        Err(PersistError::InvalidArgument(
            "createRedisStore: rediss:// (TLS) is not supported by this build".into(),
        ))
    }

    #[cfg(not(feature = "redis-tls"))]
    fn cluster_tls(
        _b: ClusterClientBuilder,
        _config: &RedisConfig,
    ) -> Result<ClusterClientBuilder> {
        Err(PersistError::InvalidArgument(
            "createRedisStore: rediss:// (TLS) is not supported by this build".into(),
        ))
    }

    pub fn config(&self) -> &RedisConfig {
        &self.inner.config
    }

    /// Is this a Redis Cluster store?
    pub fn is_cluster(&self) -> bool {
        matches!(self.inner.transport, Transport::Cluster(_))
    }

    /// How many connections were opened so far (1 after the first call; in
    /// a cluster, one cluster connection, however many nodes it spans).
    pub fn connections_opened(&self) -> u64 {
        self.inner.reconnects.load(Ordering::Relaxed)
    }

    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::SeqCst)
    }

    /// Close: drop the connection; every later call fails with `Closed`.
    pub async fn close(&self) {
        self.inner.closed.store(true, Ordering::SeqCst);
        let mut slot = self.inner.slot.lock().await;
        slot.conn = None;
        slot.generation += 1;
    }

    async fn open(&self) -> redis::RedisResult<Conn> {
        let cto = ms(self.inner.config.connect_timeout_ms);
        match &self.inner.transport {
            Transport::Single(client) => {
                let cfg = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(cto))
                    .set_response_timeout(None);
                client
                    .get_multiplexed_async_connection_with_config(&cfg)
                    .await
                    .map(Conn::Single)
            }
            Transport::Cluster(client) => client.get_async_connection().await.map(Conn::Cluster),
        }
    }

    /// The current connection, or a new one, within `connect_timeout_ms`
    /// (waiting for another caller's connect attempt counts too).
    async fn connection(&self) -> Result<(Conn, u64)> {
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

    /// Can the connection be a socket of the JS thread's own
    /// (`redis::direct`)? One server over TCP, TLS or a unix socket, RESP2;
    /// clusters go through the crate's async connections.
    pub fn direct_capable(&self) -> bool {
        match &self.inner.transport {
            Transport::Single(c) => {
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
            Transport::Cluster(_) => false,
        }
    }

    /// Open a socket for the data connection of [`RedisStore::direct_capable`]
    /// stores, within `connect_timeout_ms`: connected, `AUTH` and `SELECT`
    /// done as the URL says, non-blocking. Counts as a connection opened.
    #[cfg(unix)]
    pub async fn connect_direct(&self) -> Result<DirectSocket> {
        use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
        use tokio_util::codec::Decoder;
        if self.is_closed() {
            return Err(PersistError::Closed);
        }
        let Transport::Single(client) = &self.inner.transport else {
            return Err(PersistError::Internal("connect_direct on a cluster".into()));
        };
        let info = client.get_connection_info();
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
        F: FnOnce(Conn) -> Fut,
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

    /// Run `pipe` on the shared connection within the timeouts. In a
    /// cluster, a pipeline of one command goes where that command belongs
    /// (single-key commands and scripts to their key's slot, redirects
    /// followed); a longer pipeline must keep to one slot.
    pub async fn run(&self, pipe: &redis::Pipeline) -> Result<Vec<Value>> {
        self.call(|mut c| async move { c.query(pipe).await }).await
    }

    /// PING: connects if needed.
    pub async fn ping(&self) -> Result<()> {
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
    /// per primary node, all in flight together, see `exec_cluster`) and
    /// return one result per op, in order. On one server a connection
    /// failure or timeout fails the whole batch; in a cluster it fails the
    /// ops of that shard only.
    pub async fn exec(&self, ops: Vec<Op>) -> Result<Vec<OpResult>> {
        if ops.is_empty() {
            return Ok(Vec::new());
        }
        let (conn, generation) = self.connection().await?;
        let cmd_to = self.inner.config.command_timeout_ms;
        let deadline = Instant::now() + ms(cmd_to);
        let mut c = match conn {
            Conn::Cluster(c) => return self.exec_cluster(&ops, c, generation, deadline).await,
            Conn::Single(c) => c,
        };
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

    /// Give up the cluster connection of `generation` (a MOVED came back
    /// on it): the next call opens a new one (with the current slot map),
    /// and calls still waiting on this one go again on the new one.
    ///
    /// Why: on a MOVED the crate's connection task rebuilds its slot map
    /// under a write lock on its connection table, and stops polling its
    /// requests in flight until that is done. A request that took the read
    /// lock in the same task poll but was suspended right after by tokio's
    /// cooperative budget (the lock acquired, then `Pending`: tokio 1.54's
    /// semaphore checks the budget after acquiring) keeps its read permit,
    /// and is never polled again to drop it: the rebuild waits for it
    /// forever, and with it every call on that connection. Seen with
    /// hundreds of calls in flight during a slot migration.
    async fn abandon(&self, generation: u64) {
        self.invalidate(generation).await;
        self.inner.abandoned.send_if_modified(|g| {
            let newer = *g < generation;
            if newer {
                *g = generation;
            }
            newer
        });
    }

    /// Resolves once the connection of `generation` is given up.
    fn given_up(&self, generation: u64) -> impl std::future::Future<Output = ()> + 'static {
        let mut abandoned = self.inner.abandoned.subscribe();
        async move {
            if abandoned.wait_for(|g| *g >= generation).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    /// How long a cluster call waits for its reply before the connection
    /// is probed ([`RedisStore::watchdog`]).
    fn stall(&self) -> Duration {
        ms((self.inner.config.command_timeout_ms / 8).clamp(100, 1000))
    }

    /// Resolves once the cluster connection of `generation` looks wedged
    /// and has been given up: after each [`RedisStore::stall`] of waiting,
    /// a `PING` through it (to any node) must come back within another
    /// one; if it does not, the connection's task is stuck (see
    /// [`RedisStore::abandon`]: not only a MOVED can lead there), and it
    /// is given up. A server that is merely slow still answers the PING.
    /// `first`: how long before the first probe (longer for a batch with a
    /// `WAIT`, which holds its node's connection for up to its timeout).
    async fn watchdog(&self, mut c: ClusterConnection, generation: u64, first: Duration) {
        let stall = self.stall();
        let mut pause = first.max(stall);
        loop {
            tokio::time::sleep(pause).await;
            pause = stall;
            let probe = c.route_command(
                redis::cmd("PING"),
                RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random),
            );
            if tokio::time::timeout(stall, probe).await.is_err() {
                self.abandon(generation).await;
                return;
            }
        }
    }

    /// [`RedisStore::call`] for reads that may be sent twice (a SCAN page,
    /// `CLUSTER NODES`): in a cluster, a call still waiting on a connection
    /// given up ([`RedisStore::abandon`], [`RedisStore::watchdog`]) goes
    /// again on the new one, within the command timeout.
    async fn call_read<T, F, Fut>(&self, f: F) -> Result<T>
    where
        F: Fn(Conn) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        if !self.is_cluster() {
            return self.call(f).await;
        }
        let cmd_to = self.inner.config.command_timeout_ms;
        let deadline = Instant::now() + ms(cmd_to);
        loop {
            let (conn, generation) =
                match tokio::time::timeout_at(deadline, self.connection()).await {
                    Ok(r) => r?,
                    Err(_) => return Err(PersistError::Timeout(cmd_to)),
                };
            let Conn::Cluster(c) = &conn else {
                return Err(PersistError::Internal(
                    "cluster store without a cluster connection".into(),
                ));
            };
            let c = c.clone();
            let r = tokio::select! {
                r = tokio::time::timeout_at(deadline, f(conn)) => r,
                _ = self.given_up(generation) => continue,
                () = self.watchdog(c, generation, self.stall()) => continue,
            };
            return match outcome(r, cmd_to) {
                Ok(v) => Ok(v),
                Err(fail) => Err(self.failed(fail, generation).await),
            };
        }
    }

    /// The slot map of the cluster connection of `generation` (`CLUSTER
    /// SLOTS`, read once per connection); None if it cannot be read in
    /// time (the ops are then grouped per slot).
    async fn node_map(
        &self,
        c: &mut ClusterConnection,
        generation: u64,
        deadline: Instant,
    ) -> Option<Arc<NodeMap>> {
        {
            let slot = self.inner.slot.lock().await;
            if let Some((g, m)) = &slot.nodes {
                if *g == generation {
                    return Some(m.clone());
                }
            }
        }
        let mut cmd = redis::cmd("CLUSTER");
        cmd.arg("SLOTS");
        let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::RandomPrimary);
        let v = tokio::select! {
            r = tokio::time::timeout_at(deadline, c.route_command(cmd, route)) => r.ok()?.ok()?,
            _ = self.given_up(generation) => return None,
        };
        let map = Arc::new(NodeMap::from_cluster_slots(&v)?);
        let mut slot = self.inner.slot.lock().await;
        if slot.generation == generation {
            slot.nodes = Some((generation, map.clone()));
        }
        Some(map)
    }

    /// [`RedisStore::exec`] on a cluster: the ops grouped per primary (by
    /// the connection's slot map), one pipeline per node, all in flight at
    /// once, each routed by the crate by the slot of its first key (Redis
    /// takes a pipeline of commands of several slots as long as the node
    /// serves each of them). A group answered with ASK/TRYAGAIN (a slot
    /// migrating) goes again op by op, redirects followed. An op answered
    /// with MOVED, or still waiting on a connection given up after one,
    /// goes again on a new connection, until the deadline.
    async fn exec_cluster(
        &self,
        ops: &[Op],
        mut conn: ClusterConnection,
        mut generation: u64,
        deadline: Instant,
    ) -> Result<Vec<OpResult>> {
        let cmd_to = self.inner.config.command_timeout_ms;
        let mut replies: Vec<Option<std::result::Result<OpResult, Fail>>> = Vec::new();
        replies.resize_with(ops.len(), || None);
        let mut pending: Vec<usize> = (0..ops.len()).collect();
        let mut replace = false;
        loop {
            let map = self.node_map(&mut conn, generation, deadline).await;
            let mut groups: Vec<Vec<usize>> = Vec::new();
            let mut by_node: HashMap<(bool, usize), usize> = HashMap::new();
            for &i in &pending {
                let slot = key_slot(op_key(&ops[i]));
                // without a map (or a slot it does not cover): per slot
                let group = match map.as_ref().and_then(|m| m.node_of(slot)) {
                    Some(node) => (true, node),
                    None => (false, usize::from(slot)),
                };
                let at = *by_node.entry(group).or_insert_with(|| {
                    groups.push(Vec::new());
                    groups.len() - 1
                });
                groups[at].push(i);
            }
            let sent = groups
                .into_iter()
                .map(|idx| self.send_group(conn.clone(), generation, ops, idx, deadline));
            let all = futures_util::future::join_all(sent);
            tokio::pin!(all);
            let waits =
                self.inner.config.wait_replicas > 0 && pending.iter().any(|&i| ops[i].is_durable());
            let first = if waits {
                ms(self.wait_timeout_ms()) + self.stall()
            } else {
                self.stall()
            };
            let outcomes = tokio::select! {
                r = &mut all => r,
                // given up: every group still waiting returns its ops
                () = self.watchdog(conn.clone(), generation, first) => all.await,
            };
            let mut redo = Vec::new();
            let mut moved = false;
            for (i, step) in outcomes.into_iter().flatten() {
                match step {
                    Step::Done(v) => replies[i] = Some(Ok(v)),
                    Step::Fail(f) => {
                        replace |= f.replace;
                        replies[i] = Some(Err(Fail {
                            err: f.err,
                            replace: false,
                        }));
                    }
                    Step::Again(m) => {
                        moved |= m;
                        redo.push(i);
                    }
                }
            }
            if replace {
                self.invalidate(generation).await;
            }
            if redo.is_empty() {
                break;
            }
            if moved {
                self.abandon(generation).await;
            }
            let next = match tokio::time::timeout_at(deadline, self.connection()).await {
                Ok(Ok((Conn::Cluster(c), g))) if g != generation => Ok((c, g)),
                // not given up (only a call of another generation was): its
                // requests wait on the one given up, this one goes on
                Ok(Ok((Conn::Cluster(c), g))) => {
                    self.abandon(g).await;
                    match tokio::time::timeout_at(deadline, self.connection()).await {
                        Ok(Ok((Conn::Cluster(c2), g2))) => Ok((c2, g2)),
                        Ok(Ok(_)) => Ok((c, g)),
                        Ok(Err(e)) => Err(e),
                        Err(_) => Err(PersistError::Timeout(cmd_to)),
                    }
                }
                Ok(Ok(_)) => Err(PersistError::Internal(
                    "cluster store without a cluster connection".into(),
                )),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(PersistError::Timeout(cmd_to)),
            };
            match next {
                Ok((c, g)) => {
                    conn = c;
                    generation = g;
                    pending = redo;
                }
                Err(e) => {
                    for i in redo {
                        replies[i] = Some(Err(Fail {
                            err: e.clone(),
                            replace: false,
                        }));
                    }
                    break;
                }
            }
        }
        Ok(replies
            .into_iter()
            .map(|r| match r {
                Some(Ok(r)) => r,
                Some(Err(f)) => OpResult::Failed(f.err),
                None => OpResult::Failed(PersistError::Internal("no reply".into())),
            })
            .collect())
    }

    /// One node group of [`RedisStore::exec_cluster`] on the connection of
    /// `generation`: one pipeline (its durable writes followed by one
    /// `WAIT`), each op's outcome.
    async fn send_group(
        &self,
        mut c: ClusterConnection,
        generation: u64,
        ops: &[Op],
        idx: Vec<usize>,
        deadline: Instant,
    ) -> Vec<(usize, Step)> {
        let cmd_to = self.inner.config.command_timeout_ms;
        let batch = Batch::new(idx.iter().map(|&i| ops[i].clone()).collect(), self.wait());
        let mut p = redis::Pipeline::with_capacity(batch.replies());
        p.ignore_errors();
        for cmd in batch.commands() {
            p.add_command(cmd);
        }
        let n = p.len();
        let first = key_slot(op_key(&ops[idx[0]]));
        let route = SingleNodeRoutingInfo::SpecificNode(Route::new(first, SlotAddr::Master));
        let every = |idx: &[usize], f: &dyn Fn() -> Step| idx.iter().map(|&i| (i, f())).collect();
        let outcome = tokio::select! {
            r = tokio::time::timeout_at(deadline, c.route_pipeline(p, 0, n, route)) => r,
            _ = self.given_up(generation) => return every(&idx, &|| Step::Again(false)),
        };
        match outcome {
            Ok(Ok(values)) => idx
                .iter()
                .zip(batch.finish(values))
                .map(|(&i, r)| (i, Step::Done(r)))
                .collect(),
            // the crate is rebuilding its slot map: a new connection
            Ok(Err(e)) if is_moved(&e) => every(&idx, &|| Step::Again(true)),
            // ASK/TRYAGAIN/CLUSTERDOWN for some key of the group (a slot
            // migrating: some keys on the source, some on the target): each
            // op again, on its own
            Ok(Err(e)) if e.is_cluster_error() => {
                let resent = idx.iter().map(|&i| {
                    let c = c.clone();
                    async move { (i, self.resend_one(c, generation, &ops[i], deadline).await) }
                });
                futures_util::future::join_all(resent).await
            }
            Ok(Err(e)) => {
                let f = classify(&e, cmd_to);
                every(&idx, &|| {
                    Step::Fail(Fail {
                        err: f.err.clone(),
                        replace: f.replace,
                    })
                })
            }
            Err(_) => every(&idx, &|| Step::Fail(Fail::timeout(cmd_to))),
        }
    }

    /// One op of a group that the cluster answered with ASK/TRYAGAIN/
    /// CLUSTERDOWN, sent again on its own (with its WAIT if it is a durable
    /// write), ASK and TRYAGAIN followed; a MOVED: [`Step::Again`].
    async fn resend_one(
        &self,
        mut c: ClusterConnection,
        generation: u64,
        op: &Op,
        deadline: Instant,
    ) -> Step {
        let cmd_to = self.inner.config.command_timeout_ms;
        let batch = Batch::new(vec![op.clone()], self.wait());
        let cmds = batch.commands();
        let mut p = redis::pipe();
        p.ignore_errors();
        for cmd in &cmds {
            p.add_command(cmd.clone());
        }
        let route =
            SingleNodeRoutingInfo::SpecificNode(Route::new(key_slot(op_key(op)), SlotAddr::Master));
        let n = p.len();
        let fut = async {
            match c.route_pipeline(p, 0, n, route).await {
                Err(e) if e.is_cluster_error() => follow_redirects(&mut c, &cmds, e, true).await,
                r => r,
            }
        };
        let r = tokio::select! {
            r = tokio::time::timeout_at(deadline, fut) => r,
            _ = self.given_up(generation) => return Step::Again(false),
        };
        match r {
            Ok(Ok(values)) => match batch.finish(values).pop() {
                Some(r) => Step::Done(r),
                None => Step::Fail(Fail {
                    err: PersistError::Internal("no reply".into()),
                    replace: false,
                }),
            },
            Ok(Err(e)) if is_moved(&e) => Step::Again(true),
            Ok(Err(e)) => {
                let f = classify(&e, cmd_to);
                Step::Fail(Fail {
                    err: f.err,
                    replace: f.replace,
                })
            }
            Err(_) => Step::Fail(Fail::timeout(cmd_to)),
        }
    }

    /// Every key matching the Redis glob `pattern` (see [`keys::keys`]).
    pub async fn keys(&self, pattern: &[u8]) -> Result<Vec<Vec<u8>>> {
        keys::keys(self, pattern).await
    }

    /// `clearAsync` of the cache with `prefix` (see [`keys::clear_cache_prefix`]).
    pub async fn clear_cache_prefix(&self, prefix: &[u8]) -> Result<u64> {
        keys::clear_cache_prefix(self, prefix).await
    }

    /// SCAN every node that holds keys (the one server, or every cluster
    /// primary) to the end, handing each page to `each` (a key may come
    /// twice: SCAN's own guarantee; callers deduplicate). If the cluster's
    /// topology was in motion (a slot migrating, a node failing) or changed
    /// during the pass, a second pass follows: a key that moved from a node
    /// not yet scanned to one already scanned is then found where it is
    /// now (a key moves only from the source to the target of a slot).
    async fn scan_all(&self, pattern: &[u8], mut each: impl FnMut(Vec<Vec<u8>>)) -> Result<()> {
        let (targets, before) = self
            .call_read(|mut c| async move { c.scan_targets().await })
            .await?;
        for target in &targets {
            self.scan_node(target, pattern, &mut each).await?;
        }
        if self.is_cluster() {
            let (after, view) = self
                .call_read(|mut c| async move { c.scan_targets().await })
                .await?;
            if before != view || view.ends_with("moving") {
                for target in &after {
                    self.scan_node(target, pattern, &mut each).await?;
                }
            }
        }
        Ok(())
    }

    async fn scan_node(
        &self,
        target: &ScanTarget,
        pattern: &[u8],
        each: &mut impl FnMut(Vec<Vec<u8>>),
    ) -> Result<()> {
        let mut cursor: u64 = 0;
        loop {
            let page =
                || self.call_read(|mut c| async move { c.scan(target, cursor, pattern).await });
            let reply = match page().await {
                // In a cluster, a connection can wedge while the crate
                // refreshes its slot map during a migration; `call` has just
                // replaced it, and SCAN of the same cursor is safe to repeat:
                // one retry.
                Err(PersistError::Timeout(_)) if self.is_cluster() => page().await?,
                r => r?,
            };
            let (next, keys): (u64, Vec<Vec<u8>>) = redis::from_redis_value(reply)
                .map_err(|e| PersistError::Store(format!("SCAN: unexpected reply: {e}")))?;
            each(keys);
            if next == 0 {
                return Ok(());
            }
            cursor = next;
        }
    }
}

/// Batches on the store's connection (tokio); in a cluster, SCAN of every
/// primary and UNLINK split per slot by the crate.
impl Exec for RedisStore {
    fn exec(&self, ops: Vec<Op>) -> impl std::future::Future<Output = Result<Vec<OpResult>>> {
        RedisStore::exec(self, ops)
    }

    fn scan(&self, pattern: &[u8]) -> impl std::future::Future<Output = Result<Vec<Vec<u8>>>> {
        let pattern = pattern.to_vec();
        async move {
            if !self.is_cluster() {
                return scan_server(self, pattern).await;
            }
            let mut out = Vec::new();
            self.scan_all(&pattern, |page| out.extend(page)).await?;
            Ok(out)
        }
    }

    async fn unlink(&self, keys: Vec<Vec<u8>>) -> Result<u64> {
        if !self.is_cluster() {
            return unlink_server(self, keys).await;
        }
        let mut p = redis::pipe();
        p.cmd("UNLINK").arg(&keys);
        match self.run(&p).await?.pop() {
            Some(Value::Int(n)) => Ok(n.max(0) as u64),
            Some(Value::ServerError(e)) => Err(PersistError::Store(format!("{e:?}"))),
            _ => Ok(0),
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
    fn cluster_nodes_reply_gives_the_primaries_and_whether_slots_move() {
        let stable = "\
a1 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460
b2 127.0.0.1:7001@17001 master - 0 1 2 connected 5461-10922
c3 127.0.0.1:7002@17002 master - 0 1 3 connected 10923-16383
d4 127.0.0.1:7003@17003 slave a1 0 1 1 connected
";
        let (p, moving) = parse_cluster_nodes(stable);
        let ports: Vec<u16> = p
            .iter()
            .map(|t| match t {
                ScanTarget::Node(h, port) => {
                    assert_eq!(h, "127.0.0.1");
                    *port
                }
                ScanTarget::Only => 0,
            })
            .collect();
        assert_eq!(ports, vec![7000, 7001, 7002]);
        assert!(!moving);
        // a migrating slot, a failed primary with slots (kept: its keys must
        // not be missed silently), a failed one without (left out)
        let busy = "\
a1 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460 [5461->-b2]
b2 127.0.0.1:7001@17001 master,fail - 0 1 2 connected 5461-10922
c3 127.0.0.1:7002@17002 master,fail - 0 1 3 connected
e5 127.0.0.1:7004@17004 master - 0 1 4 connected 10923-16383
";
        let (p, moving) = parse_cluster_nodes(busy);
        assert_eq!(p.len(), 3);
        assert!(!p.contains(&ScanTarget::Node("127.0.0.1".into(), 7002)));
        assert!(moving);
    }

    #[test]
    fn key_slot_is_the_cluster_hash_slot() {
        // the vector of the Redis Cluster spec, and hash tags
        assert_eq!(key_slot(b"123456789"), 0x31C3);
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"a{}b"), key_slot(b"a{}b")); // empty tag: the whole key
        assert_ne!(key_slot(b"a{}b"), key_slot(b""));
        assert_eq!(key_slot(b"x{{tag}}y"), key_slot(b"{tag"));
        // the same slot as the crate routes to
        for k in [&b"foo"[..], b"mig:1:{slot}:7", b"a{}b", b"\xff\x00", b""] {
            assert_eq!(
                Route::new(key_slot(k), SlotAddr::Master),
                Route::with_key(k, SlotAddr::Master)
            );
        }
    }

    #[test]
    fn node_map_from_cluster_slots() {
        let node = |h: &str, p: i64| {
            Value::Array(vec![
                Value::BulkString(h.as_bytes().to_vec()),
                Value::Int(p),
                Value::BulkString(b"id".to_vec()),
            ])
        };
        let range = |a: i64, b: i64, n: Value| Value::Array(vec![Value::Int(a), Value::Int(b), n]);
        let v = Value::Array(vec![
            range(5461, 10922, node("127.0.0.1", 7001)),
            range(0, 5460, node("127.0.0.1", 7000)),
            range(10923, 16383, node("127.0.0.1", 7002)),
        ]);
        let m = NodeMap::from_cluster_slots(&v).expect("a map");
        assert_eq!(m.node_of(0), m.node_of(5460));
        assert_ne!(m.node_of(5460), m.node_of(5461));
        assert_eq!(m.node_of(5461), m.node_of(10922));
        assert_eq!(m.node_of(12000), m.node_of(16383));
        assert!(m.node_of(0).is_some() && m.node_of(16383).is_some());
        assert_eq!(NodeMap::from_cluster_slots(&Value::Nil), None);
        assert_eq!(NodeMap::default().node_of(3), None);
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
