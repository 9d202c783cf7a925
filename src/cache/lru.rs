//! O(1) LRU + TTL bookkeeping for the memory `StepCache`, over *slots*.
//!
//! The JavaScript glue keeps the user's keys and values (a `Map` key→slot and
//! arrays indexed by slot, so values stay the very objects the caller stored);
//! this core owns everything else: which slot is free, the recency order
//! (an intrusive doubly linked list over slot indices), which slot is evicted
//! when the cache is full, each entry's stored-at time and effective TTL, the
//! expiry rule, stale purging and the eviction/expiration counters.
//!
//! Time is injected: every operation that needs it takes `now_ms` (the
//! binding passes the JavaScript `Date.now()`, which fake timers control).
//!
//! The per-slot metadata lives in a caller-provided `&mut [f64]` (`meta`):
//! `meta[2*s]` = stored-at time (ms), `meta[2*s + 1]` = effective TTL (ms,
//! `f64::INFINITY` = never expires). The binding points it at a JavaScript
//! `Float64Array` so the glue can test expiry on a hit without crossing into
//! native code; the rule it applies is [`expired`], the same one used here.
//!
//! Hits recorded by the glue are applied in order with [`Lru::touch_all`]
//! before any operation that reads or changes the order, so the order is
//! exactly the one of immediate application.

use crate::error::{PersistError, Result};

/// "No slot" in the links.
const NIL: u32 = u32::MAX;
/// `prev` value of a slot that is not in use.
const FREE: u32 = u32::MAX - 1;
/// Largest number of slots (indices stay below [`FREE`]).
pub const MAX_SLOTS: u32 = u32::MAX - 2;

/// The expiry rule of the JavaScript module: an entry is expired when
/// `now - storedAt > ttl` (so it is still returned at exactly `ttl` ms).
#[inline]
pub fn expired(now_ms: f64, stored_at: f64, ttl: f64) -> bool {
    now_ms - stored_at > ttl
}

/// An option or argument value as the binding saw it, before validation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OptValue<'a> {
    /// `undefined` (or the option missing).
    Absent,
    Number(f64),
    /// Any other JavaScript type; the payload names it (`"string"`, `"null"` ...).
    WrongType(&'a str),
}

fn invalid(name: &str, expect: &str, got: impl std::fmt::Display) -> PersistError {
    PersistError::InvalidArgument(format!("{name} must be {expect}, got {got}"))
}

fn type_desc(t: &str) -> String {
    if t == "null" {
        "null".into()
    } else if t.starts_with(['a', 'e', 'i', 'o', 'u']) {
        format!("an {t}")
    } else {
        format!("a {t}")
    }
}

fn show(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else {
        format!("{v}")
    }
}

/// Validate `maxSize` (entries). Absent, `0` or `Infinity` = unbounded
/// (returned as `0`); otherwise a positive integer. Values at or above
/// [`MAX_SLOTS`] are unbounded too (no machine holds that many entries).
pub fn parse_max_size(v: OptValue<'_>) -> Result<u32> {
    const EXPECT: &str = "a non-negative integer (entries)";
    match v {
        OptValue::Absent => Ok(0),
        OptValue::WrongType(t) => Err(invalid("maxSize", EXPECT, type_desc(t))),
        OptValue::Number(n) if n == f64::INFINITY => Ok(0),
        OptValue::Number(n) if n.is_nan() || n < 0.0 || n.fract() != 0.0 => {
            Err(invalid("maxSize", EXPECT, show(n)))
        }
        OptValue::Number(n) if n >= MAX_SLOTS as f64 => Ok(0),
        OptValue::Number(n) => Ok(n as u32),
    }
}

/// Validate a TTL (milliseconds) named `name`. Absent → `None`; `0` or
/// `Infinity` → `Some(INFINITY)` (never expires, as in the JS module where a
/// falsy ttl means no expiry); otherwise a non-negative number of ms
/// (fractions allowed).
pub fn parse_ttl(name: &str, v: OptValue<'_>) -> Result<Option<f64>> {
    const EXPECT: &str = "a non-negative number of milliseconds";
    match v {
        OptValue::Absent => Ok(None),
        OptValue::WrongType(t) => Err(invalid(name, EXPECT, type_desc(t))),
        OptValue::Number(n) if n.is_nan() || n < 0.0 => Err(invalid(name, EXPECT, show(n))),
        // only 0 (and -0) is left at or below 0
        OptValue::Number(n) if n <= 0.0 => Ok(Some(f64::INFINITY)),
        OptValue::Number(n) => Ok(Some(n)),
    }
}

/// Counters kept by the core (hits and misses are counted by the glue).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    /// Live entries removed to make room (least recently used first).
    pub evictions: u64,
    /// Entries removed because their TTL had passed (touched, purged, or
    /// found expired at the LRU end when room was needed).
    pub expirations: u64,
}

/// The LRU/TTL core. See the module docs.
#[derive(Debug)]
pub struct Lru {
    /// `[prev, next]` per slot, side by side so a move touches one cache
    /// line per node.
    links: Vec<[u32; 2]>,
    /// Most recently used.
    head: u32,
    /// Least recently used (next eviction).
    tail: u32,
    free: Vec<u32>,
    len: u32,
    /// 0 = unbounded.
    max_size: u32,
    /// Effective TTL of entries set without their own (INFINITY = none).
    default_ttl: f64,
    /// A lower bound of `stored_at + ttl` over live entries: before it, nothing
    /// can be expired and stale purges return at once.
    min_expiry: f64,
    counters: Counters,
}

impl Lru {
    /// `max_size` as from [`parse_max_size`] (0 = unbounded), `default_ttl`
    /// as from [`parse_ttl`] (`None` = no expiry).
    pub fn new(max_size: u32, default_ttl: Option<f64>) -> Self {
        Lru {
            links: Vec::new(),
            head: NIL,
            tail: NIL,
            free: Vec::new(),
            len: 0,
            max_size,
            default_ttl: default_ttl.unwrap_or(f64::INFINITY),
            min_expiry: f64::INFINITY,
            counters: Counters::default(),
        }
    }

    /// Live slots (entries stored and not yet removed; may include entries
    /// whose TTL has passed until they are touched or purged).
    pub fn len(&self) -> u32 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// 0 = unbounded.
    pub fn max_size(&self) -> u32 {
        self.max_size
    }

    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Slots ever handed out (the high-water mark; `meta` must hold twice this).
    pub fn slots_used(&self) -> usize {
        self.links.len()
    }

    /// The effective TTL of an entry set with `entry_ttl` (as from
    /// [`parse_ttl`]): its own when given, else the cache default.
    pub fn effective_ttl(&self, entry_ttl: Option<f64>) -> f64 {
        entry_ttl.unwrap_or(self.default_ttl)
    }

    #[inline]
    fn is_live(&self, slot: u32) -> bool {
        (slot as usize) < self.links.len() && self.links[slot as usize][0] != FREE
    }

    #[inline]
    fn unlink(&mut self, s: u32) {
        let (p, n) = (self.links[s as usize][0], self.links[s as usize][1]);
        if p == NIL {
            self.head = n;
        } else {
            self.links[p as usize][1] = n;
        }
        if n == NIL {
            self.tail = p;
        } else {
            self.links[n as usize][0] = p;
        }
    }

    #[inline]
    fn push_front(&mut self, s: u32) {
        self.links[s as usize][0] = NIL;
        self.links[s as usize][1] = self.head;
        if self.head == NIL {
            self.tail = s;
        } else {
            self.links[self.head as usize][0] = s;
        }
        self.head = s;
    }

    /// Mark `slot` most recently used. Slots not in use are ignored.
    #[inline]
    pub fn touch(&mut self, slot: u32) {
        if self.head != slot && self.is_live(slot) {
            self.unlink(slot);
            self.push_front(slot);
        }
    }

    /// Apply hits recorded by the glue, oldest first.
    pub fn touch_all(&mut self, slots: &[u32]) {
        for &s in slots {
            self.touch(s);
        }
    }

    #[inline]
    fn write_meta(&mut self, slot: u32, now_ms: f64, ttl: f64, meta: &mut [f64]) -> Result<()> {
        let i = 2 * slot as usize;
        let cell = meta
            .get_mut(i..i + 2)
            .ok_or_else(|| PersistError::Internal(format!("slot {slot} beyond metadata")))?;
        cell[0] = now_ms;
        cell[1] = ttl;
        let exp = now_ms + ttl;
        if exp < self.min_expiry {
            self.min_expiry = exp;
        }
        Ok(())
    }

    /// Is the entry in `slot` expired at `now_ms`?
    #[inline]
    pub fn is_expired(&self, slot: u32, now_ms: f64, meta: &[f64]) -> bool {
        let i = 2 * slot as usize;
        match meta.get(i..i + 2) {
            Some(c) => expired(now_ms, c[0], c[1]),
            None => false,
        }
    }

    /// Store a new entry: returns its slot. When the cache is full the least
    /// recently used entry is removed first and its slot reused (counted as
    /// an expiration if its TTL had passed, else as an eviction): the caller
    /// recognises that case by the slot still holding an old key.
    /// `meta` must have room for one slot more than [`Lru::slots_used`]
    /// unless a slot is free (the glue grows it when `len == capacity`).
    pub fn insert(&mut self, now_ms: f64, ttl: f64, meta: &mut [f64]) -> Result<u32> {
        let slot = if self.max_size != 0 && self.len >= self.max_size && self.tail != NIL {
            let s = self.tail;
            if self.is_expired(s, now_ms, meta) {
                self.counters.expirations += 1;
            } else {
                self.counters.evictions += 1;
            }
            self.unlink(s);
            s
        } else if let Some(s) = self.free.pop() {
            self.len += 1;
            s
        } else {
            let s = self.links.len();
            if s >= MAX_SLOTS as usize || 2 * s + 2 > meta.len() {
                return Err(PersistError::Internal(format!(
                    "no room for slot {s} (metadata holds {})",
                    meta.len() / 2
                )));
            }
            self.links.push([NIL, NIL]);
            self.len += 1;
            s as u32
        };
        self.push_front(slot);
        self.write_meta(slot, now_ms, ttl, meta)?;
        Ok(slot)
    }

    /// Overwrite the entry in live `slot`: most recently used, stored now
    /// with `ttl`.
    pub fn update(&mut self, slot: u32, now_ms: f64, ttl: f64, meta: &mut [f64]) -> Result<()> {
        if !self.is_live(slot) {
            return Err(PersistError::Internal(format!(
                "update of free slot {slot}"
            )));
        }
        self.touch(slot);
        self.write_meta(slot, now_ms, ttl, meta)
    }

    /// Remove live `slot` (deleted by the caller, or found `expired` by it).
    /// Returns false when the slot was not in use.
    pub fn remove(&mut self, slot: u32, expired: bool) -> bool {
        if !self.is_live(slot) {
            return false;
        }
        self.unlink(slot);
        self.links[slot as usize][0] = FREE;
        self.links[slot as usize][1] = NIL;
        self.free.push(slot);
        self.len -= 1;
        if expired {
            self.counters.expirations += 1;
        }
        true
    }

    /// Remove every entry (counters are kept; slots are handed out afresh).
    pub fn clear(&mut self) {
        self.links.clear();
        self.free.clear();
        self.head = NIL;
        self.tail = NIL;
        self.len = 0;
        self.min_expiry = f64::INFINITY;
    }

    /// Remove every expired entry; returns their slots (for the caller to
    /// drop its keys and values). O(1) while nothing can have expired yet,
    /// else one pass over the live entries.
    pub fn purge_stale(&mut self, now_ms: f64, meta: &[f64]) -> Vec<u32> {
        // Conservative by 1 ms so float rounding of `stored + ttl` never hides
        // an entry the exact rule calls expired.
        if now_ms + 1.0 <= self.min_expiry {
            return Vec::new();
        }
        let mut out = Vec::new();
        let mut min = f64::INFINITY;
        let mut s = self.head;
        while s != NIL {
            let n = self.links[s as usize][1];
            let i = 2 * s as usize;
            if let Some(c) = meta.get(i..i + 2) {
                if expired(now_ms, c[0], c[1]) {
                    out.push(s);
                } else if c[0] + c[1] < min {
                    min = c[0] + c[1];
                }
            }
            s = n;
        }
        for &s in &out {
            self.remove(s, true);
        }
        self.min_expiry = min;
        out
    }

    /// Slots from most to least recently used (tests, diagnostics).
    pub fn order(&self) -> Vec<u32> {
        let mut out = Vec::with_capacity(self.len as usize);
        let mut s = self.head;
        while s != NIL {
            out.push(s);
            s = self.links[s as usize][1];
        }
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Time the tests move by hand (the core takes `now` as an argument).
    struct ManualClock(std::cell::Cell<u64>);

    impl ManualClock {
        fn new(start_ms: u64) -> Self {
            ManualClock(std::cell::Cell::new(start_ms))
        }
        fn advance(&self, ms: u64) {
            self.0.set(self.0.get() + ms);
        }
        fn now_ms(&self) -> f64 {
            self.0.get() as f64
        }
    }

    /// A tiny model of the glue: keys by slot, metadata array, pending hits.
    struct Harness {
        lru: Lru,
        meta: Vec<f64>,
        keys: Vec<Option<&'static str>>,
        clock: ManualClock,
    }

    impl Harness {
        fn new(max: u32, ttl: Option<f64>, cap: usize) -> Self {
            Harness {
                lru: Lru::new(max, ttl),
                meta: vec![0.0; 2 * cap],
                keys: vec![None; cap],
                clock: ManualClock::new(1_000_000),
            }
        }
        fn now(&self) -> f64 {
            self.clock.now_ms()
        }
        fn slot_of(&self, k: &str) -> Option<u32> {
            self.keys
                .iter()
                .position(|x| *x == Some(k))
                .map(|i| i as u32)
        }
        fn set(&mut self, k: &'static str, entry_ttl: Option<f64>) -> Option<&'static str> {
            let now = self.now();
            let ttl = self.lru.effective_ttl(entry_ttl);
            if let Some(s) = self.slot_of(k) {
                self.lru.update(s, now, ttl, &mut self.meta).unwrap();
                return None;
            }
            let s = self.lru.insert(now, ttl, &mut self.meta).unwrap();
            self.keys[s as usize].replace(k)
        }
        fn get(&mut self, k: &str) -> bool {
            let Some(s) = self.slot_of(k) else {
                return false;
            };
            if self.lru.is_expired(s, self.now(), &self.meta) {
                self.lru.remove(s, true);
                self.keys[s as usize] = None;
                return false;
            }
            self.lru.touch(s);
            true
        }
        fn keys_mru_first(&self) -> Vec<&'static str> {
            self.lru
                .order()
                .iter()
                .map(|&s| self.keys[s as usize].unwrap())
                .collect()
        }
    }

    #[test]
    fn options_are_validated_and_named() {
        assert_eq!(parse_max_size(OptValue::Absent).unwrap(), 0);
        assert_eq!(parse_max_size(OptValue::Number(0.0)).unwrap(), 0);
        assert_eq!(parse_max_size(OptValue::Number(f64::INFINITY)).unwrap(), 0);
        assert_eq!(parse_max_size(OptValue::Number(3.0)).unwrap(), 3);
        assert_eq!(parse_max_size(OptValue::Number(1e12)).unwrap(), 0);
        for bad in [-1.0, 1.5, f64::NAN, f64::NEG_INFINITY] {
            let e = parse_max_size(OptValue::Number(bad)).unwrap_err();
            assert_eq!(e.code(), "ERR_INVALID_ARG");
            assert!(e.to_string().starts_with("maxSize must be"), "{e}");
        }
        let e = parse_max_size(OptValue::WrongType("string")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "maxSize must be a non-negative integer (entries), got a string"
        );

        assert_eq!(parse_ttl("ttl", OptValue::Absent).unwrap(), None);
        assert_eq!(
            parse_ttl("ttl", OptValue::Number(0.0)).unwrap(),
            Some(f64::INFINITY)
        );
        assert_eq!(parse_ttl("ttl", OptValue::Number(2.5)).unwrap(), Some(2.5));
        let e = parse_ttl("options.ttl", OptValue::Number(-5.0)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "options.ttl must be a non-negative number of milliseconds, got -5"
        );
        let e = parse_ttl("ttl", OptValue::Number(f64::NAN)).unwrap_err();
        assert!(e.to_string().ends_with("got NaN"));
        let e = parse_ttl("ttl", OptValue::WrongType("null")).unwrap_err();
        assert!(e.to_string().ends_with("got null"), "{e}");
    }

    #[test]
    fn evicts_least_recently_used_not_oldest_inserted() {
        let mut h = Harness::new(3, None, 3);
        h.set("a", None);
        h.set("b", None);
        h.set("c", None);
        assert!(h.get("a")); // a is now most recent; b is LRU
        assert_eq!(h.set("d", None), Some("b"));
        assert_eq!(h.keys_mru_first(), vec!["d", "a", "c"]);
        h.set("c", None); // overwrite refreshes too
        assert_eq!(h.set("e", None), Some("a"));
        assert_eq!(h.keys_mru_first(), vec!["e", "c", "d"]);
        assert_eq!(
            h.lru.counters(),
            Counters {
                evictions: 2,
                expirations: 0
            }
        );
        assert_eq!(h.lru.len(), 3);
    }

    #[test]
    fn batched_touches_give_the_same_order_as_immediate_ones() {
        let mut a = Lru::new(0, None);
        let mut b = Lru::new(0, None);
        let mut meta = vec![0.0; 64];
        let mut meta_b = vec![0.0; 64];
        for _ in 0..10 {
            a.insert(0.0, f64::INFINITY, &mut meta).unwrap();
            b.insert(0.0, f64::INFINITY, &mut meta_b).unwrap();
        }
        let hits = [3u32, 7, 3, 0, 9, 9, 5, 1, 3];
        for &s in &hits {
            a.touch(s);
        }
        b.touch_all(&hits);
        assert_eq!(a.order(), b.order());
        assert_eq!(&a.order()[..5], &[3, 1, 5, 9, 0]);
        // touches of free or unknown slots are ignored
        b.remove(4, false);
        b.touch_all(&[4, 99, u32::MAX]);
        assert_eq!(b.order().len(), 9);
    }

    #[test]
    fn large_batches_on_large_caches_keep_the_exact_order() {
        let n = 40_000u32;
        let mut a = Lru::new(0, None);
        let mut b = Lru::new(0, None);
        let mut meta = vec![0.0; 2 * n as usize];
        let mut meta_b = meta.clone();
        for _ in 0..n {
            a.insert(0.0, f64::INFINITY, &mut meta).unwrap();
            b.insert(0.0, f64::INFINITY, &mut meta_b).unwrap();
        }
        let mut x = 12345u32;
        let hits: Vec<u32> = (0..5000)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (x >> 8) % (n + 10) // some beyond the slots: ignored
            })
            .collect();
        for &s in &hits {
            a.touch(s);
        }
        b.touch_all(&hits);
        assert_eq!(a.order(), b.order());
    }

    #[test]
    fn ttl_boundary_matches_the_js_module() {
        let mut h = Harness::new(0, Some(100.0), 4);
        h.set("a", None);
        h.clock.advance(100);
        assert!(h.get("a"), "exactly ttl ms later the entry is still live");
        h.clock.advance(1);
        assert!(!h.get("a"), "ttl+1 ms later it is expired and removed");
        assert!(h.lru.is_empty());
        assert_eq!(h.lru.counters().expirations, 1);
        assert!(!h.get("a"));
    }

    #[test]
    fn per_entry_ttl_overrides_the_default() {
        let mut h = Harness::new(0, Some(100.0), 4);
        h.set("short", Some(10.0));
        h.set("long", Some(1000.0));
        h.set("forever", Some(f64::INFINITY)); // as parse_ttl gives for 0
        h.set("default", None);
        h.clock.advance(50);
        assert!(!h.get("short"));
        assert!(h.get("default"));
        h.clock.advance(100);
        assert!(!h.get("default"));
        assert!(h.get("long"));
        h.clock.advance(1_000_000);
        assert!(!h.get("long"));
        assert!(h.get("forever"));
    }

    #[test]
    fn overwrite_restarts_the_ttl() {
        let mut h = Harness::new(0, Some(100.0), 2);
        h.set("a", None);
        h.clock.advance(80);
        h.set("a", None);
        h.clock.advance(80);
        assert!(h.get("a"));
    }

    #[test]
    fn hits_do_not_extend_the_ttl() {
        let mut h = Harness::new(0, Some(100.0), 2);
        h.set("a", None);
        h.clock.advance(60);
        assert!(h.get("a"));
        h.clock.advance(60);
        assert!(!h.get("a"));
    }

    #[test]
    fn expired_lru_entry_is_counted_as_expiration_when_room_is_made() {
        let mut h = Harness::new(2, Some(10.0), 2);
        h.set("a", None);
        h.set("b", Some(1000.0));
        h.clock.advance(20);
        assert_eq!(h.set("c", None), Some("a"));
        assert_eq!(
            h.lru.counters(),
            Counters {
                evictions: 0,
                expirations: 1
            }
        );
        assert_eq!(h.set("d", None), Some("b"));
        assert_eq!(
            h.lru.counters(),
            Counters {
                evictions: 1,
                expirations: 1
            }
        );
    }

    #[test]
    fn purge_stale_removes_only_expired_and_is_cheap_before_any_expiry() {
        let mut h = Harness::new(0, Some(100.0), 8);
        h.set("a", None);
        h.set("b", Some(50.0));
        h.set("c", Some(500.0));
        assert!(h.lru.purge_stale(h.now(), &h.meta).is_empty());
        h.clock.advance(60);
        let gone = h.lru.purge_stale(h.now(), &h.meta);
        assert_eq!(gone.len(), 1);
        assert_eq!(h.keys[gone[0] as usize], Some("b"));
        h.keys[gone[0] as usize] = None;
        h.clock.advance(60);
        let gone = h.lru.purge_stale(h.now(), &h.meta);
        assert_eq!(gone.len(), 1);
        assert_eq!(h.keys[gone[0] as usize], Some("a"));
        h.keys[gone[0] as usize] = None;
        assert_eq!(h.lru.len(), 1);
        assert_eq!(h.lru.counters().expirations, 2);
        // now nothing expires before c: the bound makes the next purge O(1)
        assert!(h.lru.purge_stale(h.now(), &h.meta).is_empty());
        assert_eq!(h.lru.min_expiry, 1_000_000.0 + 500.0);
    }

    #[test]
    fn removed_slots_are_reused_and_clear_resets() {
        let mut lru = Lru::new(0, None);
        let mut meta = vec![0.0; 8];
        let a = lru.insert(1.0, f64::INFINITY, &mut meta).unwrap();
        let b = lru.insert(1.0, f64::INFINITY, &mut meta).unwrap();
        assert!(lru.remove(a, false));
        assert!(!lru.remove(a, false), "double remove is refused");
        let c = lru.insert(1.0, f64::INFINITY, &mut meta).unwrap();
        assert_eq!(c, a);
        assert_eq!(lru.order(), vec![c, b]);
        assert!(lru.update(7, 1.0, 1.0, &mut meta).is_err());
        lru.clear();
        assert!(lru.is_empty());
        assert_eq!(lru.slots_used(), 0);
        assert_eq!(lru.insert(1.0, f64::INFINITY, &mut meta).unwrap(), 0);
    }

    #[test]
    fn insert_without_room_in_metadata_is_an_error_not_a_panic() {
        let mut lru = Lru::new(0, None);
        let mut meta = vec![0.0; 2];
        lru.insert(0.0, 1.0, &mut meta).unwrap();
        let e = lru.insert(0.0, 1.0, &mut meta).unwrap_err();
        assert_eq!(e.code(), "ERR_INTERNAL");
        assert_eq!(lru.len(), 1);
    }

    #[test]
    fn randomized_against_a_naive_model() {
        // Model: Vec of (key, stored, ttl) in recency order (front = MRU).
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut rnd = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        const KEYS: [&str; 12] = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"];
        let mut h = Harness::new(5, Some(40.0), 5);
        let mut model: Vec<(&str, f64, f64)> = Vec::new();
        for _ in 0..20_000 {
            let k = KEYS[rnd(12) as usize];
            let now = h.now();
            match rnd(10) {
                0..=5 => {
                    let got = h.get(k);
                    let pos = model.iter().position(|e| e.0 == k);
                    let want = match pos {
                        Some(p) if expired(now, model[p].1, model[p].2) => {
                            model.remove(p);
                            false
                        }
                        Some(p) => {
                            let e = model.remove(p);
                            model.insert(0, e);
                            true
                        }
                        None => false,
                    };
                    assert_eq!(got, want);
                }
                6..=8 => {
                    let ttl = if rnd(3) == 0 {
                        Some(rnd(80) as f64 + 1.0)
                    } else {
                        None
                    };
                    h.set(k, ttl);
                    let eff = ttl.unwrap_or(40.0);
                    if let Some(p) = model.iter().position(|e| e.0 == k) {
                        model.remove(p);
                    } else if model.len() == 5 {
                        model.pop();
                    }
                    model.insert(0, (k, now, eff));
                }
                _ => h.clock.advance(rnd(15)),
            }
            let keys: Vec<&str> = model.iter().map(|e| e.0).collect();
            assert_eq!(h.keys_mru_first(), keys);
        }
    }
}
