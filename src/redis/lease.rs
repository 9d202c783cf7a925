//! Run leases (awaitly's `WorkflowLock`) on Redis: ONE key per lease (so a
//! lease never spans hash slots), holding the owner's token, expiring by
//! the server's clock (`PX`): no client clock is ever compared with another.
//!
//! - acquire: `SET key token NX PX ttl` (set only if absent);
//! - release: a script deletes the key only if it still holds the token;
//! - renew: a script re-arms the key's expiry only if it still holds the token.
//!
//! Scripts go as `EVALSHA` (the SHA comes from a `SCRIPT LOAD` sent with the
//! first `EVAL`), with a fallback to `EVAL` on `NOSCRIPT` (script cache
//! flushed, failover to a replica that never saw the script). Everything
//! runs through the store's one execution path ([`RedisStore::run`]:
//! timeouts, reconnect, error classification).
//!
//! A failover can lose a lease: Redis replicates asynchronously, so a lease
//! acknowledged by the old primary may be missing on the promoted replica
//! and a second owner can acquire it. See README "awaitly 1.35".

use std::sync::OnceLock;

use redis::Value;

use crate::error::{PersistError, Result};
use crate::redis::store::RedisStore;

const RELEASE: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";
const RENEW: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end";

static RELEASE_SHA: OnceLock<String> = OnceLock::new();
static RENEW_SHA: OnceLock<String> = OnceLock::new();

fn server_error(v: &Value) -> Option<PersistError> {
    match v {
        Value::ServerError(e) => Some(PersistError::Store(
            format!("{} {}", e.code(), e.details().unwrap_or(""))
                .trim()
                .into(),
        )),
        _ => None,
    }
}

/// One lease operation of a batch ([`RedisStore::lease_exec`]).
#[derive(Debug, Clone, PartialEq)]
pub enum LeaseOp {
    /// `SET key token NX PX ttl_ms`: taken (true) or held by someone (false).
    Acquire {
        key: Vec<u8>,
        token: String,
        ttl_ms: u64,
    },
    /// Delete `key` if it holds `token`: whether it did.
    Release { key: Vec<u8>, token: String },
    /// Re-arm `key` to `ttl_ms` if it holds `token`: whether it did.
    Renew {
        key: Vec<u8>,
        token: String,
        ttl_ms: u64,
    },
}

impl LeaseOp {
    fn script(&self) -> Option<(&'static str, &'static OnceLock<String>)> {
        match self {
            LeaseOp::Acquire { .. } => None,
            LeaseOp::Release { .. } => Some((RELEASE, &RELEASE_SHA)),
            LeaseOp::Renew { .. } => Some((RENEW, &RENEW_SHA)),
        }
    }

    /// Append this op to `p`; scripts by SHA when `by_sha` and the SHA is known.
    fn push(&self, p: &mut redis::Pipeline, by_sha: bool) {
        let (script, sha, key, token, ttl) = match self {
            LeaseOp::Acquire { key, token, ttl_ms } => {
                p.cmd("SET")
                    .arg(key)
                    .arg(token)
                    .arg("NX")
                    .arg("PX")
                    .arg((*ttl_ms).max(1));
                return;
            }
            LeaseOp::Release { key, token } => (RELEASE, &RELEASE_SHA, key, token, None),
            LeaseOp::Renew { key, token, ttl_ms } => {
                (RENEW, &RENEW_SHA, key, token, Some((*ttl_ms).max(1)))
            }
        };
        match sha.get().filter(|_| by_sha) {
            Some(s) => p.cmd("EVALSHA").arg(s),
            None => p.cmd("EVAL").arg(script),
        }
        .arg(1)
        .arg(key)
        .arg(token);
        if let Some(t) = ttl {
            p.arg(t);
        }
    }

    fn key(&self) -> &[u8] {
        match self {
            LeaseOp::Acquire { key, .. }
            | LeaseOp::Release { key, .. }
            | LeaseOp::Renew { key, .. } => key,
        }
    }

    fn decode(&self, v: Value) -> Result<bool> {
        if let Some(e) = server_error(&v) {
            return Err(e);
        }
        match (self, v) {
            (LeaseOp::Acquire { .. }, Value::Okay | Value::SimpleString(_)) => Ok(true),
            (LeaseOp::Acquire { .. }, Value::Nil) => Ok(false),
            (_, Value::Int(n)) => Ok(n > 0),
            (_, Value::Boolean(b)) => Ok(b),
            (_, other) => Err(PersistError::Store(format!(
                "lease: unexpected reply {other:?}"
            ))),
        }
    }
}

impl RedisStore {
    /// Run a batch of lease ops as one pipeline (one round trip; in a
    /// cluster, one per primary, concurrently), through
    /// the store's one execution path; one result per op, in order. Scripts
    /// go by EVALSHA once their SHA is known (a `SCRIPT LOAD` rides along
    /// with the first batch that EVALs them); ops answered `NOSCRIPT` are
    /// sent again as EVAL in a second pipeline. A connection failure or
    /// timeout fails the whole batch.
    pub async fn lease_exec(&self, ops: &[LeaseOp]) -> Result<Vec<Result<bool>>> {
        if ops.is_empty() {
            return Ok(Vec::new());
        }
        if self.is_cluster() {
            // A lease is one key: each op goes to its key's slot, the ops
            // of one primary in one pipeline (redirects followed by
            // `cluster_run`). Always EVAL: the
            // script cache is per node, a SHA learnt on one says nothing of
            // another (or of a replica promoted since).
            let cmds = ops
                .iter()
                .map(|op| {
                    let mut p = redis::Pipeline::with_capacity(1);
                    op.push(&mut p, false);
                    let cmd = p
                        .cmd_iter()
                        .next()
                        .cloned()
                        .unwrap_or_else(|| redis::cmd("PING"));
                    (op.key(), cmd)
                })
                .collect();
            let replies = self.cluster_run(cmds).await?;
            return Ok(ops
                .iter()
                .zip(replies)
                .map(|(op, r)| op.decode(r?))
                .collect());
        }
        let mut p = redis::Pipeline::with_capacity(ops.len() + 2);
        p.ignore_errors();
        for op in ops {
            op.push(&mut p, true);
        }
        // the scripts this batch EVALs, to learn their SHA
        let mut loads: Vec<(&'static str, &'static OnceLock<String>)> = Vec::new();
        for (script, sha) in ops.iter().filter_map(LeaseOp::script) {
            if sha.get().is_none() && !loads.iter().any(|(s, _)| *s == script) {
                loads.push((script, sha));
            }
        }
        for (script, _) in &loads {
            p.cmd("SCRIPT").arg("LOAD").arg(*script);
        }
        let mut values = self.run(&p).await?;
        if values.len() != ops.len() + loads.len() {
            return Err(PersistError::Internal(format!(
                "lease pipeline returned {} replies for {} commands",
                values.len(),
                ops.len() + loads.len()
            )));
        }
        for ((_, sha), v) in loads.iter().zip(values.drain(ops.len()..)) {
            if let Value::BulkString(b) = v {
                if let Ok(s) = String::from_utf8(b) {
                    let _ = sha.set(s);
                }
            }
        }
        let retry: Vec<usize> = (0..ops.len())
            .filter(|&i| matches!(&values[i], Value::ServerError(e) if e.code() == "NOSCRIPT"))
            .collect();
        if !retry.is_empty() {
            let mut p = redis::Pipeline::with_capacity(retry.len());
            p.ignore_errors();
            for &i in &retry {
                ops[i].push(&mut p, false);
            }
            let again = self.run(&p).await?;
            if again.len() != retry.len() {
                return Err(PersistError::Internal("lease retry: reply count".into()));
            }
            for (&i, v) in retry.iter().zip(again) {
                values[i] = v;
            }
        }
        Ok(ops.iter().zip(values).map(|(op, v)| op.decode(v)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redis::store::{Op, OpResult, RedisConfig};
    use crate::token::new_token;
    use std::time::Duration;

    fn key(tag: &str) -> Result<Vec<u8>> {
        Ok(format!(
            "rs-test:lease:{tag}:{}:{}",
            std::process::id(),
            new_token()?
        )
        .into_bytes())
    }

    fn acquire(key: &[u8], token: &str, ttl_ms: u64) -> LeaseOp {
        LeaseOp::Acquire {
            key: key.to_vec(),
            token: token.into(),
            ttl_ms,
        }
    }
    fn release(key: &[u8], token: &str) -> LeaseOp {
        LeaseOp::Release {
            key: key.to_vec(),
            token: token.into(),
        }
    }
    fn renew(key: &[u8], token: &str, ttl_ms: u64) -> LeaseOp {
        LeaseOp::Renew {
            key: key.to_vec(),
            token: token.into(),
            ttl_ms,
        }
    }

    async fn one(s: &RedisStore, op: LeaseOp) -> Result<bool> {
        s.lease_exec(&[op])
            .await?
            .pop()
            .unwrap_or_else(|| Err(PersistError::Internal("no result".into())))
    }

    #[tokio::test]
    async fn acquire_release_renew_against_local_redis() -> Result<()> {
        let s = RedisStore::new(RedisConfig::default())?;
        let k = key("basic")?;
        let (a, b) = (new_token()?, new_token()?);
        assert!(one(&s, acquire(&k, &a, 10_000)).await?);
        assert!(
            !one(&s, acquire(&k, &b, 10_000)).await?,
            "held: nobody else"
        );
        assert!(
            !one(&s, release(&k, &b)).await?,
            "foreign token never releases"
        );
        assert!(
            !one(&s, renew(&k, &b, 10_000)).await?,
            "foreign token never renews"
        );
        assert!(one(&s, renew(&k, &a, 10_000)).await?);
        assert!(one(&s, release(&k, &a)).await?);
        assert!(!one(&s, release(&k, &a)).await?, "already released");
        assert!(one(&s, acquire(&k, &b, 10_000)).await?, "free again");
        assert!(one(&s, release(&k, &b)).await?);
        Ok(())
    }

    #[tokio::test]
    async fn one_batch_decides_in_order() -> Result<()> {
        let s = RedisStore::new(RedisConfig::default())?;
        let (k1, k2) = (key("batch1")?, key("batch2")?);
        let (a, b) = (new_token()?, new_token()?);
        let r = s
            .lease_exec(&[
                acquire(&k1, &a, 10_000),
                acquire(&k1, &b, 10_000),
                acquire(&k2, &b, 10_000),
                renew(&k1, &b, 10_000),
                release(&k1, &a),
                acquire(&k1, &b, 10_000),
                release(&k1, &b),
                release(&k2, &b),
            ])
            .await?;
        let got: Vec<bool> = r.into_iter().collect::<Result<_>>()?;
        assert_eq!(got, [true, false, true, false, true, true, true, true]);
        Ok(())
    }

    #[tokio::test]
    async fn expiry_is_the_servers_and_expired_leases_are_taken_over() -> Result<()> {
        let s = RedisStore::new(RedisConfig::default())?;
        let k = key("expiry")?;
        let (a, b) = (new_token()?, new_token()?);
        assert!(one(&s, acquire(&k, &a, 80)).await?);
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(!one(&s, renew(&k, &a, 80)).await?, "expired: not renewed");
        assert!(
            one(&s, acquire(&k, &b, 10_000)).await?,
            "expired: taken over"
        );
        assert!(
            !one(&s, release(&k, &a)).await?,
            "stale token never releases"
        );
        // the lease is the token itself, nothing else
        let r = s.exec(&[Op::Get(k.clone())]).await?;
        assert_eq!(
            r[0],
            OpResult::Value(Some(crate::redis::store::Text::of(&b)))
        );
        assert!(one(&s, release(&k, &b)).await?);
        Ok(())
    }
}
