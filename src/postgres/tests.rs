//! The PostgreSQL store against the local server (127.0.0.1:5432, database
//! `test`, trust auth), each test on a private schema it drops: data ops,
//! batches and transactions, expiry and the sweep, leases and fenced
//! writes, splitting, outages.

use std::sync::atomic::Ordering;
use std::time::Duration;

use super::config::PgConfig;
use super::connect::{Driver, Io, Runner, Task};
use super::failure::classify;
use super::store::{PgOp, PgStore, MIN_PART};
use crate::error::{PersistError, Result};
use crate::glob;
use crate::lease_op::LeaseOp;
use crate::redis::batch::{Op, OpResult, Text};
use crate::wtf8;

/// A store on a private schema of the local server (`test` database),
/// its connections run by `runner`.
fn store_on(tag: &str, runner: Runner) -> Result<PgStore> {
    PgStore::new(
        PgConfig {
            host: Some("127.0.0.1".into()),
            user: Some("postgres".into()),
            database: Some("test".into()),
            schema: Some(format!("rs_{tag}_{}", std::process::id())),
            pool_size: 2,
            ..PgConfig::default()
        },
        runner,
    )
}

/// The same on tokio.
fn store(tag: &str) -> Result<PgStore> {
    store_on(tag, Runner::Tokio)
}

async fn drop_schema(s: &PgStore) -> Result<()> {
    let c = s.inner.pool.open().await?;
    let schema = s.config().schema.clone().unwrap_or_default();
    c.batch_execute(&format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"))
        .await
        .map_err(|e| classify(&e))
}

fn u(s: &str) -> Vec<u16> {
    s.encode_utf16().collect()
}

#[tokio::test]
async fn kv_keys_and_exact_bytes_against_local_postgres() -> Result<()> {
    let s = store("kv")?;
    let odd: Vec<u16> = vec![0x61, 0, 0xD800, 0x25, 0x5F, 0x5C];
    let r = s
        .exec(&[
            Op::Set(b"a:1".to_vec(), b"one".to_vec(), None),
            Op::Set(wtf8::encode(&odd), wtf8::encode(&odd), None),
            Op::Set(b"a:2".to_vec(), "é".as_bytes().to_vec(), Some(100)),
            Op::Get(b"a:1".to_vec()),
            Op::Get(wtf8::encode(&odd)),
            Op::Get(b"a:2".to_vec()),
            Op::Get(b"nope".to_vec()),
            Op::Exists(b"a:1".to_vec()),
            Op::Delete(b"a:1".to_vec()),
            Op::Delete(b"a:1".to_vec()),
        ])
        .await?;
    assert_eq!(r[3], OpResult::Value(Some(Text::of("one"))));
    assert_eq!(r[4], OpResult::Value(Some(Text::Units(odd.clone()))));
    assert_eq!(r[5], OpResult::Value(Some(Text::of("é"))));
    assert_eq!(r[6], OpResult::Value(None));
    assert_eq!(r[7], OpResult::Bool(true));
    assert_eq!(
        (&r[8], &r[9]),
        (&OpResult::Bool(true), &OpResult::Bool(false))
    );
    assert_eq!(s.keys(&u("a:*")).await?, vec![u("a:2")]);
    // % _ \ in the key are literal, a class is exact
    let mut p = glob::escape_units(&odd);
    p.push(u16::from(b'*'));
    assert_eq!(s.keys(&p).await?, vec![odd.clone()]);
    assert_eq!(s.keys(&u("a%")).await?, Vec::<Vec<u16>>::new());
    assert_eq!(s.keys(&u("a:[12]")).await?, vec![u("a:2")]);
    // the version row is never a key
    assert_eq!(s.keys(&u("*")).await?.len(), 2);
    drop_schema(&s).await
}

#[tokio::test]
async fn a_batch_is_one_transaction_in_call_order_and_batches_never_mix() -> Result<()> {
    let s = store("txn")?;
    let k = || b"k".to_vec();
    let r = s
        .exec(&[
            Op::Set(k(), b"a".to_vec(), None),
            Op::Get(k()),
            Op::Delete(k()),
            Op::Delete(k()),
            Op::Get(k()),
            Op::Set(k(), b"b".to_vec(), None),
        ])
        .await?;
    assert_eq!(
        r,
        vec![
            OpResult::Done,
            OpResult::Value(Some(Text::of("a"))),
            OpResult::Bool(true),
            OpResult::Bool(false),
            OpResult::Value(None),
            OpResult::Done
        ]
    );
    // 40 batches at once on 2 connections: each sees only its own order
    let runs = (0..40).map(|i| {
        let s = s.clone();
        async move {
            let key = format!("b{i}").into_bytes();
            let v1 = format!("{i}.1");
            let v2 = format!("{i}.2");
            let r = s
                .exec(&[
                    Op::Set(key.clone(), v1.clone().into_bytes(), None),
                    Op::Get(key.clone()),
                    Op::Set(key.clone(), v2.clone().into_bytes(), None),
                    Op::Get(key.clone()),
                ])
                .await?;
            assert_eq!(r[1], OpResult::Value(Some(Text::of(&v1))));
            assert_eq!(r[3], OpResult::Value(Some(Text::of(&v2))));
            Ok::<_, PersistError>(())
        }
    });
    for r in futures_util::future::join_all(runs).await {
        r?;
    }
    drop_schema(&s).await
}

/// The last statement of each of our connections on `table` (pg_stat_activity).
async fn last_statements(c: &tokio_postgres::Client, table: &str) -> Result<Vec<String>> {
    Ok(c.query(
        "SELECT query FROM pg_stat_activity WHERE application_name = 'awaitly-persistence-native' \
             AND query LIKE '%' || $1 || '%'",
        &[&table],
    )
    .await
    .map_err(|e| classify(&e))?
    .iter()
    .map(|r| r.get::<_, String>(0))
    .collect())
}

#[tokio::test]
async fn a_batch_of_only_gets_or_only_sets_is_one_statement_with_the_same_results() -> Result<()> {
    let s = store("many")?;
    // sets: a key twice (the last wins), a ttl, an odd key
    let odd = wtf8::encode(&[0x61, 0, 0xD800]);
    let r = s
        .exec(&[
            Op::Set(b"m:1".to_vec(), b"first".to_vec(), None),
            Op::Set(b"m:2".to_vec(), "é".as_bytes().to_vec(), Some(100)),
            Op::SetDurable(odd.clone(), b"odd".to_vec(), None),
            Op::Set(b"m:1".to_vec(), b"last".to_vec(), None),
        ])
        .await?;
    assert!(r.iter().all(|r| *r == OpResult::Done), "{r:?}");
    // the server ran them as one statement
    let c = s.inner.pool.open().await?;
    let table = s.config().qualified_table();
    assert!(last_statements(&c, &table)
        .await?
        .iter()
        .any(|q| q.contains("unnest($1::bytea[]")));
    // a stored value that is no string's bytes
    c.execute(
        &format!("INSERT INTO {table} (k, v) VALUES ('m:bad', '\\xff'::bytea)"),
        &[],
    )
    .await
    .map_err(|e| classify(&e))?;
    // gets: present, twice, missing, odd, corrupt
    let r = s
        .exec(&[
            Op::Get(b"m:1".to_vec()),
            Op::Get(b"m:2".to_vec()),
            Op::Get(b"m:1".to_vec()),
            Op::Get(b"nope".to_vec()),
            Op::Get(odd.clone()),
            Op::Get(b"m:bad".to_vec()),
        ])
        .await?;
    // the server ran the part's gets as one statement
    assert!(last_statements(&c, &table)
        .await?
        .iter()
        .any(|q| q.contains("k = ANY($1)")));
    assert_eq!(r[0], OpResult::Value(Some(Text::of("last"))));
    assert_eq!(r[1], OpResult::Value(Some(Text::of("é"))));
    assert_eq!(r[2], OpResult::Value(Some(Text::of("last"))));
    assert_eq!(r[3], OpResult::Value(None));
    assert_eq!(r[4], OpResult::Value(Some(Text::of("odd"))));
    assert!(
        matches!(&r[5], OpResult::Failed(PersistError::Corrupt { .. })),
        "{:?}",
        r[5]
    );
    // the ttl was set: the row expires on the server's clock
    let row = c
        .query_one(
            &format!(
                "SELECT expires_at > now() + interval '90 seconds' FROM {table} WHERE k = 'm:2'"
            ),
            &[],
        )
        .await
        .map_err(|e| classify(&e))?;
    assert_eq!(row.get::<_, Option<bool>>(0), Some(true));
    // a key the index cannot hold fails alone: the others are written
    let mut x: u32 = 7;
    let huge: Vec<u8> = (0..6000)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (x >> 16) as u8
        })
        .collect();
    let r = s
        .exec(&[
            Op::Set(b"m:3".to_vec(), b"3".to_vec(), None),
            Op::Set(huge, b"x".to_vec(), None),
            Op::Set(b"m:4".to_vec(), b"4".to_vec(), None),
        ])
        .await?;
    assert_eq!((&r[0], &r[2]), (&OpResult::Done, &OpResult::Done));
    assert!(
        matches!(&r[1], OpResult::Failed(PersistError::Store(_))),
        "{:?}",
        r[1]
    );
    let r = s
        .exec(&[Op::Get(b"m:3".to_vec()), Op::Get(b"m:4".to_vec())])
        .await?;
    assert_eq!(
        r,
        vec![
            OpResult::Value(Some(Text::of("3"))),
            OpResult::Value(Some(Text::of("4")))
        ]
    );
    drop_schema(&s).await
}

#[tokio::test]
async fn expiry_is_the_servers_and_the_sweep_deletes() -> Result<()> {
    let s = store("ttl")?;
    s.exec(&[Op::Set(b"t".to_vec(), b"x".to_vec(), Some(1))])
        .await?;
    assert_eq!(
        s.exec(&[Op::Exists(b"t".to_vec())]).await?[0],
        OpResult::Bool(true)
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let r = s
        .exec(&[Op::Get(b"t".to_vec()), Op::Exists(b"t".to_vec())])
        .await?;
    assert_eq!(r, vec![OpResult::Value(None), OpResult::Bool(false)]);
    assert_eq!(s.keys(&u("*")).await?.len(), 0);
    assert_eq!(s.sweep().await?, 1, "the expired row is deleted");
    assert_eq!(s.sweep().await?, 0);
    drop_schema(&s).await
}

#[tokio::test]
async fn a_batch_of_only_acquires_or_only_releases_is_one_statement_with_the_same_answers(
) -> Result<()> {
    let s = store("lease_many")?;
    let key = |i: u32| format!("p\0lease:{i}").into_bytes();
    let acq = |i, t: &str, ms| LeaseOp::Acquire {
        key: key(i),
        token: t.into(),
        ttl_ms: ms,
    };
    let rel = |i, t: &str| LeaseOp::Release {
        key: key(i),
        token: t.into(),
    };
    let answers = |r: Vec<Result<bool>>| r.into_iter().collect::<Result<Vec<bool>>>();
    // 1 held, 2 about to expire, 5 a plain row (no expiry: never a lease)
    answers(
        s.lease_exec(&[acq(1, "a", 10_000), acq(2, "a", 50)])
            .await?,
    )?;
    s.exec(&[Op::Set(key(5), b"v".to_vec(), None)]).await?;
    tokio::time::sleep(Duration::from_millis(120)).await;
    let r = answers(
        s.lease_exec(&[
            acq(1, "b", 10_000),
            acq(2, "b", 10_000),
            acq(3, "b", 10_000),
            acq(5, "b", 10_000),
        ])
        .await?,
    )?;
    assert_eq!(r, [false, true, true, false]);
    let c = s.inner.pool.open().await?;
    let table = s.config().qualified_table();
    assert!(last_statements(&c, &table)
        .await?
        .iter()
        .any(|q| q.contains("RETURNING k")));
    // 4 taken briefly, then expired: its release deletes it but answers false
    answers(s.lease_exec(&[acq(4, "b", 50)]).await?)?;
    tokio::time::sleep(Duration::from_millis(120)).await;
    let r = answers(
        s.lease_exec(&[
            rel(1, "a"),
            rel(2, "b"),
            rel(3, "x"),
            rel(4, "b"),
            rel(9, "b"),
        ])
        .await?,
    )?;
    assert_eq!(r, [true, true, false, false, false]);
    assert!(last_statements(&c, &table)
        .await?
        .iter()
        .any(|q| q.contains("USING unnest")));
    // what is left: 3 (held by b), 5 (the plain row); 1, 2 and 4 are gone
    let r = s
        .exec(&[
            Op::Exists(key(1)),
            Op::Exists(key(2)),
            Op::Exists(key(3)),
            Op::Exists(key(4)),
            Op::Exists(key(5)),
        ])
        .await?;
    assert_eq!(
        r,
        [false, false, true, false, true]
            .map(OpResult::Bool)
            .into_iter()
            .collect::<Vec<_>>()
    );
    // one key twice in a batch: one statement per op, in call order
    let r = answers(
        s.lease_exec(&[acq(7, "a", 10_000), acq(7, "b", 10_000)])
            .await?,
    )?;
    assert_eq!(r, [true, false]);
    drop_schema(&s).await
}

#[tokio::test]
async fn leases_take_release_renew_and_expire() -> Result<()> {
    let s = store("lease")?;
    let k = b"p\0lease:x".to_vec();
    let acq = |t: &str, ms| LeaseOp::Acquire {
        key: k.clone(),
        token: t.into(),
        ttl_ms: ms,
    };
    let rel = |t: &str| LeaseOp::Release {
        key: k.clone(),
        token: t.into(),
    };
    let ren = |t: &str, ms| LeaseOp::Renew {
        key: k.clone(),
        token: t.into(),
        ttl_ms: ms,
    };
    let r: Vec<bool> = s
        .lease_exec(&[
            acq("a", 10_000),
            acq("b", 10_000),
            ren("b", 10_000),
            rel("b"),
            ren("a", 100),
        ])
        .await?
        .into_iter()
        .collect::<Result<_>>()?;
    assert_eq!(r, [true, false, false, false, true]);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let r: Vec<bool> = s
        .lease_exec(&[
            ren("a", 100),
            acq("b", 10_000),
            rel("a"),
            rel("b"),
            rel("b"),
        ])
        .await?
        .into_iter()
        .collect::<Result<_>>()?;
    assert_eq!(r, [false, true, false, true, false]);
    drop_schema(&s).await
}

/// The lease of snapshot `px` (row `p\0lease:x`) and the ops of the fenced
/// tests on it.
struct Fence {
    key: Vec<u8>,
    state: Vec<u8>,
}

impl Fence {
    fn new() -> Self {
        Fence {
            key: b"p\0lease:x".to_vec(),
            state: b"px".to_vec(),
        }
    }
    fn acquire(token: &str, ttl_ms: u64) -> LeaseOp {
        let f = Fence::new();
        LeaseOp::Acquire {
            key: f.key,
            token: token.into(),
            ttl_ms,
        }
    }
    fn set(token: &str, value: &str) -> LeaseOp {
        let f = Fence::new();
        LeaseOp::FencedSet {
            key: f.key,
            token: token.into(),
            state: f.state,
            value: value.as_bytes().to_vec(),
        }
    }
    fn delete(token: &str) -> LeaseOp {
        let f = Fence::new();
        LeaseOp::FencedDelete {
            key: f.key,
            token: token.into(),
            state: f.state,
        }
    }
}

#[tokio::test]
async fn a_data_batch_carries_lease_ops_answered_in_call_order() -> Result<()> {
    let s = store("mixed")?;
    let lease = b"l:run".to_vec();
    let (data, lease_op) = (PgOp::Data, PgOp::Lease);
    let value = |v: &str| OpResult::Value(Some(Text::Ascii(v.as_bytes().to_vec())));
    let r = s
        .exec_batch(vec![
            data(Op::Set(b"k".to_vec(), b"v".to_vec(), None)),
            lease_op(LeaseOp::Acquire {
                key: lease.clone(),
                token: "t1".into(),
                ttl_ms: 10_000,
            }),
            data(Op::Get(b"absent".to_vec())),
            lease_op(LeaseOp::Release {
                key: lease.clone(),
                token: "not-t1".into(),
            }),
            lease_op(LeaseOp::FencedSet {
                key: lease.clone(),
                token: "t1".into(),
                state: b"snap".to_vec(),
                value: b"S".to_vec(),
            }),
        ])
        .await?;
    assert_eq!(r.len(), 5, "{r:?}");
    assert_eq!(r[0], OpResult::Done);
    assert_eq!(r[1], value("t1"), "an acquire answers its token");
    assert_eq!(r[2], OpResult::Value(None));
    assert_eq!(
        r[3],
        OpResult::Bool(false),
        "another token releases nothing"
    );
    assert_eq!(r[4], OpResult::Done);
    // held: a second acquire answers None; a fenced write by another token is lost
    let r = s
        .exec_batch(vec![
            lease_op(LeaseOp::Acquire {
                key: lease.clone(),
                token: "t2".into(),
                ttl_ms: 10_000,
            }),
            lease_op(LeaseOp::FencedDelete {
                key: lease.clone(),
                token: "t2".into(),
                state: b"snap".to_vec(),
            }),
            data(Op::Get(b"snap".to_vec())),
            lease_op(LeaseOp::Release {
                key: lease.clone(),
                token: "t1".into(),
            }),
        ])
        .await?;
    assert_eq!(r[0], OpResult::Value(None), "{r:?}");
    assert!(
        matches!(&r[1], OpResult::Failed(PersistError::LeaseLost(_))),
        "{r:?}"
    );
    assert_eq!(r[2], value("S"));
    assert_eq!(r[3], OpResult::Bool(true));
    drop_schema(&s).await
}

/// A fenced write refused.
fn lost(r: &Result<bool>) -> bool {
    matches!(r, Err(PersistError::LeaseLost(_)))
}

#[tokio::test]
async fn fenced_writes_land_only_while_the_lease_is_the_writers() -> Result<()> {
    let s = store("fence")?;
    let state = Fence::new().state;
    let (acq, set, del) = (Fence::acquire, Fence::set, Fence::delete);
    let get = || async {
        s.exec(&[Op::Get(state.clone())])
            .await
            .map(|mut r| r.remove(0))
    };
    let value = |v: &str| OpResult::Value(Some(Text::Ascii(v.as_bytes().to_vec())));

    // no lease row: nothing written
    let r = s.lease_exec(&[set("a", "A0")]).await?;
    assert!(lost(&r[0]), "{r:?}");
    assert_eq!(get().await?, OpResult::Value(None));
    // A holds it: A writes (twice in one batch), B is fenced off
    let r = s
        .lease_exec(&[
            acq("a", 300),
            set("a", "A1"),
            set("b", "B1"),
            set("a", "A2"),
        ])
        .await?;
    assert!(matches!(r[..], [Ok(true), Ok(true), _, Ok(true)]), "{r:?}");
    assert!(lost(&r[2]), "{r:?}");
    assert_eq!(get().await?, value("A2"));
    // A's lease expires (no one took it): A's write and delete are refused
    tokio::time::sleep(Duration::from_millis(400)).await;
    let r = s.lease_exec(&[set("a", "A3"), del("a")]).await?;
    assert!(r.iter().all(lost), "{r:?}");
    assert_eq!(get().await?, value("A2"));
    // B takes over and writes; A stays fenced off; B deletes
    let r = s
        .lease_exec(&[acq("b", 10_000), set("b", "B2"), set("a", "A4"), del("a")])
        .await?;
    assert!(matches!(r[..2], [Ok(true), Ok(true)]), "{r:?}");
    assert!(lost(&r[2]) && lost(&r[3]), "{r:?}");
    assert_eq!(get().await?, value("B2"));
    let r = s.lease_exec(&[del("b")]).await?;
    assert!(matches!(r[..], [Ok(true)]), "{r:?}");
    assert_eq!(get().await?, OpResult::Value(None));
    drop_schema(&s).await
}

/// The fenced statement against a takeover on another connection, READ
/// COMMITTED (see `sql::StatementText::new`): a takeover whose write of the
/// lease row is pending makes the fenced write wait, then refuse once it
/// commits; a fenced write whose transaction is open makes a takeover wait,
/// which then takes the expired lease. A released lease fences too.
#[tokio::test]
async fn fenced_writes_against_a_concurrent_takeover() -> Result<()> {
    let s = store("fence_race")?;
    let table = s.config().qualified_table();
    let Fence { key: k, state } = Fence::new();
    let (acq, set, del) = (Fence::acquire, Fence::set, Fence::delete);
    let value = || async {
        let r = s.exec(&[Op::Get(state.clone())]).await?;
        Ok::<_, PersistError>(match &r[0] {
            OpResult::Value(Some(Text::Ascii(v))) => Some(String::from_utf8_lossy(v).into_owned()),
            OpResult::Value(None) => None,
            other => panic!("{other:?}"),
        })
    };
    let other = s.inner.pool.open().await?;
    let sql = |q: String| {
        let other = &other;
        async move { other.batch_execute(&q).await.map_err(|e| classify(&e)) }
    };

    // released: the row is gone, the old token writes nothing
    let r = s.lease_exec(&[acq("a", 10_000), set("a", "A1")]).await?;
    assert!(matches!(r[..], [Ok(true), Ok(true)]), "{r:?}");
    let r = s
        .lease_exec(&[LeaseOp::Release {
            key: k.clone(),
            token: "a".into(),
        }])
        .await?;
    assert!(matches!(r[..], [Ok(true)]), "{r:?}");
    let r = s.lease_exec(&[set("a", "A2"), del("a")]).await?;
    assert!(r.iter().all(lost), "{r:?}");
    assert_eq!(value().await?.as_deref(), Some("A1"));

    // A holds a live lease; a takeover's write of the row is pending on
    // another connection: A's save and delete wait for it, then re-check
    // the committed row (B's token) and write nothing
    let r = s.lease_exec(&[acq("a", 10_000)]).await?;
    assert!(matches!(r[..], [Ok(true)]), "{r:?}");
    sql("BEGIN".into()).await?;
    let takeover =
        format!("UPDATE {table} SET v = 'b', expires_at = now() + interval '10 s' WHERE k = $1");
    let n = other
        .execute(&takeover, &[&k])
        .await
        .map_err(|e| classify(&e))?;
    assert_eq!(n, 1);
    let a = tokio::spawn({
        let (s, ops) = (s.clone(), [set("a", "A3"), del("a")]);
        async move { s.lease_exec(&ops).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!a.is_finished(), "A's fenced write waits for the row lock");
    sql("COMMIT".into()).await?;
    let r = a.await.expect("joined")?;
    assert!(r.iter().all(lost), "{r:?}");
    assert_eq!(value().await?.as_deref(), Some("A1"));

    // B (the row's owner now) saves inside an open transaction on another
    // connection while its lease is live; the lease expires; C's takeover
    // waits for that commit, then takes the expired lease: B's write landed
    // while B held the lease, C's later writes land, B's do not
    let fenced_set = super::sql::StatementText::new(&table).fenced_set;
    let renew = LeaseOp::Renew {
        key: k.clone(),
        token: "b".into(),
        ttl_ms: 300,
    };
    let r = s.lease_exec(&[renew]).await?;
    assert!(matches!(r[..], [Ok(true)]), "{r:?}");
    sql("BEGIN".into()).await?;
    let written = other
        .query_opt(&fenced_set, &[&k, &&b"b"[..], &state, &&b"B1"[..]])
        .await
        .map_err(|e| classify(&e))?;
    assert!(written.is_some(), "B holds the lease: its save is written");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let c = tokio::spawn({
        let (s, ops) = (s.clone(), [acq("c", 10_000)]);
        async move { s.lease_exec(&ops).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!c.is_finished(), "the takeover waits for B's commit");
    sql("COMMIT".into()).await?;
    let r = c.await.expect("joined")?;
    assert!(matches!(r[..], [Ok(true)]), "{r:?}");
    assert_eq!(value().await?.as_deref(), Some("B1"));
    let r = s.lease_exec(&[set("b", "B2"), set("c", "C1")]).await?;
    assert!(lost(&r[0]) && matches!(r[1], Ok(true)), "{r:?}");
    assert_eq!(value().await?.as_deref(), Some("C1"));
    drop(other);
    drop_schema(&s).await
}

/// A batch transaction takes its row locks in key order (`PgStore::split`):
/// another session holding key `a` and then locking `b` never meets the
/// batch `[b, a]` crosswise. In call order the batch would hold `b` while
/// waiting for `a`, and that session's lock of `b` would end in a deadlock
/// (detected after its 100 ms `deadlock_timeout`, reported to it).
#[tokio::test]
async fn a_batch_takes_its_row_locks_in_key_order() -> Result<()> {
    let s = store("lock_order")?;
    let table = s.config().qualified_table();
    let (a, b) = (b"p\0lease:a".to_vec(), b"p\0lease:b".to_vec());
    let acq = |k: &Vec<u8>, t: &str| LeaseOp::Acquire {
        key: k.clone(),
        token: t.into(),
        ttl_ms: 60_000,
    };
    let r = s.lease_exec(&[acq(&a, "h"), acq(&b, "h")]).await?;
    assert!(matches!(r[..], [Ok(true), Ok(true)]), "{r:?}");
    let other = s.inner.pool.open().await?;
    let err = |e: tokio_postgres::Error| classify(&e);
    other
        .batch_execute("SET deadlock_timeout = '100ms'; BEGIN")
        .await
        .map_err(err)?;
    let lock = format!("SELECT 1 FROM {table} WHERE k = $1 FOR UPDATE");
    other.query_one(&lock, &[&a]).await.map_err(err)?;
    // the batch [b, a] (both held by "h": each acquire locks its row)
    let batch = tokio::spawn({
        let (s, ops) = (s.clone(), [acq(&b, "x"), acq(&a, "x")]);
        async move { s.lease_exec(&ops).await }
    });
    // until the batch waits for a row lock (ours, on `a`)
    let waiting = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' \
                   AND pid <> pg_backend_pid() AND strpos(query, $1) > 0";
    let watcher = s.inner.pool.open().await?;
    let mut polls = 0;
    loop {
        let n: i64 = watcher
            .query_one(waiting, &[&table])
            .await
            .map_err(err)?
            .get(0);
        if n > 0 {
            break;
        }
        polls += 1;
        assert!(polls < 500, "the batch never waited for the row lock");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // `b` is free: the batch took no lock past the one it waits for
    let locked = other.query_one(&lock, &[&b]).await;
    assert!(locked.is_ok(), "deadlock: {locked:?}");
    other.batch_execute("COMMIT").await.map_err(err)?;
    let r = batch.await.expect("joined")?;
    assert!(matches!(r[..], [Ok(false), Ok(false)]), "{r:?}");
    drop((other, watcher));
    drop_schema(&s).await
}

#[test]
fn a_batch_splits_over_idle_connections_keeping_each_keys_ops_together() -> Result<()> {
    let s = PgStore::new(PgConfig::default(), Runner::Tokio)?; // pool_size 4, never connected
    let keys: Vec<Vec<u8>> = (0..32)
        .map(|i| format!("k{}", i % 16).into_bytes())
        .collect();
    let parts = s.split(keys.iter().map(|k| Some(k.as_slice())), MIN_PART);
    assert_eq!(parts.len(), 4);
    assert_eq!(
        s.inner.pool.idle_slots(),
        0,
        "each part holds a slot of its own"
    );
    let mut seen = 0;
    for (idx, _) in &parts {
        assert!(
            idx.windows(2)
                .all(|w| (&keys[w[0]], w[0]) < (&keys[w[1]], w[1])),
            "key order, then call order, within a part"
        );
        for &i in idx {
            // both calls on key i % 16 are in this part
            assert!(idx.contains(&(i % 16)) && idx.contains(&(i % 16 + 16)));
        }
        seen += idx.len();
    }
    assert_eq!(seen, 32);
    // the connections are busy now: the next batch is not split
    let again = s.split(keys.iter().map(|k| Some(k.as_slice())), MIN_PART);
    assert_eq!(again.len(), 1);
    drop(parts);
    drop(again);
    assert_eq!(s.inner.pool.idle_slots(), 4);
    // small batches stay whole
    assert_eq!(
        s.split(keys[..7].iter().map(|k| Some(k.as_slice())), MIN_PART)
            .len(),
        1
    );
    Ok(())
}

#[tokio::test]
async fn a_dead_server_is_unavailable_and_a_closed_store_closed() -> Result<()> {
    let s = PgStore::new(
        PgConfig {
            port: Some(1),
            connect_timeout_ms: 500,
            ..PgConfig::default()
        },
        Runner::Tokio,
    )?;
    // each op of the batch fails with the connection's error
    let r = s.exec(&[Op::Get(b"k".to_vec()), Op::Ping]).await?;
    for res in r {
        assert!(
            matches!(&res, OpResult::Failed(e) if e.code() == "ERR_STORE_UNAVAILABLE"),
            "{res:?}"
        );
    }
    let l = s
        .lease_exec(&[LeaseOp::Release {
            key: b"k".to_vec(),
            token: "t".into(),
        }])
        .await?;
    assert_eq!(
        l[0].as_ref().err().map(|e| e.code()),
        Some("ERR_STORE_UNAVAILABLE")
    );
    s.close().await;
    let e = s.ping().await.err();
    assert_eq!(e.map(|e| e.code()), Some("ERR_STORE_CLOSED"));
    Ok(())
}

/// A [`Driver`] that counts what it adopts and runs, doing both on tokio.
#[derive(Default)]
struct Counting {
    adopted: std::sync::atomic::AtomicUsize,
    spawned: std::sync::atomic::AtomicUsize,
}

impl Driver for Counting {
    fn adopt(&self, fd: std::os::fd::OwnedFd) -> std::io::Result<Box<dyn Io>> {
        self.adopted.fetch_add(1, Ordering::Relaxed);
        let s = std::net::TcpStream::from(fd);
        Ok(Box::new(tokio::net::TcpStream::from_std(s)?))
    }

    fn spawn(&self, task: Task) {
        self.spawned.fetch_add(1, Ordering::Relaxed);
        drop(tokio::spawn(task));
    }
}

#[tokio::test]
async fn a_driven_store_hands_every_socket_and_connection_to_its_driver() -> Result<()> {
    let driver = std::sync::Arc::new(Counting::default());
    let s = store_on("driven", Runner::Driven(driver.clone()))?;
    let batch = |i: u8| {
        vec![
            Op::Set(vec![b'k', i], b"v".to_vec(), None),
            Op::Get(vec![b'k', i]),
        ]
    };
    for i in 0..4u8 {
        let r = s.exec(&batch(i)).await?;
        assert_eq!(r[1], OpResult::Value(Some(Text::of("v"))));
    }
    // one batch at a time keeps to one connection
    assert_eq!(driver.adopted.load(Ordering::Relaxed), 1);
    // two at once take both slots
    let (four, five) = (batch(4), batch(5));
    let (a, b) = tokio::join!(s.exec(&four), s.exec(&five));
    assert_eq!(a?[1], OpResult::Value(Some(Text::of("v"))));
    assert_eq!(b?[1], OpResult::Value(Some(Text::of("v"))));
    // two slots: two sockets adopted, two connections (startup + I/O) run by it
    assert_eq!(driver.adopted.load(Ordering::Relaxed), 2);
    assert_eq!(driver.spawned.load(Ordering::Relaxed), 2);
    assert_eq!(s.connections_opened(), 2);
    drop_schema(&s).await
}
