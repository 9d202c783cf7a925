//! Run leases (awaitly's `WorkflowLock`) on Redis: ONE key per lease (so a
//! lease never spans hash slots), holding the owner's token, expiring by
//! the server's clock (`PX`): no client clock is ever compared with another.
//!
//! - acquire: `SET key token NX PX ttl` (set only if absent);
//! - release: a script deletes the key only if it still holds the token;
//! - renew: a script re-arms the key's expiry only if it still holds the token.
//!
//! Scripts go as `EVALSHA` (their SHA1 computed here), and again as `EVAL`
//! when the server answers `NOSCRIPT` (script cache flushed, failover to a
//! replica that never saw the script). A batch of lease ops is one batch of
//! the connection ([`Exec`]): on the JS thread's socket or on tokio alike.
//!
//! A failover can lose a lease: Redis replicates asynchronously, so a lease
//! acknowledged by the old primary may be missing on the promoted replica
//! and a second owner can acquire it. See README "awaitly 1.35".

use crate::error::{PersistError, Result};
use crate::redis::batch::{Exec, Op, OpResult, Script};

static RELEASE: Script = Script::new("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end");
static RENEW: Script = Script::new("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end");

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
    /// Its command; scripts by SHA when `by_sha`.
    fn op(&self, by_sha: bool) -> Op {
        match self {
            LeaseOp::Acquire { key, token, ttl_ms } => Op::Acquire {
                key: key.clone(),
                token: token.clone(),
                ttl_ms: *ttl_ms,
            },
            LeaseOp::Release { key, token } => Op::Eval {
                script: &RELEASE,
                key: key.clone(),
                args: vec![token.as_bytes().to_vec()],
                by_sha,
            },
            LeaseOp::Renew { key, token, ttl_ms } => Op::Eval {
                script: &RENEW,
                key: key.clone(),
                args: vec![
                    token.as_bytes().to_vec(),
                    (*ttl_ms).max(1).to_string().into_bytes(),
                ],
                by_sha,
            },
        }
    }
}

/// Taken / released / renewed (true) or not (false), from an op's result.
fn verdict(r: OpResult) -> Result<bool> {
    match r {
        OpResult::Value(v) => Ok(v.is_some()),
        OpResult::Bool(b) => Ok(b),
        OpResult::Failed(e) => Err(e),
        other => Err(PersistError::Store(format!(
            "lease: unexpected result {other:?}"
        ))),
    }
}

/// Run a batch of lease ops as one batch on `x` (one round trip; two when
/// a script must go again as `EVAL`); one result per op, in order. A
/// connection failure or timeout fails the whole batch.
pub async fn lease_exec<X: Exec>(x: &X, ops: &[LeaseOp]) -> Result<Vec<Result<bool>>> {
    if ops.is_empty() {
        return Ok(Vec::new());
    }
    let mut results = x.exec(ops.iter().map(|op| op.op(true)).collect()).await?;
    let retry: Vec<usize> = (0..results.len())
        .filter(|&i| results[i].is_noscript())
        .collect();
    if !retry.is_empty() {
        let again = x
            .exec(retry.iter().map(|&i| ops[i].op(false)).collect())
            .await?;
        if again.len() != retry.len() {
            return Err(PersistError::Internal("lease retry: reply count".into()));
        }
        for (&i, r) in retry.iter().zip(again) {
            results[i] = r;
        }
    }
    Ok(results.into_iter().map(verdict).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redis::store::{RedisConfig, RedisStore};
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
        lease_exec(s, &[op])
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
        let r = lease_exec(
            &s,
            &[
                acquire(&k1, &a, 10_000),
                acquire(&k1, &b, 10_000),
                acquire(&k2, &b, 10_000),
                renew(&k1, &b, 10_000),
                release(&k1, &a),
                acquire(&k1, &b, 10_000),
                release(&k1, &b),
                release(&k2, &b),
            ],
        )
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
        let r = s.exec(vec![Op::Get(k.clone())]).await?;
        assert_eq!(
            r[0],
            OpResult::Value(Some(crate::redis::store::Text::of(&b)))
        );
        assert!(one(&s, release(&k, &b)).await?);
        Ok(())
    }
}
