//! Outbound calls: where they may go, how often, and what happens when the other side fails.
//!
//! * **Destinations** (SSRF): the host is resolved first and every address checked, as for
//!   `http.request`: loopback, private, link-local (the cloud metadata address), unique-local,
//!   multicast and unspecified addresses are refused unless the operator allow-listed the host
//!   or a CIDR holding the address (`http_allow`, a setting of the server, not of a tenant).
//!   The connection goes to exactly the checked addresses (no second lookup), redirects are
//!   not followed, and plain `http://` is only allowed to allow-listed destinations: a
//!   credential never crosses the internet unencrypted. A tenant admin can point an instance's
//!   `base_url` at a self-hosted MISP only where the operator said internal addresses are fine.
//! * **Rate limits** per instance (token bucket; VirusTotal's free tier is 4 per minute): a call
//!   waits for its slot when the slot comes within the call's time budget, else it fails with a
//!   retryable error. Buckets live in the process: with several worker processes, each keeps
//!   its own (see docs/integrations.md).
//! * **Retries** inside one call: connection errors, 429 and 5xx are retried (3 attempts,
//!   exponential backoff from 500 ms), honouring `Retry-After` when it fits in the budget.
//! * **Circuit breaker** per instance: after 5 consecutive failures (connection, timeout, 5xx,
//!   429) calls fail fast for 30 s, then one call is let through to probe.

use crate::CallError;
use crate::types::RateLimit;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use uuid::Uuid;

pub use reqwest::Url;

/// Settings of the outbound layer.
#[derive(Debug, Clone)]
pub struct OutboundSettings {
    /// Host names or CIDRs reachable although internal (the operator's `http_allow`).
    pub allow: Vec<String>,
    /// Attempts per call (retries on 429/5xx/connection errors).
    pub attempts: u32,
    pub backoff: Duration,
    /// Consecutive failures that open an instance's circuit, and for how long.
    pub breaker_threshold: u32,
    pub breaker_cooldown: Duration,
    /// Largest response body read.
    pub body_limit: usize,
    /// The first wait before a failed notification delivery is tried again (doubling per
    /// attempt).
    pub notify_backoff: Duration,
}

impl Default for OutboundSettings {
    fn default() -> Self {
        Self {
            allow: Vec::new(),
            attempts: 3,
            backoff: Duration::from_millis(500),
            breaker_threshold: 5,
            breaker_cooldown: Duration::from_secs(30),
            body_limit: 1024 * 1024,
            notify_backoff: Duration::from_secs(30),
        }
    }
}

/// The destination policy.
#[derive(Debug, Clone, Default)]
pub struct NetPolicy {
    hosts: Vec<String>,
    nets: Vec<(IpAddr, u8)>,
}

impl NetPolicy {
    pub fn new(allow: &[String]) -> Self {
        let mut p = Self::default();
        for a in allow {
            match bulwark_engine::http::parse_cidr(a.trim()) {
                Some(n) => p.nets.push(n),
                None => p.hosts.push(a.trim().to_ascii_lowercase()),
            }
        }
        p
    }

    fn host_listed(&self, host: &str) -> bool {
        self.hosts.iter().any(|h| h == &host.to_ascii_lowercase())
    }

    fn addr_listed(&self, ip: IpAddr) -> bool {
        self.nets
            .iter()
            .any(|n| bulwark_engine::http::in_net(ip, *n))
    }

    /// Resolves the URL's host and checks every address; answers the addresses to connect to.
    pub async fn check(&self, url: &reqwest::Url) -> Result<Vec<SocketAddr>, CallError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(CallError::fatal("only http and https URLs are allowed"));
        }
        let host = url
            .host_str()
            .ok_or_else(|| CallError::fatal("the URL has no host"))?;
        let port = url
            .port_or_known_default()
            .ok_or_else(|| CallError::fatal("the URL has no port"))?;
        self.check_host(host, port, url.scheme() == "http").await
    }

    /// Resolves `host` and checks every address. `cleartext`: the protocol is not encrypted,
    /// which only allow-listed destinations may receive.
    pub async fn check_host(
        &self,
        host: &str,
        port: u16,
        cleartext: bool,
    ) -> Result<Vec<SocketAddr>, CallError> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::time::timeout(
                Duration::from_secs(10),
                tokio::net::lookup_host((bare, port)),
            )
            .await
            .map_err(|_| CallError::retry(format!("resolving {bare} timed out")))?
            .map_err(|e| CallError::retry(format!("cannot resolve {bare}: {e}")))?
            .collect(),
        };
        if addrs.is_empty() {
            return Err(CallError::retry(format!("{bare} has no address")));
        }
        let host_ok = self.host_listed(bare);
        let mut all_listed = true;
        for a in &addrs {
            let ip = a.ip();
            let listed = host_ok || self.addr_listed(ip);
            all_listed &= listed;
            if let Some(why) = bulwark_engine::http::blocked_reason(ip)
                && !listed
            {
                return Err(CallError::fatal(format!(
                    "destination {bare} resolves to {ip}, a {why} address: refused (the operator can allow it with http_allow)"
                )));
            }
        }
        if cleartext && !all_listed {
            return Err(CallError::fatal(format!(
                "an unencrypted connection to {bare} is refused: use TLS (plain connections are only allowed to destinations in http_allow)"
            )));
        }
        Ok(addrs)
    }
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

#[derive(Debug, Default)]
struct Breaker {
    failures: u32,
    open_until: Option<Instant>,
    probing: bool,
}

/// Per-instance rate limits and circuit breakers.
#[derive(Debug, Default)]
pub struct Guards {
    buckets: Mutex<HashMap<Uuid, Bucket>>,
    breakers: Mutex<HashMap<Uuid, Breaker>>,
}

impl Guards {
    /// Takes a slot of the instance's budget, waiting for it when it comes before `deadline`.
    pub async fn acquire(
        &self,
        id: Uuid,
        limit: RateLimit,
        deadline: Instant,
    ) -> Result<(), CallError> {
        loop {
            let wait = {
                let mut b = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
                let cap = f64::from(limit.requests);
                let rate = cap / limit.per.as_secs_f64();
                let now = Instant::now();
                let bucket = b.entry(id).or_insert(Bucket {
                    tokens: cap,
                    last: now,
                });
                bucket.tokens =
                    (bucket.tokens + now.duration_since(bucket.last).as_secs_f64() * rate).min(cap);
                bucket.last = now;
                if bucket.tokens >= 1.0 {
                    bucket.tokens -= 1.0;
                    return Ok(());
                }
                Duration::from_secs_f64((1.0 - bucket.tokens) / rate)
            };
            if Instant::now() + wait > deadline {
                return Err(CallError::retry(format!(
                    "rate limit of {} requests per {} s reached; next slot in {} s",
                    limit.requests,
                    limit.per.as_secs(),
                    wait.as_secs().max(1)
                )));
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// Fails fast while the instance's circuit is open.
    pub fn admit(&self, id: Uuid) -> Result<(), CallError> {
        let mut b = self.breakers.lock().unwrap_or_else(|e| e.into_inner());
        let br = b.entry(id).or_default();
        match br.open_until {
            Some(until) if Instant::now() < until => Err(CallError::retry(format!(
                "circuit open after {} consecutive failures; retrying in {} s",
                br.failures,
                until
                    .saturating_duration_since(Instant::now())
                    .as_secs()
                    .max(1)
            ))),
            Some(_) if br.probing => Err(CallError::retry(
                "circuit half-open: a probe call is in flight",
            )),
            Some(_) => {
                br.probing = true;
                Ok(())
            }
            None => Ok(()),
        }
    }

    pub fn record(&self, id: Uuid, healthy: bool, threshold: u32, cooldown: Duration) {
        let mut b = self.breakers.lock().unwrap_or_else(|e| e.into_inner());
        let br = b.entry(id).or_default();
        br.probing = false;
        if healthy {
            br.failures = 0;
            br.open_until = None;
        } else {
            br.failures += 1;
            if br.failures >= threshold {
                br.open_until = Some(Instant::now() + cooldown);
            }
        }
    }
}

/// `Retry-After`: seconds or an HTTP date.
pub fn retry_after(h: &reqwest::header::HeaderMap) -> Option<Duration> {
    let v = h.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(s) = v.parse::<u64>() {
        return Some(Duration::from_secs(s));
    }
    let t = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    (t.with_timezone(&chrono::Utc) - chrono::Utc::now())
        .to_std()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn buckets_limit_and_breakers_open() {
        let g = Guards::default();
        let id = Uuid::now_v7();
        let limit = RateLimit {
            requests: 2,
            per: Duration::from_secs(60),
        };
        let soon = Instant::now() + Duration::from_millis(50);
        g.acquire(id, limit, soon).await.expect("1");
        g.acquire(id, limit, soon).await.expect("2");
        let e = g.acquire(id, limit, soon).await.expect_err("3rd refused");
        assert!(e.retryable && e.message.contains("rate limit"), "{e:?}");
        for _ in 0..3 {
            g.record(id, false, 3, Duration::from_secs(60));
        }
        assert!(g.admit(id).is_err());
        g.record(id, false, 3, Duration::ZERO);
        assert!(g.admit(id).is_ok(), "half-open probe");
        assert!(g.admit(id).is_err(), "one probe at a time");
        g.record(id, true, 3, Duration::ZERO);
        assert!(g.admit(id).is_ok());
    }

    #[tokio::test]
    async fn refuses_internal_destinations_and_cleartext() {
        let p = NetPolicy::new(&[]);
        for u in [
            "http://169.254.169.254/latest/meta-data",
            "https://127.0.0.1/",
            "https://10.0.0.1/",
            "https://[::1]/",
        ] {
            let url = reqwest::Url::parse(u).expect("url");
            assert!(p.check(&url).await.is_err(), "{u}");
        }
        let url = reqwest::Url::parse("http://8.8.8.8/").expect("url");
        assert!(
            p.check(&url)
                .await
                .expect_err("cleartext")
                .message
                .contains("TLS")
        );
        let p = NetPolicy::new(&["127.0.0.0/8".into()]);
        let url = reqwest::Url::parse("http://127.0.0.1:9/").expect("url");
        assert!(p.check(&url).await.is_ok());
        let url = reqwest::Url::parse("https://169.254.169.254/").expect("url");
        assert!(p.check(&url).await.is_err(), "metadata stays refused");
    }
}
