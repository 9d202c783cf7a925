//! Redis Cluster routing, ours (the `redis` crate is only the RESP codec
//! and the per-node connection here): this folder owns where each command
//! of a cluster store goes and what the cluster's answers mean. The rules
//! are pure, no I/O and no napi types, so `cargo test` covers each:
//! - [`slots`]: hash slots (CRC16 with hash tags) and the slot map read
//!   from `CLUSTER SLOTS` / `CLUSTER SHARDS`, patched by MOVED;
//! - [`redirect`]: MOVED, ASK, TRYAGAIN, CLUSTERDOWN, READONLY replies;
//! - [`dispatch`]: one batch's commands grouped into one pipeline per
//!   primary, redirects followed and retries paced within the command
//!   timeout, one trailing WAIT per node for durable writes;
//! - [`keyspace`]: multi-key commands split per slot, SCAN over every
//!   primary with a second pass when the topology moved.
//!
//! [`client`] runs them over one connection per primary on tokio
//! (`transport: 'tokio'`); `crate::redis::direct::cluster` over one per
//! primary on the JS thread.

pub mod client;
pub mod dispatch;
pub mod keyspace;
pub mod redirect;
pub mod slots;
