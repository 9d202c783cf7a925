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

fn is_noscript(v: &Value) -> bool {
    matches!(v, Value::ServerError(e) if e.code() == "NOSCRIPT")
}

fn int_reply(what: &str, v: Value) -> Result<bool> {
    if let Some(e) = server_error(&v) {
        return Err(e);
    }
    match v {
        Value::Int(n) => Ok(n > 0),
        Value::Boolean(b) => Ok(b),
        other => Err(PersistError::Store(format!(
            "{what}: unexpected reply {other:?}"
        ))),
    }
}

impl RedisStore {
    /// Run a one-key script: `EVALSHA` when its SHA is known, else `EVAL`
    /// plus `SCRIPT LOAD` (to learn the SHA) in one round trip.
    async fn eval_one_key(
        &self,
        script: &str,
        sha: &OnceLock<String>,
        key: &[u8],
        args: &[&[u8]],
    ) -> Result<Value> {
        let eval = |p: &mut redis::Pipeline| {
            p.cmd("EVAL").arg(script).arg(1).arg(key);
            for a in args {
                p.arg(*a);
            }
        };
        if let Some(s) = sha.get() {
            let mut p = redis::pipe();
            p.ignore_errors();
            p.cmd("EVALSHA").arg(s).arg(1).arg(key);
            for a in args {
                p.arg(*a);
            }
            let v = self.run(&p).await?.pop();
            match v {
                Some(v) if !is_noscript(&v) => return Ok(v),
                Some(_) => {}
                None => return Err(PersistError::Internal("EVALSHA: no reply".into())),
            }
        }
        let mut p = redis::pipe();
        p.ignore_errors();
        eval(&mut p);
        p.cmd("SCRIPT").arg("LOAD").arg(script);
        let mut v = self.run(&p).await?;
        if let Some(Value::BulkString(s)) = v.get(1) {
            if let Ok(s) = std::str::from_utf8(s) {
                let _ = sha.set(s.to_string());
            }
        }
        if v.is_empty() {
            return Err(PersistError::Internal("EVAL: no reply".into()));
        }
        Ok(v.swap_remove(0))
    }

    /// Take the lease `key` for `ttl_ms` with `token`, if nobody holds it.
    pub async fn lease_acquire(&self, key: &[u8], token: &str, ttl_ms: u64) -> Result<bool> {
        let mut p = redis::pipe();
        p.ignore_errors();
        p.cmd("SET")
            .arg(key)
            .arg(token)
            .arg("NX")
            .arg("PX")
            .arg(ttl_ms.max(1));
        let v = self
            .run(&p)
            .await?
            .pop()
            .ok_or_else(|| PersistError::Internal("SET: no reply".into()))?;
        if let Some(e) = server_error(&v) {
            return Err(e);
        }
        Ok(matches!(v, Value::Okay | Value::SimpleString(_)))
    }

    /// Delete the lease `key` if `token` holds it. Whether it did.
    pub async fn lease_release(&self, key: &[u8], token: &str) -> Result<bool> {
        let v = self
            .eval_one_key(RELEASE, &RELEASE_SHA, key, &[token.as_bytes()])
            .await?;
        int_reply("release", v)
    }

    /// Re-arm the lease `key` to `ttl_ms` from now if `token` holds it.
    pub async fn lease_renew(&self, key: &[u8], token: &str, ttl_ms: u64) -> Result<bool> {
        let ttl = ttl_ms.max(1).to_string();
        let v = self
            .eval_one_key(RENEW, &RENEW_SHA, key, &[token.as_bytes(), ttl.as_bytes()])
            .await?;
        int_reply("renew", v)
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

    #[tokio::test]
    async fn acquire_release_renew_against_local_redis() -> Result<()> {
        let s = RedisStore::new(RedisConfig::default())?;
        let k = key("basic")?;
        let (a, b) = (new_token()?, new_token()?);
        assert!(s.lease_acquire(&k, &a, 10_000).await?);
        assert!(!s.lease_acquire(&k, &b, 10_000).await?, "held: nobody else");
        assert!(
            !s.lease_release(&k, &b).await?,
            "foreign token never releases"
        );
        assert!(
            !s.lease_renew(&k, &b, 10_000).await?,
            "foreign token never renews"
        );
        assert!(s.lease_renew(&k, &a, 10_000).await?);
        assert!(s.lease_release(&k, &a).await?);
        assert!(!s.lease_release(&k, &a).await?, "already released");
        assert!(s.lease_acquire(&k, &b, 10_000).await?, "free again");
        assert!(s.lease_release(&k, &b).await?);
        Ok(())
    }

    #[tokio::test]
    async fn expiry_is_the_servers_and_expired_leases_are_taken_over() -> Result<()> {
        let s = RedisStore::new(RedisConfig::default())?;
        let k = key("expiry")?;
        let (a, b) = (new_token()?, new_token()?);
        assert!(s.lease_acquire(&k, &a, 80).await?);
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(!s.lease_renew(&k, &a, 80).await?, "expired: not renewed");
        assert!(
            s.lease_acquire(&k, &b, 10_000).await?,
            "expired: taken over"
        );
        assert!(
            !s.lease_release(&k, &a).await?,
            "stale token never releases"
        );
        // the lease is the token itself, nothing else
        let r = s.exec(&[Op::Get(k.clone())]).await?;
        assert_eq!(r[0], OpResult::Value(Some(b.encode_utf16().collect())));
        assert!(s.lease_release(&k, &b).await?);
        Ok(())
    }

    #[tokio::test]
    async fn noscript_falls_back_to_eval() -> Result<()> {
        let s = RedisStore::new(RedisConfig::default())?;
        let k = key("noscript")?;
        let a = new_token()?;
        // a SHA the server does not know, as after SCRIPT FLUSH / failover
        static BOGUS: OnceLock<String> = OnceLock::new();
        let _ = BOGUS.set("0000000000000000000000000000000000000000".into());
        assert!(s.lease_acquire(&k, &a, 10_000).await?);
        let v = s.eval_one_key(RELEASE, &BOGUS, &k, &[a.as_bytes()]).await?;
        assert!(int_reply("release", v)?);
        Ok(())
    }
}
