//! Thin napi binding of the LRU/TTL core ([`crate::cache::lru`]) for
//! `lib/memory-cache.js`.
//!
//! Crossing the boundary is the cost, so the hot calls are plain functions
//! with no arguments, no `Env` and a number result (measured with napi-rs
//! 3.16 here: a class method costs ~500 ns more per call (receiver type-tag
//! check and borrow bookkeeping), an `Env` parameter ~135 ns, one number
//! argument ~100 ns; errors are parked and thrown by `memoryCacheThrow`).
//! State is shared through typed
//! arrays allocated by the glue (the registry holds strong references to
//! them, so their memory stays put):
//! - `regs` (one per thread, registered once by `memoryCacheInit`): the
//!   arguments of the call: `regs[6]` = the cache's handle, `regs[0]` = hits
//!   pending in its ring, `regs[1]` = `Date.now()`, `regs[2]` = tag of the
//!   per-entry ttl (0 absent, 1 number, 2+ wrong type), `regs[3]` = its value,
//!   `regs[4]` = slot, `regs[5]` = 1 if the slot was found expired;
//! - per cache, `meta`: per slot `[storedAt, ttl]`, written here, read by the
//!   glue to test expiry on a hit without a call;
//! - per cache, `ring`: slots hit since the last call, in order; every call
//!   applies them to the recency order first.
//!
//! Neither per-cache array exists when the cache is created: the glue
//! allocates `meta` at the first `set` and `ring` at the first hit to record,
//! both small, and replaces them by larger ones as the cache fills
//! (`memoryCacheSetMeta`) and as hits come (`memoryCacheSetRing`). The
//! registry keeps them until the cache's finalizer runs, which is after a GC
//! *and* a turn of the event loop, so memory must follow what is used:
//! allocated at full size up front (16 KB + 4 KB), 200,000 caches made in one
//! synchronous loop held 4 GB.
//!
//! Each cache lives in a thread-local registry under a numeric handle; the
//! glue holds the `External` returned by `memoryCacheCreate`, whose finalizer
//! frees the registry entry when the cache is garbage collected.

use std::cell::RefCell;

use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::boundary::js_error;
use crate::cache::lru::{self, Lru, OptValue};
use crate::error::PersistError;

const R_PENDING: usize = 0;
const R_NOW: usize = 1;
const R_TTL_TAG: usize = 2;
const R_TTL: usize = 3;
const R_SLOT: usize = 4;
const R_EXPIRED: usize = 5;
const R_HANDLE: usize = 6;
/// Length the glue must allocate for `regs`.
const REGS_LEN: usize = 8;

/// JavaScript type names for the wrong-type tags the glue writes (tag - 2).
const TYPE_NAMES: [&str; 7] = [
    "string", "boolean", "object", "null", "bigint", "symbol", "function",
];

fn opt_value(v: &Unknown<'_>) -> napi::Result<OptValue<'static>> {
    Ok(match v.get_type()? {
        ValueType::Undefined => OptValue::Absent,
        ValueType::Number => OptValue::Number(unsafe { v.cast::<f64>()? }),
        ValueType::String => OptValue::WrongType("string"),
        ValueType::Boolean => OptValue::WrongType("boolean"),
        ValueType::Null => OptValue::WrongType("null"),
        ValueType::BigInt => OptValue::WrongType("bigint"),
        ValueType::Symbol => OptValue::WrongType("symbol"),
        ValueType::Function => OptValue::WrongType("function"),
        _ => OptValue::WrongType("object"),
    })
}

struct Core {
    lru: Lru,
    /// None until the first insert.
    meta: Option<Float64Array>,
    /// None until the first hit the glue records.
    ring: Option<Uint32Array>,
}

/// A cache's metadata, writable (an error before its first array).
fn meta_mut(meta: &mut Option<Float64Array>) -> crate::error::Result<&mut [f64]> {
    let meta = meta.as_mut().ok_or_else(|| internal("no metadata array"))?;
    // SAFETY: single-threaded access from the JS thread that owns the array.
    Ok(unsafe { meta.as_mut() })
}

#[derive(Default)]
struct Registry {
    regs: Option<Float64Array>,
    cores: Vec<Option<Core>>,
    free: Vec<u32>,
    last_error: Option<PersistError>,
}

impl Drop for Registry {
    fn drop(&mut self) {
        // Thread exit: the JS environment is gone, so its references must not
        // be released through it. Leak them (the process/thread is ending).
        std::mem::forget(self.regs.take());
        for c in self.cores.drain(..) {
            std::mem::forget(c);
        }
    }
}

thread_local! {
    static REGISTRY: RefCell<Registry> = RefCell::new(Registry::default());
}

/// Owner token of one cache: dropping it (GC finalizer) frees the entry.
pub struct CacheOwner(u32);

impl Drop for CacheOwner {
    fn drop(&mut self) {
        let _ = REGISTRY.try_with(|r| {
            if let Ok(mut r) = r.try_borrow_mut() {
                if let Some(slot) = r.cores.get_mut(self.0 as usize) {
                    *slot = None;
                    r.free.push(self.0);
                }
            }
        });
    }
}

fn internal(msg: &str) -> PersistError {
    PersistError::Internal(msg.to_string())
}

#[inline]
fn reg(regs: &[f64], i: usize) -> f64 {
    regs.get(i).copied().unwrap_or(0.0)
}

/// Run `f` on the registry's regs and the cache named by `regs[6]`, after
/// applying that cache's pending hits.
#[inline]
fn with_core<T>(
    f: impl FnOnce(&[f64], &mut Core) -> crate::error::Result<T>,
) -> crate::error::Result<T> {
    REGISTRY.with(|r| {
        let mut r = r
            .try_borrow_mut()
            .map_err(|_| internal("memory cache re-entered"))?;
        let Registry { regs, cores, .. } = &mut *r;
        let regs = regs
            .as_mut()
            .ok_or_else(|| internal("memoryCacheInit not called"))?;
        // SAFETY: single-threaded access from the JS thread that owns the array.
        let regs = unsafe { regs.as_mut() };
        let h = reg(regs, R_HANDLE);
        let core = cores
            .get_mut(h as usize)
            .and_then(|c| c.as_mut())
            .ok_or_else(|| internal("unknown memory cache handle"))?;
        let n = reg(regs, R_PENDING) as usize;
        if n > 0 {
            let ring: &[u32] = core.ring.as_deref().unwrap_or(&[]);
            core.lru.touch_all(&ring[..n.min(ring.len())]);
            if let Some(p) = regs.get_mut(R_PENDING) {
                *p = 0.0;
            }
        }
        f(regs, core)
    })
}

fn entry_ttl(regs: &[f64], lru: &Lru) -> crate::error::Result<f64> {
    let v = match reg(regs, R_TTL_TAG) as usize {
        0 => OptValue::Absent,
        1 => OptValue::Number(reg(regs, R_TTL)),
        t => OptValue::WrongType(TYPE_NAMES.get(t - 2).copied().unwrap_or("object")),
    };
    Ok(lru.effective_ttl(lru::parse_ttl("options.ttl", v)?))
}

fn slot_arg(regs: &[f64]) -> crate::error::Result<u32> {
    let s = reg(regs, R_SLOT);
    if s >= 0.0 && s < lru::MAX_SLOTS as f64 && s.fract() == 0.0 {
        Ok(s as u32)
    } else {
        Err(PersistError::Internal(format!("bad slot {s}")))
    }
}

/// Register this thread's argument array (at least 8 numbers) and return
/// the one in use: the first registered. Every instance of the glue in this
/// thread (re-evaluated modules, other vm contexts) must share it, since the
/// calls themselves carry no arguments.
#[napi(catch_unwind)]
pub fn memory_cache_init(env: &Env, regs: Float64Array) -> napi::Result<Unknown<'_>> {
    if regs.len() < REGS_LEN {
        return Err(js_error::throw(env, internal("regs too small")));
    }
    REGISTRY.with(|r| {
        let mut r = r
            .try_borrow_mut()
            .map_err(|_| js_error::throw(env, internal("memory cache re-entered")))?;
        let current = r.regs.get_or_insert(regs);
        // SAFETY: `current` holds a live reference; the value is returned to
        // the JS thread that owns it.
        unsafe {
            let raw = <&mut Float64Array as ToNapiValue>::to_napi_value(env.raw(), current)?;
            Ok(Unknown::from_raw_unchecked(env.raw(), raw))
        }
    })
}

/// Create a cache: validates `maxSize` (entries, 0/absent = unbounded) and
/// `ttl` (ms, 0/absent = none). It has no arrays yet (see the module docs).
/// Writes the handle to `regs[6]` and returns the owner token to keep alive.
#[napi(catch_unwind)]
pub fn memory_cache_create(
    env: Env,
    max_size: Unknown<'_>,
    ttl: Unknown<'_>,
) -> napi::Result<External<CacheOwner>> {
    let max = opt_value(&max_size)?;
    let ttl = opt_value(&ttl)?;
    let r = (|| {
        let max_size = lru::parse_max_size(max)?;
        let ttl = lru::parse_ttl("ttl", ttl)?;
        let core = Core {
            lru: Lru::new(max_size, ttl),
            meta: None,
            ring: None,
        };
        REGISTRY.with(|r| {
            let mut r = r
                .try_borrow_mut()
                .map_err(|_| internal("memory cache re-entered"))?;
            let h = match r.free.pop() {
                Some(h) => {
                    r.cores[h as usize] = Some(core);
                    h
                }
                None => {
                    r.cores.push(Some(core));
                    (r.cores.len() - 1) as u32
                }
            };
            let regs = r
                .regs
                .as_mut()
                .ok_or_else(|| internal("memoryCacheInit not called"))?;
            // SAFETY: single-threaded access from the JS thread that owns the array.
            if let Some(x) = unsafe { regs.as_mut() }.get_mut(R_HANDLE) {
                *x = h as f64;
            }
            Ok(External::new(CacheOwner(h)))
        })
    })();
    r.map_err(|e| js_error::throw(&env, e))
}

/// Returned by the hot calls when they failed; the glue then calls
/// `memoryCacheThrow()` to throw the stored error.
const ERR: u32 = u32::MAX;

/// Run a hot call: errors are parked in the registry and reported as [`ERR`]
/// (a `#[napi]` function taking `Env` costs ~135 ns more per call here).
#[inline]
fn hot(f: impl FnOnce(&[f64], &mut Core) -> crate::error::Result<u32>) -> u32 {
    match with_core(f) {
        Ok(v) => v,
        Err(e) => {
            let _ = REGISTRY.with(|r| r.try_borrow_mut().map(|mut r| r.last_error = Some(e)));
            ERR
        }
    }
}

/// Throw the error parked by the last hot call that returned `ERR`
/// (TypeError with code `ERR_INVALID_ARG` for a bad `options.ttl`).
#[napi(catch_unwind)]
pub fn memory_cache_throw(env: Env) -> napi::Result<()> {
    let e = REGISTRY
        .with(|r| {
            r.try_borrow_mut()
                .ok()
                .and_then(|mut r| r.last_error.take())
        })
        .unwrap_or_else(|| internal("no pending memory cache error"));
    Err(js_error::throw(&env, e))
}

/// Store a new entry now (`regs[1]`) with the ttl in `regs[2..4]`; returns
/// its slot (which may be the evicted LRU entry's), or `ERR`.
#[napi(catch_unwind)]
pub fn memory_cache_insert() -> u32 {
    hot(|regs, core| {
        let ttl = entry_ttl(regs, &core.lru)?;
        let meta = meta_mut(&mut core.meta)?;
        core.lru.insert(reg(regs, R_NOW), ttl, meta)
    })
}

/// Overwrite the entry in slot `regs[4]`: most recent, stored now.
/// Returns 0, or `ERR`.
#[napi(catch_unwind)]
pub fn memory_cache_update() -> u32 {
    hot(|regs, core| {
        let ttl = entry_ttl(regs, &core.lru)?;
        let slot = slot_arg(regs)?;
        let meta = meta_mut(&mut core.meta)?;
        core.lru.update(slot, reg(regs, R_NOW), ttl, meta)?;
        Ok(0)
    })
}

/// Remove slot `regs[4]` (`regs[5]` = 1: it was found expired). Returns 1
/// if it was in use, 0 if not, or `ERR`.
#[napi(catch_unwind)]
pub fn memory_cache_remove() -> u32 {
    hot(|regs, core| {
        let slot = slot_arg(regs)?;
        Ok(core.lru.remove(slot, reg(regs, R_EXPIRED) != 0.0) as u32)
    })
}

/// Apply the pending hits (the glue calls this when the ring is full).
/// Returns 0, or `ERR`.
#[napi(catch_unwind)]
pub fn memory_cache_flush() -> u32 {
    hot(|_, _| Ok(0))
}

/// Remove every entry (counters are kept). Returns 0, or `ERR`.
#[napi(catch_unwind)]
pub fn memory_cache_clear() -> u32 {
    hot(|_, core| {
        core.lru.clear();
        Ok(0)
    })
}

/// Remove entries expired at `regs[1]`; returns their slots.
#[napi(catch_unwind)]
pub fn memory_cache_purge_stale(env: Env) -> napi::Result<Vec<u32>> {
    with_core(|regs, core| {
        let meta: &[f64] = core.meta.as_deref().unwrap_or(&[]);
        Ok(core.lru.purge_stale(reg(regs, R_NOW), meta))
    })
    .map_err(|e| js_error::throw(&env, e))
}

/// Give the cache its metadata array, or replace it by a larger one holding
/// the same prefix.
#[napi(catch_unwind)]
pub fn memory_cache_set_meta(env: Env, meta: Float64Array) -> napi::Result<()> {
    with_core(|_, core| {
        if meta.len() < 2 * core.lru.slots_used() {
            return Err(internal("metadata array shrank"));
        }
        core.meta = Some(meta);
        Ok(())
    })
    .map_err(|e| js_error::throw(&env, e))
}

/// Give the cache its hit ring, or replace it by a larger one (the glue
/// grows it as hits come). The pending hits, in the old ring, are applied
/// first.
#[napi(catch_unwind)]
pub fn memory_cache_set_ring(env: Env, ring: Uint32Array) -> napi::Result<()> {
    with_core(|_, core| {
        if ring.is_empty() || ring.len() < core.ring.as_ref().map_or(0, |r| r.len()) {
            return Err(internal("hit ring shrank"));
        }
        core.ring = Some(ring);
        Ok(())
    })
    .map_err(|e| js_error::throw(&env, e))
}

/// `[evictions, expirations]`.
#[napi(catch_unwind)]
pub fn memory_cache_counters(env: Env) -> napi::Result<Vec<f64>> {
    with_core(|_, core| {
        let c = core.lru.counters();
        Ok(vec![c.evictions as f64, c.expirations as f64])
    })
    .map_err(|e| js_error::throw(&env, e))
}

/// Live caches in this thread's registry (finalizers free entries); for
/// `boundary::test_hooks`.
pub(crate) fn live_count() -> u32 {
    REGISTRY.with(|r| {
        r.try_borrow()
            .map(|r| r.cores.iter().filter(|c| c.is_some()).count() as u32)
            .unwrap_or(0)
    })
}
