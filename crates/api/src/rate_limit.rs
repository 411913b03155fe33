//! Token buckets: one per valid API key (request rate), one per client IP (failed
//! authentications).
//!
//! The key bucket is charged only after the key was validated, so made-up keys cannot drain
//! a real key's budget. The IP bucket is charged by failed authentications only; once empty,
//! that IP's requests are refused before any credential is checked, until it refills.
//!
//! State is per process: behind several API nodes each node enforces the limit on its own
//! (the effective limit is the per-node limit times the nodes a sender reaches).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// `rate` tokens per second on average, at most `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BucketPolicy {
    pub rate: f64,
    pub burst: f64,
}

impl BucketPolicy {
    pub fn per_second(rate: u32, burst: u32) -> Self {
        Self {
            rate: f64::from(rate.max(1)),
            burst: f64::from(burst.max(1)),
        }
    }

    pub fn per_minute(rate: u32, burst: u32) -> Self {
        Self {
            rate: f64::from(rate.max(1)) / 60.0,
            burst: f64::from(burst.max(1)),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn refill(&mut self, p: BucketPolicy, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * p.rate).min(p.burst);
        self.at = now;
    }

    fn wait_for_one(&self, p: BucketPolicy) -> Duration {
        Duration::from_secs_f64(((1.0 - self.tokens) / p.rate).max(0.0))
    }
}

/// Buckets keyed by `K`, bounded in number: when full, buckets that have refilled completely
/// (indistinguishable from new ones) are dropped first.
pub struct Buckets<K> {
    buckets: Mutex<HashMap<K, Bucket>>,
    max_entries: usize,
}

impl<K: Eq + Hash + Copy> Buckets<K> {
    pub fn new(max_entries: usize) -> Self {
        Self {
            buckets: Mutex::new(HashMap::new()),
            max_entries,
        }
    }

    /// Takes one token, or says how long until one is available.
    pub fn take(&self, key: K, policy: BucketPolicy, now: Instant) -> Result<(), Duration> {
        let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= self.max_entries && !map.contains_key(&key) {
            map.retain(|_, b| {
                let mut b = *b;
                b.refill(policy, now);
                b.tokens < policy.burst
            });
            if map.len() >= self.max_entries {
                // Every tracked sender is mid-limit (a flood from very many addresses):
                // forget them rather than grow without bound.
                map.clear();
            }
        }
        let b = map.entry(key).or_insert(Bucket {
            tokens: policy.burst,
            at: now,
        });
        b.refill(policy, now);
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(b.wait_for_one(policy))
        }
    }

    /// `Err(wait)` when the bucket is empty; takes nothing.
    pub fn check(&self, key: K, policy: BucketPolicy, now: Instant) -> Result<(), Duration> {
        let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        match map.get_mut(&key) {
            None => Ok(()),
            Some(b) => {
                b.refill(policy, now);
                if b.tokens >= 1.0 {
                    Ok(())
                } else {
                    Err(b.wait_for_one(policy))
                }
            }
        }
    }

    pub fn len(&self) -> usize {
        self.buckets.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Whole seconds for `Retry-After`, never 0.
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refill() {
        let b = Buckets::new(10);
        let p = BucketPolicy::per_second(2, 3);
        let t0 = Instant::now();
        assert!(b.take(1, p, t0).is_ok());
        assert!(b.take(1, p, t0).is_ok());
        assert!(b.take(1, p, t0).is_ok());
        let wait = b.take(1, p, t0).expect_err("empty");
        assert_eq!(wait, Duration::from_millis(500));
        assert_eq!(retry_after_secs(wait), 1);
        // Another key is unaffected.
        assert!(b.take(2, p, t0).is_ok());
        // Half a second later one token is back, not more.
        let t1 = t0 + Duration::from_millis(500);
        assert!(b.take(1, p, t1).is_ok());
        assert!(b.take(1, p, t1).is_err());
        // Never more than the burst, however long idle.
        let t2 = t1 + Duration::from_secs(3600);
        for _ in 0..3 {
            assert!(b.take(1, p, t2).is_ok());
        }
        assert!(b.take(1, p, t2).is_err());
    }

    #[test]
    fn check_does_not_consume() {
        let b = Buckets::new(10);
        let p = BucketPolicy::per_minute(6, 2);
        let t0 = Instant::now();
        assert!(b.check("ip", p, t0).is_ok());
        b.take("ip", p, t0).expect("1");
        assert!(b.check("ip", p, t0).is_ok());
        b.take("ip", p, t0).expect("2");
        let wait = b.check("ip", p, t0).expect_err("empty");
        assert_eq!(retry_after_secs(wait), 10);
        assert!(b.check("ip", p, t0 + Duration::from_secs(10)).is_ok());
    }

    #[test]
    fn bounded_drops_full_buckets_first() {
        let b = Buckets::new(2);
        let p = BucketPolicy::per_second(1, 1);
        let t0 = Instant::now();
        b.take(1, p, t0).expect("1");
        b.take(2, p, t0).expect("2");
        // Later both have refilled and are dropped when room is needed.
        b.take(3, p, t0 + Duration::from_secs(5)).expect("3");
        assert_eq!(b.len(), 1);
        b.take(4, p, t0 + Duration::from_secs(5)).expect("4");
        assert_eq!(b.len(), 2);
        // Both mid-limit: the map is cleared rather than grown past its bound.
        b.take(5, p, t0 + Duration::from_secs(5)).expect("5");
        assert_eq!(b.len(), 1);
    }
}
