//! Run leases and fenced snapshot writes on PostgreSQL: lease rows of the
//! store's table (their keys: `sql::lease_key`), the ops of one batch split
//! over connections as data batches are, each op one prepared statement
//! (`sql::StatementText`: acquire, release, renew, fenced set / delete),
//! or a part of only acquires or only releases of distinct keys as ONE
//! statement; judged by the server's clock.

use super::failure::classify;
use super::pipeline::{batch_transaction, contiguous};
use super::pool::{Busy, Conn};
use super::store::{PgStore, MIN_PART, MIN_PART_ONE_STATEMENT};
use crate::error::{PersistError, Result};
use crate::lease_op::LeaseOp;

/// The lease row an op is about.
fn key_of(op: &LeaseOp) -> &[u8] {
    match op {
        LeaseOp::Acquire { key, .. }
        | LeaseOp::Release { key, .. }
        | LeaseOp::Renew { key, .. }
        | LeaseOp::FencedSet { key, .. }
        | LeaseOp::FencedDelete { key, .. } => key,
    }
}

impl PgStore {
    /// A batch of lease ops, split as [`PgStore::exec`] splits; one result per op.
    pub async fn lease_exec(&self, ops: &[LeaseOp]) -> Result<Vec<Result<bool>>> {
        let key = |op| Some(key_of(op));
        let min_part = if ops.iter().all(|op| matches!(op, LeaseOp::Acquire { .. }))
            || ops.iter().all(|op| matches!(op, LeaseOp::Release { .. }))
        {
            MIN_PART_ONE_STATEMENT
        } else {
            MIN_PART
        };
        Ok(self
            .run_split(
                ops,
                key,
                min_part,
                |p, slot| async move { self.lease_part(&p, slot).await },
                Err,
            )
            .await)
    }

    /// The lease ops of one part on the connection of its slot, pipelined.
    async fn lease_part(&self, ops: &[LeaseOp], slot: Busy<'_>) -> Result<Vec<Result<bool>>> {
        if ops.is_empty() {
            return Ok(Vec::new());
        }
        self.with_slot(slot, |c| async move {
            if let Some(results) = lease_as_one(&c, ops).await {
                return Ok(results);
            }
            // boxed: join_all moves each op's (large) future
            let run =
                || futures_util::future::join_all(ops.iter().map(|op| Box::pin(run_lease(&c, op))));
            // a fenced-off write is an answer, not a failed statement
            let failed =
                |r: &Result<bool>| matches!(r, Err(e) if !matches!(e, PersistError::LeaseLost(_)));
            Ok(batch_transaction(&c, ops.len(), run, failed, Err).await)
        })
        .await
    }
}

/// A part of two or more acquires, or of two or more releases, of
/// distinct keys as ONE statement (`acquire_many`, `release_many`), each
/// op's answer as its own statement's would be. None: not such a part, or
/// the statement failed: the caller runs the ops one by one.
async fn lease_as_one(c: &Conn, ops: &[LeaseOp]) -> Option<Vec<Result<bool>>> {
    if ops.len() < 2 {
        return None;
    }
    let keys: Vec<&[u8]> = ops.iter().map(key_of).collect();
    if keys.iter().collect::<std::collections::HashSet<_>>().len() != keys.len() {
        return None;
    }
    let mut tokens = Vec::with_capacity(ops.len());
    let mut ms = Vec::with_capacity(ops.len());
    let (acquires, releases) = ops.iter().fold((0, 0), |(a, r), op| match op {
        LeaseOp::Acquire { token, ttl_ms, .. } => {
            tokens.push(token.as_bytes());
            ms.push((*ttl_ms).max(1) as f64);
            (a + 1, r)
        }
        LeaseOp::Release { token, .. } => {
            tokens.push(token.as_bytes());
            (a, r + 1)
        }
        _ => (a, r),
    });
    let rows = if acquires == ops.len() {
        contiguous(
            c,
            c.client.query(&c.st.acquire_many, &[&keys, &tokens, &ms]),
        )
        .await
    } else if releases == ops.len() {
        contiguous(c, c.client.query(&c.st.release_many, &[&keys, &tokens])).await
    } else {
        return None;
    }
    .ok()?;
    // the keys that came back, with whether the op counts (a release of
    // an expired lease deletes it but answers false)
    let mut answered = std::collections::HashMap::with_capacity(rows.len());
    for row in rows {
        let counts = acquires > 0 || row.try_get::<_, Option<bool>>(1).ok()? == Some(true);
        answered.insert(row.try_get::<_, Vec<u8>>(0).ok()?, counts);
    }
    Some(
        keys.iter()
            .map(|k| Ok(answered.get(*k).copied().unwrap_or(false)))
            .collect(),
    )
}

async fn run_lease(c: &Conn, op: &LeaseOp) -> Result<bool> {
    let r = match op {
        LeaseOp::Acquire { key, token, ttl_ms } => {
            let ms = (*ttl_ms).max(1) as f64;
            c.client
                .query_opt(&c.st.acquire, &[key, &token.as_bytes(), &ms])
                .await
                .map(|row| row.is_some())
        }
        LeaseOp::Release { key, token } => c
            .client
            .query_opt(&c.st.release, &[key, &token.as_bytes()])
            .await
            .map(|row| {
                row.is_some_and(|r| r.try_get::<_, Option<bool>>(0).ok().flatten() == Some(true))
            }),
        LeaseOp::Renew { key, token, ttl_ms } => {
            let ms = (*ttl_ms).max(1) as f64;
            c.client
                .execute(&c.st.renew, &[key, &token.as_bytes(), &ms])
                .await
                .map(|n| n > 0)
        }
        LeaseOp::FencedSet {
            key,
            token,
            state,
            value,
        } => {
            return fenced(
                c.client
                    .query_opt(&c.st.fenced_set, &[key, &token.as_bytes(), state, value])
                    .await,
            )
        }
        LeaseOp::FencedDelete { key, token, state } => {
            return fenced(
                c.client
                    .query_opt(&c.st.fenced_delete, &[key, &token.as_bytes(), state])
                    .await,
            )
        }
    };
    r.map_err(|e| classify(&e))
}

/// A fenced write's answer: written (a row came back) or `ERR_LEASE_LOST`.
fn fenced(
    row: std::result::Result<Option<tokio_postgres::Row>, tokio_postgres::Error>,
) -> Result<bool> {
    match row {
        Ok(Some(_)) => Ok(true),
        Ok(None) => Err(PersistError::lease_lost()),
        Err(e) => Err(classify(&e)),
    }
}
