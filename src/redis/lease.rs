//! Run leases (awaitly's `WorkflowLock`) on Redis: ONE key per lease (so a
//! lease never spans hash slots), holding the owner's token, expiring by
//! the server's clock (`PX`): no client clock is ever compared with another.
//!
//! - acquire: `SET key token NX PX ttl` (set only if absent);
//! - release: a script deletes the key only if it still holds the token;
//! - renew: a script re-arms the key's expiry only if it still holds the token;
//! - fenced set / delete (a snapshot save / delete by the store holding the
//!   run's lease): a script writes or deletes the snapshot key only if the
//!   lease key still holds the token, else writes nothing (`ERR_LEASE_LOST`).
//!   One script, sent in place of the `SET` / `DEL`: no extra round trip;
//!   a durable write (`WAIT` follows when the store waits for replicas).
//!
//! Lease keys ([`lease_key`]) live under the snapshot prefix and share the
//! hash slot of the snapshot key they guard, so on a cluster the fenced
//! script's two keys are on one node. [`lease_id`] reads the id back out of
//! a lease key, and the inspector reads the time left on lease keys
//! ([`lease_ttls`], `PTTL`), never writing.
//!
//! Lease ops are ops of the store's data batch (`RedisOp::LeaseAcquire`..
//! `FencedDelete`, decoded by [`data_op`]): they travel with the data calls
//! of their tick, in call order, on every transport (the JS thread's
//! socket, tokio, a cluster's nodes). Scripts go as `EVAL` (by body).
//!
//! A failover can lose a lease: Redis replicates asynchronously, so a lease
//! acknowledged by the old primary may be missing on the promoted replica
//! and a second owner can acquire it. See README "awaitly 1.35".

use std::sync::OnceLock;

use crate::boundary::lease::{decode_lease, LeaseRow};
use crate::error::{PersistError, Result};
use crate::lease_op::LeaseOp;
use crate::redis::batch::{Exec, Op, OpResult, Script};
use crate::redis::cluster::slots::{crc16, key_slot};

static RELEASE: Script = Script::new("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end");
static RENEW: Script = Script::new("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end");
static FENCED_SET: Script = Script::new("if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[2], ARGV[2]) return 1 else return 0 end");
static FENCED_DELETE: Script = Script::new("if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[2]) return 1 else return 0 end");

const SLOTS: u16 = crate::redis::cluster::slots::SLOTS as u16;

/// Characters of the slot-matching tails of lease keys: never a brace.
const TAIL_CHARS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// The first 4-character tail (in [`TAIL_CHARS`] order) that, hashed after
/// CRC state `crc`, lands on `slot`. 62^4 tails cover every slot from any
/// state; the search stops at the first hit (~16k tails on average).
fn tail_for(crc: u16, slot: u16) -> Option<[u8; 4]> {
    for &a in TAIL_CHARS {
        let ca = crc16(crc, &[a]);
        for &b in TAIL_CHARS {
            let cb = crc16(ca, &[b]);
            for &c in TAIL_CHARS {
                let cc = crc16(cb, &[c]);
                for &d in TAIL_CHARS {
                    if crc16(cc, &[d]) % SLOTS == slot {
                        return Some([a, b, c, d]);
                    }
                }
            }
        }
    }
    None
}

/// A hash tag for every slot (the tail of [`tail_for`] from an empty key),
/// computed once.
fn tag_of_slot(slot: u16) -> Option<[u8; 4]> {
    static TAGS: OnceLock<Vec<[u8; 4]>> = OnceLock::new();
    let tags = TAGS.get_or_init(|| {
        let mut tags = vec![[0u8; 4]; usize::from(SLOTS)];
        let mut left = usize::from(SLOTS);
        'all: for &a in TAIL_CHARS {
            for &b in TAIL_CHARS {
                for &c in TAIL_CHARS {
                    for &d in TAIL_CHARS {
                        let t = &mut tags[usize::from(crc16(0, &[a, b, c, d]) % SLOTS)];
                        if t[0] == 0 {
                            *t = [a, b, c, d];
                            left -= 1;
                            if left == 0 {
                                break 'all;
                            }
                        }
                    }
                }
            }
        }
        tags
    });
    tags.get(usize::from(slot)).copied().filter(|t| t[0] != 0)
}

/// The lease key of the snapshot `prefix` + `id` (`state`, the same bytes as
/// one key): under the prefix, never a snapshot key (a snapshot id never
/// starts with U+0000), one per (prefix, id), and in the state key's hash
/// slot. Which form depends on the prefix alone:
/// - a hash tag `{..}` inside the prefix: `<prefix>\0lease:<id>` (same tag);
/// - no `{` in the prefix: `<prefix>\0lease{<tag>}:<id>`, the tag one of
///   the slot's 4-character tags;
/// - a `{` the prefix leaves open: `<prefix>\0lease<tail>}:<id>`, the tail
///   closing the prefix's tag on the state key's slot;
/// - `{}` first in the prefix (no tag: whole keys hash):
///   `<prefix>\0lease=<id><tail>`, the 4-character tail landing the whole
///   key on the state key's slot.
pub fn lease_key(prefix: &[u8], id: &[u8], state: &[u8]) -> Result<Vec<u8>> {
    let slot = key_slot(state);
    let mut k = Vec::with_capacity(prefix.len() + id.len() + 16);
    k.extend_from_slice(prefix);
    k.extend_from_slice(b"\0lease");
    let lost = || PersistError::Internal("lease key: no tail for the slot".into());
    match prefix.iter().position(|&b| b == b'{') {
        None => {
            k.push(b'{');
            k.extend_from_slice(&tag_of_slot(slot).ok_or_else(lost)?);
            k.extend_from_slice(b"}:");
            k.extend_from_slice(id);
        }
        Some(open) => match prefix[open + 1..].iter().position(|&b| b == b'}') {
            Some(len) if len > 0 => {
                k.push(b':');
                k.extend_from_slice(id);
            }
            Some(_) => {
                k.push(b'=');
                k.extend_from_slice(id);
                k.extend_from_slice(&tail_for(crc16(0, &k), slot).ok_or_else(lost)?);
            }
            None => {
                k.extend_from_slice(&tail_for(crc16(0, &k[open + 1..]), slot).ok_or_else(lost)?);
                k.extend_from_slice(b"}:");
                k.extend_from_slice(id);
            }
        },
    }
    Ok(k)
}

/// The run id a lease key of `prefix` names: the inverse of [`lease_key`]
/// (each of its forms), or None when `key` is not one of `prefix`'s lease
/// keys.
pub fn lease_id<'k>(prefix: &[u8], key: &'k [u8]) -> Option<&'k [u8]> {
    let rest = key.strip_prefix(prefix)?.strip_prefix(b"\0lease")?;
    match prefix.iter().position(|&b| b == b'{') {
        None => rest
            .get(7..)
            .filter(|_| rest.first() == Some(&b'{') && rest.get(5..7) == Some(b"}:")),
        Some(open) => match prefix[open + 1..].iter().position(|&b| b == b'}') {
            Some(len) if len > 0 => rest.strip_prefix(b":"),
            Some(_) => rest
                .strip_prefix(b"=")
                .and_then(|r| r.get(..r.len().checked_sub(4)?)),
            None => rest.get(6..).filter(|_| rest.get(4..6) == Some(b"}:")),
        },
    }
}

/// The batch op of a run-lease op as it crossed the boundary (one row of
/// the data batch, `boundary::batch::decode_batch`): its lease key named
/// here ([`lease_key`]).
pub fn data_op(row: LeaseRow) -> Result<Op> {
    decode_lease(row, lease_key).map(LeaseOp::op)
}

impl LeaseOp {
    /// Its command in a batch, scripts sent by body (`EVAL`: the server
    /// files them by SHA itself, so a flushed script cache or a failover to
    /// a replica that never saw them changes nothing). Its result: an
    /// acquire's token (taken) or a miss; a release's / renew's verdict; a
    /// fenced write's `Done`, or `ERR_LEASE_LOST` ([`crate::redis::batch::decode`]).
    pub fn op(self) -> Op {
        match self {
            LeaseOp::Acquire { key, token, ttl_ms } => Op::Acquire { key, token, ttl_ms },
            LeaseOp::Release { key, token } => Op::Eval {
                script: &RELEASE,
                key,
                args: vec![token.into_bytes()],
            },
            LeaseOp::Renew { key, token, ttl_ms } => Op::Eval {
                script: &RENEW,
                key,
                args: vec![token.into_bytes(), ttl_ms.max(1).to_string().into_bytes()],
            },
            LeaseOp::FencedSet {
                key,
                token,
                state,
                value,
            } => Op::Fenced {
                script: &FENCED_SET,
                lease: key,
                state,
                args: vec![token.into_bytes(), value],
            },
            LeaseOp::FencedDelete { key, token, state } => Op::Fenced {
                script: &FENCED_DELETE,
                lease: key,
                state,
                args: vec![token.into_bytes()],
            },
        }
    }
}

/// The time left on each lease key, read only (the inspector's listing of
/// leases), as one batch on `x`: ms, -1 for a key without expiry, -2 for an
/// absent key.
pub async fn lease_ttls<X: Exec>(x: &X, keys: Vec<Vec<u8>>) -> Result<Vec<i64>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let results = x.exec(keys.into_iter().map(Op::Pttl).collect()).await?;
    results
        .into_iter()
        .map(|r| match r {
            OpResult::Ttl(ms) => Ok(ms),
            OpResult::Failed(e) => Err(e),
            other => Err(PersistError::Internal(format!(
                "PTTL: unexpected result {other:?}"
            ))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redis::config::RedisConfig;
    use crate::redis::store::RedisStore;
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

    /// Taken / released / renewed / written (true) or not (false).
    fn verdict(r: OpResult) -> Result<bool> {
        match r {
            OpResult::Value(v) => Ok(v.is_some()),
            OpResult::Bool(b) => Ok(b),
            OpResult::Done => Ok(true),
            OpResult::Failed(e) => Err(e),
            other => Err(PersistError::Internal(format!("unexpected {other:?}"))),
        }
    }

    /// Lease ops as one batch of `s`: a verdict each, in order.
    async fn run(s: &RedisStore, ops: Vec<LeaseOp>) -> Result<Vec<Result<bool>>> {
        let results = s.exec(ops.into_iter().map(LeaseOp::op).collect()).await?;
        Ok(results.into_iter().map(verdict).collect())
    }

    async fn one(s: &RedisStore, op: LeaseOp) -> Result<bool> {
        run(s, vec![op])
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
    async fn lease_ttls_reads_time_left_without_touching_the_lease() -> Result<()> {
        let s = RedisStore::new(RedisConfig::default())?;
        let (held, absent) = (key("ttl-held")?, key("ttl-absent")?);
        let a = new_token()?;
        assert!(one(&s, acquire(&held, &a, 10_000)).await?);
        let ttls = lease_ttls(&s, vec![held.clone(), absent]).await?;
        assert!(ttls[0] > 9_000 && ttls[0] <= 10_000, "{ttls:?}");
        assert_eq!(ttls[1], -2);
        assert!(lease_ttls(&s, Vec::new()).await?.is_empty());
        assert!(
            one(&s, release(&held, &a)).await?,
            "still held by its owner"
        );
        Ok(())
    }

    #[tokio::test]
    async fn one_batch_decides_in_order() -> Result<()> {
        let s = RedisStore::new(RedisConfig::default())?;
        let (k1, k2) = (key("batch1")?, key("batch2")?);
        let (a, b) = (new_token()?, new_token()?);
        let r = run(
            &s,
            vec![
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

    #[test]
    fn slots_are_redis_clusters() {
        assert_eq!(crc16(0, b"123456789"), 0x31C3, "CRC16/XMODEM check value");
        assert_eq!(key_slot(b"foo"), 12182, "CLUSTER KEYSLOT foo");
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
        assert_eq!(key_slot(b"foo{}{bar}"), crc16(0, b"foo{}{bar}") % SLOTS);
        assert_eq!(key_slot(b"foo{{bar}}zap"), key_slot(b"{bar"));
        assert_eq!(key_slot(b"foo{bar}{zap}"), key_slot(b"bar"));
    }

    /// Prefixes of every form, ids with and without braces.
    const PREFIXES: [&str; 7] = [
        "awaitly:snapshot:",
        "{app}:snap:",
        "a{b",
        "x{}{y}:",
        "{",
        "}{:",
        "",
    ];
    const IDS: [&str; 8] = ["wf-1", "{wf}", "a}b", "{}", "x{y", "lease:1", "é{ü}", "}"];

    #[test]
    fn lease_keys_share_the_state_keys_slot_and_never_collide() -> Result<()> {
        let mut seen = std::collections::HashSet::new();
        for prefix in PREFIXES {
            for id in IDS {
                let state = format!("{prefix}{id}").into_bytes();
                let k = lease_key(prefix.as_bytes(), id.as_bytes(), &state)?;
                assert_eq!(key_slot(&k), key_slot(&state), "{prefix:?} {id:?}: {k:?}");
                assert!(k.starts_with(prefix.as_bytes()));
                assert_eq!(
                    k[prefix.len()],
                    0,
                    "never a snapshot key (ids never start with U+0000)"
                );
                assert!(
                    seen.insert(k),
                    "{prefix:?} {id:?}: one lease key per (prefix, id)"
                );
                // the same answer every time
                assert_eq!(
                    lease_key(prefix.as_bytes(), id.as_bytes(), &state)?,
                    lease_key(prefix.as_bytes(), id.as_bytes(), &state)?
                );
            }
        }
        // a tag in the prefix: today's form
        assert_eq!(
            lease_key(b"{app}:", b"x", b"{app}:x")?,
            b"{app}:\0lease:x".to_vec()
        );
        Ok(())
    }

    #[test]
    fn every_slot_has_a_tag() {
        for slot in 0..SLOTS {
            let t = tag_of_slot(slot);
            assert!(
                t.is_some_and(|t| crc16(0, &t) % SLOTS == slot),
                "slot {slot}"
            );
        }
    }

    fn fenced_set(key: &[u8], token: &str, state: &[u8], value: &str) -> LeaseOp {
        LeaseOp::FencedSet {
            key: key.to_vec(),
            token: token.into(),
            state: state.to_vec(),
            value: value.as_bytes().to_vec(),
        }
    }

    #[tokio::test]
    async fn fenced_writes_land_only_while_the_lease_is_the_writers() -> Result<()> {
        let s = RedisStore::new(RedisConfig::default())?;
        let prefix = key("fenced")?;
        let state = [prefix.as_slice(), b"wf"].concat();
        let k = lease_key(&prefix, b"wf", &state)?;
        let (a, b) = (new_token()?, new_token()?);
        assert!(one(&s, acquire(&k, &a, 80)).await?);
        assert!(one(&s, fenced_set(&k, &a, &state, "by-a")).await?);
        tokio::time::sleep(Duration::from_millis(150)).await;
        // expired, nobody else yet: no longer a's either
        let lost = one(&s, fenced_set(&k, &a, &state, "late-a")).await;
        assert!(matches!(lost, Err(PersistError::LeaseLost(_))), "{lost:?}");
        assert!(one(&s, acquire(&k, &b, 10_000)).await?);
        assert!(one(&s, fenced_set(&k, &b, &state, "by-b")).await?);
        let r = run(
            &s,
            vec![
                fenced_set(&k, &a, &state, "stale-a"),
                LeaseOp::FencedDelete {
                    key: k.clone(),
                    token: a.clone(),
                    state: state.clone(),
                },
            ],
        )
        .await?;
        assert!(
            r.iter()
                .all(|r| matches!(r, Err(PersistError::LeaseLost(_)))),
            "{r:?}"
        );
        let got = s.exec(vec![Op::Get(state.clone())]).await?;
        assert_eq!(
            got[0],
            OpResult::Value(Some(crate::redis::store::Text::of("by-b")))
        );
        let del = LeaseOp::FencedDelete {
            key: k.clone(),
            token: b.clone(),
            state: state.clone(),
        };
        assert!(one(&s, del).await?);
        assert_eq!(
            s.exec(vec![Op::Get(state)]).await?[0],
            OpResult::Value(None)
        );
        assert!(one(&s, release(&k, &b)).await?);
        Ok(())
    }

    #[test]
    fn lease_id_reads_back_every_form_of_lease_key() -> Result<()> {
        for prefix in [&b"awaitly:snapshot:"[..], b"p{tag}:", b"p{open:", b"{}p:"] {
            for id in [&b"run-1"[..], b"", b"x}:{y"] {
                let mut state = prefix.to_vec();
                state.extend_from_slice(id);
                let key = lease_key(prefix, id, &state)?;
                assert_eq!(lease_id(prefix, &key), Some(id), "{prefix:?} {id:?}");
            }
        }
        assert_eq!(
            lease_id(b"p:", b"p:run"),
            None,
            "a snapshot key is no lease key"
        );
        assert_eq!(lease_id(b"q:", b"p:\0lease{abcd}:x"), None);
        Ok(())
    }
}
