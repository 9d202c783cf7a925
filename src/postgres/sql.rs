//! The SQL of the PostgreSQL store, and the pure encodings it relies on.
//!
//! Table layout (one table per store; leases are rows of it too):
//!
//! ```sql
//! k          bytea PRIMARY KEY   -- WTF-8 of the JS key
//! v          bytea NOT NULL      -- WTF-8 of the JS value (a lease: its token)
//! expires_at timestamptz         -- NULL: never; else judged by the server's now()
//! ```
//!
//! plus a partial index on `expires_at` for the sweep, and one version row
//! whose key ([`VERSION_KEY`]) is no JS string's WTF-8 (it starts with 0xFF),
//! so it is never listed, read or deleted through the store.
//!
//! `keys(pattern)` runs an index range (the glob's literal prefix) with an
//! escaped `LIKE` as a coarse filter; the exact Redis glob (classes, `?` as
//! one character) is then applied by `crate::glob` on the decoded keys.

use crate::wtf8;

/// The schema version this build creates and reads.
pub const SCHEMA_VERSION: i32 = 1;

/// The key of the version row: starts with 0xFF, which no WTF-8 holds.
pub const VERSION_KEY: &[u8] = b"\xffawaitly:schema-version";

/// The row key of the lease that guards snapshot `prefix` + `id`:
/// `<prefix>\0lease:<id>`, a row of the store's table under its prefix,
/// never a snapshot key (a snapshot id never starts with U+0000).
pub fn lease_key(prefix: &[u8], id: &[u8]) -> Vec<u8> {
    [prefix, b"\0lease:", id].concat()
}

/// Escape the LIKE metacharacters `%`, `_` and the escape character `\`
/// (PostgreSQL's default) in `literal`: it then matches only itself.
pub fn like_escape(literal: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(literal.len() + 4);
    for &b in literal {
        if matches!(b, b'%' | b'_' | b'\\') {
            out.push(b'\\');
        }
        out.push(b);
    }
    out
}

/// How `keys(pattern)` reads the table: keys in `lo..hi` (hi None: no end)
/// that are `LIKE like`; every key the glob matches is among them.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyScan {
    pub lo: Vec<u8>,
    pub hi: Option<Vec<u8>>,
    pub like: Vec<u8>,
}

/// The smallest byte string greater than every string starting with
/// `prefix`, or None (empty prefix, or all 0xFF).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// The scan for a Redis glob given as UTF-16 units (a JS string).
///
/// Literal text (with `\x` read as `x`) is kept as WTF-8 and LIKE-escaped,
/// in runs, so a surrogate pair split by an escape is still one character;
/// `*` and `?` become `%` (a `?` is one character, which is 1–4 bytes); a
/// class `[` ends the LIKE with `%` (the matcher decides the rest).
pub fn key_scan(pattern: &[u16]) -> KeyScan {
    let lo = wtf8::encode(&crate::glob::literal_prefix_units(pattern));
    let hi = prefix_end(&lo);
    let mut like = Vec::with_capacity(pattern.len() + 2);
    let mut run: Vec<u16> = Vec::new();
    let flush = |run: &mut Vec<u16>, like: &mut Vec<u8>| {
        like.extend(like_escape(&wtf8::encode(run)));
        run.clear();
    };
    let is = |u: u16, c: u8| u == u16::from(c);
    let mut i = 0;
    let mut ended = false;
    // was the last thing pushed a wildcard `%` (not an escaped literal one)?
    let mut wild = false;
    while i < pattern.len() {
        let u = pattern[i];
        if is(u, b'*') || is(u, b'?') || is(u, b'[') {
            if !run.is_empty() {
                flush(&mut run, &mut like);
                wild = false;
            }
            if !wild {
                like.push(b'%');
                wild = true;
            }
            if is(u, b'[') {
                ended = true;
                break;
            }
            i += 1;
        } else if is(u, b'\\') && i + 1 < pattern.len() {
            run.push(pattern[i + 1]);
            i += 2;
        } else {
            run.push(u);
            i += 1;
        }
    }
    if !ended {
        flush(&mut run, &mut like);
    }
    KeyScan { lo, hi, like }
}

/// The statements of a store on `table` (a quoted, qualified name).
/// Parameters are `bytea` keys/values/tokens and `float8` durations.
#[derive(Debug, Clone)]
pub struct StatementText {
    pub get: String,
    pub get_many: String,
    pub set: String,
    pub set_many: String,
    pub delete: String,
    pub exists: String,
    pub keys: String,
    pub acquire: String,
    pub acquire_many: String,
    pub release: String,
    pub release_many: String,
    pub renew: String,
    pub fenced_set: String,
    pub fenced_delete: String,
    pub delete_many: String,
    pub sweep: String,
}

const LIVE: &str = "(expires_at IS NULL OR expires_at > now())";

/// The lease row `$1` while it holds token `$2` and has not expired, locked
/// (see [`StatementText::new`], fenced writes).
fn held_lease(table: &str) -> String {
    format!(
        "SELECT 1 FROM {table} WHERE k = $1 AND v = $2 AND expires_at > clock_timestamp() \
         FOR UPDATE"
    )
}

impl StatementText {
    pub fn new(table: &str) -> Self {
        StatementText {
            get: format!("SELECT v FROM {table} WHERE k = $1 AND {LIVE}"),
            // the live rows of the keys `$1` (a batch's gets in one statement)
            get_many: format!("SELECT k, v FROM {table} WHERE k = ANY($1) AND {LIVE}"),
            // $3: seconds to live, 0 = no expiry
            set: format!(
                "INSERT INTO {table} AS cur (k, v, expires_at) VALUES ($1, $2, \
                 CASE WHEN $3::float8 > 0 THEN now() + $3::float8 * interval '1 second' END) \
                 ON CONFLICT (k) DO UPDATE SET v = excluded.v, expires_at = excluded.expires_at"
            ),
            // a batch's sets in one statement: keys `$1` (distinct, in key
            // order, so rows are locked in that order), values `$2`,
            // seconds to live `$3` (0 = no expiry)
            set_many: format!(
                "INSERT INTO {table} AS cur (k, v, expires_at) \
                 SELECT k, v, CASE WHEN s > 0 THEN now() + s * interval '1 second' END \
                 FROM unnest($1::bytea[], $2::bytea[], $3::float8[]) AS u(k, v, s) \
                 ON CONFLICT (k) DO UPDATE SET v = excluded.v, expires_at = excluded.expires_at"
            ),
            // deletes an expired row too, but reports only a live one
            delete: format!("DELETE FROM {table} WHERE k = $1 RETURNING {LIVE}"),
            exists: format!("SELECT 1 FROM {table} WHERE k = $1 AND {LIVE}"),
            keys: format!(
                "SELECT k FROM {table} WHERE k >= $1 AND ($2::bytea IS NULL OR k < $2) \
                 AND k LIKE $3 AND {LIVE}"
            ),
            // ONE statement: a free or expired lease row is (re)taken, a live
            // one is left alone and nothing is returned. Expiry is the
            // server's now() on both sides of the comparison.
            acquire: format!(
                "INSERT INTO {table} AS cur (k, v, expires_at) \
                 VALUES ($1, $2, now() + $3::float8 * interval '1 millisecond') \
                 ON CONFLICT (k) DO UPDATE SET v = excluded.v, expires_at = excluded.expires_at \
                 WHERE cur.expires_at IS NOT NULL AND cur.expires_at <= now() RETURNING 1"
            ),
            // acquires of distinct keys `$1` (in key order), tokens `$2`,
            // ms `$3`, as `acquire` each: the keys taken come back
            acquire_many: format!(
                "INSERT INTO {table} AS cur (k, v, expires_at) \
                 SELECT k, v, now() + ms * interval '1 millisecond' \
                 FROM unnest($1::bytea[], $2::bytea[], $3::float8[]) AS u(k, v, ms) \
                 ON CONFLICT (k) DO UPDATE SET v = excluded.v, expires_at = excluded.expires_at \
                 WHERE cur.expires_at IS NOT NULL AND cur.expires_at <= now() RETURNING k"
            ),
            release: format!(
                "DELETE FROM {table} WHERE k = $1 AND v = $2 RETURNING expires_at > now()"
            ),
            // releases of distinct keys `$1`, tokens `$2`, as `release` each
            release_many: format!(
                "DELETE FROM {table} AS t USING unnest($1::bytea[], $2::bytea[]) AS u(k, v) \
                 WHERE t.k = u.k AND t.v = u.v RETURNING t.k, t.expires_at > now()"
            ),
            renew: format!(
                "UPDATE {table} SET expires_at = now() + $3::float8 * interval '1 millisecond' \
                 WHERE k = $1 AND v = $2 AND expires_at > now()"
            ),
            // Fenced writes: the snapshot row `$3` is written (value `$4`) or
            // deleted only while the lease row `$1` holds token `$2`, ONE
            // statement, returning a row if so (none: ERR_LEASE_LOST).
            //
            // Why this is safe under READ COMMITTED: the statement's snapshot
            // may still show our old version of the lease row while a
            // takeover (acquire's ON CONFLICT DO UPDATE ... WHERE expired)
            // is pending or has just committed; a plain SELECT would read
            // that stale version and write. FOR UPDATE instead waits for a
            // pending writer of the row and then re-checks the WHERE on the
            // newest committed version: a takeover that got there first
            // leaves another token (no row, nothing written); a row deleted
            // by `release` or the sweep is skipped (nothing written). Once
            // the lock is ours, every other writer of the row (a takeover,
            // renew, release, another store's fenced write) waits for our
            // commit, so the snapshot write lands while the lease is still
            // ours and any takeover is ordered after it. The snapshot row
            // needs no lock of its own: every fenced writer of it locks this
            // lease row first. Expiry is the server's clock at the check
            // (clock_timestamp(), not the transaction's start: a batch
            // transaction may have begun earlier). Tested in
            // `postgres::tests::fenced_writes_against_a_concurrent_takeover`.
            fenced_set: format!(
                "WITH lease AS ({held}) \
                 INSERT INTO {table} AS cur (k, v, expires_at) SELECT $3, $4, NULL FROM lease \
                 ON CONFLICT (k) DO UPDATE SET v = excluded.v, expires_at = excluded.expires_at \
                 RETURNING 1",
                held = held_lease(table)
            ),
            fenced_delete: format!(
                "WITH lease AS ({held}), \
                 gone AS (DELETE FROM {table} WHERE k = $3 AND EXISTS (SELECT 1 FROM lease)) \
                 SELECT 1 FROM lease",
                held = held_lease(table)
            ),
            delete_many: format!("DELETE FROM {table} WHERE k = ANY($1)"),
            sweep: format!(
                "DELETE FROM {table} WHERE k IN (SELECT k FROM {table} \
                 WHERE expires_at IS NOT NULL AND expires_at <= now() \
                 ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED)"
            ),
        }
    }
}

/// The DDL run (under an advisory lock, in one transaction) when the table
/// or its version row is missing.
pub fn create_schema(schema: Option<&str>, table: &str, qualified: &str, lock: i64) -> String {
    let mut sql = format!("BEGIN; SELECT pg_advisory_xact_lock({lock}); ");
    if let Some(s) = schema {
        sql.push_str(&format!(
            "CREATE SCHEMA IF NOT EXISTS {}; ",
            super::config::quote_ident(s)
        ));
    }
    sql.push_str(&format!(
        "CREATE TABLE IF NOT EXISTS {qualified} (k bytea PRIMARY KEY, v bytea NOT NULL, \
         expires_at timestamptz); \
         CREATE INDEX IF NOT EXISTS {} ON {qualified} (expires_at) WHERE expires_at IS NOT NULL; \
         INSERT INTO {qualified} (k, v) VALUES ('\\x{}'::bytea, '{SCHEMA_VERSION}'::bytea) \
         ON CONFLICT (k) DO NOTHING; COMMIT;",
        super::config::quote_ident(&format!("{table}_expires_at")),
        VERSION_KEY
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>(),
    ));
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> Vec<u16> {
        s.encode_utf16().collect()
    }

    #[test]
    fn like_escape_makes_metacharacters_literal() {
        assert_eq!(like_escape(b"a%b_c\\d*?["), b"a\\%b\\_c\\\\d*?[".to_vec());
        assert_eq!(like_escape(b""), b"".to_vec());
        // non-ASCII bytes pass through
        assert_eq!(like_escape("é\0".as_bytes()), "é\0".as_bytes().to_vec());
    }

    #[test]
    fn prefix_end_is_the_next_byte_string() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_end(b"\xff\xff"), None);
        assert_eq!(prefix_end(b""), None);
    }

    #[test]
    fn globs_become_a_range_and_an_escaped_like() {
        let s = key_scan(&u("wf:*"));
        assert_eq!(
            (s.lo.as_slice(), s.like.as_slice()),
            (&b"wf:"[..], &b"wf:%"[..])
        );
        assert_eq!(s.hi, Some(b"wf;".to_vec()));
        // LIKE metacharacters in literal text are escaped; glob escapes read
        let s = key_scan(&u("a_b%c\\\\d\\*?x*"));
        assert_eq!(s.lo, b"a_b%c\\d*".to_vec());
        assert_eq!(s.like, b"a\\_b\\%c\\\\d*%x%".to_vec());
        // a literal % before a wildcard stays escaped, and the wildcard stays
        let s = key_scan(&u("id%*"));
        assert_eq!(s.like, b"id\\%%".to_vec());
        assert_eq!(key_scan(&u("**?x")).like, b"%x".to_vec());
        // a class ends the LIKE
        let s = key_scan(&u("k[ab]1*"));
        assert_eq!((s.lo, s.like), (b"k".to_vec(), b"k%".to_vec()));
        // no wildcard: equality
        let s = key_scan(&u("plain"));
        assert_eq!(s.like, b"plain".to_vec());
        // everything: no range
        let s = key_scan(&u("*"));
        assert_eq!((s.lo, s.hi, s.like), (vec![], None, b"%".to_vec()));
    }

    #[test]
    fn non_ascii_nul_and_lone_surrogates_are_exact_bytes() {
        // U+0000, a lone high surrogate, an astral character
        let p: Vec<u16> = vec![0x61, 0, 0xD800, 0x2A];
        let s = key_scan(&p);
        assert_eq!(s.lo, vec![0x61, 0, 0xED, 0xA0, 0x80]);
        assert_eq!(s.like, vec![0x61, 0, 0xED, 0xA0, 0x80, b'%']);
        // a pair split by an escape is still one character (4 bytes)
        let pair = vec![0xD83D, 0x5C, 0xDE00, 0x2A];
        assert_eq!(key_scan(&pair).lo, "😀".as_bytes().to_vec());
        assert_eq!(key_scan(&pair).like, ["😀".as_bytes(), b"%"].concat());
    }

    #[test]
    fn statements_quote_nothing_themselves() {
        let t = StatementText::new("\"s\".\"t\"");
        assert!(t.acquire.contains("ON CONFLICT (k) DO UPDATE"));
        assert!(t.acquire.contains("cur.expires_at <= now() RETURNING 1"));
        assert!(t.keys.contains("k LIKE $3"));
        let ddl = create_schema(Some("s"), "t", "\"s\".\"t\"", 42);
        assert!(ddl.starts_with("BEGIN; SELECT pg_advisory_xact_lock(42);"));
        assert!(ddl.contains("CREATE SCHEMA IF NOT EXISTS \"s\""));
        assert!(ddl.contains("\"t_expires_at\""));
        assert!(ddl.contains("'\\xff6177"));
    }
}
