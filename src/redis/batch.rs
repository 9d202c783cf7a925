//! The batch: the one seam between the store's operations and any Redis
//! connection (the JS thread's socket, plain or TLS, or a pipeline of the
//! `redis` crate; one server, or one node of a cluster). A [`Batch`] turns
//! operations into commands (with a trailing `WAIT` when it holds a durable
//! write and the store waits for replicas) and the replies into one
//! [`OpResult`] per operation. It knows nothing of sockets or nodes: the
//! caller writes [`Batch::pack`]'s bytes (or [`Batch::commands`]) to the
//! node it chose and hands the replies, in order, to [`Batch::finish`].
//! A server's error reply fails its one op ([`OpResult::server_error_code`]
//! names it: `MOVED`, `ASK`, `TRYAGAIN`...), so a caller that re-sends (a
//! cluster's redirects) decides per op.

use std::future::Future;

use redis::{Cmd, Value};

use crate::error::{PersistError, Result};
use crate::wtf8;

/// Keys per SCAN page and per UNLINK.
pub const SCAN_COUNT: usize = 5000;

/// A Lua script, run by `EVAL` (its body sent with every call).
#[derive(Debug)]
pub struct Script {
    body: &'static str,
}

impl Script {
    pub const fn new(body: &'static str) -> Script {
        Script { body }
    }

    pub fn body(&self) -> &'static str {
        self.body
    }
}

/// One operation of a batch. Keys and values are bytes: the WTF-8 of the
/// JS strings ([`crate::wtf8`]), so every JS string is stored exactly.
#[derive(Debug, Clone)]
pub enum Op {
    Get(Vec<u8>),
    /// key, value, ttl in whole seconds (None or 0: no expiry).
    Set(Vec<u8>, Vec<u8>, Option<u64>),
    /// A SET that must reach the store's `wait_replicas` replicas before it
    /// succeeds (state documents): the batch ends with `WAIT`.
    SetDurable(Vec<u8>, Vec<u8>, Option<u64>),
    Delete(Vec<u8>),
    Exists(Vec<u8>),
    /// PING (no key).
    Ping,
    /// `SET key token NX PX ttl_ms`: the token if taken, None if held.
    Acquire {
        key: Vec<u8>,
        token: String,
        ttl_ms: u64,
    },
    /// A script on one key (`EVAL`): its verdict.
    Eval {
        script: &'static Script,
        key: Vec<u8>,
        args: Vec<Vec<u8>>,
    },
    /// A fenced snapshot write: `script` on the lease key and the snapshot
    /// key (one hash slot); done when it wrote, `ERR_LEASE_LOST` when the
    /// lease was not the writer's. A durable write: `WAIT` follows.
    Fenced {
        script: &'static Script,
        lease: Vec<u8>,
        state: Vec<u8>,
        args: Vec<Vec<u8>>,
    },
    /// One page of `SCAN cursor MATCH pattern COUNT SCAN_COUNT`.
    Scan {
        cursor: u64,
        pattern: Vec<u8>,
    },
    /// `UNLINK keys...`: how many were removed.
    Unlink(Vec<Vec<u8>>),
    /// `PTTL key`: ms left, -1 without expiry, -2 absent (the inspector's
    /// lease listing).
    Pttl(Vec<u8>),
}

impl Op {
    /// A write that must reach the store's `wait_replicas` replicas (the
    /// batch ends with `WAIT`).
    pub fn is_durable(&self) -> bool {
        matches!(self, Op::SetDurable(..) | Op::Fenced { .. })
    }
}

impl PartialEq for Op {
    fn eq(&self, other: &Self) -> bool {
        op_cmd(self).get_packed_command() == op_cmd(other).get_packed_command()
    }
}

/// A GET value on its way to JS: ASCII bytes as they came (the common case:
/// JSON; a one-byte JS string, no conversion), anything else as UTF-16.
#[derive(Debug, Clone)]
pub enum Text {
    Ascii(Vec<u8>),
    Units(Vec<u16>),
}

impl Text {
    pub fn of(s: &str) -> Text {
        if s.is_ascii() {
            Text::Ascii(s.as_bytes().to_vec())
        } else {
            Text::Units(s.encode_utf16().collect())
        }
    }

    /// Its UTF-16 length (the JS string's `length`).
    pub fn len_units(&self) -> usize {
        match self {
            Text::Ascii(b) => b.len(),
            Text::Units(u) => u.len(),
        }
    }

    pub fn is_ascii(&self) -> bool {
        matches!(self, Text::Ascii(_))
    }

    /// Append its UTF-16 units.
    pub fn push_units(&self, out: &mut Vec<u16>) {
        match self {
            Text::Ascii(b) => out.extend(b.iter().map(|&c| u16::from(c))),
            Text::Units(u) => out.extend_from_slice(u),
        }
    }
}

impl PartialEq for Text {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Text::Ascii(a), Text::Ascii(b)) => a == b,
            _ => {
                let (mut a, mut b) = (Vec::new(), Vec::new());
                self.push_units(&mut a);
                other.push_units(&mut b);
                a == b
            }
        }
    }
}

/// The outcome of one [`Op`] in a batch that reached the server.
#[derive(Debug)]
pub enum OpResult {
    /// GET: the value, or None when the key does not exist; Acquire: the
    /// token when taken.
    Value(Option<Text>),
    /// DELETE / EXISTS / a script's verdict.
    Bool(bool),
    /// SET, PING.
    Done,
    /// SCAN: the next cursor (0: done) and the page's keys.
    Scan(u64, Vec<Vec<u8>>),
    /// UNLINK: keys removed.
    Count(u64),
    /// PTTL: ms left, -1 without expiry, -2 absent.
    Ttl(i64),
    /// The server rejected this one command (e.g. WRONGTYPE), or its value
    /// is not text ([`PersistError::Corrupt`]).
    Failed(PersistError),
}

impl OpResult {
    /// The code of the server's error reply this op got (`MOVED`, `ASK`,
    /// `TRYAGAIN`, `WRONGTYPE`...), if it got one: what a caller that
    /// re-sends (a cluster's redirects) decides on.
    pub fn server_error_code(&self) -> Option<&str> {
        match self {
            OpResult::Failed(PersistError::Store(m)) => m.split(' ').next(),
            _ => None,
        }
    }
}

impl PartialEq for OpResult {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (OpResult::Value(a), OpResult::Value(b)) => a == b,
            (OpResult::Bool(a), OpResult::Bool(b)) => a == b,
            (OpResult::Done, OpResult::Done) => true,
            (OpResult::Scan(a, x), OpResult::Scan(b, y)) => a == b && x == y,
            (OpResult::Count(a), OpResult::Count(b)) => a == b,
            (OpResult::Ttl(a), OpResult::Ttl(b)) => a == b,
            (OpResult::Failed(a), OpResult::Failed(b)) => {
                a.code() == b.code() && a.to_string() == b.to_string()
            }
            _ => false,
        }
    }
}

/// `WAIT n timeout_ms` after a batch's durable writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wait {
    pub replicas: u32,
    pub timeout_ms: u64,
}

impl Wait {
    pub fn cmd(&self) -> Cmd {
        let mut c = redis::cmd("WAIT");
        c.arg(self.replicas).arg(self.timeout_ms);
        c
    }

    /// The reply of `WAIT`: Ok once enough replicas acknowledged.
    pub fn check(&self, v: &Value) -> Result<()> {
        let n = i64::from(self.replicas);
        match v {
            Value::Int(acked) if *acked >= n => Ok(()),
            Value::Int(acked) => Err(PersistError::Unavailable(format!(
                "only {acked} of {n} replicas acknowledged the write within {} ms (WAIT); it may be lost in a failover",
                self.timeout_ms
            ))),
            other => Err(PersistError::Store(format!(
                "WAIT: unexpected reply {other:?}"
            ))),
        }
    }
}

/// Operations sent together to one node, and how their replies become
/// results (see the module docs).
#[derive(Debug)]
pub struct Batch {
    ops: Vec<Op>,
    /// The trailing `WAIT`, present only when an op is durable.
    wait: Option<Wait>,
}

impl Batch {
    /// `wait`: the store's `WAIT` after durable writes (None: no replicas
    /// awaited); kept only if `ops` holds one.
    pub fn new(ops: Vec<Op>, wait: Option<Wait>) -> Batch {
        let durable = ops.iter().any(Op::is_durable);
        Batch {
            ops,
            wait: wait.filter(|_| durable),
        }
    }

    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Replies the server sends for it (a `WAIT` has one too).
    pub fn replies(&self) -> usize {
        self.ops.len() + usize::from(self.wait.is_some())
    }

    /// Append its commands, as RESP, to `out`.
    pub fn pack(&self, out: &mut Vec<u8>) {
        for op in &self.ops {
            pack(op, out);
        }
        if let Some(w) = &self.wait {
            w.cmd().write_packed_command(out);
        }
    }

    /// Drop the SET values (after [`Batch::pack`]: decoding needs only the
    /// kinds and keys).
    pub fn shed_values(&mut self) {
        for op in &mut self.ops {
            if let Op::Set(_, v, _) | Op::SetDurable(_, v, _) = op {
                *v = Vec::new();
            }
        }
    }

    /// Its commands, for a pipeline of the `redis` crate.
    pub fn commands(&self) -> Vec<Cmd> {
        let mut cmds: Vec<Cmd> = self.ops.iter().map(op_cmd).collect();
        if let Some(w) = &self.wait {
            cmds.push(w.cmd());
        }
        cmds
    }

    /// One result per op from the replies (one per command of
    /// [`Batch::replies`], in order). When the trailing `WAIT` says too few
    /// replicas acknowledged, the batch's durable writes that the server
    /// took fail with that error: their data may be lost in a failover.
    pub fn finish(&self, mut values: Vec<Value>) -> Vec<OpResult> {
        if values.len() != self.replies() {
            let got = values.len();
            let want = self.replies();
            return self
                .ops
                .iter()
                .map(|_| {
                    OpResult::Failed(PersistError::Internal(format!(
                        "pipeline returned {got} replies for {want} commands"
                    )))
                })
                .collect();
        }
        let waited = match &self.wait {
            Some(w) => values.pop().map(|v| w.check(&v)),
            None => None,
        };
        self.ops
            .iter()
            .zip(values)
            .map(|(op, v)| settle(op, v, waited.as_ref()))
            .collect()
    }
}

/// The result of `op` from its reply and the verdict of the `WAIT` that
/// followed it in the same pipeline (None: no WAIT): a durable write the
/// server took fails when too few replicas acknowledged it.
pub fn settle(op: &Op, v: Value, waited: Option<&Result<()>>) -> OpResult {
    match (waited, op) {
        (Some(Err(e)), Op::SetDurable(..)) if !matches!(v, Value::ServerError(_)) => {
            OpResult::Failed(e.clone())
        }
        // a fenced write that wrote (1), not one fenced off (0)
        (Some(Err(e)), Op::Fenced { .. }) if matches!(v, Value::Int(1)) => {
            OpResult::Failed(e.clone())
        }
        _ => decode(op, v),
    }
}

/// A connection that runs batches on one server: the seam that the calls
/// made of several batches (keys, clearing a prefix, leases) are written
/// against, so they run alike on the JS thread's socket and on tokio.
pub trait Exec {
    /// Run `ops` as one batch: one result per op, in order. An error fails
    /// the whole batch (connection lost, timeout).
    fn exec(&self, ops: Vec<Op>) -> impl Future<Output = Result<Vec<OpResult>>>;

    /// Every key matching the glob `pattern`, by SCAN to the end (a key may
    /// come twice: SCAN's own guarantee).
    fn scan(&self, pattern: &[u8]) -> impl Future<Output = Result<Vec<Vec<u8>>>> {
        scan_server(self, pattern.to_vec())
    }

    /// `UNLINK` one page of keys: how many were removed.
    fn unlink(&self, keys: Vec<Vec<u8>>) -> impl Future<Output = Result<u64>> {
        unlink_server(self, keys)
    }
}

/// [`Exec::scan`] of one server: SCAN pages through [`Exec::exec`].
pub async fn scan_server<X: Exec + ?Sized>(x: &X, pattern: Vec<u8>) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let mut cursor = 0;
    loop {
        let op = Op::Scan {
            cursor,
            pattern: pattern.clone(),
        };
        match x.exec(vec![op]).await?.pop() {
            Some(OpResult::Scan(next, keys)) => {
                out.extend(keys);
                if next == 0 {
                    return Ok(out);
                }
                cursor = next;
            }
            Some(OpResult::Failed(e)) => return Err(e),
            other => {
                return Err(PersistError::Internal(format!(
                    "SCAN: unexpected result {other:?}"
                )))
            }
        }
    }
}

/// [`Exec::unlink`] of one server.
pub async fn unlink_server<X: Exec + ?Sized>(x: &X, keys: Vec<Vec<u8>>) -> Result<u64> {
    match x.exec(vec![Op::Unlink(keys)]).await?.pop() {
        Some(OpResult::Count(n)) => Ok(n),
        Some(OpResult::Failed(e)) => Err(e),
        other => Err(PersistError::Internal(format!(
            "UNLINK: unexpected result {other:?}"
        ))),
    }
}

/// The key an op is about (its cluster slot's); "" for PING and SCAN.
pub fn op_key(op: &Op) -> &[u8] {
    match op {
        Op::Get(k)
        | Op::Set(k, ..)
        | Op::SetDurable(k, ..)
        | Op::Delete(k)
        | Op::Exists(k)
        | Op::Acquire { key: k, .. }
        | Op::Eval { key: k, .. }
        | Op::Fenced { lease: k, .. }
        | Op::Pttl(k) => k,
        Op::Unlink(keys) => keys.first().map(Vec::as_slice).unwrap_or(b""),
        Op::Ping | Op::Scan { .. } => b"",
    }
}

/// `EVAL` of `script` on `keys` with `args`.
fn script_cmd(script: &Script, keys: &[&Vec<u8>], args: &[Vec<u8>]) -> Cmd {
    let mut c = redis::cmd("EVAL");
    c.arg(script.body()).arg(keys.len()).arg(keys).arg(args);
    c
}

/// The command of `op`, as the `redis` crate builds it.
pub fn op_cmd(op: &Op) -> Cmd {
    let mut c;
    match op {
        Op::Get(k) => {
            c = redis::cmd("GET");
            c.arg(k);
        }
        Op::Set(k, v, ttl) | Op::SetDurable(k, v, ttl) => {
            c = redis::cmd("SET");
            c.arg(k).arg(v);
            if let Some(t) = ttl.filter(|t| *t > 0) {
                c.arg("EX").arg(t);
            }
        }
        Op::Delete(k) => {
            c = redis::cmd("DEL");
            c.arg(k);
        }
        Op::Exists(k) => {
            c = redis::cmd("EXISTS");
            c.arg(k);
        }
        Op::Ping => c = redis::cmd("PING"),
        Op::Acquire { key, token, ttl_ms } => {
            c = redis::cmd("SET");
            c.arg(key)
                .arg(token)
                .arg("NX")
                .arg("PX")
                .arg((*ttl_ms).max(1));
        }
        Op::Eval { script, key, args } => c = script_cmd(script, &[key], args),
        Op::Fenced {
            script,
            lease,
            state,
            args,
        } => c = script_cmd(script, &[lease, state], args),
        Op::Scan { cursor, pattern } => {
            c = redis::cmd("SCAN");
            c.arg(*cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(SCAN_COUNT);
        }
        Op::Unlink(keys) => {
            c = redis::cmd("UNLINK");
            c.arg(keys);
        }
        Op::Pttl(k) => {
            c = redis::cmd("PTTL");
            c.arg(k);
        }
    }
    c
}

/// Append the RESP of `op`'s command to `out`: what `op_cmd(op)`'s
/// `write_packed_command` writes (tested), without building a `Cmd` for
/// the five data commands.
pub fn pack(op: &Op, out: &mut Vec<u8>) {
    fn arg(out: &mut Vec<u8>, a: &[u8]) {
        out.push(b'$');
        out.extend_from_slice(itoa(a.len() as u64).as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    fn head(out: &mut Vec<u8>, n: usize) {
        out.push(b'*');
        out.extend_from_slice(itoa(n as u64).as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    match op {
        Op::Get(k) | Op::Delete(k) | Op::Exists(k) => {
            head(out, 2);
            arg(
                out,
                match op {
                    Op::Get(_) => b"GET",
                    Op::Delete(_) => b"DEL",
                    _ => b"EXISTS",
                },
            );
            arg(out, k);
        }
        Op::Set(k, v, ttl) | Op::SetDurable(k, v, ttl) => {
            let ttl = ttl.filter(|t| *t > 0);
            head(out, if ttl.is_some() { 5 } else { 3 });
            arg(out, b"SET");
            arg(out, k);
            arg(out, v);
            if let Some(t) = ttl {
                arg(out, b"EX");
                arg(out, itoa(t).as_bytes());
            }
        }
        Op::Ping => {
            head(out, 1);
            arg(out, b"PING");
        }
        other => op_cmd(other).write_packed_command(out),
    }
}

/// The decimal digits of `n`, without allocating.
struct Digits {
    buf: [u8; 20],
    start: usize,
}

impl Digits {
    fn as_bytes(&self) -> &[u8] {
        &self.buf[self.start..]
    }
}

fn itoa(mut n: u64) -> Digits {
    let mut d = Digits {
        buf: [0; 20],
        start: 20,
    };
    loop {
        d.start -= 1;
        d.buf[d.start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return d;
        }
    }
}

/// The result of `op` from its reply.
pub fn decode(op: &Op, v: Value) -> OpResult {
    if let Value::ServerError(e) = v {
        let code = e.code().to_string();
        let detail = e.details().unwrap_or("").to_string();
        return OpResult::Failed(PersistError::Store(
            format!("{code} {detail}").trim().into(),
        ));
    }
    let unexpected = |what: &str, v: &Value| {
        OpResult::Failed(PersistError::Store(format!(
            "{what}: unexpected reply {v:?}"
        )))
    };
    match op {
        Op::Get(k) => match v {
            Value::Nil => OpResult::Value(None),
            Value::BulkString(b) if b.is_ascii() => OpResult::Value(Some(Text::Ascii(b))),
            Value::BulkString(b) => match wtf8::decode(&b) {
                Some(units) => OpResult::Value(Some(Text::Units(units))),
                None => OpResult::Failed(PersistError::corrupt(
                    String::from_utf8_lossy(k),
                    "value is not text (not UTF-8, nor a JS string we wrote)",
                )),
            },
            Value::SimpleString(s) => OpResult::Value(Some(Text::of(&s))),
            Value::Okay => OpResult::Value(Some(Text::of("OK"))),
            other => unexpected("GET", &other),
        },
        Op::Set(..) | Op::SetDurable(..) | Op::Ping => OpResult::Done,
        Op::Delete(_) | Op::Exists(_) | Op::Eval { .. } => match v {
            Value::Int(n) => OpResult::Bool(n > 0),
            Value::Boolean(b) => OpResult::Bool(b),
            other => unexpected("reply", &other),
        },
        Op::Fenced { .. } => match v {
            Value::Int(1) => OpResult::Done,
            Value::Int(0) => OpResult::Failed(PersistError::lease_lost()),
            other => unexpected("fenced write", &other),
        },
        Op::Acquire { token, .. } => match v {
            Value::Okay | Value::SimpleString(_) => OpResult::Value(Some(Text::of(token))),
            Value::Nil => OpResult::Value(None),
            other => unexpected("lease", &other),
        },
        Op::Scan { .. } => match redis::from_redis_value::<(u64, Vec<Vec<u8>>)>(v) {
            Ok((next, keys)) => OpResult::Scan(next, keys),
            Err(e) => OpResult::Failed(PersistError::Store(format!("SCAN: unexpected reply: {e}"))),
        },
        Op::Unlink(_) => match v {
            Value::Int(n) => OpResult::Count(n.max(0) as u64),
            other => unexpected("UNLINK", &other),
        },
        Op::Pttl(_) => match v {
            Value::Int(n) => OpResult::Ttl(n),
            other => unexpected("PTTL", &other),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static ECHO: Script = Script::new("return 1");

    #[test]
    fn pack_writes_what_the_crate_writes() {
        let keys: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            b"k".to_vec(),
            "é😀\r\n$*".as_bytes().to_vec(),
            vec![b'x'; 10_000],
        ];
        let mut ops = vec![Op::Ping];
        for k in &keys {
            ops.push(Op::Get(k.clone()));
            ops.push(Op::Delete(k.clone()));
            ops.push(Op::Exists(k.clone()));
            for ttl in [None, Some(0), Some(1), Some(86_400), Some(u64::MAX)] {
                for v in &keys {
                    ops.push(Op::Set(k.clone(), v.clone(), ttl));
                    ops.push(Op::SetDurable(k.clone(), v.clone(), ttl));
                }
            }
        }
        for op in &ops {
            let mut ours = Vec::new();
            pack(op, &mut ours);
            assert_eq!(ours, op_cmd(op).get_packed_command(), "{op:?}");
        }
    }

    #[test]
    fn one_trailing_wait_fails_only_the_durable_writes_the_server_took() {
        let wait = Some(Wait {
            replicas: 1,
            timeout_ms: 250,
        });
        let b = Batch::new(
            vec![
                Op::SetDurable(b"s".to_vec(), b"{}".to_vec(), None),
                Op::Get(b"g".to_vec()),
                Op::SetDurable(b"t".to_vec(), b"{}".to_vec(), None),
            ],
            wait,
        );
        assert_eq!(b.replies(), 4);
        let mut out = Vec::new();
        b.pack(&mut out);
        assert!(out.ends_with(b"*3\r\n$4\r\nWAIT\r\n$1\r\n1\r\n$3\r\n250\r\n"));
        let err = {
            use tokio_util::codec::Decoder;
            let mut buf = bytes::BytesMut::from(&b"-OOM no memory\r\n"[..]);
            match redis::ValueCodec::default().decode(&mut buf) {
                Ok(Some(v)) => v,
                other => panic!("{other:?}"),
            }
        };
        let r = b.finish(vec![Value::Okay, Value::Nil, err, Value::Int(0)]);
        assert_eq!(r[2].server_error_code(), Some("OOM"));
        assert_eq!(r[1].server_error_code(), None);
        assert!(
            matches!(&r[0], OpResult::Failed(PersistError::Unavailable(m)) if m.contains("only 0 of 1"))
        );
        assert_eq!(r[1], OpResult::Value(None));
        assert!(matches!(&r[2], OpResult::Failed(PersistError::Store(m)) if m.starts_with("OOM")));
        // no durable write: no WAIT
        let plain = Batch::new(vec![Op::Set(b"p".to_vec(), b"1".to_vec(), None)], wait);
        assert_eq!(plain.replies(), 1);
        assert_eq!(plain.finish(vec![Value::Okay]), vec![OpResult::Done]);
        // enough replicas: done
        let ok = Batch::new(
            vec![Op::SetDurable(b"s".to_vec(), b"{}".to_vec(), None)],
            wait,
        );
        assert_eq!(
            ok.finish(vec![Value::Okay, Value::Int(1)]),
            vec![OpResult::Done]
        );
        // a reply short: every op fails, none is misread
        assert!(matches!(
            &ok.finish(vec![Value::Okay])[0],
            OpResult::Failed(PersistError::Internal(_))
        ));
    }

    #[test]
    fn lease_scan_and_unlink_replies() {
        let acquire = Op::Acquire {
            key: b"l".to_vec(),
            token: "t0".into(),
            ttl_ms: 0,
        };
        assert_eq!(
            op_cmd(&acquire).get_packed_command(),
            redis::cmd("SET")
                .arg("l")
                .arg("t0")
                .arg("NX")
                .arg("PX")
                .arg(1)
                .get_packed_command()
        );
        assert_eq!(
            decode(&acquire, Value::Okay),
            OpResult::Value(Some(Text::of("t0")))
        );
        assert_eq!(decode(&acquire, Value::Nil), OpResult::Value(None));
        let eval = Op::Eval {
            script: &ECHO,
            key: b"l".to_vec(),
            args: vec![b"t0".to_vec()],
        };
        let mut out = Vec::new();
        pack(&eval, &mut out);
        assert!(out.starts_with(b"*5\r\n$4\r\nEVAL\r\n$8\r\nreturn 1\r\n"));
        assert_eq!(decode(&eval, Value::Int(1)), OpResult::Bool(true));
        let fenced = Op::Fenced {
            script: &ECHO,
            lease: b"l".to_vec(),
            state: b"s".to_vec(),
            args: vec![b"t0".to_vec(), b"v".to_vec()],
        };
        assert_eq!(decode(&fenced, Value::Int(1)), OpResult::Done);
        assert!(matches!(
            decode(&fenced, Value::Int(0)),
            OpResult::Failed(PersistError::LeaseLost(_))
        ));
        let scan = Op::Scan {
            cursor: 0,
            pattern: b"p*".to_vec(),
        };
        let page = Value::Array(vec![
            Value::BulkString(b"17".to_vec()),
            Value::Array(vec![Value::BulkString(b"pa".to_vec())]),
        ]);
        assert_eq!(
            decode(&scan, page),
            OpResult::Scan(17, vec![b"pa".to_vec()])
        );
        assert_eq!(
            decode(&Op::Unlink(vec![b"a".to_vec()]), Value::Int(1)),
            OpResult::Count(1)
        );
    }
}
