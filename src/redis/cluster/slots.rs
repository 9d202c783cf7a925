//! Where a key lives in a Redis Cluster: its hash slot ([`key_slot`]:
//! CRC16-XMODEM of the key or of its `{hash tag}`, mod 16384) and the
//! primary that serves the slot ([`SlotMap`], read from `CLUSTER SLOTS` or
//! `CLUSTER SHARDS` and patched by MOVED replies).

use redis::Value;

/// Hash slots of a Redis Cluster.
pub const SLOTS: usize = 16384;

/// The hash slot of `key`, as Redis Cluster computes it: the CRC16 of the
/// text between the first `{` and the first `}` after it when that text is
/// not empty, else of the whole key.
pub fn key_slot(key: &[u8]) -> u16 {
    crc16(0, hashed_part(key)) % SLOTS as u16
}

/// The part of `key` that Redis Cluster hashes (see [`key_slot`]).
fn hashed_part(key: &[u8]) -> &[u8] {
    key.iter()
        .position(|&b| b == b'{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            let close = rest.iter().position(|&b| b == b'}')?;
            (close > 0).then(|| &rest[..close])
        })
        .unwrap_or(key)
}

/// CRC16/XMODEM of `bytes`, continued from `crc` (0 to start).
pub fn crc16(mut crc: u16, bytes: &[u8]) -> u16 {
    for &b in bytes {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// A cluster node's address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Node {
    pub host: String,
    pub port: u16,
}

impl Node {
    pub fn new(host: impl Into<String>, port: u16) -> Node {
        Node {
            host: host.into(),
            port,
        }
    }

    /// `host:port` as MOVED/ASK name it (an IPv6 host has colons of its
    /// own: the port is after the last one; brackets are dropped).
    pub fn parse(addr: &str) -> Option<Node> {
        let (host, port) = addr.rsplit_once(':')?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return None;
        }
        Some(Node::new(host, port.parse().ok()?))
    }
}

impl std::fmt::Display for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// No node known for a slot.
const NONE: u16 = u16::MAX;

/// Which primary serves each slot. `nodes` holds every primary named so
/// far (by the map it was read from, or by a MOVED since); `owner[slot]`
/// indexes it.
#[derive(Clone, PartialEq)]
pub struct SlotMap {
    owner: Box<[u16]>,
    nodes: Vec<Node>,
}

impl std::fmt::Debug for SlotMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut ranges = Vec::new();
        let mut start = 0;
        for s in 1..=SLOTS {
            if s == SLOTS || self.owner[s] != self.owner[start] {
                ranges.push((start, s - 1, self.node_of(start as u16)));
                start = s;
            }
        }
        f.debug_struct("SlotMap").field("ranges", &ranges).finish()
    }
}

impl Default for SlotMap {
    fn default() -> Self {
        SlotMap {
            owner: vec![NONE; SLOTS].into_boxed_slice(),
            nodes: Vec::new(),
        }
    }
}

/// The text of a RESP string value.
fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        Value::VerbatimString { text, .. } => Some(text.clone()),
        _ => None,
    }
}

fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(n) => Some(*n),
        other => text(other)?.parse().ok(),
    }
}

/// The fields of a RESP3 map or of a RESP2 flat `[name, value, ...]` array.
fn fields(v: &Value) -> Option<Vec<(String, &Value)>> {
    match v {
        Value::Map(kv) => kv.iter().map(|(k, v)| Some((text(k)?, v))).collect(),
        Value::Array(flat) if flat.len() % 2 == 0 => flat
            .chunks(2)
            .map(|p| Some((text(&p[0])?, &p[1])))
            .collect(),
        _ => None,
    }
}

impl SlotMap {
    /// From a `CLUSTER SLOTS` reply sent by the node at `asked` (an empty
    /// host in the reply means that node's own host). None if the reply is
    /// not one.
    pub fn from_cluster_slots(v: &Value, asked: &str) -> Option<SlotMap> {
        let Value::Array(entries) = v else {
            return None;
        };
        let mut map = SlotMap::default();
        for e in entries {
            let Value::Array(f) = e else { return None };
            let (a, b) = (int(f.first()?)?, int(f.get(1)?)?);
            let Value::Array(primary) = f.get(2)? else {
                return None;
            };
            let host = primary.first().and_then(text).unwrap_or_default();
            let host = if host.is_empty() || host == "?" {
                asked.to_string()
            } else {
                host
            };
            let port = u16::try_from(int(primary.get(1)?)?).ok()?;
            map.assign(a, b, Node::new(host, port))?;
        }
        Some(map)
    }

    /// From a `CLUSTER SHARDS` reply (Redis 7+) sent by the node at
    /// `asked`: each shard's `slots` (start, end pairs) go to its node whose
    /// `role` is `master` and whose `health` is not `fail`.
    pub fn from_cluster_shards(v: &Value, asked: &str) -> Option<SlotMap> {
        let Value::Array(shards) = v else {
            return None;
        };
        let mut map = SlotMap::default();
        for shard in shards {
            let shard = fields(shard)?;
            let get = |name: &str| shard.iter().find(|(k, _)| k == name).map(|(_, v)| *v);
            let Some(Value::Array(slots)) = get("slots") else {
                return None;
            };
            let Some(Value::Array(nodes)) = get("nodes") else {
                return None;
            };
            let mut primary = None;
            for n in nodes {
                let n = fields(n)?;
                let get = |name: &str| {
                    n.iter()
                        .find(|(k, _)| k == name)
                        .and_then(|(_, v)| text(v).or_else(|| int(v).map(|i| i.to_string())))
                };
                if get("role").as_deref() != Some("master")
                    || get("health").as_deref() == Some("fail")
                {
                    continue;
                }
                let port = get("port")
                    .or_else(|| get("tls-port"))
                    .and_then(|p| p.parse::<u16>().ok());
                let host = get("endpoint")
                    .filter(|h| !h.is_empty() && h != "?")
                    .or_else(|| get("ip"))
                    .filter(|h| !h.is_empty() && h != "?")
                    .unwrap_or_else(|| asked.to_string());
                if let Some(port) = port {
                    primary = Some(Node::new(host, port));
                }
            }
            let Some(primary) = primary else { continue };
            if slots.len() % 2 != 0 {
                return None;
            }
            for pair in slots.chunks(2) {
                map.assign(int(&pair[0])?, int(&pair[1])?, primary.clone())?;
            }
        }
        Some(map)
    }

    /// Slots `a..=b` to `node`.
    fn assign(&mut self, a: i64, b: i64, node: Node) -> Option<()> {
        let (a, b) = (usize::try_from(a).ok()?, usize::try_from(b).ok()?);
        if a > b || b >= SLOTS {
            return None;
        }
        let i = self.index_of(node)?;
        self.owner[a..=b].fill(i);
        Some(())
    }

    fn index_of(&mut self, node: Node) -> Option<u16> {
        match self.nodes.iter().position(|n| *n == node) {
            Some(i) => u16::try_from(i).ok(),
            None => {
                let i = u16::try_from(self.nodes.len()).ok().filter(|&i| i < NONE)?;
                self.nodes.push(node);
                Some(i)
            }
        }
    }

    /// The primary that serves `slot`, if the map knows one.
    pub fn node_of(&self, slot: u16) -> Option<&Node> {
        let i = *self.owner.get(usize::from(slot))?;
        self.nodes.get(usize::from(i))
    }

    /// A MOVED said `slot` is now served by `node`.
    pub fn moved(&mut self, slot: u16, node: Node) {
        if usize::from(slot) < SLOTS {
            if let Some(i) = self.index_of(node) {
                self.owner[usize::from(slot)] = i;
            }
        }
    }

    /// Does `other` name the same primary for every slot?
    pub fn same_owners(&self, other: &SlotMap) -> bool {
        (0..SLOTS as u16).all(|s| self.node_of(s) == other.node_of(s))
    }

    /// Does every slot have a primary?
    pub fn is_complete(&self) -> bool {
        !self.owner.contains(&NONE)
    }

    /// Is there no slot with a primary?
    pub fn is_empty(&self) -> bool {
        self.owner.iter().all(|&o| o == NONE)
    }

    /// The primaries that serve at least one slot, sorted: where a SCAN
    /// of the whole key space goes.
    pub fn primaries(&self) -> Vec<Node> {
        let mut used = vec![false; self.nodes.len()];
        for &o in self.owner.iter() {
            if let Some(u) = used.get_mut(usize::from(o)) {
                *u = true;
            }
        }
        let mut out: Vec<Node> = self
            .nodes
            .iter()
            .zip(used)
            .filter(|(_, u)| *u)
            .map(|(n, _)| n.clone())
            .collect();
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_slot_is_the_cluster_hash_slot() {
        // the vector of the Redis Cluster spec, and hash tags
        assert_eq!(key_slot(b"123456789"), 0x31C3);
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"{user1000}.followers"), key_slot(b"user1000"));
        // an empty tag: the whole key; only the first `{` counts
        assert_ne!(key_slot(b"a{}b"), key_slot(b""));
        assert_eq!(key_slot(b"x{{tag}}y"), key_slot(b"{tag"));
        assert_eq!(key_slot(b"foo{}{bar}"), key_slot(b"foo{}{bar}"));
        assert_ne!(key_slot(b"foo{}{bar}"), key_slot(b"bar"));
        assert_eq!(key_slot(b"foo{{bar}}zap"), key_slot(b"{bar"));
        assert_eq!(key_slot(b"foo{bar}{zap}"), key_slot(b"bar"));
        // no closing brace: the whole key
        assert_eq!(key_slot(b"{open"), key_slot(b"{open"));
        assert_ne!(key_slot(b"{open"), key_slot(b"open"));
        // CLUSTER KEYSLOT's own examples
        assert_eq!(key_slot(b"somekey"), 11058);
        assert_eq!(key_slot(b"foo{hash_tag}"), 2515);
        assert_eq!(key_slot(b"hash_tag"), 2515);
    }

    #[test]
    fn node_addresses() {
        assert_eq!(
            Node::parse("127.0.0.1:7000"),
            Some(Node::new("127.0.0.1", 7000))
        );
        assert_eq!(Node::parse("::1:7000"), Some(Node::new("::1", 7000)));
        assert_eq!(Node::parse("[::1]:7000"), Some(Node::new("::1", 7000)));
        assert_eq!(Node::new("::1", 7000).to_string(), "[::1]:7000");
        assert_eq!(
            Node::parse("host.example:6379")
                .map(|n| n.to_string())
                .as_deref(),
            Some("host.example:6379")
        );
        assert_eq!(Node::parse("nohost"), None);
        assert_eq!(Node::parse(":7000"), None);
        assert_eq!(Node::parse("h:99999"), None);
    }

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    fn slots_entry(a: i64, b: i64, host: &str, port: i64) -> Value {
        Value::Array(vec![
            Value::Int(a),
            Value::Int(b),
            Value::Array(vec![bulk(host), Value::Int(port), bulk("id")]),
            // a replica
            Value::Array(vec![bulk(host), Value::Int(port + 3), bulk("id2")]),
        ])
    }

    #[test]
    fn map_from_cluster_slots() {
        let v = Value::Array(vec![
            slots_entry(5461, 10922, "127.0.0.1", 7001),
            slots_entry(0, 5460, "127.0.0.1", 7000),
            slots_entry(10923, 16383, "", 7002),
        ]);
        let m = SlotMap::from_cluster_slots(&v, "10.0.0.9").expect("a map");
        assert_eq!(m.node_of(0), Some(&Node::new("127.0.0.1", 7000)));
        assert_eq!(m.node_of(5460), Some(&Node::new("127.0.0.1", 7000)));
        assert_eq!(m.node_of(5461), Some(&Node::new("127.0.0.1", 7001)));
        assert_eq!(m.node_of(10922), Some(&Node::new("127.0.0.1", 7001)));
        // an empty host: the node that answered
        assert_eq!(m.node_of(16383), Some(&Node::new("10.0.0.9", 7002)));
        assert!(m.is_complete());
        assert_eq!(m.primaries().len(), 3);
        // replicas are not primaries
        assert!(!m.primaries().contains(&Node::new("127.0.0.1", 7003)));
        // not a CLUSTER SLOTS reply; a range out of bounds
        assert_eq!(SlotMap::from_cluster_slots(&Value::Nil, "h"), None);
        let bad = Value::Array(vec![slots_entry(0, 16384, "h", 1)]);
        assert_eq!(SlotMap::from_cluster_slots(&bad, "h"), None);
        let backwards = Value::Array(vec![slots_entry(10, 5, "h", 1)]);
        assert_eq!(SlotMap::from_cluster_slots(&backwards, "h"), None);
        // a cluster with a slot nobody serves
        let part = Value::Array(vec![slots_entry(0, 100, "h", 1)]);
        let m = SlotMap::from_cluster_slots(&part, "h").expect("a map");
        assert!(!m.is_complete() && !m.is_empty());
        assert_eq!(m.node_of(101), None);
        assert!(SlotMap::default().is_empty());
        assert_eq!(SlotMap::default().node_of(3), None);
    }

    fn shard(slots: &[i64], nodes: Vec<Value>) -> Value {
        Value::Array(vec![
            bulk("slots"),
            Value::Array(slots.iter().map(|&s| Value::Int(s)).collect()),
            bulk("nodes"),
            Value::Array(nodes),
        ])
    }

    fn shard_node(ip: &str, port: i64, role: &str, health: &str) -> Value {
        Value::Array(vec![
            bulk("id"),
            bulk("abc"),
            bulk("port"),
            Value::Int(port),
            bulk("ip"),
            bulk(ip),
            bulk("endpoint"),
            bulk(ip),
            bulk("role"),
            bulk(role),
            bulk("replication-offset"),
            Value::Int(72156),
            bulk("health"),
            bulk(health),
        ])
    }

    #[test]
    fn map_from_cluster_shards() {
        let v = Value::Array(vec![
            shard(
                &[0, 5460, 10923, 11000],
                vec![
                    shard_node("127.0.0.1", 7003, "replica", "online"),
                    shard_node("127.0.0.1", 7000, "master", "online"),
                ],
            ),
            shard(
                &[5461, 10922, 11001, 16383],
                vec![
                    // a failed primary, and the replica promoted in its place
                    shard_node("127.0.0.1", 7001, "master", "fail"),
                    shard_node("127.0.0.1", 7004, "master", "online"),
                ],
            ),
        ]);
        let m = SlotMap::from_cluster_shards(&v, "h").expect("a map");
        assert_eq!(m.node_of(0), Some(&Node::new("127.0.0.1", 7000)));
        assert_eq!(m.node_of(10950), Some(&Node::new("127.0.0.1", 7000)));
        assert_eq!(m.node_of(5461), Some(&Node::new("127.0.0.1", 7004)));
        assert_eq!(m.node_of(16383), Some(&Node::new("127.0.0.1", 7004)));
        assert!(m.is_complete());
        assert_eq!(
            m.primaries(),
            vec![Node::new("127.0.0.1", 7000), Node::new("127.0.0.1", 7004)]
        );
        // the same reply as RESP3 maps
        let as_map = |v: &Value| match v {
            Value::Array(f) => {
                Value::Map(f.chunks(2).map(|p| (p[0].clone(), p[1].clone())).collect())
            }
            other => other.clone(),
        };
        let resp3 = Value::Array(vec![Value::Map(vec![
            (
                bulk("slots"),
                Value::Array(vec![Value::Int(0), Value::Int(16383)]),
            ),
            (
                bulk("nodes"),
                Value::Array(vec![as_map(&shard_node(
                    "10.1.1.1", 6379, "master", "online",
                ))]),
            ),
        ])]);
        let m = SlotMap::from_cluster_shards(&resp3, "h").expect("a map");
        assert_eq!(m.node_of(42), Some(&Node::new("10.1.1.1", 6379)));
        assert_eq!(SlotMap::from_cluster_shards(&Value::Int(1), "h"), None);
    }

    #[test]
    fn moved_patches_one_slot() {
        let v = Value::Array(vec![slots_entry(0, 16383, "127.0.0.1", 7000)]);
        let mut m = SlotMap::from_cluster_slots(&v, "h").expect("a map");
        m.moved(42, Node::new("127.0.0.1", 7001));
        assert_eq!(m.node_of(42), Some(&Node::new("127.0.0.1", 7001)));
        assert_eq!(m.node_of(41), Some(&Node::new("127.0.0.1", 7000)));
        assert_eq!(m.node_of(43), Some(&Node::new("127.0.0.1", 7000)));
        assert_eq!(m.primaries().len(), 2);
        // once it serves nothing, a node is no longer a primary to SCAN
        m.moved(42, Node::new("127.0.0.1", 7000));
        assert_eq!(m.primaries(), vec![Node::new("127.0.0.1", 7000)]);
        assert!(format!("{m:?}").contains("7000"));
    }
}
