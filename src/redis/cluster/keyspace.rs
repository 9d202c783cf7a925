//! Commands over many keys on a cluster: a multi-key command (UNLINK, DEL)
//! is split into one command per hash slot ([`by_slot`]), since a node
//! refuses keys of several slots in one command (CROSSSLOT); a pass over
//! the whole key space (SCAN for `keys`, `clearAsync`, `list`) visits every
//! primary ([`Scan`]) and is run again if the topology moved meanwhile
//! ([`Scan::settled`]): a key only moves from the source of a migrating
//! slot to its target, so a second pass finds a key that moved from a node
//! not yet scanned to one already scanned.
//!
//! [`scan_cluster`] and [`unlink_by_slot`] run these rules over a
//! transport's node I/O ([`NodeIo`], the batch seam [`Exec`]): tokio's and
//! the JS thread's alike.

use std::future::Future;

use redis::{Cmd, Value};

use super::slots::{key_slot, Node, SlotMap};
use crate::error::PersistError;
use crate::redis::batch::{Exec, Op, OpResult};

/// The keys grouped by hash slot, at most `max` keys per group, groups in
/// the order of their slots' first key: `(slot, key indices)`.
pub fn by_slot<'a>(keys: impl IntoIterator<Item = &'a [u8]>, max: usize) -> Vec<(u16, Vec<usize>)> {
    let max = max.max(1);
    let mut groups: Vec<(u16, Vec<usize>)> = Vec::new();
    // the open (not yet full) group of each slot
    let mut open: std::collections::HashMap<u16, usize> = std::collections::HashMap::new();
    for (i, k) in keys.into_iter().enumerate() {
        let slot = key_slot(k);
        let at = match open.get(&slot) {
            Some(&at) if groups[at].1.len() < max => at,
            _ => {
                groups.push((slot, Vec::new()));
                open.insert(slot, groups.len() - 1);
                groups.len() - 1
            }
        };
        groups[at].1.push(i);
    }
    groups
}

/// One SCAN pass over every primary of a map (see the module docs).
#[derive(Debug)]
pub struct Scan {
    /// Each primary and its next cursor (None: done).
    nodes: Vec<(Node, Option<u64>)>,
    /// The map the pass began with.
    start: SlotMap,
}

impl Scan {
    pub fn new(map: &SlotMap) -> Scan {
        Scan {
            nodes: map.primaries().into_iter().map(|n| (n, Some(0))).collect(),
            start: map.clone(),
        }
    }

    /// The pages to fetch next: one per node not done, `(node, cursor)`
    /// (the nodes are independent: all may be in flight at once).
    pub fn pending(&self) -> Vec<(Node, u64)> {
        self.nodes
            .iter()
            .filter_map(|(n, c)| c.map(|c| (n.clone(), c)))
            .collect()
    }

    /// The reply of `SCAN` on `node`: its keys; the node's cursor moves on.
    pub fn page(&mut self, node: &Node, reply: Value) -> Result<Vec<Vec<u8>>, PersistError> {
        let bad = |why: &str| PersistError::Store(format!("SCAN on {node}: {why}"));
        let (next, keys): (u64, Vec<Vec<u8>>) = match reply {
            Value::ServerError(e) => {
                return Err(PersistError::Store(format!(
                    "SCAN on {node}: {} {}",
                    e.code(),
                    e.details().unwrap_or("")
                )))
            }
            other => redis::from_redis_value(other)
                .map_err(|e| bad(&format!("unexpected reply: {e}")))?,
        };
        let slot = self
            .nodes
            .iter_mut()
            .find(|(n, _)| n == node)
            .ok_or_else(|| bad("not a node of this pass"))?;
        slot.1 = (next != 0).then_some(next);
        Ok(keys)
    }

    pub fn is_done(&self) -> bool {
        self.nodes.iter().all(|(_, c)| c.is_none())
    }

    /// Once done: does the pass stand, given the map now and whether a slot
    /// was migrating (`moving`, see [`migrating`])? If not, a new pass on
    /// the current map must follow.
    pub fn settled(&self, now: &SlotMap, moving: bool) -> bool {
        !moving && now.same_owners(&self.start)
    }
}

/// Does this node's own line of `CLUSTER NODES` (the one flagged `myself`)
/// show a slot migrating or importing (`[slot->-id]`, `[slot-<-id]`)? Only
/// the source and target of a migration show it, so every primary is asked.
pub fn migrating(cluster_nodes: &str) -> bool {
    cluster_nodes
        .lines()
        .filter(|l| {
            l.split_whitespace()
                .nth(2)
                .is_some_and(|f| f.split(',').any(|x| x == "myself"))
        })
        .any(|l| l.split_whitespace().skip(8).any(|s| s.starts_with('[')))
}

/// What a pass over the key space needs of a cluster transport.
pub trait NodeIo {
    /// The slot map, read again now.
    fn fresh_map(&self) -> impl Future<Output = Result<SlotMap, PersistError>>;

    /// One command on each node given, all in flight at once: each reply
    /// (or why there is none), in order.
    fn on_nodes(
        &self,
        cmds: Vec<(Node, Cmd)>,
    ) -> impl Future<Output = Vec<Result<Value, PersistError>>>;
}

/// Is a slot migrating on any primary of `map` (each asked)?
async fn any_migrating<I: NodeIo>(io: &I, map: &SlotMap) -> Result<bool, PersistError> {
    let asks = map
        .primaries()
        .into_iter()
        .map(|n| {
            let mut c = redis::cmd("CLUSTER");
            c.arg("NODES");
            (n, c)
        })
        .collect();
    let mut moving = false;
    for v in io.on_nodes(asks).await {
        let text: String = redis::from_redis_value(v?)
            .map_err(|e| PersistError::Store(format!("CLUSTER NODES: {e}")))?;
        moving |= migrating(&text);
    }
    Ok(moving)
}

/// SCAN every primary to the end with `MATCH pattern`, handing each page to
/// `each` (a key may come twice; callers deduplicate). When the topology
/// moved during the pass (a slot migrating, a failover), a second pass on
/// the new map follows (see [`Scan`]).
pub async fn scan_cluster<I: NodeIo>(
    io: &I,
    pattern: &[u8],
    page_size: usize,
    mut each: impl FnMut(Vec<Vec<u8>>),
) -> Result<(), PersistError> {
    let mut map = io.fresh_map().await?;
    let mut moving = any_migrating(io, &map).await?;
    for _pass in 0..2 {
        let mut scan = Scan::new(&map);
        while !scan.is_done() {
            let pages = scan.pending();
            let cmds = pages
                .iter()
                .map(|(node, cursor)| {
                    let mut c = redis::cmd("SCAN");
                    c.arg(*cursor)
                        .arg("MATCH")
                        .arg(pattern)
                        .arg("COUNT")
                        .arg(page_size);
                    (node.clone(), c)
                })
                .collect();
            let replies = io.on_nodes(cmds).await;
            for ((node, _), r) in pages.iter().zip(replies) {
                each(scan.page(node, r?)?);
            }
        }
        map = io.fresh_map().await?;
        moving |= any_migrating(io, &map).await?;
        if scan.settled(&map, moving) {
            break;
        }
        moving = false;
    }
    Ok(())
}

/// UNLINK `keys` on a cluster: one command per slot and `page` keys, as one
/// batch (one pipeline per primary): how many existed.
pub async fn unlink_by_slot<X: Exec + ?Sized>(
    x: &X,
    keys: Vec<Vec<u8>>,
    page: usize,
) -> Result<u64, PersistError> {
    let ops = by_slot(keys.iter().map(Vec::as_slice), page)
        .into_iter()
        .map(|(_, idx)| Op::Unlink(idx.into_iter().map(|i| keys[i].clone()).collect()))
        .collect();
    let mut total = 0;
    for r in x.exec(ops).await? {
        match r {
            OpResult::Count(n) => total += n,
            OpResult::Failed(e) => return Err(e),
            other => {
                return Err(PersistError::Internal(format!(
                    "UNLINK: unexpected result {other:?}"
                )))
            }
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_key_commands_split_per_slot() {
        let keys: Vec<&[u8]> = vec![b"{a}1", b"{b}1", b"{a}2", b"{a}3", b"{b}2", b"c"];
        let g = by_slot(keys.iter().copied(), 2);
        assert_eq!(
            g,
            vec![
                (key_slot(b"a"), vec![0, 2]),
                (key_slot(b"b"), vec![1, 4]),
                (key_slot(b"a"), vec![3]),
                (key_slot(b"c"), vec![5]),
            ]
        );
        // every group is one slot and at most max keys; every key once
        let many: Vec<Vec<u8>> = (0..10_000).map(|i| format!("k:{i}").into_bytes()).collect();
        let g = by_slot(many.iter().map(Vec::as_slice), 5000);
        let mut seen = vec![false; many.len()];
        for (slot, idx) in &g {
            assert!(!idx.is_empty() && idx.len() <= 5000);
            for &i in idx {
                assert_eq!(key_slot(&many[i]), *slot);
                assert!(!seen[i]);
                seen[i] = true;
            }
        }
        assert!(seen.iter().all(|&s| s));
        assert!(by_slot(std::iter::empty(), 10).is_empty());
        // max 0 is taken as 1
        assert_eq!(by_slot([&b"x"[..], b"x"], 0).len(), 2);
    }

    fn map(ports: &[(i64, i64, i64)]) -> SlotMap {
        let v = Value::Array(
            ports
                .iter()
                .map(|&(a, b, p)| {
                    Value::Array(vec![
                        Value::Int(a),
                        Value::Int(b),
                        Value::Array(vec![
                            Value::BulkString(b"127.0.0.1".to_vec()),
                            Value::Int(p),
                        ]),
                    ])
                })
                .collect(),
        );
        SlotMap::from_cluster_slots(&v, "127.0.0.1").unwrap_or_default()
    }

    fn page(cursor: &str, keys: &[&str]) -> Value {
        Value::Array(vec![
            Value::BulkString(cursor.as_bytes().to_vec()),
            Value::Array(
                keys.iter()
                    .map(|k| Value::BulkString(k.as_bytes().to_vec()))
                    .collect(),
            ),
        ])
    }

    #[test]
    fn scan_visits_every_primary_to_its_end() -> Result<(), PersistError> {
        let m = map(&[(0, 8000, 7000), (8001, 16383, 7001)]);
        let mut s = Scan::new(&m);
        let n0 = Node::new("127.0.0.1", 7000);
        let n1 = Node::new("127.0.0.1", 7001);
        assert_eq!(s.pending(), vec![(n0.clone(), 0), (n1.clone(), 0)]);
        assert_eq!(
            s.page(&n0, page("17", &["a", "b"]))?,
            vec![b"a".to_vec(), b"b".to_vec()]
        );
        assert_eq!(s.page(&n1, page("0", &["c"]))?, vec![b"c".to_vec()]);
        assert_eq!(s.pending(), vec![(n0.clone(), 17)]);
        assert!(!s.is_done());
        assert_eq!(s.page(&n0, page("0", &[]))?, Vec::<Vec<u8>>::new());
        assert!(s.is_done() && s.pending().is_empty());
        assert!(s.settled(&m, false));
        // a migration under way, or a primary that changed: one more pass
        assert!(!s.settled(&m, true));
        let failed_over = map(&[(0, 8000, 7000), (8001, 16383, 7004)]);
        assert!(!s.settled(&failed_over, false));
        // a slot that moved between the same primaries
        let resharded = map(&[(0, 8001, 7000), (8002, 16383, 7001)]);
        assert!(!s.settled(&resharded, false));
        // the same owners read again
        assert!(s.settled(&map(&[(8001, 16383, 7001), (0, 8000, 7000)]), false));
        // errors
        let mut s = Scan::new(&m);
        assert!(s.page(&Node::new("x", 1), page("0", &[])).is_err());
        assert!(s.page(&n0, Value::Int(3)).is_err());
        let e = s
            .page(
                &n0,
                crate::redis::cluster::redirect::reply("-NOPERM no\r\n"),
            )
            .err();
        assert!(matches!(e, Some(PersistError::Store(m)) if m.contains("NOPERM")));
        Ok(())
    }

    #[test]
    fn migrating_slots_show_in_the_nodes_own_line() {
        let stable = "\
a1 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460
b2 127.0.0.1:7001@17001 master - 0 1 2 connected 5461-10922 [5461->-a1]
";
        // another node's view of b2 does not count: only its own line does
        assert!(!migrating(stable));
        let source = "\
a1 127.0.0.1:7000@17000 master - 0 0 1 connected 0-5460
b2 127.0.0.1:7001@17001 myself,master - 0 1 2 connected 5461-10922 [5461->-a1]
";
        assert!(migrating(source));
        let target = "a1 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460 [5461-<-b2]\n";
        assert!(migrating(target));
        assert!(!migrating(""));
    }
}
