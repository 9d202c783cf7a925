//! The in-process memory cache: LRU order, expiry and eviction (`lru`) and
//! the thin napi `binding` over shared typed arrays.

pub(crate) mod binding;
pub mod lru;
