//! Files: key → file-name encoding (`name`), atomic durable I/O with group
//! commit and cross-process-safe reuse (`store`), and the thin napi `binding`.

mod binding;
pub mod lease;
pub mod name;
pub mod store;
