//! Time, injected. Pure cores take a `&dyn Clock` (or a `now_ms` argument) so
//! `cargo test` drives time without sleeping; bindings pass the JavaScript
//! clock (`Date.now()`, which fake timers control) or [`SystemClock`].

/// Milliseconds since the Unix epoch, as `Date.now()` reports them.
pub trait Clock: Send + Sync {
    fn now_ms(&self) -> f64;
}

/// The operating system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> f64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64() * 1000.0)
            .unwrap_or(0.0)
    }
}

/// A clock tests move by hand.
#[derive(Debug, Default)]
pub struct ManualClock(std::sync::atomic::AtomicU64);

impl ManualClock {
    pub fn new(start_ms: u64) -> Self {
        ManualClock(std::sync::atomic::AtomicU64::new(start_ms))
    }
    pub fn advance(&self, ms: u64) {
        self.0.fetch_add(ms, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> f64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_advances() {
        let c = ManualClock::new(1000);
        assert_eq!(c.now_ms(), 1000.0);
        c.advance(250);
        assert_eq!(c.now_ms(), 1250.0);
        assert!(SystemClock.now_ms() > 1.6e12);
    }
}
