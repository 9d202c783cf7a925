//! The protocol state of the data connection, without I/O: batches of ops
//! packed into RESP by the `redis` crate, replies decoded by the crate's own
//! incremental decoder (`ValueCodec`) and matched to the batches in order.
//! The socket is driven by the caller (`redis::direct`, on the JS thread);
//! time comes in as numbers, so `cargo test` covers all of it.

use std::collections::VecDeque;

use bytes::BytesMut;
use redis::{Cmd, Value, ValueCodec};
use tokio_util::codec::Decoder;

use crate::error::{PersistError, Result};
use crate::redis::store::{check_wait, decode, op_cmd, Op, OpResult};

/// A batch written and waiting for its replies.
struct Sent {
    /// The ops, values dropped once packed (decoding needs kind and key).
    ops: Vec<Op>,
    /// A `WAIT` follows the ops (a durable write with `waitReplicas`).
    waits: bool,
    /// When it was written (caller's clock, ms).
    sent_ms: u64,
}

/// One connection's bytes in both directions and the batches in flight.
pub struct Wire {
    out: Vec<u8>,
    /// Bytes of `out` already written to the socket.
    out_pos: usize,
    inb: BytesMut,
    codec: ValueCodec,
    sent: VecDeque<Sent>,
    /// Replies gathered so far for the oldest batch.
    replies: Vec<Value>,
    /// `WAIT n timeout` after durable writes, and its n and timeout.
    wait: Option<(Cmd, u32, u64)>,
}

impl Wire {
    /// `wait`: `(n, timeout_ms)` of `WAIT` after durable writes, or None.
    pub fn new(wait: Option<(u32, u64)>) -> Self {
        Wire {
            out: Vec::with_capacity(4096),
            out_pos: 0,
            inb: BytesMut::with_capacity(16 * 1024),
            codec: ValueCodec::default(),
            sent: VecDeque::new(),
            replies: Vec::new(),
            wait: wait.map(|(n, t)| {
                let mut c = redis::cmd("WAIT");
                c.arg(n).arg(t);
                (c, n, t)
            }),
        }
    }

    /// Pack `ops` (one batch: its replies come back together) at `now_ms`.
    pub fn send(&mut self, mut ops: Vec<Op>, now_ms: u64) {
        if self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
        }
        let mut durable = false;
        for op in &mut ops {
            op_cmd(op).write_packed_command(&mut self.out);
            // the value is on its way; only kind and key are needed later
            match op {
                Op::Set(_, v, _) => *v = Vec::new(),
                Op::SetDurable(_, v, _) => {
                    *v = Vec::new();
                    durable = true;
                }
                _ => {}
            }
        }
        let waits = durable && self.wait.is_some();
        if let (true, Some((cmd, ..))) = (waits, &self.wait) {
            cmd.write_packed_command(&mut self.out);
        }
        self.sent.push_back(Sent {
            ops,
            waits,
            sent_ms: now_ms,
        });
    }

    /// The bytes still to write.
    pub fn unwritten(&self) -> &[u8] {
        &self.out[self.out_pos..]
    }

    /// `n` bytes of [`Wire::unwritten`] reached the socket.
    pub fn wrote(&mut self, n: usize) {
        self.out_pos = (self.out_pos + n).min(self.out.len());
        if self.out_pos == self.out.len() && self.out.capacity() > 1 << 20 {
            // a burst of large values: do not keep the buffer at its peak
            self.out = Vec::with_capacity(4096);
            self.out_pos = 0;
        }
    }

    /// Batches waiting for replies.
    pub fn in_flight(&self) -> usize {
        self.sent.len()
    }

    /// When the oldest batch in flight was written.
    pub fn oldest_sent_ms(&self) -> Option<u64> {
        self.sent.front().map(|s| s.sent_ms)
    }

    /// Bytes read from the socket: the results of every batch they complete,
    /// oldest first (one `Vec` per batch, one result per op). A reply that
    /// cannot be decoded is an error: the connection is out of step and
    /// must be dropped.
    pub fn received(&mut self, bytes: &[u8], done: &mut Vec<Vec<OpResult>>) -> Result<()> {
        self.inb.extend_from_slice(bytes);
        self.parse(done)
    }

    /// Read from the socket straight into the reply buffer: `read(ptr, n)`
    /// writes at most `n` bytes at `ptr` and returns how many (or < 0, as
    /// `recv`), which is returned. Parse with [`Wire::parse`].
    pub fn fill(&mut self, read: impl FnOnce(*mut u8, usize) -> isize) -> isize {
        self.inb.reserve(64 * 1024);
        let spare = self.inb.spare_capacity_mut();
        let n = read(spare.as_mut_ptr() as *mut u8, spare.len());
        if n > 0 {
            let n = (n as usize).min(spare.len());
            // SAFETY: `read` initialised the first `n` bytes of the spare
            // capacity (at most its length)
            unsafe { self.inb.set_len(self.inb.len() + n) };
        }
        n
    }

    /// Decode what [`Wire::fill`] / [`Wire::received`] brought in: the
    /// results of every batch it completes go to `done`, oldest first.
    pub fn parse(&mut self, done: &mut Vec<Vec<OpResult>>) -> Result<()> {
        loop {
            let Some(front) = self.sent.front() else {
                if self.inb.is_empty() {
                    return Ok(());
                }
                return Err(PersistError::Store(
                    "the server sent a reply nobody asked for".into(),
                ));
            };
            let want = front.ops.len() + usize::from(front.waits);
            while self.replies.len() < want {
                match self.codec.decode(&mut self.inb) {
                    Ok(Some(v)) => self.replies.push(v),
                    Ok(None) => {
                        self.compact();
                        return Ok(());
                    }
                    Err(e) => {
                        return Err(PersistError::Store(format!("unreadable reply: {e}")));
                    }
                }
            }
            let Some(batch) = self.sent.pop_front() else {
                return Ok(());
            };
            let mut values = std::mem::take(&mut self.replies);
            let waited = if batch.waits {
                values.pop().map(|v| match &self.wait {
                    Some((_, n, t)) => check_wait(&v, *n, *t),
                    None => Ok(()),
                })
            } else {
                None
            };
            done.push(
                batch
                    .ops
                    .iter()
                    .zip(values)
                    .map(|(op, v)| match (&waited, op) {
                        (Some(Err(e)), Op::SetDurable(..))
                            if !matches!(v, Value::ServerError(_)) =>
                        {
                            OpResult::Failed(crate::redis::store::again(e))
                        }
                        _ => decode(op, v),
                    })
                    .collect(),
            );
        }
    }

    /// Give the read buffer's consumed space back when it grew large.
    fn compact(&mut self) {
        if self.inb.is_empty() && self.inb.capacity() > 1 << 20 {
            self.inb = BytesMut::with_capacity(16 * 1024);
        }
    }

    /// Forget every batch in flight (the connection is gone); how many.
    pub fn abandon(&mut self) -> usize {
        let n = self.sent.len();
        self.sent.clear();
        self.replies.clear();
        self.inb.clear();
        self.out.clear();
        self.out_pos = 0;
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn units(s: &str) -> crate::redis::store::Text {
        crate::redis::store::Text::of(s)
    }

    #[test]
    fn packs_with_the_crate_and_matches_replies_in_order() -> Result<()> {
        let mut w = Wire::new(None);
        w.send(
            vec![
                Op::Get(b"a".to_vec()),
                Op::Set(b"b".to_vec(), b"v".to_vec(), Some(5)),
            ],
            10,
        );
        w.send(
            vec![Op::Exists(b"c".to_vec()), Op::Delete(b"d".to_vec())],
            11,
        );
        let expected: &[u8] = b"*2\r\n$3\r\nGET\r\n$1\r\na\r\n*5\r\n$3\r\nSET\r\n$1\r\nb\r\n$1\r\nv\r\n$2\r\nEX\r\n$1\r\n5\r\n*2\r\n$6\r\nEXISTS\r\n$1\r\nc\r\n*2\r\n$3\r\nDEL\r\n$1\r\nd\r\n";
        assert_eq!(w.unwritten(), expected);
        w.wrote(10);
        assert_eq!(w.unwritten(), &expected[10..]);
        w.wrote(expected.len());
        assert!(w.unwritten().is_empty());
        assert_eq!(w.in_flight(), 2);
        assert_eq!(w.oldest_sent_ms(), Some(10));

        // replies split at every possible byte boundary
        let replies: &[u8] = b"$5\r\nhello\r\n+OK\r\n:1\r\n:0\r\n";
        for cut in 0..replies.len() {
            let mut w2 = Wire::new(None);
            w2.send(
                vec![
                    Op::Get(b"a".to_vec()),
                    Op::Set(b"b".to_vec(), b"v".to_vec(), None),
                ],
                0,
            );
            w2.send(
                vec![Op::Exists(b"c".to_vec()), Op::Delete(b"d".to_vec())],
                0,
            );
            let mut done = Vec::new();
            w2.received(&replies[..cut], &mut done)?;
            w2.received(&replies[cut..], &mut done)?;
            assert_eq!(
                done,
                vec![
                    vec![OpResult::Value(Some(units("hello"))), OpResult::Done],
                    vec![OpResult::Bool(true), OpResult::Bool(false)],
                ],
                "cut at {cut}"
            );
            assert_eq!(w2.in_flight(), 0);
        }
        Ok(())
    }

    #[test]
    fn server_errors_fail_one_op_and_nil_is_a_miss() -> Result<()> {
        let mut w = Wire::new(None);
        w.send(vec![Op::Get(b"a".to_vec()), Op::Get(b"b".to_vec())], 0);
        let mut done = Vec::new();
        w.received(b"-WRONGTYPE Operation against a key\r\n$-1\r\n", &mut done)?;
        assert_eq!(done.len(), 1);
        assert!(
            matches!(&done[0][0], OpResult::Failed(PersistError::Store(m)) if m.starts_with("WRONGTYPE"))
        );
        assert_eq!(done[0][1], OpResult::Value(None));
        Ok(())
    }

    #[test]
    fn durable_writes_wait_and_fail_when_too_few_replicas_ack() -> Result<()> {
        let mut w = Wire::new(Some((1, 250)));
        w.send(
            vec![
                Op::SetDurable(b"s".to_vec(), b"{}".to_vec(), None),
                Op::Get(b"g".to_vec()),
            ],
            0,
        );
        assert!(w
            .unwritten()
            .ends_with(b"*3\r\n$4\r\nWAIT\r\n$1\r\n1\r\n$3\r\n250\r\n"));
        // a plain write adds no WAIT
        w.send(vec![Op::Set(b"p".to_vec(), b"1".to_vec(), None)], 0);
        let mut done = Vec::new();
        w.received(b"+OK\r\n$-1\r\n:0\r\n+OK\r\n", &mut done)?;
        assert_eq!(done.len(), 2);
        assert!(
            matches!(&done[0][0], OpResult::Failed(PersistError::Unavailable(m)) if m.contains("only 0 of 1"))
        );
        assert_eq!(done[0][1], OpResult::Value(None));
        assert_eq!(done[1], vec![OpResult::Done]);
        let mut ok = Wire::new(Some((1, 250)));
        ok.send(vec![Op::SetDurable(b"s".to_vec(), b"{}".to_vec(), None)], 0);
        let mut done = Vec::new();
        ok.received(b"+OK\r\n:1\r\n", &mut done)?;
        assert_eq!(done, vec![vec![OpResult::Done]]);
        Ok(())
    }

    #[test]
    fn unsolicited_or_garbled_replies_are_errors() {
        let mut w = Wire::new(None);
        let mut done = Vec::new();
        assert!(w.received(b"+OK\r\n", &mut done).is_err());
        let mut w = Wire::new(None);
        w.send(vec![Op::Get(b"a".to_vec())], 0);
        assert!(w.received(b"?what\r\n", &mut done).is_err());
        assert_eq!(w.abandon(), 1);
        assert_eq!(w.in_flight(), 0);
    }
}
