//! Login throttling: after repeated failures for a username, further attempts are refused
//! (429 with Retry-After) before the password is even checked, with an exponentially growing
//! lock-out. Keyed by the normalized username whether or not the account exists, so the
//! throttle reveals nothing about which usernames are real.
//!
//! State is per process (a trade-off: behind several API nodes an attacker gets a budget per
//! node; the lock-out still grows exponentially on each).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub struct ThrottlePolicy {
    /// Failures allowed before the lock-out starts.
    pub free_attempts: u32,
    /// First lock-out; doubles with each further failure.
    pub base_lockout: Duration,
    pub max_lockout: Duration,
    /// Failures older than this are forgotten.
    pub window: Duration,
}

impl Default for ThrottlePolicy {
    fn default() -> Self {
        Self {
            free_attempts: 5,
            base_lockout: Duration::from_secs(30),
            max_lockout: Duration::from_secs(15 * 60),
            window: Duration::from_secs(15 * 60),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last_failure: Instant,
}

/// Bounded: at most `MAX_ENTRIES` usernames are tracked; expired ones are dropped first.
const MAX_ENTRIES: usize = 100_000;

pub struct LoginThrottle {
    policy: ThrottlePolicy,
    entries: Mutex<HashMap<String, Entry>>,
}

impl LoginThrottle {
    pub fn new(policy: ThrottlePolicy) -> Self {
        Self {
            policy,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn lockout(&self, failures: u32) -> Duration {
        if failures < self.policy.free_attempts {
            return Duration::ZERO;
        }
        let doublings = (failures - self.policy.free_attempts).min(16);
        self.policy
            .base_lockout
            .saturating_mul(1u32 << doublings)
            .min(self.policy.max_lockout)
    }

    /// `Err(retry_after)` while the username is locked out.
    pub fn check(&self, username: &str, now: Instant) -> Result<(), Duration> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let Some(e) = entries.get(username) else {
            return Ok(());
        };
        let until = e.last_failure + self.lockout(e.failures);
        if until > now {
            Err(until - now)
        } else {
            Ok(())
        }
    }

    pub fn record_failure(&self, username: &str, now: Instant) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(username) {
            let window = self.policy.window + self.policy.max_lockout;
            entries.retain(|_, e| now.duration_since(e.last_failure) < window);
            if entries.len() >= MAX_ENTRIES {
                // Still full of fresh entries (a spray): forget the oldest one.
                if let Some(oldest) = entries
                    .iter()
                    .min_by_key(|(_, e)| e.last_failure)
                    .map(|(k, _)| k.clone())
                {
                    entries.remove(&oldest);
                }
            }
        }
        let entry = entries.entry(username.to_string()).or_insert(Entry {
            failures: 0,
            last_failure: now,
        });
        if now.duration_since(entry.last_failure)
            > self.policy.window + self.lockout(entry.failures)
        {
            entry.failures = 0;
        }
        entry.failures += 1;
        entry.last_failure = now;
    }

    pub fn record_success(&self, username: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        entries.remove(username);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_out_after_free_attempts_and_grows() {
        let t = LoginThrottle::new(ThrottlePolicy::default());
        let now = Instant::now();
        for _ in 0..4 {
            t.record_failure("eve", now);
            assert!(t.check("eve", now).is_ok());
        }
        t.record_failure("eve", now);
        assert_eq!(t.check("eve", now), Err(Duration::from_secs(30)));
        assert!(t.check("eve", now + Duration::from_secs(31)).is_ok());
        t.record_failure("eve", now + Duration::from_secs(31));
        assert_eq!(
            t.check("eve", now + Duration::from_secs(31)),
            Err(Duration::from_secs(60))
        );
        assert!(t.check("bob", now).is_ok(), "other usernames unaffected");
    }

    #[test]
    fn success_resets_and_lockout_is_capped() {
        let t = LoginThrottle::new(ThrottlePolicy::default());
        let now = Instant::now();
        for _ in 0..40 {
            t.record_failure("eve", now);
        }
        assert_eq!(t.check("eve", now), Err(Duration::from_secs(900)));
        t.record_success("eve");
        assert!(t.check("eve", now).is_ok());
    }

    #[test]
    fn old_failures_are_forgotten() {
        let t = LoginThrottle::new(ThrottlePolicy::default());
        let now = Instant::now();
        for _ in 0..4 {
            t.record_failure("eve", now);
        }
        let later = now + Duration::from_secs(3600);
        t.record_failure("eve", later);
        assert!(t.check("eve", later).is_ok(), "window restarted");
    }
}
