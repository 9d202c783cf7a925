//! What a cluster node's error reply asks of the client. Each of these
//! replies means the command was NOT run, so sending it again is safe for
//! any command:
//! - `MOVED <slot> <host:port>`: the slot lives on that node now (update
//!   the map, send it there);
//! - `ASK <slot> <host:port>`: this one key is being migrated and is on
//!   that node: send `ASKING` and the command there, in one write, once;
//! - `TRYAGAIN` (a multi-key command during a migration), `CLUSTERDOWN`
//!   (a shard has no primary, failover under way), `MASTERDOWN`, `LOADING`:
//!   send it again after a pause;
//! - `READONLY`: the node was demoted to a replica (failover): read the
//!   map again and send it to the new primary.

use redis::Value;

use super::slots::Node;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redirect {
    Moved {
        slot: u16,
        to: Node,
    },
    Ask {
        slot: u16,
        to: Node,
    },
    /// Send again after a pause (the same node, as the map then says).
    Retry,
    /// Read the map again, then send again.
    Refresh,
}

/// The redirect a reply asks for, if it is one.
pub fn redirect_of(v: &Value) -> Option<Redirect> {
    let Value::ServerError(e) = v else {
        return None;
    };
    let target = || {
        let mut parts = e.details()?.split_whitespace();
        let slot: u16 = parts.next()?.parse().ok()?;
        let to = Node::parse(parts.next()?)?;
        Some((slot, to))
    };
    match e.code() {
        "MOVED" => target().map(|(slot, to)| Redirect::Moved { slot, to }),
        "ASK" => target().map(|(slot, to)| Redirect::Ask { slot, to }),
        "TRYAGAIN" | "CLUSTERDOWN" | "MASTERDOWN" | "LOADING" => Some(Redirect::Retry),
        "READONLY" => Some(Redirect::Refresh),
        _ => None,
    }
}

#[cfg(test)]
pub(crate) fn reply(resp: &str) -> Value {
    use tokio_util::codec::Decoder;
    let mut buf = bytes::BytesMut::from(resp.as_bytes());
    match redis::ValueCodec::default().decode(&mut buf) {
        Ok(Some(v)) => v,
        other => unreachable!("not one RESP reply: {resp:?}: {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_from_error_replies() {
        assert_eq!(
            redirect_of(&reply("-MOVED 3999 127.0.0.1:6381\r\n")),
            Some(Redirect::Moved {
                slot: 3999,
                to: Node::new("127.0.0.1", 6381)
            })
        );
        assert_eq!(
            redirect_of(&reply("-ASK 3999 10.0.0.2:7002\r\n")),
            Some(Redirect::Ask {
                slot: 3999,
                to: Node::new("10.0.0.2", 7002)
            })
        );
        // an IPv6 node, a hostname
        assert_eq!(
            redirect_of(&reply("-MOVED 1 ::1:7000\r\n")),
            Some(Redirect::Moved {
                slot: 1,
                to: Node::new("::1", 7000)
            })
        );
        assert_eq!(
            redirect_of(&reply("-MOVED 1 redis-0.example:6379\r\n")),
            Some(Redirect::Moved {
                slot: 1,
                to: Node::new("redis-0.example", 6379)
            })
        );
        for retry in [
            "-TRYAGAIN Multiple keys request during rehashing of slot\r\n",
            "-CLUSTERDOWN The cluster is down\r\n",
            "-CLUSTERDOWN Hash slot not served\r\n",
            "-MASTERDOWN Link with MASTER is down\r\n",
            "-LOADING Redis is loading the dataset in memory\r\n",
        ] {
            assert_eq!(redirect_of(&reply(retry)), Some(Redirect::Retry), "{retry}");
        }
        assert_eq!(
            redirect_of(&reply(
                "-READONLY You can't write against a read only replica.\r\n"
            )),
            Some(Redirect::Refresh)
        );
        // errors of the command itself, and answers
        for not in [
            "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
            "-ERR unknown command\r\n",
            "-NOSCRIPT No matching script\r\n",
            "-CROSSSLOT Keys in request don't hash to the same slot\r\n",
            "-MOVED garbage\r\n",
            "-ASK 1\r\n",
            "+OK\r\n",
            "$-1\r\n",
            ":1\r\n",
        ] {
            assert_eq!(redirect_of(&reply(not)), None, "{not}");
        }
    }
}
