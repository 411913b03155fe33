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

    fn take(&self) -> Vec<(Key, (i64, DateTime<Utc>))> {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        p.drain().collect()
    }

    fn counts(entries: &[(Key, (i64, DateTime<Utc>))]) -> Vec<IngestCount> {
        entries
            .iter()
            .map(|&((tenant_id, source, day, outcome), (count, last_at))| {
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
        let entries = self.take();
        if entries.is_empty() {
            return;
        }
        if let Err(e) = store.add_ingest_counts(&Self::counts(&entries)).await {
            tracing::warn!(error = %e, "could not store ingest counters; will retry");
            let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            for (key, (count, last_at)) in entries {
                let e = p.entry(key).or_insert((0, last_at));
                e.0 += count;
                e.1 = e.1.max(last_at);
            }
        }
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
        let mut got = IngestStats::counts(&s.take());
        got.sort_by_key(|c| (c.outcome, c.reason.clone()));
        assert_eq!(got.len(), 2);
        assert_eq!((got[0].outcome, got[0].count), ("accepted", 5));
        assert_eq!(
            (got[1].outcome, got[1].reason.as_str(), got[1].count),
            ("rejected", "invalid_json", 1)
        );
        assert!(s.take().is_empty());
    }
}
