//! Automatic enrichment (filled in below).

use crate::Integrations;
use bulwark_store::Store;
use bulwark_store::automation::ClaimedJob;

pub async fn process(_store: &Store, _rt: &Integrations, _job: &ClaimedJob) -> Result<(), String> {
    Ok(())
}
