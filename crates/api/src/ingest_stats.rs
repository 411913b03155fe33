//! Ingestion counters: every accepted, duplicate and rejected alert is counted per tenant,
//! source and (for rejections) reason. Each count goes to `/metrics` at once and is gathered in
//! memory for the database (`ingest_counters`), flushed every few seconds and at shutdown, so
//! `GET /api/v1/ingest/stats` sees every node's counts without a hot row in the ingest path.

use bulwark_core::TenantId;
use bulwark_store::Store;
use bulwark_store::ingest_ops::IngestCount;
use chrono::{DateTime, NaiveDate, Utc};
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Accepted,
    Duplicate,
    Rejected(Reject),
}

/// Why an alert or request was refused: a closed list, so metric labels stay bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reject {
    InvalidJson,
    TooDeep,
    NotAnObject,
    Unmappable,
    Empty,
    TooManyAlerts,
    TooLarge,
    UnsupportedMediaType,
    BadSignature,
    RateLimited,
    SourceNotAllowed,
}

impl Reject {
    pub fn as_str(self) -> &'static str {
        match self {
            Reject::InvalidJson => "invalid_json",
            Reject::TooDeep => "too_deep",
            Reject::NotAnObject => "not_an_object",
            Reject::Unmappable => "unmappable",
            Reject::Empty => "empty",
            Reject::TooManyAlerts => "too_many_alerts",
            Reject::TooLarge => "too_large",
            Reject::UnsupportedMediaType => "unsupported_media_type",
            Reject::BadSignature => "bad_signature",
            Reject::RateLimited => "rate_limited",
            Reject::SourceNotAllowed => "source_not_allowed",
        }
    }
}

impl Outcome {
    fn labels(self) -> (&'static str, &'static str) {
        match self {
            Outcome::Accepted => ("accepted", ""),
            Outcome::Duplicate => ("duplicate", ""),
            Outcome::Rejected(r) => ("rejected", r.as_str()),
        }
    }
}

type Key = (TenantId, &'static str, NaiveDate, Outcome);

#[derive(Default)]
pub struct IngestStats {
    pending: Mutex<HashMap<Key, (i64, DateTime<Utc>)>>,
}

impl IngestStats {
    pub fn record(&self, tenant: TenantId, source: &'static str, outcome: Outcome, n: u64) {
        if n == 0 {
            return;
        }
        let (o, reason) = outcome.labels();
        metrics::counter!("bulwark_ingest_alerts_total", "source" => source, "outcome" => o, "reason" => reason)
            .increment(n);
        let now = bulwark_core::time::now();
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let e = p
            .entry((tenant, source, now.date_naive(), outcome))
            .or_insert((0, now));
        e.0 += i64::try_from(n).unwrap_or(i64::MAX);
        e.1 = now;
    }

    fn take(&self) -> Vec<IngestCount> {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        p.drain()
            .map(|((tenant_id, source, day, outcome), (count, last_at))| {
                let (o, reason) = outcome.labels();
                IngestCount {
                    tenant_id,
                    source: source.to_string(),
                    day,
                    outcome: o,
                    reason: reason.to_string(),
                    count,
                    last_at,
                }
            })
            .collect()
    }

    /// Writes what was counted since the last flush; on failure keeps it for the next one.
    pub async fn flush(&self, store: &Store) {
        let batch = self.take();
        if batch.is_empty() {
            return;
        }
        if let Err(e) = store.add_ingest_counts(&batch).await {
            tracing::warn!(error = %e, "could not store ingest counters; will retry");
            let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            for c in batch {
                let outcome = match (c.outcome, Reject::parse(&c.reason)) {
                    ("accepted", _) => Outcome::Accepted,
                    ("duplicate", _) => Outcome::Duplicate,
                    (_, Some(r)) => Outcome::Rejected(r),
                    _ => continue,
                };
                let Some(source) = crate::routes::api_keys::WEBHOOK_SOURCES
                    .iter()
                    .find(|s| **s == c.source)
                else {
                    continue;
                };
                let e = p
                    .entry((c.tenant_id, source, c.day, outcome))
                    .or_insert((0, c.last_at));
                e.0 += c.count;
                e.1 = e.1.max(c.last_at);
            }
        }
    }
}

impl Reject {
    const ALL: [Reject; 11] = [
        Reject::InvalidJson,
        Reject::TooDeep,
        Reject::NotAnObject,
        Reject::Unmappable,
        Reject::Empty,
        Reject::TooManyAlerts,
        Reject::TooLarge,
        Reject::UnsupportedMediaType,
        Reject::BadSignature,
        Reject::RateLimited,
        Reject::SourceNotAllowed,
    ];

    fn parse(s: &str) -> Option<Reject> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_gather_per_key() {
        let s = IngestStats::default();
        let t = TenantId::new();
        s.record(t, "wazuh", Outcome::Accepted, 3);
        s.record(t, "wazuh", Outcome::Accepted, 2);
        s.record(t, "wazuh", Outcome::Rejected(Reject::InvalidJson), 1);
        s.record(t, "wazuh", Outcome::Duplicate, 0);
        let mut got = s.take();
        got.sort_by_key(|c| (c.outcome, c.reason.clone()));
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].outcome, got[0].count), ("accepted", 5));
        assert_eq!(
            (got[1].outcome, got[1].reason.as_str(), got[1].count),
            ("rejected", "invalid_json", 1)
        );
        assert!(s.take().is_empty());
    }

    #[test]
    fn reasons_round_trip() {
        for r in Reject::ALL {
            assert_eq!(Reject::parse(r.as_str()), Some(r));
        }
    }
}
