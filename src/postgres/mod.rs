//! PostgreSQL: a `KeyValueStore` and run leases in one table.
//!
//! Owns everything between our ops and a PostgreSQL server: the connection
//! settings and identifier rules (`config`), the SQL text and the pure
//! encodings it relies on (`sql`: LIKE escaping, glob → index range + LIKE,
//! key/value bytes), opening a connection on tokio or on the JS thread
//! (`connect`, `js_thread`), client errors into our codes (`failure`), the
//! pool and schema creation (`pool`), a batch on one
//! connection (`pipeline`), the store's calls, batch splitting and the
//! background sweep of expired rows (`store`), leases and fenced writes
//! (`lease`), and the thin napi `binding`.
//!
//! Keys and values are stored as `bytea` holding the WTF-8 of the JS string
//! (`crate::wtf8`): UTF-8 for every well-formed string, and exact for
//! `\u0000` and lone surrogates, which `text`/`jsonb` cannot hold.

pub(crate) mod binding;
pub mod config;
pub mod connect;
mod failure;
mod js_thread;
mod lease;
mod pipeline;
mod pool;
pub mod sql;
pub mod store;
#[cfg(test)]
mod tests;
