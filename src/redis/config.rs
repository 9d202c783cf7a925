//! The Redis store's options ([`RedisConfig`]), as the binding passes them
//! on after the JS glue checked their types and ranges.

use crate::tls::TlsOptions;

/// Options of [`RedisStore::new`].
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// `redis://`, `rediss://` (only if built with TLS), `unix:` / `redis+unix:`.
    /// Unused when `cluster_nodes` is set.
    pub url: String,
    /// Redis Cluster seed nodes (`redis://` / `rediss://` URLs); empty: one
    /// server at `url`.
    pub cluster_nodes: Vec<String>,
    /// `WAIT <n>` after durable writes ([`Op::SetDurable`]); 0: off.
    pub wait_replicas: u32,
    /// Upper bound for obtaining a connection (connect + handshake), ms.
    pub connect_timeout_ms: u64,
    /// Upper bound for one command / pipeline once connected, ms.
    pub command_timeout_ms: u64,
    /// The `tls` options of `rediss://` (CA, client certificate, servername,
    /// rejectUnauthorized).
    pub tls: TlsOptions,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig {
            url: "redis://127.0.0.1:6379".into(),
            cluster_nodes: Vec::new(),
            wait_replicas: 0,
            connect_timeout_ms: 5000,
            command_timeout_ms: 5000,
            tls: TlsOptions::default(),
        }
    }
}
