//! The rules of this folder run over real connections: one multiplexed
//! connection per primary (opened when first needed, replaced when it
//! fails), the slot map read from `CLUSTER SLOTS` (from a known primary or
//! a seed) before the first call and again in the background after a
//! MOVED, a READONLY or a node that could not be reached. Every call is
//! bounded by the command timeout, connecting included.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt};
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{AsyncConnectionConfig, Cmd, Value};
use tokio::time::Instant;

use super::dispatch::{Dispatch, Effect, Reply, Send};
use super::keyspace::{scan_cluster, unlink_by_slot, NodeIo};
use super::slots::{key_slot, Node, SlotMap};
use crate::error::{PersistError, Result};
use crate::redis::batch::{op_cmd, op_key, settle, Exec, Op, OpResult, Wait, SCAN_COUNT};
use crate::redis::failure::classify;
use crate::redis::tokio_conn;
use crate::tls::TlsOptions;

/// Makes the client of one node (same credentials and TLS as the seeds).
pub type NodeClient = Box<dyn Fn(&Node) -> Result<redis::Client> + std::marker::Send + Sync>;

/// A primary's connection (and its id), and the lock one connect
/// attempt at a time holds.
#[derive(Default)]
struct NodeConn {
    conn: Option<(MultiplexedConnection, u64)>,
    connecting: Arc<tokio::sync::Mutex<()>>,
}

struct Shared {
    seeds: Vec<Node>,
    make: NodeClient,
    connect_timeout_ms: u64,
    command_timeout_ms: u64,
    /// The WAIT after durable writes.
    wait: Option<Wait>,
    /// The `tls` options of `rediss://` nodes.
    tls: TlsOptions,
    map: Mutex<SlotMap>,
    conns: Mutex<HashMap<Node, NodeConn>>,
    /// Serialises the reading of the first map.
    first_map: tokio::sync::Mutex<()>,
    refreshing: AtomicBool,
    opened: AtomicU64,
    closed: AtomicBool,
}

/// A Redis Cluster (see the module docs). Cheap to clone.
#[derive(Clone)]
pub struct Cluster {
    sh: Arc<Shared>,
}

fn ms(d: u64) -> Duration {
    Duration::from_millis(d.max(1))
}

fn cmd(name: &str) -> Cmd {
    redis::cmd(name)
}

/// Milliseconds on the dispatch clock (tokio's, so paused-time tests and
/// timers agree).
fn clock_ms(origin: Instant) -> u64 {
    Instant::now().duration_since(origin).as_millis() as u64
}

impl Cluster {
    pub fn new(
        seeds: Vec<Node>,
        make: NodeClient,
        connect_timeout_ms: u64,
        command_timeout_ms: u64,
        wait: Option<Wait>,
        tls: TlsOptions,
    ) -> Cluster {
        Cluster {
            sh: Arc::new(Shared {
                seeds,
                make,
                connect_timeout_ms,
                command_timeout_ms,
                wait,
                tls,
                map: Mutex::new(SlotMap::default()),
                conns: Mutex::new(HashMap::new()),
                first_map: tokio::sync::Mutex::new(()),
                refreshing: AtomicBool::new(false),
                opened: AtomicU64::new(0),
                closed: AtomicBool::new(false),
            }),
        }
    }

    /// The client of `node` (the first seed's credentials and TLS).
    pub fn client_of(&self, node: &Node) -> Result<redis::Client> {
        (self.sh.make)(node)
    }

    /// The client of the first seed.
    pub fn seed_client(&self) -> Result<redis::Client> {
        match self.sh.seeds.first() {
            Some(n) => (self.sh.make)(n),
            None => Err(PersistError::Internal("a cluster without seeds".into())),
        }
    }

    /// The slot map, read again now (from a known primary, else a seed).
    pub async fn fresh_map(&self) -> Result<SlotMap> {
        self.refresh(Instant::now() + ms(self.sh.command_timeout_ms))
            .await?;
        Ok(self.map().clone())
    }

    /// Node connections opened so far.
    pub fn connections_opened(&self) -> u64 {
        self.sh.opened.load(Ordering::Relaxed)
    }

    /// Drop every connection; later calls fail with `Closed`.
    pub fn close(&self) {
        self.sh.closed.store(true, Ordering::SeqCst);
        if let Ok(mut c) = self.sh.conns.lock() {
            c.clear();
        }
    }

    fn map(&self) -> std::sync::MutexGuard<'_, SlotMap> {
        // a poisoned lock only means a panic elsewhere held it: the map
        // itself is always whole (every change is one assignment)
        self.sh.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The connection to `node`, opened if needed within the connect
    /// timeout (and `deadline`). A failure here means nothing was written.
    async fn conn(&self, node: &Node, deadline: Instant) -> Result<(MultiplexedConnection, u64)> {
        if self.sh.closed.load(Ordering::SeqCst) {
            return Err(PersistError::Closed);
        }
        let current = |sh: &Shared| {
            let mut conns = sh.conns.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(NodeConn {
                conn: Some(c),
                connecting,
            }) = conns.get(node)
            {
                return (Some(c.clone()), connecting.clone());
            }
            let slot = conns.entry(node.clone()).or_default();
            (slot.conn.clone(), slot.connecting.clone())
        };
        let (conn, connecting) = current(&self.sh);
        if let Some(c) = conn {
            return Ok(c);
        }
        let cto = self.sh.connect_timeout_ms;
        let until = deadline.min(Instant::now() + ms(cto));
        let _one = match tokio::time::timeout_at(until, connecting.lock()).await {
            Ok(g) => g,
            Err(_) => return Err(PersistError::Timeout(cto)),
        };
        // another call may have connected meanwhile
        if let (Some(c), _) = current(&self.sh) {
            return Ok(c);
        }
        let client = (self.sh.make)(node)?;
        let cfg = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(ms(cto)))
            .set_response_timeout(None);
        let opened =
            tokio::time::timeout_at(until, tokio_conn::open(&client, &self.sh.tls, &cfg)).await;
        match opened {
            Ok(Ok(c)) => {
                if self.sh.closed.load(Ordering::SeqCst) {
                    return Err(PersistError::Closed);
                }
                let id = self.sh.opened.fetch_add(1, Ordering::Relaxed) + 1;
                let mut conns = self.sh.conns.lock().unwrap_or_else(|p| p.into_inner());
                conns.entry(node.clone()).or_default().conn = Some((c.clone(), id));
                Ok((c, id))
            }
            Ok(Err(e))
                if matches!(
                    e.kind(),
                    redis::ErrorKind::Server(_) | redis::ErrorKind::AuthenticationFailed
                ) =>
            {
                // e.g. a wrong password: the server answered
                Err(PersistError::Store(e.to_string()))
            }
            Ok(Err(e)) if e.is_timeout() => Err(PersistError::Timeout(cto)),
            Ok(Err(e)) => Err(PersistError::Unavailable(format!(
                "cluster node {node}: {e}"
            ))),
            Err(_) => Err(PersistError::Timeout(cto)),
        }
    }

    /// Forget the connection `id` to `node` (if still current).
    fn drop_conn(&self, node: &Node, id: u64) {
        let mut conns = self.sh.conns.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(slot) = conns.get_mut(node) {
            if matches!(&slot.conn, Some((_, cur)) if *cur == id) {
                slot.conn = None;
            }
        }
    }

    /// Run `p` on `node` before `deadline`: its replies, or the failure and
    /// whether the pipeline may have been written.
    async fn pipeline(
        &self,
        node: &Node,
        p: &redis::Pipeline,
        deadline: Instant,
    ) -> std::result::Result<Vec<Value>, (PersistError, bool)> {
        let (mut c, id) = self.conn(node, deadline).await.map_err(|e| (e, false))?;
        let cmd_to = self.sh.command_timeout_ms;
        let n = p.len();
        match tokio::time::timeout_at(deadline, c.req_packed_commands(p, 0, n)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                let f = classify(&e, cmd_to);
                if f.replace {
                    self.drop_conn(node, id);
                }
                Err((f.err, true))
            }
            Err(_) => {
                // no answer in time: the node is paused or the link half-open
                self.drop_conn(node, id);
                Err((PersistError::Timeout(cmd_to), true))
            }
        }
    }

    /// One command to `node` (not routed by slot: SCAN, CLUSTER ...).
    async fn on_node(&self, node: &Node, c: Cmd, deadline: Instant) -> Result<Value> {
        let mut p = redis::Pipeline::with_capacity(1);
        p.ignore_errors().add_command(c);
        match self.pipeline(node, &p, deadline).await {
            Ok(mut v) => v
                .pop()
                .ok_or_else(|| PersistError::Internal("no reply".into())),
            Err((e, _)) => Err(e),
        }
    }

    /// Read the slot map again: from a primary it knows, else a seed.
    async fn refresh(&self, deadline: Instant) -> Result<()> {
        let mut candidates = self.map().primaries();
        for s in &self.sh.seeds {
            if !candidates.contains(s) {
                candidates.push(s.clone());
            }
        }
        let mut last = PersistError::Unavailable("no cluster node to ask for the slot map".into());
        for node in candidates {
            let mut c = cmd("CLUSTER");
            c.arg("SLOTS");
            match self.on_node(&node, c, deadline).await {
                Ok(v) => match SlotMap::from_cluster_slots(&v, &node.host) {
                    Some(m) if !m.is_empty() => {
                        *self.map() = m;
                        return Ok(());
                    }
                    _ => {
                        last = PersistError::Store(format!(
                            "CLUSTER SLOTS on {node}: unexpected reply {v:?}"
                        ))
                    }
                },
                Err(e) => last = e,
            }
            if Instant::now() >= deadline {
                break;
            }
        }
        Err(last)
    }

    /// Read the map again in the background (one reading at a time).
    fn refresh_soon(&self) {
        if self.sh.refreshing.swap(true, Ordering::SeqCst) {
            return;
        }
        let me = self.clone();
        tokio::spawn(async move {
            let deadline = Instant::now() + ms(me.sh.command_timeout_ms);
            let _ = me.refresh(deadline).await;
            me.sh.refreshing.store(false, Ordering::SeqCst);
        });
    }

    /// The map, read first if there is none yet.
    async fn ready(&self, deadline: Instant) -> Result<()> {
        if !self.map().is_empty() {
            return Ok(());
        }
        let _one = match tokio::time::timeout_at(deadline, self.sh.first_map.lock()).await {
            Ok(g) => g,
            Err(_) => return Err(PersistError::Timeout(self.sh.command_timeout_ms)),
        };
        if !self.map().is_empty() {
            return Ok(());
        }
        self.refresh(deadline).await
    }

    fn effect(&self, e: Effect) {
        if e.refresh {
            self.refresh_soon();
        }
    }

    /// Run single-slot commands, `(slot, command, durable)`, as one batch:
    /// one pipeline per primary, all in flight at once, redirects followed
    /// (see [`Dispatch`]); each command's reply or why it has none.
    pub async fn commands(&self, cmds: Vec<(u16, Cmd, bool)>) -> Result<Vec<Result<Reply>>> {
        if cmds.is_empty() {
            return Ok(Vec::new());
        }
        let cmd_to = self.sh.command_timeout_ms;
        let origin = Instant::now();
        let deadline = origin + ms(cmd_to);
        self.ready(deadline).await?;
        let mut d = Dispatch::new(
            cmds.iter().map(|(slot, _, durable)| (*slot, *durable)),
            0,
            cmd_to,
            self.sh.wait,
        );
        let wait_cmd = self.sh.wait.map(|w| w.cmd());
        let mut flying = FuturesUnordered::new();
        loop {
            let (sends, effect) = {
                let map = self.map();
                d.sends(&map, clock_ms(origin))
            };
            self.effect(effect);
            for s in sends {
                let mut p = redis::Pipeline::with_capacity(s.replies());
                p.ignore_errors();
                for (&i, &asking) in s.items.iter().zip(&s.asking) {
                    if asking {
                        p.cmd("ASKING");
                    }
                    p.add_command(cmds[i].1.clone());
                }
                if let (true, Some(w)) = (s.wait, &wait_cmd) {
                    p.add_command(w.clone());
                }
                flying.push(async move {
                    let r = self.pipeline(&s.node, &p, deadline).await;
                    (s, r)
                });
            }
            if flying.is_empty() && d.is_done() {
                break;
            }
            let wake = d.next_wake().map(|w| origin + Duration::from_millis(w));
            let got: Option<(Send, _)> = tokio::select! {
                Some(r) = flying.next() => Some(r),
                () = async {
                    match wake {
                        Some(w) => tokio::time::sleep_until(w).await,
                        None => std::future::pending().await,
                    }
                } => None,
            };
            if let Some((s, r)) = got {
                let now = clock_ms(origin);
                let effect = match r {
                    Ok(values) => {
                        let mut map = self.map();
                        d.replies(&s, values, &mut map, now)
                    }
                    Err((e, written)) => d.failed(&s, e, written, now),
                };
                self.effect(effect);
            } else {
                d.expire(clock_ms(origin));
            }
        }
        Ok(d.results())
    }

    /// A batch of the store's ops (see [`Cluster::commands`]): one result
    /// per op, in order, through the batch seam's [`settle`].
    pub async fn exec(&self, ops: Vec<Op>) -> Result<Vec<OpResult>> {
        let cmds = ops
            .iter()
            .map(|op| {
                let durable = matches!(op, Op::SetDurable(..));
                (key_slot(op_key(op)), op_cmd(op), durable)
            })
            .collect();
        let replies = self.commands(cmds).await?;
        Ok(ops
            .iter()
            .zip(replies)
            .map(|(op, r)| match r {
                Ok(Reply { value, waited }) => settle(op, value, waited.as_ref()),
                Err(e) => OpResult::Failed(e),
            })
            .collect())
    }
}

/// Node I/O for a pass over the key space (SCAN of every primary).
impl NodeIo for Cluster {
    fn fresh_map(&self) -> impl std::future::Future<Output = Result<SlotMap>> {
        Cluster::fresh_map(self)
    }

    async fn on_nodes(&self, cmds: Vec<(Node, Cmd)>) -> Vec<Result<Value>> {
        let deadline = Instant::now() + ms(self.sh.command_timeout_ms);
        let asks = cmds
            .into_iter()
            .map(|(n, c)| async move { self.on_node(&n, c, deadline).await });
        futures_util::future::join_all(asks).await
    }
}

/// The batch seam over the cluster: batches routed by slot, SCAN of every
/// primary, UNLINK split per slot.
impl Exec for Cluster {
    fn exec(&self, ops: Vec<Op>) -> impl std::future::Future<Output = Result<Vec<OpResult>>> {
        Cluster::exec(self, ops)
    }

    async fn scan(&self, pattern: &[u8]) -> Result<Vec<Vec<u8>>> {
        let mut out = Vec::new();
        scan_cluster(self, pattern, SCAN_COUNT, |page| out.extend(page)).await?;
        Ok(out)
    }

    fn unlink(&self, keys: Vec<Vec<u8>>) -> impl std::future::Future<Output = Result<u64>> {
        unlink_by_slot(self, keys, SCAN_COUNT)
    }
}

#[cfg(test)]
mod tests {
    //! Against two real `redis-server --cluster-enabled yes` nodes started
    //! here on spare ports (killed by the guard's drop): the routing, a
    //! MOVED after a slot changed owner, an ASK during a migration, SCAN of
    //! both primaries and UNLINK per slot.
    use super::*;
    use std::process::{Child, Command, Stdio};

    struct Node2 {
        children: Vec<Child>,
        dir: std::path::PathBuf,
        ports: Vec<u16>,
    }

    impl Drop for Node2 {
        fn drop(&mut self) {
            for c in &mut self.children {
                let _ = c.kill();
                let _ = c.wait();
            }
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    /// A loopback port that is free, and whose cluster bus port (+10000) is too.
    fn spare_port() -> u16 {
        loop {
            let Ok(l) = std::net::TcpListener::bind("127.0.0.1:0") else {
                continue;
            };
            let Ok(a) = l.local_addr() else { continue };
            let p = a.port();
            if p < 55000 && std::net::TcpListener::bind(("127.0.0.1", p + 10000)).is_ok() {
                return p;
            }
        }
    }

    async fn admin(port: u16, args: &[&str]) -> redis::RedisResult<Value> {
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}"))?;
        let mut c = client.get_multiplexed_async_connection().await?;
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        c.req_packed_command(&cmd).await
    }

    async fn text(port: u16, args: &[&str]) -> String {
        match admin(port, args).await {
            Ok(Value::BulkString(b)) => String::from_utf8_lossy(&b).into_owned(),
            Ok(Value::SimpleString(s)) => s,
            Ok(Value::VerbatimString { text, .. }) => text,
            other => format!("{other:?}"),
        }
    }

    /// Two primaries: 0-8191 on the first, 8192-16383 on the second.
    async fn two_nodes() -> Node2 {
        let dir = std::env::temp_dir().join(format!(
            "awaitly-cluster-{}-{}",
            std::process::id(),
            spare_port()
        ));
        let _ = std::fs::create_dir_all(&dir);
        let mut n = Node2 {
            children: Vec::new(),
            dir: dir.clone(),
            ports: Vec::new(),
        };
        for i in 0..2 {
            let port = spare_port();
            let child = Command::new("redis-server")
                .args([
                    "--port",
                    &port.to_string(),
                    "--bind",
                    "127.0.0.1",
                    "--cluster-enabled",
                    "yes",
                ])
                .args([
                    "--cluster-config-file",
                    &format!("nodes-{i}.conf"),
                    "--cluster-node-timeout",
                    "1000",
                ])
                .args(["--save", "", "--appendonly", "no", "--dir"])
                .arg(&dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server (cluster tests need it on PATH)");
            n.children.push(child);
            n.ports.push(port);
        }
        for &p in &n.ports {
            for _ in 0..200 {
                if admin(p, &["PING"]).await.is_ok() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        }
        let (a, b) = (n.ports[0], n.ports[1]);
        admin(a, &["CLUSTER", "ADDSLOTSRANGE", "0", "8191"])
            .await
            .expect("addslots");
        admin(b, &["CLUSTER", "ADDSLOTSRANGE", "8192", "16383"])
            .await
            .expect("addslots");
        admin(a, &["CLUSTER", "MEET", "127.0.0.1", &b.to_string()])
            .await
            .expect("meet");
        for _ in 0..400 {
            let ok = text(a, &["CLUSTER", "INFO"])
                .await
                .contains("cluster_state:ok")
                && text(b, &["CLUSTER", "INFO"])
                    .await
                    .contains("cluster_state:ok")
                && text(a, &["CLUSTER", "NODES"]).await.lines().count() == 2;
            if ok {
                return n;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the two-node cluster did not form");
    }

    fn client(seed: u16) -> Cluster {
        let make: NodeClient = Box::new(|n: &Node| {
            redis::Client::open(format!("redis://{n}"))
                .map_err(|e| PersistError::Unavailable(e.to_string()))
        });
        Cluster::new(
            vec![Node::new("127.0.0.1", seed)],
            make,
            2000,
            5000,
            None,
            TlsOptions::default(),
        )
    }

    async fn id_of(port: u16) -> String {
        text(port, &["CLUSTER", "MYID"]).await
    }

    #[tokio::test]
    async fn routes_follows_moved_and_ask_scans_and_unlinks() -> Result<()> {
        let n = two_nodes().await;
        let (a, b) = (n.ports[0], n.ports[1]);
        let c = client(a);
        let k = |i: usize| format!("t:{i}").into_bytes();
        let sets: Vec<Op> = (0..200)
            .map(|i| Op::Set(k(i), b"v".to_vec(), None))
            .collect();
        assert!(c.exec(sets).await?.iter().all(|r| *r == OpResult::Done));
        let gets: Vec<Op> = (0..200).map(|i| Op::Get(k(i))).collect();
        let got = c.exec(gets).await?;
        assert!(
            got.iter().all(|r| matches!(r, OpResult::Value(Some(_)))),
            "{got:?}"
        );
        // one connection per primary
        assert_eq!(c.connections_opened(), 2);
        // both primaries hold some
        for p in [a, b] {
            assert!(text(p, &["DBSIZE"]).await != "0");
        }

        // a slot (empty) given to the other primary behind the client's
        // back: its map is stale, the MOVED is followed and patches it
        let key = b"{moved}x".to_vec();
        let slot = key_slot(&key);
        let (from, to) = if slot <= 8191 { (a, b) } else { (b, a) };
        let to_id = id_of(to).await;
        for p in [to, from] {
            admin(
                p,
                &["CLUSTER", "SETSLOT", &slot.to_string(), "NODE", &to_id],
            )
            .await
            .expect("setslot");
        }
        let r = c
            .exec(vec![Op::Set(key.clone(), b"m".to_vec(), None)])
            .await?;
        assert_eq!(r, vec![OpResult::Done]);
        assert_eq!(c.map().node_of(slot), Some(&Node::new("127.0.0.1", to)));
        assert_eq!(text(to, &["GET", "{moved}x"]).await, "m");

        // a slot migrating back (no key moved yet): a new key is asked for
        // on the importing node, with ASKING in the same pipeline
        let from_id = id_of(to).await;
        let back_id = id_of(from).await;
        admin(
            from,
            &[
                "CLUSTER",
                "SETSLOT",
                &slot.to_string(),
                "IMPORTING",
                &from_id,
            ],
        )
        .await
        .expect("importing");
        admin(
            to,
            &[
                "CLUSTER",
                "SETSLOT",
                &slot.to_string(),
                "MIGRATING",
                &back_id,
            ],
        )
        .await
        .expect("migrating");
        let r = c
            .exec(vec![Op::Set(b"{moved}new".to_vec(), b"a".to_vec(), None)])
            .await?;
        assert_eq!(r, vec![OpResult::Done]);
        // written on the importing node, not on the source
        let count = |p: u16| async move {
            admin(p, &["CLUSTER", "COUNTKEYSINSLOT", &slot.to_string()])
                .await
                .ok()
        };
        assert_eq!(count(from).await, Some(Value::Int(1)));
        assert_eq!(count(to).await, Some(Value::Int(1)));
        let r = c.exec(vec![Op::Get(b"{moved}new".to_vec())]).await?;
        assert_eq!(
            r,
            vec![OpResult::Value(Some(crate::redis::batch::Text::of("a")))]
        );
        // the old key is still served where it is
        let r = c.exec(vec![Op::Get(key.clone())]).await?;
        assert_eq!(
            r,
            vec![OpResult::Value(Some(crate::redis::batch::Text::of("m")))]
        );

        // SCAN of both primaries, UNLINK per slot
        let mut seen = Vec::new();
        scan_cluster(&c, b"t:*", 50, |page| seen.extend(page)).await?;
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 200);
        assert_eq!(unlink_by_slot(&c, seen, 10).await?, 200);
        assert!(Exec::scan(&c, b"t:*").await?.is_empty());
        c.close();
        assert!(matches!(
            c.exec(vec![Op::Get(b"t:1".to_vec())]).await?.pop(),
            Some(OpResult::Failed(PersistError::Closed))
        ));
        Ok(())
    }
}
