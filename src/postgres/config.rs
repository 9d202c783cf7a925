//! Connection settings of a PostgreSQL store and the rules for the names it
//! puts into SQL. Table and schema names are checked here (letters, digits,
//! `_`, starting with a letter or `_`) and always used double-quoted, so
//! their case is kept and no name can be read as SQL.

use std::time::Duration;

use crate::error::{PersistError, Result};
use crate::tls::TlsOptions;

/// The longest table name: the expiry index is named `<table>_expires_at`,
/// and PostgreSQL cuts identifiers at 63 bytes.
pub const MAX_TABLE_LEN: usize = 52;
pub const MAX_SCHEMA_LEN: usize = 63;

#[derive(Debug, Clone)]
pub struct PgConfig {
    /// `postgres://…` or `host=… user=…`; the fields below override it.
    pub connection_string: Option<String>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub database: Option<String>,
    /// None: the connection's search_path decides (usually `public`).
    pub schema: Option<String>,
    pub table: String,
    pub pool_size: usize,
    pub connect_timeout_ms: u64,
    pub command_timeout_ms: u64,
    /// How often expired rows are deleted (in batches of [`SWEEP_BATCH`]).
    pub sweep_interval_ms: u64,
    /// Some: TLS required, with these settings.
    pub tls: Option<TlsOptions>,
}

/// Rows deleted per statement by the sweep of expired rows.
pub const SWEEP_BATCH: i64 = 500;

impl Default for PgConfig {
    fn default() -> Self {
        PgConfig {
            connection_string: None,
            host: None,
            port: None,
            user: None,
            password: None,
            database: None,
            schema: None,
            table: "awaitly_kv".into(),
            pool_size: 4,
            connect_timeout_ms: 5000,
            command_timeout_ms: 5000,
            sweep_interval_ms: 60_000,
            tls: None,
        }
    }
}

/// Is `name` an identifier we accept (`[A-Za-z_][A-Za-z0-9_]*`, 1..=max bytes)?
pub fn check_identifier(what: &str, name: &str, max: usize) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= max
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(PersistError::InvalidArgument(format!(
            "createPostgresStore: {what} must be 1 to {max} letters, digits or _ (not starting with a digit), got {name:?}"
        )))
    }
}

/// `"name"` (only ever called on checked identifiers, which hold no quote).
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

impl PgConfig {
    /// Check every setting that can be checked without a server.
    pub fn validate(&self) -> Result<()> {
        check_identifier("table", &self.table, MAX_TABLE_LEN)?;
        if let Some(s) = &self.schema {
            check_identifier("schema", s, MAX_SCHEMA_LEN)?;
        }
        if self.pool_size == 0 || self.pool_size > 1000 {
            return Err(PersistError::InvalidArgument(format!(
                "createPostgresStore: poolSize must be 1..1000, got {}",
                self.pool_size
            )));
        }
        self.client_config()?;
        if let Some(tls) = &self.tls {
            tls.check("createPostgresStore")?;
        }
        Ok(())
    }

    /// The table as SQL: `"schema"."table"` or `"table"`.
    pub fn qualified_table(&self) -> String {
        match &self.schema {
            Some(s) => format!("{}.{}", quote_ident(s), quote_ident(&self.table)),
            None => quote_ident(&self.table),
        }
    }

    /// Does the connection use TLS? The `tls` option, or `sslmode=require`
    /// in the connection string.
    pub fn wants_tls(&self) -> Result<bool> {
        Ok(self.tls.is_some()
            || self.client_config()?.get_ssl_mode() == tokio_postgres::config::SslMode::Require)
    }

    /// The client settings: the connection string, then the fields.
    pub fn client_config(&self) -> Result<tokio_postgres::Config> {
        let mut c = match &self.connection_string {
            Some(s) => with_verified_sslmode(s).parse::<tokio_postgres::Config>().map_err(|e| {
                PersistError::InvalidArgument(format!(
                    "createPostgresStore: connectionString is not a PostgreSQL connection string: {e}"
                ))
            })?,
            None => tokio_postgres::Config::new(),
        };
        if let Some(h) = &self.host {
            c.host(h);
        }
        if c.get_hosts().is_empty() {
            c.host("127.0.0.1");
        }
        if let Some(p) = self.port {
            c.port(p);
        }
        if let Some(u) = &self.user {
            c.user(u);
        }
        if c.get_user().is_none() {
            c.user(std::env::var("USER").unwrap_or_else(|_| "postgres".into()));
        }
        if let Some(p) = &self.password {
            c.password(p);
        }
        if let Some(d) = &self.database {
            c.dbname(d);
        }
        c.connect_timeout(Duration::from_millis(self.connect_timeout_ms.max(1)));
        c.application_name("awaitly-persistence-native");
        if self.tls.is_some() {
            c.ssl_mode(tokio_postgres::config::SslMode::Require);
        } else if c.get_ssl_mode() != tokio_postgres::config::SslMode::Require {
            // no TLS asked for: never a TLS attempt against a server
            // whose certificate nobody configured
            c.ssl_mode(tokio_postgres::config::SslMode::Disable);
        }
        Ok(c)
    }

    /// The advisory-lock key under which this table's schema is created.
    pub fn schema_lock_key(&self) -> i64 {
        use sha2::{Digest, Sha256};
        let name = format!(
            "awaitly-persistence-native:{}.{}",
            self.schema.as_deref().unwrap_or(""),
            self.table
        );
        let d = Sha256::digest(name.as_bytes());
        let mut b = [0u8; 8];
        b.copy_from_slice(&d[..8]);
        i64::from_be_bytes(b)
    }
}

/// libpq's `sslmode=verify-full` and `sslmode=verify-ca` as `require`,
/// which tokio-postgres parses: every TLS connection of ours verifies the
/// server's chain and name (unless `tls.rejectUnauthorized` is false), so
/// both ask for what `require` does here.
fn with_verified_sslmode(conn: &str) -> std::borrow::Cow<'_, str> {
    let mut out = std::borrow::Cow::Borrowed(conn);
    for mode in ["sslmode=verify-full", "sslmode=verify-ca"] {
        if out.contains(mode) {
            out = std::borrow::Cow::Owned(out.replace(mode, "sslmode=require"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_checked_and_quoted() {
        for ok in ["awaitly_kv", "_x", "T1", &"a".repeat(MAX_TABLE_LEN)] {
            assert!(check_identifier("table", ok, MAX_TABLE_LEN).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "1abc",
            "a-b",
            "a b",
            "a\"b",
            "a;drop",
            "é",
            "a\0",
            &"a".repeat(MAX_TABLE_LEN + 1),
        ] {
            let e = check_identifier("table", bad, MAX_TABLE_LEN).err();
            assert_eq!(e.map(|e| e.code()), Some("ERR_INVALID_ARG"), "{bad:?}");
        }
        assert_eq!(quote_ident("Kv"), "\"Kv\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        let c = PgConfig {
            schema: Some("S1".into()),
            ..PgConfig::default()
        };
        assert_eq!(c.qualified_table(), "\"S1\".\"awaitly_kv\"");
        assert_eq!(PgConfig::default().qualified_table(), "\"awaitly_kv\"");
    }

    #[test]
    fn settings_come_from_the_string_then_the_fields() -> Result<()> {
        let c = PgConfig {
            connection_string: Some("postgres://u@h1:6000/db1".into()),
            database: Some("db2".into()),
            ..PgConfig::default()
        };
        let cc = c.client_config()?;
        assert_eq!(cc.get_user(), Some("u"));
        assert_eq!(cc.get_dbname(), Some("db2"));
        assert_eq!(cc.get_ports(), &[6000]);
        assert!(!c.wants_tls()?);
        let t = PgConfig {
            connection_string: Some("postgres://u@h/db?sslmode=require".into()),
            ..PgConfig::default()
        };
        assert!(t.wants_tls()?);
        let bad = PgConfig {
            connection_string: Some("postgres://u@h:notaport/db".into()),
            ..PgConfig::default()
        };
        assert_eq!(
            bad.validate().err().map(|e| e.code()),
            Some("ERR_INVALID_ARG")
        );
        let pool = PgConfig {
            pool_size: 0,
            ..PgConfig::default()
        };
        assert!(pool.validate().is_err());
        Ok(())
    }

    #[test]
    fn the_schema_lock_is_per_table() {
        let a = PgConfig::default();
        let b = PgConfig {
            table: "other".into(),
            ..PgConfig::default()
        };
        let c = PgConfig {
            schema: Some("s".into()),
            ..PgConfig::default()
        };
        assert_ne!(a.schema_lock_key(), b.schema_lock_key());
        assert_ne!(a.schema_lock_key(), c.schema_lock_key());
        assert_eq!(a.schema_lock_key(), PgConfig::default().schema_lock_key());
    }

    #[test]
    fn libpq_verify_sslmodes_mean_tls() -> Result<()> {
        for conn in [
            "postgres://u@h/db?sslmode=verify-full",
            "postgres://u@h/db?sslmode=verify-ca",
            "host=h user=u sslmode=verify-full",
        ] {
            let c = PgConfig {
                connection_string: Some(conn.into()),
                ..PgConfig::default()
            };
            assert!(c.wants_tls()?, "{conn}");
        }
        Ok(())
    }
}
