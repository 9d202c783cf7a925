//! How one batch runs on one connection: a batch of only gets or only sets
//! as ONE statement; else its statements pipelined (written back to back,
//! each with its own Sync, the replies read in order: one round trip),
//! inside ONE transaction when it writes twice or more; and each op's reply
//! turned into its result.

use super::failure::classify;
use super::pool::Conn;
use crate::error::{PersistError, Result};
use crate::redis::batch::{Op, OpResult, Text};
use crate::wtf8;

/// A stored value as JS text (ASCII as is, else decoded WTF-8).
fn text_of(key: &[u8], bytes: Vec<u8>) -> Result<Text> {
    if bytes.is_ascii() {
        return Ok(Text::Ascii(bytes));
    }
    wtf8::decode(&bytes).map(Text::Units).ok_or_else(|| {
        PersistError::corrupt(
            String::from_utf8_lossy(key).into_owned(),
            "the stored bytes are not the WTF-8 of a string",
        )
    })
}

/// Run a batch's statements (`run`, pipelined) on `c`. With two or more
/// writes they go inside ONE transaction, `BEGIN` and `COMMIT` pipelined
/// with them: one commit (one WAL flush) for the batch instead of one per
/// write, which a single connection would otherwise wait for in turn.
/// Statements run in the order given (a part of a batch: key order, see
/// `PgStore::split`) and see each other's writes.
///
/// If a statement failed (`failed`), the server rolled the transaction back
/// and the batch is run again without one, each statement on its own, so
/// that one bad op fails alone. If the connection broke, whether the commit
/// happened is unknown: every op fails with that error (`fail`).
pub(super) async fn batch_transaction<T, F, Fut>(
    c: &Conn,
    writes: usize,
    run: F,
    failed: impl Fn(&T) -> bool,
    fail: impl Fn(PersistError) -> T,
) -> Vec<T>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Vec<T>>,
{
    if writes < 2 {
        return contiguous(c, run()).await;
    }
    // polled in this order on their first poll: each is written then
    let (begin, results, commit) = contiguous(
        c,
        futures_util::future::join3(
            c.client.batch_execute("BEGIN"),
            run(),
            c.client.batch_execute("COMMIT"),
        ),
    )
    .await;
    let broken = begin.err().or(commit.err());
    if broken.is_none() && !results.iter().any(&failed) {
        return results;
    }
    if c.client.is_closed() {
        let e = broken.map_or_else(
            || PersistError::Unavailable("connection closed".into()),
            |e| classify(&e),
        );
        return results.iter().map(|_| fail(e.clone())).collect();
    }
    contiguous(c, run()).await
}

/// A part of two or more gets, or of two or more sets, as ONE statement
/// (`get_many`, `set_many`): the server runs one statement for the part
/// instead of one per op. Of several sets of one key the last is written,
/// as in call order; the rows are written in key order. None: not such a
/// part, or the statement failed: the caller then runs the ops one by one,
/// so that one bad op fails alone.
pub(super) async fn run_as_one(c: &Conn, ops: &[Op]) -> Option<Vec<OpResult>> {
    if ops.len() < 2 {
        return None;
    }
    if ops.iter().all(|op| matches!(op, Op::Get(_))) {
        let keys: Vec<&[u8]> = ops
            .iter()
            .filter_map(|op| match op {
                Op::Get(k) => Some(k.as_slice()),
                _ => None,
            })
            .collect();
        let rows = contiguous(c, c.client.query(&c.st.get_many, &[&keys]))
            .await
            .ok()?;
        let mut found = std::collections::HashMap::with_capacity(rows.len());
        for row in rows {
            found.insert(
                row.try_get::<_, Vec<u8>>(0).ok()?,
                row.try_get::<_, Vec<u8>>(1).ok()?,
            );
        }
        return Some(
            keys.iter()
                .map(|k| match found.get(*k) {
                    None => OpResult::Value(None),
                    Some(v) => match text_of(k, v.clone()) {
                        Ok(t) => OpResult::Value(Some(t)),
                        Err(e) => OpResult::Failed(e),
                    },
                })
                .collect(),
        );
    }
    if ops
        .iter()
        .all(|op| matches!(op, Op::Set(..) | Op::SetDurable(..)))
    {
        let mut last = std::collections::BTreeMap::new();
        for op in ops {
            if let Op::Set(k, v, ttl) | Op::SetDurable(k, v, ttl) = op {
                last.insert(k.as_slice(), (v.as_slice(), ttl.unwrap_or(0) as f64));
            }
        }
        let keys: Vec<&[u8]> = last.keys().copied().collect();
        let values: Vec<&[u8]> = last.values().map(|(v, _)| *v).collect();
        let secs: Vec<f64> = last.values().map(|(_, s)| *s).collect();
        contiguous(
            c,
            c.client.execute(&c.st.set_many, &[&keys, &values, &secs]),
        )
        .await
        .ok()?;
        return Some(ops.iter().map(|_| OpResult::Done).collect());
    }
    None
}

/// Await `fut`, its first poll under the connection's `sending` lock. A
/// statement's request is written on its future's first poll, so a batch's
/// requests go out back to back: another batch on the same connection never
/// lands inside its transaction.
pub(super) async fn contiguous<F: std::future::Future>(c: &Conn, fut: F) -> F::Output {
    use std::task::Poll;
    let mut fut = std::pin::pin!(fut);
    let first = std::future::poll_fn(|cx| {
        let _sending = c.sending.lock().unwrap_or_else(|p| p.into_inner());
        Poll::Ready(fut.as_mut().poll(cx))
    })
    .await;
    match first {
        Poll::Ready(v) => v,
        Poll::Pending => fut.await,
    }
}

/// One data op on `c`: its result (a failed statement fails this op alone).
pub(super) async fn run_op(c: &Conn, op: &Op) -> OpResult {
    let r: std::result::Result<OpResult, tokio_postgres::Error> =
        async {
            Ok(match op {
                Op::Get(k) => match c.client.query_opt(&c.st.get, &[k]).await? {
                    None => OpResult::Value(None),
                    Some(row) => match row.try_get::<_, Vec<u8>>(0) {
                        Ok(v) => match text_of(k, v) {
                            Ok(t) => OpResult::Value(Some(t)),
                            Err(e) => OpResult::Failed(e),
                        },
                        Err(e) => OpResult::Failed(PersistError::Store(format!("get: {e}"))),
                    },
                },
                Op::Set(k, v, ttl) | Op::SetDurable(k, v, ttl) => {
                    let secs = ttl.unwrap_or(0) as f64;
                    c.client.execute(&c.st.set, &[k, v, &secs]).await?;
                    OpResult::Done
                }
                Op::Delete(k) => {
                    let row = c.client.query_opt(&c.st.delete, &[k]).await?;
                    OpResult::Bool(row.is_some_and(|r| {
                        r.try_get::<_, Option<bool>>(0).ok().flatten() == Some(true)
                    }))
                }
                Op::Exists(k) => {
                    OpResult::Bool(c.client.query_opt(&c.st.exists, &[k]).await?.is_some())
                }
                Op::Ping => {
                    c.client.simple_query("").await?;
                    OpResult::Done
                }
                other => OpResult::Failed(PersistError::Internal(format!(
                    "not an op of the PostgreSQL store: {other:?}"
                ))),
            })
        }
        .await;
    r.unwrap_or_else(|e| OpResult::Failed(classify(&e)))
}
