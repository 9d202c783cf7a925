//! One batch of single-slot commands across a cluster, without I/O: which
//! node each command goes to, grouped so that the commands of one tick make
//! ONE pipeline per primary ([`Dispatch::sends`]), and what each reply means
//! ([`Dispatch::replies`]): an answer, or a redirect ([`super::redirect`])
//! after which the command goes again (MOVED: the map is patched and a
//! refresh asked for; ASK: `ASKING` + the command in one write to the node
//! named; TRYAGAIN/CLUSTERDOWN: after a pause), all within the command
//! timeout. Durable writes are followed by one `WAIT` in their node's
//! pipeline, whose verdict goes with each of their replies ([`Reply`]; the
//! batch seam, [`crate::redis::batch::settle`], turns them into results).
//!
//! The caller owns the commands, the connections and the clock: it packs
//! each [`Send`] (per item: `ASKING` if asked, the item's command; then
//! `WAIT` if asked), writes it to its node, and hands back the replies in
//! order, or the failure of that node's connection.

use redis::Value;

use super::redirect::{redirect_of, Redirect};
use super::slots::{Node, SlotMap};
use crate::error::PersistError;
use crate::redis::batch::Wait;

/// Redirects followed at once before further ones wait ([`pause_ms`]).
const QUICK_REDIRECTS: u32 = 3;

/// The pause before the `n`th retry of a command (n from 0): 5 ms doubling,
/// at most 100 ms.
pub fn pause_ms(n: u32) -> u64 {
    (5u64 << n.min(5)).min(100)
}

/// Where a command goes next.
#[derive(Debug, Clone, PartialEq)]
enum To {
    /// The primary the map names for its slot.
    Map,
    /// The node an ASK named, with `ASKING` before it.
    Ask(Node),
}

#[derive(Debug)]
enum State {
    Ready { to: To, not_before: u64 },
    InFlight,
    Done(Reply),
    Failed(PersistError),
}

/// A command's reply (its own error included, as `Value::ServerError`),
/// and for a durable write the verdict of the `WAIT` after it.
#[derive(Debug)]
pub struct Reply {
    pub value: Value,
    pub waited: Option<Result<(), PersistError>>,
}

#[derive(Debug)]
struct Item {
    slot: u16,
    durable: bool,
    state: State,
    /// Times it was sent again (redirects, retries, unsent writes).
    tries: u32,
    /// Why it was last sent again (its error if the deadline passes).
    last: Option<PersistError>,
}

/// The commands of one batch bound for one node, as one pipeline.
#[derive(Debug, Clone, PartialEq)]
pub struct Send {
    pub node: Node,
    /// Item indices, in batch order.
    pub items: Vec<usize>,
    /// Per item: `ASKING` goes right before it.
    pub asking: Vec<bool>,
    /// `WAIT n timeout` goes after the items.
    pub wait: bool,
}

impl Send {
    /// How many replies the pipeline gets back.
    pub fn replies(&self) -> usize {
        self.items.len() + self.asking.iter().filter(|&&a| a).count() + usize::from(self.wait)
    }
}

/// What the caller must do besides sending.
#[derive(Debug, Default, PartialEq)]
pub struct Effect {
    /// Read the slot map again (`CLUSTER SLOTS`).
    pub refresh: bool,
}

/// One batch in flight over the cluster (see the module docs).
#[derive(Debug)]
pub struct Dispatch {
    items: Vec<Item>,
    deadline_ms: u64,
    timeout_ms: u64,
    /// The WAIT after durable writes.
    wait: Option<Wait>,
}

impl Dispatch {
    /// A batch of commands of the given slots (`durable`: followed by the
    /// store's `WAIT`), started at `now_ms`, bounded by `timeout_ms`.
    pub fn new(
        slots: impl IntoIterator<Item = (u16, bool)>,
        now_ms: u64,
        timeout_ms: u64,
        wait: Option<Wait>,
    ) -> Dispatch {
        Dispatch {
            items: slots
                .into_iter()
                .map(|(slot, durable)| Item {
                    slot,
                    durable,
                    state: State::Ready {
                        to: To::Map,
                        not_before: 0,
                    },
                    tries: 0,
                    last: None,
                })
                .collect(),
            deadline_ms: now_ms.saturating_add(timeout_ms.max(1)),
            timeout_ms,
            wait,
        }
    }

    /// The commands ready at `now_ms`, one [`Send`] per node, marked in
    /// flight. A command whose slot the map does not cover waits (a refresh
    /// is asked for); one whose deadline passed fails.
    pub fn sends(&mut self, map: &SlotMap, now_ms: u64) -> (Vec<Send>, Effect) {
        self.expire(now_ms);
        let mut effect = Effect::default();
        let mut sends: Vec<Send> = Vec::new();
        for (i, item) in self.items.iter_mut().enumerate() {
            let State::Ready { to, not_before } = &item.state else {
                continue;
            };
            if *not_before > now_ms {
                continue;
            }
            let (node, asking) = match to {
                To::Ask(n) => (n.clone(), true),
                To::Map => match map.node_of(item.slot) {
                    Some(n) => (n.clone(), false),
                    None => {
                        effect.refresh = true;
                        item.tries += 1;
                        item.last = Some(PersistError::Unavailable(format!(
                            "no cluster node serves hash slot {}",
                            item.slot
                        )));
                        item.state = State::Ready {
                            to: To::Map,
                            not_before: now_ms + pause_ms(item.tries),
                        };
                        continue;
                    }
                },
            };
            let at = match sends.iter().position(|s| s.node == node) {
                Some(at) => at,
                None => {
                    sends.push(Send {
                        node,
                        items: Vec::new(),
                        asking: Vec::new(),
                        wait: false,
                    });
                    sends.len() - 1
                }
            };
            let s = &mut sends[at];
            s.items.push(i);
            s.asking.push(asking);
            s.wait |= item.durable && self.wait.is_some();
            item.state = State::InFlight;
        }
        (sends, effect)
    }

    /// The replies of `send`, in order (its `ASKING`s and `WAIT` included).
    pub fn replies(
        &mut self,
        send: &Send,
        mut values: Vec<Value>,
        map: &mut SlotMap,
        now_ms: u64,
    ) -> Effect {
        let mut effect = Effect::default();
        if values.len() != send.replies() {
            let got = values.len();
            for &i in &send.items {
                self.settle(
                    i,
                    State::Failed(PersistError::Internal(format!(
                        "pipeline returned {got} replies for {} commands",
                        send.replies()
                    ))),
                );
            }
            return effect;
        }
        let waited = match (send.wait, &self.wait) {
            (true, Some(w)) => values.pop().map(|v| w.check(&v)),
            _ => None,
        };
        let mut values = values.into_iter();
        for (&i, &asking) in send.items.iter().zip(&send.asking) {
            if asking {
                // the reply of ASKING itself
                values.next();
            }
            let Some(v) = values.next() else { break };
            let Some(item) = self.items.get_mut(i) else {
                continue;
            };
            if !matches!(item.state, State::InFlight) {
                continue;
            }
            let quick = item.tries < QUICK_REDIRECTS;
            let (to, pause, why) = match redirect_of(&v) {
                None => {
                    let waited = match &waited {
                        Some(w) if item.durable => Some(w.clone()),
                        _ => None,
                    };
                    item.state = State::Done(Reply { value: v, waited });
                    continue;
                }
                Some(Redirect::Moved { slot, to }) => {
                    map.moved(slot, to);
                    effect.refresh = true;
                    (To::Map, !quick, "MOVED")
                }
                Some(Redirect::Ask { to, .. }) => (To::Ask(to), !quick, "ASK"),
                Some(Redirect::Retry) => (To::Map, true, "busy (TRYAGAIN/CLUSTERDOWN)"),
                Some(Redirect::Refresh) => {
                    effect.refresh = true;
                    (To::Map, true, "READONLY")
                }
            };
            let not_before = if pause {
                now_ms + pause_ms(item.tries)
            } else {
                now_ms
            };
            item.tries += 1;
            item.last = Some(PersistError::Unavailable(format!(
                "the cluster kept redirecting the command ({why}, {} times)",
                item.tries
            )));
            item.state = State::Ready { to, not_before };
        }
        self.expire(now_ms);
        effect
    }

    /// The connection to `send`'s node failed. `written`: the pipeline (or
    /// part of it) reached the socket, so its commands may have run: they
    /// fail with `err`. Otherwise (the node could not be reached) they go
    /// again after a pause, once the map is read again, until the deadline.
    pub fn failed(&mut self, send: &Send, err: PersistError, written: bool, now_ms: u64) -> Effect {
        for &i in &send.items {
            let Some(item) = self.items.get_mut(i) else {
                continue;
            };
            if !matches!(item.state, State::InFlight) {
                continue;
            }
            if written {
                item.state = State::Failed(err.clone());
            } else {
                item.state = State::Ready {
                    to: To::Map,
                    not_before: now_ms + pause_ms(item.tries),
                };
                item.tries += 1;
                item.last = Some(err.clone());
            }
        }
        self.expire(now_ms);
        Effect {
            refresh: !written || matches!(err, PersistError::Unavailable(_)),
        }
    }

    /// Fail what waits past the deadline (with why it was last sent again).
    pub fn expire(&mut self, now_ms: u64) {
        if now_ms < self.deadline_ms {
            return;
        }
        let timeout = self.timeout_ms;
        for item in &mut self.items {
            if matches!(item.state, State::Ready { .. }) {
                let err = item.last.take().unwrap_or(PersistError::Timeout(timeout));
                item.state = State::Failed(err);
            }
        }
    }

    fn settle(&mut self, i: usize, state: State) {
        if let Some(item) = self.items.get_mut(i) {
            item.state = state;
        }
    }

    /// When [`Dispatch::sends`] has something to send next (a paused
    /// command's time, or the deadline), if anything waits.
    pub fn next_wake(&self) -> Option<u64> {
        self.items
            .iter()
            .filter_map(|it| match it.state {
                State::Ready { not_before, .. } => Some(not_before.min(self.deadline_ms)),
                _ => None,
            })
            .min()
    }

    /// The deadline of the whole batch.
    pub fn deadline_ms(&self) -> u64 {
        self.deadline_ms
    }

    /// Has every command an outcome?
    pub fn is_done(&self) -> bool {
        self.items
            .iter()
            .all(|it| matches!(it.state, State::Done(_) | State::Failed(_)))
    }

    /// Each command's reply, or why it has none; in batch order.
    pub fn results(self) -> Vec<Result<Reply, PersistError>> {
        self.items
            .into_iter()
            .map(|it| match it.state {
                State::Done(r) => Ok(r),
                State::Failed(e) => Err(e),
                State::Ready { .. } | State::InFlight => {
                    Err(PersistError::Internal("cluster batch not finished".into()))
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redis::cluster::redirect::reply;

    fn node(p: u16) -> Node {
        Node::new("127.0.0.1", p)
    }

    /// Three primaries 7000/7001/7002 over the usual ranges.
    fn map3() -> SlotMap {
        let entry = |a: i64, b: i64, p: i64| {
            Value::Array(vec![
                Value::Int(a),
                Value::Int(b),
                Value::Array(vec![
                    Value::BulkString(b"127.0.0.1".to_vec()),
                    Value::Int(p),
                ]),
            ])
        };
        let v = Value::Array(vec![
            entry(0, 5460, 7000),
            entry(5461, 10922, 7001),
            entry(10923, 16383, 7002),
        ]);
        SlotMap::from_cluster_slots(&v, "127.0.0.1").unwrap_or_default()
    }

    fn ok() -> Value {
        Value::Okay
    }

    /// The replies' values (the WAIT verdicts left out).
    fn values(d: Dispatch) -> Vec<Result<Value, PersistError>> {
        d.results()
            .into_iter()
            .map(|r| r.map(|r| r.value))
            .collect()
    }

    #[test]
    fn one_pipeline_per_primary_in_batch_order() {
        let map = map3();
        // slots on 7000, 7001, 7000, 7002, 7001
        let mut d = Dispatch::new(
            [
                (1, false),
                (6000, false),
                (2, false),
                (12000, false),
                (7000, false),
            ],
            0,
            1000,
            None,
        );
        let (sends, effect) = d.sends(&map, 0);
        assert_eq!(effect, Effect::default());
        let by: Vec<(u16, Vec<usize>)> = sends
            .iter()
            .map(|s| (s.node.port, s.items.clone()))
            .collect();
        assert_eq!(
            by,
            vec![(7000, vec![0, 2]), (7001, vec![1, 4]), (7002, vec![3])]
        );
        assert!(sends.iter().all(|s| !s.wait && s.asking.iter().all(|a| !a)));
        // nothing is sent twice
        assert!(d.sends(&map, 0).0.is_empty());
        let mut map = map;
        for (s, v) in sends.iter().zip([
            vec![ok(), ok()],
            vec![Value::Int(1), Value::Nil],
            vec![Value::Int(0)],
        ]) {
            assert!(!d.is_done());
            d.replies(s, v, &mut map, 1);
        }
        assert!(d.is_done());
        assert_eq!(d.next_wake(), None);
        let r: Vec<Value> = values(d)
            .into_iter()
            .map(|r| r.unwrap_or(Value::Nil))
            .collect();
        assert_eq!(
            r,
            vec![ok(), Value::Int(1), ok(), Value::Int(0), Value::Nil]
        );
    }

    #[test]
    fn moved_patches_the_map_and_goes_again_at_once() {
        let mut map = map3();
        let mut d = Dispatch::new([(1, false), (2, false)], 0, 1000, None);
        let (sends, _) = d.sends(&map, 0);
        let e = d.replies(
            &sends[0],
            vec![reply("-MOVED 1 127.0.0.1:7005\r\n"), reply("$1\r\nx\r\n")],
            &mut map,
            3,
        );
        assert!(e.refresh);
        assert_eq!(map.node_of(1), Some(&node(7005)));
        assert_eq!(map.node_of(2), Some(&node(7000)));
        assert_eq!(d.next_wake(), Some(3));
        let (again, _) = d.sends(&map, 3);
        assert_eq!(again.len(), 1);
        assert_eq!(
            (again[0].node.port, again[0].items.clone()),
            (7005, vec![0])
        );
        d.replies(&again[0], vec![ok()], &mut map, 4);
        assert!(d.is_done());
        let r = values(d);
        assert!(matches!(&r[0], Ok(Value::Okay)));
        assert!(matches!(&r[1], Ok(Value::BulkString(b)) if b == b"x"));
    }

    #[test]
    fn ask_sends_asking_and_the_command_together_once() {
        let mut map = map3();
        let mut d = Dispatch::new([(1, false), (2, false)], 0, 1000, None);
        let (sends, _) = d.sends(&map, 0);
        let e = d.replies(
            &sends[0],
            vec![ok(), reply("-ASK 2 127.0.0.1:7001\r\n")],
            &mut map,
            1,
        );
        // ASK does not change the map
        assert!(!e.refresh);
        assert_eq!(map.node_of(2), Some(&node(7000)));
        let (again, _) = d.sends(&map, 1);
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].node, node(7001));
        assert_eq!(again[0].asking, vec![true]);
        assert_eq!(again[0].replies(), 2);
        d.replies(&again[0], vec![ok(), Value::Int(1)], &mut map, 2);
        assert!(d.is_done());
        let r = values(d);
        assert!(matches!(&r[1], Ok(Value::Int(1))));
    }

    #[test]
    fn ask_then_moved_goes_back_to_the_map() {
        let mut map = map3();
        let mut d = Dispatch::new([(2, false)], 0, 1000, None);
        let (s, _) = d.sends(&map, 0);
        d.replies(&s[0], vec![reply("-ASK 2 127.0.0.1:7001\r\n")], &mut map, 0);
        let (s, _) = d.sends(&map, 0);
        // the migration finished meanwhile: the target says MOVED to itself
        d.replies(
            &s[0],
            vec![ok(), reply("-MOVED 2 127.0.0.1:7001\r\n")],
            &mut map,
            0,
        );
        let (s, _) = d.sends(&map, 0);
        assert_eq!((s[0].node.port, s[0].asking.clone()), (7001, vec![false]));
    }

    #[test]
    fn tryagain_and_clusterdown_wait_and_retry_within_the_timeout() {
        let mut map = map3();
        let mut d = Dispatch::new([(1, false)], 100, 50, None);
        let (s, _) = d.sends(&map, 100);
        d.replies(&s[0], vec![reply("-TRYAGAIN rehashing\r\n")], &mut map, 101);
        // paused: nothing to send before its time
        assert_eq!(d.next_wake(), Some(101 + pause_ms(0)));
        assert!(d.sends(&map, 102).0.is_empty());
        let (s, _) = d.sends(&map, 106);
        assert_eq!(s.len(), 1);
        d.replies(
            &s[0],
            vec![reply("-CLUSTERDOWN The cluster is down\r\n")],
            &mut map,
            107,
        );
        assert_eq!(d.next_wake(), Some(107 + pause_ms(1)));
        let (s, _) = d.sends(&map, 117);
        d.replies(&s[0], vec![ok()], &mut map, 118);
        assert!(d.is_done());
        assert!(matches!(values(d)[0], Ok(Value::Okay)));

        // still down at the deadline: fails with why it was retried
        let mut d = Dispatch::new([(1, false)], 100, 50, None);
        let mut now = 100;
        while !d.is_done() {
            let (s, _) = d.sends(&map, now);
            for s in &s {
                d.replies(
                    s,
                    vec![reply("-CLUSTERDOWN The cluster is down\r\n")],
                    &mut map,
                    now,
                );
            }
            now = d.next_wake().unwrap_or(now).max(now + 1);
            assert!(now <= 151, "bounded by the deadline");
        }
        let r = values(d);
        assert!(
            matches!(&r[0], Err(PersistError::Unavailable(m)) if m.contains("CLUSTERDOWN")),
            "{r:?}"
        );
    }

    #[test]
    fn redirects_in_a_loop_slow_down_and_end_at_the_deadline() {
        let mut map = map3();
        let mut d = Dispatch::new([(1, false)], 0, 1000, None);
        let mut now = 0;
        let mut sent = 0;
        while !d.is_done() {
            let (s, _) = d.sends(&map, now);
            for s in &s {
                sent += 1;
                // two nodes that each say the other has it
                let to = if s.node.port == 7000 { 7001 } else { 7000 };
                d.replies(
                    s,
                    vec![reply(&format!("-MOVED 1 127.0.0.1:{to}\r\n"))],
                    &mut map,
                    now,
                );
            }
            now = d.next_wake().unwrap_or(now).max(now + 1);
        }
        // quick at first, then at most one try per 100 ms
        assert!(sent <= QUICK_REDIRECTS as usize + 20, "{sent}");
        assert!(matches!(&values(d)[0], Err(PersistError::Unavailable(m)) if m.contains("MOVED")));
    }

    #[test]
    fn durable_writes_get_one_wait_per_node() {
        let mut map = map3();
        let wait = Some(Wait {
            replicas: 1,
            timeout_ms: 500,
        });
        // durable on 7000, plain on 7000, plain on 7001
        let mut d = Dispatch::new([(1, true), (2, false), (6000, false)], 0, 1000, wait);
        let (s, _) = d.sends(&map, 0);
        assert_eq!((s[0].node.port, s[0].wait, s[0].replies()), (7000, true, 3));
        assert_eq!(
            (s[1].node.port, s[1].wait, s[1].replies()),
            (7001, false, 1)
        );
        // the WAIT came back short: its verdict goes with the durable
        // write only (the batch seam fails it); the rest stands
        d.replies(&s[0], vec![ok(), ok(), Value::Int(0)], &mut map, 1);
        d.replies(&s[1], vec![ok()], &mut map, 1);
        let r = d.results();
        assert!(
            matches!(&r[0], Ok(Reply { value: Value::Okay, waited: Some(Err(PersistError::Unavailable(m))) }) if m.contains("WAIT")),
            "{r:?}"
        );
        assert!(matches!(
            &r[1],
            Ok(Reply {
                value: Value::Okay,
                waited: None
            })
        ));
        assert!(matches!(
            &r[2],
            Ok(Reply {
                value: Value::Okay,
                waited: None
            })
        ));

        // acknowledged; a durable write MOVED elsewhere gets its own WAIT there
        let mut d = Dispatch::new([(1, true), (2, true)], 0, 1000, wait);
        let (s, _) = d.sends(&map, 0);
        d.replies(
            &s[0],
            vec![reply("-MOVED 1 127.0.0.1:7003\r\n"), ok(), Value::Int(1)],
            &mut map,
            1,
        );
        let (s, _) = d.sends(&map, 1);
        assert_eq!((s[0].node.port, s[0].wait), (7003, true));
        d.replies(&s[0], vec![ok(), Value::Int(1)], &mut map, 2);
        assert!(d.results().iter().all(|r| matches!(
            r,
            Ok(Reply {
                value: Value::Okay,
                waited: Some(Ok(()))
            })
        )));

        // no WAIT without waitReplicas
        let mut d = Dispatch::new([(1, true)], 0, 1000, None);
        assert!(!d.sends(&map, 0).0[0].wait);
    }

    #[test]
    fn a_command_error_is_its_reply_and_fails_no_other() {
        let mut map = map3();
        let wait = Some(Wait {
            replicas: 1,
            timeout_ms: 10,
        });
        let mut d = Dispatch::new([(1, true), (2, false)], 0, 1000, wait);
        let (s, _) = d.sends(&map, 0);
        let e = d.replies(
            &s[0],
            vec![reply("-WRONGTYPE bad\r\n"), ok(), Value::Int(0)],
            &mut map,
            0,
        );
        assert!(!e.refresh);
        let r = values(d);
        // the command's own error stands (not the WAIT's)
        assert!(matches!(&r[0], Ok(Value::ServerError(e)) if e.code() == "WRONGTYPE"));
        assert!(matches!(&r[1], Ok(Value::Okay)));
    }

    #[test]
    fn connection_failures() {
        let mut map = map3();
        // written: its commands may have run, they fail
        let mut d = Dispatch::new([(1, false), (6000, false)], 0, 1000, None);
        let (s, _) = d.sends(&map, 0);
        let e = d.failed(&s[0], PersistError::Unavailable("reset".into()), true, 1);
        assert!(e.refresh);
        d.replies(&s[1], vec![ok()], &mut map, 1);
        let r = values(d);
        assert!(matches!(&r[0], Err(PersistError::Unavailable(m)) if m == "reset"));
        assert!(matches!(&r[1], Ok(Value::Okay)));

        // not written (refused: a failed primary): again once the map says
        // where, here the promoted replica
        let mut d = Dispatch::new([(1, false)], 0, 1000, None);
        let (s, _) = d.sends(&map, 0);
        let e = d.failed(&s[0], PersistError::Unavailable("refused".into()), false, 1);
        assert!(e.refresh);
        map.moved(1, node(7003));
        assert!(d.sends(&map, 1).0.is_empty());
        let (s, _) = d.sends(&map, 1 + pause_ms(0));
        assert_eq!(s[0].node.port, 7003);
        d.replies(&s[0], vec![ok()], &mut map, 10);
        assert!(matches!(values(d)[0], Ok(Value::Okay)));

        // never reachable: the last failure at the deadline
        let mut d = Dispatch::new([(1, false)], 0, 100, None);
        let mut now = 0;
        while !d.is_done() {
            for s in d.sends(&map, now).0 {
                d.failed(&s, PersistError::Unavailable("refused".into()), false, now);
            }
            now = d.next_wake().unwrap_or(now).max(now + 1);
        }
        assert!(matches!(&values(d)[0], Err(PersistError::Unavailable(m)) if m == "refused"));
    }

    #[test]
    fn uncovered_slots_wait_for_a_map() {
        let mut map = SlotMap::default();
        let mut d = Dispatch::new([(1, false)], 0, 100, None);
        let (s, e) = d.sends(&map, 0);
        assert!(s.is_empty() && e.refresh);
        map.moved(1, node(7000));
        let (s, _) = d.sends(&map, pause_ms(1));
        assert_eq!(s[0].node.port, 7000);
        d.failed(&s[0], PersistError::Timeout(100), true, 100);
        assert!(matches!(values(d)[0], Err(PersistError::Timeout(100))));
        // never covered: not served, at the deadline
        let mut d = Dispatch::new([(1, false)], 0, 100, None);
        let mut now = 0;
        while !d.is_done() {
            assert!(d.sends(&SlotMap::default(), now).0.is_empty());
            now = d.next_wake().unwrap_or(now).max(now + 1);
        }
        assert!(matches!(&values(d)[0], Err(PersistError::Unavailable(m)) if m.contains("slot 1")));
    }

    #[test]
    fn short_pipelines_fail_their_commands() {
        let mut map = map3();
        let mut d = Dispatch::new([(1, false), (2, false)], 0, 100, None);
        let (s, _) = d.sends(&map, 0);
        d.replies(&s[0], vec![ok()], &mut map, 0);
        assert!(d
            .results()
            .iter()
            .all(|r| matches!(r, Err(PersistError::Internal(_)))));
        assert_eq!(pause_ms(0), 5);
        assert_eq!(pause_ms(3), 40);
        assert_eq!(pause_ms(30), 100);
    }
}
