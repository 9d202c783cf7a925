//! The protocol state of one connection, without I/O: batches
//! ([`crate::redis::batch`]) packed into RESP, replies decoded and matched
//! to the batches in order. The `redis` crate is the protocol: its
//! incremental decoder (`ValueCodec`) reads every reply but the four shapes
//! the data commands get back on the hot path (a bulk string, nil, `+OK`,
//! an integer), which [`fast_reply`] reads in place, checked byte for byte
//! against the crate (the tests below, every split point of the input).
//! Each batch carries an owner tag `T` (who gets its results), handed back
//! with them. A batch is the store's ops ([`Wire::send`]: results) or a
//! pipeline packed by the caller ([`Wire::send_raw`]: the replies as they
//! came, for a cluster's dispatch, which reads its redirects). The socket (plain or TLS) is driven by the caller; time comes
//! in as numbers, so `cargo test` covers all of it.

use std::collections::VecDeque;

use bytes::{Buf, BytesMut};
use redis::{Value, ValueCodec};
use tokio_util::codec::Decoder;

use crate::error::{PersistError, Result};
use crate::redis::batch::{Batch, Op, OpResult, Wait};

/// What a batch in flight turns its replies into.
enum Pending {
    /// The store's ops: their values dropped once packed (decoding needs
    /// kinds and keys).
    Ops(Batch),
    /// A caller's pipeline of this many replies, handed back as they came.
    Raw(usize),
}

/// A completed batch's replies: one result per op, or the raw replies.
#[derive(Debug, PartialEq)]
pub enum Replies {
    Results(Vec<OpResult>),
    Values(Vec<Value>),
}

/// A batch written and waiting for its replies.
struct Sent<T> {
    batch: Pending,
    /// When it was written (caller's clock, ms).
    sent_ms: u64,
    owner: T,
}

/// One connection's bytes in both directions and the batches in flight.
pub struct Wire<T> {
    out: Vec<u8>,
    /// Bytes of `out` already written to the socket.
    out_pos: usize,
    inb: BytesMut,
    codec: ValueCodec,
    /// The crate's decoder stopped inside a reply: it reads the rest.
    codec_partial: bool,
    sent: VecDeque<Sent<T>>,
    /// Replies gathered so far for the oldest batch.
    replies: Vec<Value>,
    /// `WAIT` after durable writes.
    wait: Option<Wait>,
}

impl<T> Wire<T> {
    /// `wait`: the `WAIT` after durable writes, or None.
    pub fn new(wait: Option<Wait>) -> Self {
        Wire {
            out: Vec::with_capacity(4096),
            out_pos: 0,
            inb: BytesMut::with_capacity(16 * 1024),
            codec: ValueCodec::default(),
            codec_partial: false,
            sent: VecDeque::new(),
            replies: Vec::new(),
            wait,
        }
    }

    /// Pack `ops` (one batch: its replies come back together) at `now_ms`;
    /// its results go to `owner`.
    pub fn send(&mut self, ops: Vec<Op>, owner: T, now_ms: u64) {
        if self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
        }
        let mut batch = Batch::new(ops, self.wait);
        batch.pack(&mut self.out);
        batch.shed_values();
        self.sent.push_back(Sent {
            batch: Pending::Ops(batch),
            sent_ms: now_ms,
            owner,
        });
    }

    /// Write `packed` (RESP commands, `replies` of them back) at `now_ms`;
    /// the replies go to `owner` as they came.
    pub fn send_raw(&mut self, packed: &[u8], replies: usize, owner: T, now_ms: u64) {
        if self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
        }
        self.out.extend_from_slice(packed);
        self.sent.push_back(Sent {
            batch: Pending::Raw(replies),
            sent_ms: now_ms,
            owner,
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
    pub fn received(&mut self, bytes: &[u8], done: &mut Vec<(T, Replies)>) -> Result<()> {
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
    pub fn parse(&mut self, done: &mut Vec<(T, Replies)>) -> Result<()> {
        loop {
            let Some(front) = self.sent.front() else {
                if self.inb.is_empty() {
                    return Ok(());
                }
                return Err(PersistError::Store(
                    "the server sent a reply nobody asked for".into(),
                ));
            };
            let want = match &front.batch {
                Pending::Ops(b) => b.replies(),
                Pending::Raw(n) => *n,
            };
            while self.replies.len() < want {
                match self.next_value()? {
                    Some(v) => self.replies.push(v),
                    None => {
                        self.compact();
                        return Ok(());
                    }
                }
            }
            let Some(sent) = self.sent.pop_front() else {
                return Ok(());
            };
            let values = std::mem::take(&mut self.replies);
            done.push((
                sent.owner,
                match sent.batch {
                    Pending::Ops(b) => Replies::Results(b.finish(values)),
                    Pending::Raw(_) => Replies::Values(values),
                },
            ));
        }
    }

    /// The next whole reply in the read buffer, if there is one.
    fn next_value(&mut self) -> Result<Option<Value>> {
        if !self.codec_partial {
            match fast_reply(&self.inb) {
                Fast::Value(v, used) => {
                    self.inb.advance(used);
                    return Ok(Some(v));
                }
                Fast::Incomplete => return Ok(None),
                Fast::Other => {}
            }
        }
        match self.codec.decode(&mut self.inb) {
            Ok(Some(v)) => {
                self.codec_partial = false;
                Ok(Some(v))
            }
            Ok(None) => {
                // the crate may hold part of a reply in its state
                self.codec_partial = true;
                Ok(None)
            }
            Err(e) => Err(PersistError::Store(format!("unreadable reply: {e}"))),
        }
    }

    /// Give the read buffer's consumed space back when it grew large.
    fn compact(&mut self) {
        if self.inb.is_empty() && self.inb.capacity() > 1 << 20 {
            self.inb = BytesMut::with_capacity(16 * 1024);
        }
    }

    /// Forget every batch in flight (the connection is gone): their owners.
    pub fn abandon(&mut self) -> Vec<T> {
        let owners = self.sent.drain(..).map(|s| s.owner).collect();
        self.replies.clear();
        self.inb.clear();
        self.codec = ValueCodec::default();
        self.codec_partial = false;
        self.out.clear();
        self.out_pos = 0;
        owners
    }
}

/// What [`fast_reply`] made of the start of the buffer.
enum Fast {
    /// A whole reply, and how many bytes it took.
    Value(Value, usize),
    /// The start of a reply of a shape read here: wait for more bytes.
    Incomplete,
    /// Anything else: the crate's decoder reads it.
    Other,
}

/// Read one reply of the shapes the data connection's commands get back
/// (`$n` bulk string, `$-1` nil, `+OK`, `:n` integer) straight off `b`,
/// exactly as the crate's decoder would (tested).
fn fast_reply(b: &[u8]) -> Fast {
    /// The integer of a `<digits>\r\n` line at `b[1..]`, and where it ends.
    fn line_int(b: &[u8]) -> Result<(i64, usize), Fast> {
        let rest = &b[1..];
        let Some(end) = rest.iter().take(22).position(|&c| c == b'\r') else {
            return Err(if rest.len() < 22 {
                Fast::Incomplete
            } else {
                Fast::Other
            });
        };
        match rest.get(end + 1) {
            None => return Err(Fast::Incomplete),
            Some(b'\n') => {}
            Some(_) => return Err(Fast::Other),
        }
        let digits = &rest[..end];
        let (neg, digits) = match digits.split_first() {
            Some((b'-', d)) => (true, d),
            _ => (false, digits),
        };
        if digits.is_empty() || digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) {
            return Err(Fast::Other);
        }
        let n = digits
            .iter()
            .fold(0i64, |n, &d| n * 10 + i64::from(d - b'0'));
        Ok((if neg { -n } else { n }, 1 + end + 2))
    }
    match b.first() {
        None => Fast::Incomplete,
        Some(b'$') => match line_int(b) {
            Err(f) => f,
            Ok((-1, used)) => Fast::Value(Value::Nil, used),
            Ok((n, used)) if n >= 0 => {
                let n = n as usize;
                if b.len() < used + n + 2 {
                    return Fast::Incomplete;
                }
                if &b[used + n..used + n + 2] != b"\r\n" {
                    return Fast::Other;
                }
                Fast::Value(Value::BulkString(b[used..used + n].to_vec()), used + n + 2)
            }
            Ok(_) => Fast::Other,
        },
        Some(b':') => match line_int(b) {
            Err(f) => f,
            Ok((n, used)) => Fast::Value(Value::Int(n), used),
        },
        Some(b'+') => {
            if b.starts_with(b"+OK\r\n") {
                Fast::Value(Value::Okay, 5)
            } else if b.len() < 5 && b"+OK\r\n".starts_with(b) {
                Fast::Incomplete
            } else {
                Fast::Other
            }
        }
        Some(_) => Fast::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn units(s: &str) -> crate::redis::batch::Text {
        crate::redis::batch::Text::of(s)
    }

    /// Every reply decoded by the crate alone, one value at a time.
    fn by_the_crate(bytes: &[u8]) -> Vec<std::result::Result<Value, String>> {
        let mut codec = ValueCodec::default();
        let mut buf = BytesMut::from(bytes);
        let mut out = Vec::new();
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(v)) => out.push(Ok(v)),
                Ok(None) => return out,
                Err(e) => {
                    out.push(Err(e.to_string()));
                    return out;
                }
            }
        }
    }

    #[test]
    fn fast_replies_decode_as_the_crate_does_at_every_split() -> Result<()> {
        let frames: Vec<&[u8]> = vec![
            b"$5\r\nhello\r\n",
            b"$0\r\n\r\n",
            b"$-1\r\n",
            b"$8\r\na\r\n$1\r\nb\r\n",
            b"+OK\r\n",
            b"+PONG\r\n",
            b"+O\r\n",
            b":0\r\n",
            b":1\r\n",
            b":-7\r\n",
            b":999999999999999999\r\n",
            b":-999999999999999999\r\n",
            b":9223372036854775807\r\n",
            b"-WRONGTYPE Operation against a key\r\n",
            b"*2\r\n$1\r\na\r\n:3\r\n",
            b"*-1\r\n",
            b"_\r\n",
            b"#t\r\n",
            b"$3\r\nend\r\n",
        ];
        let all: Vec<u8> = frames.concat();
        let expected = by_the_crate(&all);
        assert_eq!(expected.len(), frames.len());
        let expected: Vec<Value> = expected
            .into_iter()
            .collect::<std::result::Result<_, _>>()
            .map_err(PersistError::Store)?;
        // fed in two pieces, split at every byte
        for cut in 0..=all.len() {
            let mut w = Wire::<u32>::new(None);
            let mut got = Vec::new();
            for piece in [&all[..cut], &all[cut..]] {
                w.inb.extend_from_slice(piece);
                while let Some(v) = w.next_value()? {
                    got.push(v);
                }
            }
            assert_eq!(got, expected, "cut at {cut}");
        }
        // and one byte at a time
        let mut w = Wire::<u32>::new(None);
        let mut got = Vec::new();
        for b in &all {
            w.inb.extend_from_slice(&[*b]);
            while let Some(v) = w.next_value()? {
                got.push(v);
            }
        }
        assert_eq!(got, expected);
        Ok(())
    }

    #[test]
    fn packs_with_the_crate_and_matches_replies_in_order() -> Result<()> {
        let mut w = Wire::<u32>::new(None);
        w.send(
            vec![
                Op::Get(b"a".to_vec()),
                Op::Set(b"b".to_vec(), b"v".to_vec(), Some(5)),
            ],
            1,
            10,
        );
        w.send(
            vec![Op::Exists(b"c".to_vec()), Op::Delete(b"d".to_vec())],
            2,
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
            let mut w2 = Wire::<u32>::new(None);
            w2.send(
                vec![
                    Op::Get(b"a".to_vec()),
                    Op::Set(b"b".to_vec(), b"v".to_vec(), None),
                ],
                1,
                0,
            );
            w2.send(
                vec![Op::Exists(b"c".to_vec()), Op::Delete(b"d".to_vec())],
                2,
                0,
            );
            let mut done = Vec::new();
            recv(&mut w2, &replies[..cut], &mut done)?;
            recv(&mut w2, &replies[cut..], &mut done)?;
            assert_eq!(
                done,
                vec![
                    (
                        1,
                        vec![OpResult::Value(Some(units("hello"))), OpResult::Done]
                    ),
                    (2, vec![OpResult::Bool(true), OpResult::Bool(false)]),
                ],
                "cut at {cut}"
            );
            assert_eq!(w2.in_flight(), 0);
        }
        Ok(())
    }

    /// The results of the op batches `bytes` complete.
    fn recv(w: &mut Wire<u32>, bytes: &[u8], done: &mut Vec<(u32, Vec<OpResult>)>) -> Result<()> {
        let mut got = Vec::new();
        let r = w.received(bytes, &mut got);
        for (t, replies) in got {
            if let Replies::Results(rs) = replies {
                done.push((t, rs));
            }
        }
        r
    }

    #[test]
    fn server_errors_fail_one_op_and_nil_is_a_miss() -> Result<()> {
        let mut w = Wire::<u32>::new(None);
        w.send(vec![Op::Get(b"a".to_vec()), Op::Get(b"b".to_vec())], 1, 0);
        let mut done = Vec::new();
        recv(
            &mut w,
            b"-WRONGTYPE Operation against a key\r\n$-1\r\n",
            &mut done,
        )?;
        assert_eq!(done.len(), 1);
        assert!(
            matches!(&done[0].1[0], OpResult::Failed(PersistError::Store(m)) if m.starts_with("WRONGTYPE"))
        );
        assert_eq!(done[0].1[1], OpResult::Value(None));
        Ok(())
    }

    #[test]
    fn durable_writes_wait_and_fail_when_too_few_replicas_ack() -> Result<()> {
        let mut w = Wire::<u32>::new(Some(Wait {
            replicas: 1,
            timeout_ms: 250,
        }));
        w.send(
            vec![
                Op::SetDurable(b"s".to_vec(), b"{}".to_vec(), None),
                Op::Get(b"g".to_vec()),
            ],
            1,
            0,
        );
        assert!(w
            .unwritten()
            .ends_with(b"*3\r\n$4\r\nWAIT\r\n$1\r\n1\r\n$3\r\n250\r\n"));
        // a plain write adds no WAIT
        w.send(vec![Op::Set(b"p".to_vec(), b"1".to_vec(), None)], 2, 0);
        let mut done = Vec::new();
        recv(&mut w, b"+OK\r\n$-1\r\n:0\r\n+OK\r\n", &mut done)?;
        assert_eq!(done.len(), 2);
        assert!(
            matches!(&done[0].1[0], OpResult::Failed(PersistError::Unavailable(m)) if m.contains("only 0 of 1"))
        );
        assert_eq!(done[0].1[1], OpResult::Value(None));
        assert_eq!(done[1], (2, vec![OpResult::Done]));
        let mut ok = Wire::<u32>::new(Some(Wait {
            replicas: 1,
            timeout_ms: 250,
        }));
        ok.send(
            vec![Op::SetDurable(b"s".to_vec(), b"{}".to_vec(), None)],
            3,
            0,
        );
        let mut done = Vec::new();
        recv(&mut ok, b"+OK\r\n:1\r\n", &mut done)?;
        assert_eq!(done, vec![(3, vec![OpResult::Done])]);
        Ok(())
    }

    #[test]
    fn raw_pipelines_get_their_replies_as_they_came_in_order_with_batches() -> Result<()> {
        let mut w = Wire::<u32>::new(None);
        let mut asking = Vec::new();
        redis::cmd("ASKING").write_packed_command(&mut asking);
        redis::cmd("GET").arg("k").write_packed_command(&mut asking);
        w.send_raw(&asking, 2, 1, 0);
        w.send(vec![Op::Get(b"g".to_vec())], 2, 0);
        assert!(w.unwritten().starts_with(&asking));
        let mut done = Vec::new();
        w.received(b"+OK\r\n-MOVED 3999 127.0.0.1:7001\r\n$-1\r\n", &mut done)?;
        assert_eq!(done.len(), 2);
        assert!(matches!(
            &done[0],
            (1, Replies::Values(v)) if v.len() == 2 && v[0] == Value::Okay
                && matches!(&v[1], Value::ServerError(e) if e.code() == "MOVED")
        ));
        assert_eq!(done[1], (2, Replies::Results(vec![OpResult::Value(None)])));
        Ok(())
    }

    #[test]
    fn unsolicited_or_garbled_replies_are_errors() {
        let mut w = Wire::<u32>::new(None);
        let mut done = Vec::new();
        assert!(recv(&mut w, b"+OK\r\n", &mut done).is_err());
        let mut w = Wire::<u32>::new(None);
        w.send(vec![Op::Get(b"a".to_vec())], 7, 0);
        assert!(recv(&mut w, b"?what\r\n", &mut done).is_err());
        assert_eq!(w.abandon(), vec![7]);
        assert_eq!(w.in_flight(), 0);
    }
}
