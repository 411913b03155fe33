//! Notifications (filled in below).

use crate::{Integrations, JobOutcome};
use bulwark_store::Store;
use bulwark_store::automation::ClaimedJob;
use std::sync::Arc;

/// How often the scanner duty runs.
pub const SCAN_EVERY_SECS: u64 = 15;

pub async fn process(_store: &Store, _rt: &Arc<Integrations>, _job: &ClaimedJob) -> JobOutcome {
    JobOutcome::Done
}

pub async fn scan_duty(_store: &Store, _worker: &str) {}
