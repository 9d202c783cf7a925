//! Thin napi binding of the LRU/TTL core ([`crate::lru`]) for
//! `lib/memory-cache.js`.
//!
//! Crossing the boundary is the cost, so the glue and this object share
//! three `Float64Array`/`Uint32Array`s allocated by the glue (this object
//! holds strong references to them, so their memory stays put):
//! - `meta`: per slot `[storedAt, ttl]`, written here, read by the glue to
//!   test expiry on a hit without a call;
//! - `ring`: slots hit since the last call, in order; every method applies
//!   them to the recency order first (`regs[0]` = how many);
//! - `regs`: the arguments of the call (`regs[1]` = `Date.now()`,
//!   `regs[2]` = tag of the per-entry ttl (0 absent, 1 number, 2+ wrong type),
//!   `regs[3]` = its value, `regs[4]` = slot, `regs[5]` = 1 if expired).
//!
//! Methods take no napi arguments: reading numbers from `regs` is cheaper
//! than converting arguments.

use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::error::PersistError;
use crate::js_error;
use crate::lru::{self, Lru, OptValue};

const R_PENDING: usize = 0;
const R_NOW: usize = 1;
const R_TTL_TAG: usize = 2;
const R_TTL: usize = 3;
const R_SLOT: usize = 4;
const R_EXPIRED: usize = 5;
/// Length the glue must allocate for `regs`.
const REGS_LEN: usize = 8;

/// JavaScript type names for the wrong-type tags the glue writes (tag - 2).
const TYPE_NAMES: [&str; 7] = [
    "string", "boolean", "object", "null", "bigint", "symbol", "function",
];

fn opt_value(v: &Unknown<'_>) -> napi::Result<(Option<f64>, &'static str)> {
    Ok(match v.get_type()? {
        ValueType::Undefined => (None, ""),
        ValueType::Number => (Some(unsafe { v.cast::<f64>()? }), ""),
        ValueType::String => (None, "string"),
        ValueType::Boolean => (None, "boolean"),
        ValueType::Null => (None, "null"),
        ValueType::BigInt => (None, "bigint"),
        ValueType::Symbol => (None, "symbol"),
        ValueType::Function => (None, "function"),
        _ => (None, "object"),
    })
}

fn to_opt(v: (Option<f64>, &'static str)) -> OptValue<'static> {
    match v {
        (Some(n), _) => OptValue::Number(n),
        (None, "") => OptValue::Absent,
        (None, t) => OptValue::WrongType(t),
    }
}

/// Native half of one memory cache (see the module docs).
#[napi]
pub struct MemoryCacheCore {
    lru: Lru,
    meta: Float64Array,
    ring: Uint32Array,
    regs: Float64Array,
}

impl MemoryCacheCore {
    #[inline]
    fn reg(&self, i: usize) -> f64 {
        self.regs.get(i).copied().unwrap_or(0.0)
    }

    /// Apply the pending hits and reset their count.
    #[inline]
    fn flush_ring(&mut self) {
        let n = self.reg(R_PENDING) as usize;
        if n > 0 {
            let ring: &[u32] = &self.ring;
            let n = n.min(ring.len());
            self.lru.touch_all(&ring[..n]);
            // SAFETY: single-threaded access from the JS thread that owns the array.
            if let Some(r) = unsafe { self.regs.as_mut() }.get_mut(R_PENDING) {
                *r = 0.0;
            }
        }
    }

    fn entry_ttl(&self) -> crate::error::Result<f64> {
        let tag = self.reg(R_TTL_TAG) as usize;
        let v = match tag {
            0 => OptValue::Absent,
            1 => OptValue::Number(self.reg(R_TTL)),
            t => OptValue::WrongType(TYPE_NAMES.get(t - 2).copied().unwrap_or("object")),
        };
        Ok(self.lru.effective_ttl(lru::parse_ttl("options.ttl", v)?))
    }

    fn slot_arg(&self) -> crate::error::Result<u32> {
        let s = self.reg(R_SLOT);
        if s >= 0.0 && s < lru::MAX_SLOTS as f64 && s.fract() == 0.0 {
            Ok(s as u32)
        } else {
            Err(PersistError::Internal(format!("bad slot {s}")))
        }
    }
}

#[napi]
impl MemoryCacheCore {
    /// `maxSize` (entries, 0/absent = unbounded) and `ttl` (ms, 0/absent =
    /// none) are validated here; `meta` must hold `2 * capacity` numbers,
    /// `regs` at least 8.
    #[napi(constructor, catch_unwind)]
    pub fn new(
        env: Env,
        max_size: Unknown<'_>,
        ttl: Unknown<'_>,
        meta: Float64Array,
        ring: Uint32Array,
        regs: Float64Array,
    ) -> napi::Result<Self> {
        let max = to_opt(opt_value(&max_size)?);
        let ttl = to_opt(opt_value(&ttl)?);
        let max_size = lru::parse_max_size(max).map_err(|e| js_error::throw(&env, e))?;
        let ttl = lru::parse_ttl("ttl", ttl).map_err(|e| js_error::throw(&env, e))?;
        if regs.len() < REGS_LEN || ring.is_empty() {
            return Err(js_error::throw(
                &env,
                PersistError::Internal("shared arrays too small".into()),
            ));
        }
        Ok(MemoryCacheCore {
            lru: Lru::new(max_size, ttl),
            meta,
            ring,
            regs,
        })
    }

    /// Store a new entry now (`regs[1]`) with the ttl in `regs[2..4]`;
    /// returns its slot (which may be the evicted LRU entry's).
    #[napi(catch_unwind)]
    pub fn insert(&mut self, env: Env) -> napi::Result<u32> {
        self.flush_ring();
        let r = self.entry_ttl().and_then(|ttl| {
            let now = self.reg(R_NOW);
            // SAFETY: single-threaded access from the JS thread that owns the array.
            let meta = unsafe { self.meta.as_mut() };
            self.lru.insert(now, ttl, meta)
        });
        r.map_err(|e| js_error::throw(&env, e))
    }

    /// Overwrite the entry in slot `regs[4]`: most recent, stored now.
    #[napi(catch_unwind)]
    pub fn update(&mut self, env: Env) -> napi::Result<()> {
        self.flush_ring();
        let r = self.entry_ttl().and_then(|ttl| {
            let slot = self.slot_arg()?;
            let now = self.reg(R_NOW);
            // SAFETY: single-threaded access from the JS thread that owns the array.
            let meta = unsafe { self.meta.as_mut() };
            self.lru.update(slot, now, ttl, meta)
        });
        r.map_err(|e| js_error::throw(&env, e))
    }

    /// Remove slot `regs[4]` (`regs[5]` = 1: it was found expired).
    #[napi(catch_unwind)]
    pub fn remove(&mut self, env: Env) -> napi::Result<bool> {
        self.flush_ring();
        let slot = self.slot_arg().map_err(|e| js_error::throw(&env, e))?;
        Ok(self.lru.remove(slot, self.reg(R_EXPIRED) != 0.0))
    }

    /// Apply the pending hits (the glue calls this when the ring is full).
    #[napi(catch_unwind)]
    pub fn flush(&mut self) {
        self.flush_ring();
    }

    /// Remove every entry (counters are kept).
    #[napi(catch_unwind)]
    pub fn clear(&mut self) {
        if let Some(r) = unsafe { self.regs.as_mut() }.get_mut(R_PENDING) {
            *r = 0.0;
        }
        self.lru.clear();
    }

    /// Remove entries expired at `regs[1]`; returns their slots.
    #[napi(catch_unwind)]
    pub fn purge_stale(&mut self) -> Vec<u32> {
        self.flush_ring();
        let now = self.reg(R_NOW);
        self.lru.purge_stale(now, &self.meta)
    }

    /// Replace the metadata array by a larger one holding the same prefix.
    #[napi(catch_unwind)]
    pub fn set_meta(&mut self, env: Env, meta: Float64Array) -> napi::Result<()> {
        if meta.len() < 2 * self.lru.slots_used() {
            return Err(js_error::throw(
                &env,
                PersistError::Internal("metadata array shrank".into()),
            ));
        }
        self.meta = meta;
        Ok(())
    }

    /// `[evictions, expirations]`.
    #[napi(catch_unwind)]
    pub fn counters(&self) -> Vec<f64> {
        let c = self.lru.counters();
        vec![c.evictions as f64, c.expirations as f64]
    }

    /// Live slots (entries not yet removed).
    #[napi(getter, catch_unwind)]
    pub fn len(&self) -> u32 {
        self.lru.len()
    }

    /// Baseline for the benchmark: an empty method call.
    #[napi]
    pub fn noop(&self) {}
}
