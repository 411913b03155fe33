//! Cron schedules: the scheduler duty keeps `playbook_schedules` in step with the enabled
//! playbooks' `schedule` triggers and fires the due slots.
//!
//! - A new or changed cron gets `next_fire_at = next_fire(cron, now)`; an unchanged one keeps
//!   its row (and its pending slot); a removed trigger or a disabled/deleted playbook loses it.
//! - Firing a slot creates the runs and moves `next_fire_at` to the first slot after *now* in
//!   one transaction, guarded by the slot read ([`AutomationStore::fire_schedule`]). Two
//!   schedulers (an overlap while the lease changes hands) or a crash between reading and
//!   firing can never fire a slot twice, and a scheduler that was down for several slots
//!   fires once when it comes back, not once per missed slot.
//! - A tenant's playbook runs in its tenant. A global playbook (no tenant) runs once per
//!   tenant, each run in that tenant, so its actions only ever see one tenant's data.
//!
//! [`plan`] and [`due`] are pure; [`run_schedules`] does the I/O.

use bulwark_core::{Scope, TenantId};
use bulwark_playbook::{PlaybookSpec, TriggerKind, next_fire};
use bulwark_store::automation::{NewRun, PlaybookRecord, ScheduleFire, ScheduleRecord};
use bulwark_store::{Store, StoreResult};
use chrono::{DateTime, Utc};
use serde_json::json;
use std::collections::HashMap;
use uuid::Uuid;

/// A `schedule` trigger of an enabled playbook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WantedSchedule {
    pub playbook_id: Uuid,
    pub trigger_index: i32,
    pub cron: String,
}

/// The `schedule` triggers of the enabled playbooks, read from their stored specs (validated
/// on write; a spec that does not read is skipped).
pub fn wanted(playbooks: &[PlaybookRecord]) -> Vec<WantedSchedule> {
    let mut out = Vec::new();
    for p in playbooks.iter().filter(|p| p.enabled) {
        let Ok(spec) = serde_json::from_value::<PlaybookSpec>(p.spec.clone()) else {
            continue;
        };
        for (i, t) in spec.triggers.iter().enumerate() {
            if let (TriggerKind::Schedule, Some(cron)) = (t.on, &t.cron) {
                out.push(WantedSchedule {
                    playbook_id: p.id,
                    trigger_index: i as i32,
                    cron: cron.clone(),
                });
            }
        }
    }
    out
}

/// What to change in `playbook_schedules`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SchedulePlan {
    /// New schedules and schedules whose cron changed, with their first slot.
    pub upsert: Vec<ScheduleRecord>,
    /// (playbook, trigger) whose trigger or playbook is gone or disabled.
    pub delete: Vec<(Uuid, i32)>,
}

/// Compares the wanted schedules with the stored rows. A cron that never fires (or does not
/// parse) is dropped.
pub fn plan(
    wanted: &[WantedSchedule],
    stored: &[ScheduleRecord],
    now: DateTime<Utc>,
) -> SchedulePlan {
    let by_key: HashMap<(Uuid, i32), &ScheduleRecord> = stored
        .iter()
        .map(|r| ((r.playbook_id, r.trigger_index), r))
        .collect();
    let mut out = SchedulePlan::default();
    let mut keep = std::collections::HashSet::new();
    for w in wanted {
        let key = (w.playbook_id, w.trigger_index);
        match by_key.get(&key) {
            Some(r) if r.cron == w.cron => {
                keep.insert(key);
            }
            existing => {
                if let Some(next) = next_fire(&w.cron, now) {
                    keep.insert(key);
                    out.upsert.push(ScheduleRecord {
                        playbook_id: w.playbook_id,
                        trigger_index: w.trigger_index,
                        cron: w.cron.clone(),
                        next_fire_at: next,
                        last_fired_at: existing.and_then(|r| r.last_fired_at),
                    });
                }
            }
        }
    }
    out.delete = stored
        .iter()
        .map(|r| (r.playbook_id, r.trigger_index))
        .filter(|k| !keep.contains(k))
        .collect();
    out
}

/// The rows whose slot has come, each with the slot after `now` to move to. A cron that no
/// longer yields a next slot is not fired (the next [`plan`] drops it).
pub fn due(stored: &[ScheduleRecord], now: DateTime<Utc>) -> Vec<(ScheduleRecord, DateTime<Utc>)> {
    stored
        .iter()
        .filter(|r| r.next_fire_at <= now)
        .filter_map(|r| next_fire(&r.cron, now).map(|n| (r.clone(), n)))
        .collect()
}

/// The runs one slot of `playbook` starts: one in its tenant, or one per tenant for a global
/// playbook.
pub fn runs_for(
    playbook: &PlaybookRecord,
    tenants: &[TenantId],
    slot: DateTime<Utc>,
) -> Vec<NewRun> {
    let targets: Vec<TenantId> = match playbook.tenant_id {
        Some(t) => vec![t],
        None => tenants.to_vec(),
    };
    targets
        .into_iter()
        .map(|tenant_id| NewRun {
            tenant_id,
            playbook_id: playbook.id,
            playbook_name: playbook.name.clone(),
            playbook_version: playbook.version,
            trigger: "schedule".into(),
            alert_id: None,
            incident_id: None,
            input: json!({ "scheduled_at": slot }),
            requested_by: Some("scheduler".into()),
            priority: playbook.priority,
        })
        .collect()
}

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ScheduleReport {
    /// Slots this pass fired (a slot fired by another scheduler is not counted).
    pub fired: usize,
    pub runs: usize,
}

/// One scheduler pass: brings the rows in step with the enabled playbooks, then fires the due
/// slots. Safe to run on several nodes at once (each slot fires once), though normally only
/// the holder of the `scheduler` lease runs it.
pub async fn run_schedules(store: &Store, now: DateTime<Utc>) -> StoreResult<ScheduleReport> {
    let playbooks = store.enabled_playbooks().await?;
    let stored = store.list_schedules().await?;
    let changes = plan(&wanted(&playbooks), &stored, now);
    for (playbook_id, trigger_index) in &changes.delete {
        store.delete_schedule(*playbook_id, *trigger_index).await?;
    }
    for row in &changes.upsert {
        if let Err(e) = store.upsert_schedule(row).await {
            // The playbook was deleted meanwhile; the next pass drops it.
            tracing::warn!(playbook = %row.playbook_id, error = %e, "cannot store a schedule");
        }
    }
    if changes.delete.is_empty() && changes.upsert.is_empty() {
        return fire_due(store, &playbooks, &stored, now).await;
    }
    let stored = store.list_schedules().await?;
    fire_due(store, &playbooks, &stored, now).await
}

async fn fire_due(
    store: &Store,
    playbooks: &[PlaybookRecord],
    stored: &[ScheduleRecord],
    now: DateTime<Utc>,
) -> StoreResult<ScheduleReport> {
    let slots = due(stored, now);
    let mut report = ScheduleReport::default();
    if slots.is_empty() {
        return Ok(report);
    }
    let by_id: HashMap<Uuid, &PlaybookRecord> = playbooks.iter().map(|p| (p.id, p)).collect();
    let mut tenants: Option<Vec<TenantId>> = None;
    for (row, next) in slots {
        let Some(pb) = by_id.get(&row.playbook_id) else {
            continue;
        };
        let all = match (&tenants, pb.tenant_id) {
            (_, Some(_)) => Vec::new(),
            (Some(t), None) => t.clone(),
            (None, None) => {
                let t: Vec<TenantId> = store
                    .list_tenants(&Scope::AllTenants)
                    .await?
                    .into_iter()
                    .map(|t| t.id)
                    .collect();
                tenants = Some(t.clone());
                t
            }
        };
        let fire = ScheduleFire {
            playbook_id: row.playbook_id,
            trigger_index: row.trigger_index,
            expected: row.next_fire_at,
            next,
            fired_at: now,
            runs: runs_for(pb, &all, row.next_fire_at),
        };
        if let Some(ids) = store.fire_schedule(&fire).await? {
            tracing::info!(playbook = %pb.name, slot = %row.next_fire_at, runs = ids.len(), "schedule fired");
            report.fired += 1;
            report.runs += ids.len();
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(min: i64) -> DateTime<Utc> {
        // 1_800_000_000 is a whole hour (UTC).
        DateTime::from_timestamp(1_800_000_000 + min * 60, 0).unwrap_or_default()
    }

    fn row(pb: Uuid, i: i32, cron: &str, next: DateTime<Utc>) -> ScheduleRecord {
        ScheduleRecord {
            playbook_id: pb,
            trigger_index: i,
            cron: cron.into(),
            next_fire_at: next,
            last_fired_at: None,
        }
    }

    fn want(pb: Uuid, i: i32, cron: &str) -> WantedSchedule {
        WantedSchedule {
            playbook_id: pb,
            trigger_index: i,
            cron: cron.into(),
        }
    }

    #[test]
    fn plan_adds_changes_keeps_and_removes() {
        let (a, b, c) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let now = at(0) + chrono::Duration::seconds(30);
        let stored = vec![
            row(a, 0, "* * * * *", at(-5)),
            row(b, 0, "0 * * * *", at(60)),
            row(c, 1, "* * * * *", at(1)),
        ];
        let wanted = vec![
            want(a, 0, "* * * * *"),
            want(b, 0, "*/15 * * * *"),
            want(c, 2, "30 * * * *"),
        ];
        let p = plan(&wanted, &stored, now);
        // `a` unchanged keeps its (overdue) slot; `b` changed; `c`'s trigger moved.
        assert_eq!(
            p.upsert,
            vec![
                row(b, 0, "*/15 * * * *", at(15)),
                row(c, 2, "30 * * * *", at(30))
            ]
        );
        assert_eq!(p.delete, vec![(c, 1)]);
        assert_eq!(plan(&[], &stored, now).delete.len(), 3);
    }

    #[test]
    fn missed_slots_fire_once_and_move_past_now() {
        let a = Uuid::now_v7();
        // Down for 10 minutes: one due slot, and the next one is after now.
        let now = at(10) + chrono::Duration::seconds(5);
        let d = due(
            &[
                row(a, 0, "* * * * *", at(0)),
                row(a, 1, "0 * * * *", at(60)),
            ],
            now,
        );
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].1, at(11));
    }

    #[test]
    fn a_global_playbook_runs_in_every_tenant() {
        let t1 = TenantId(Uuid::now_v7());
        let t2 = TenantId(Uuid::now_v7());
        let mut pb = PlaybookRecord {
            id: Uuid::now_v7(),
            tenant_id: None,
            name: "nightly".into(),
            description: None,
            version: 3,
            enabled: true,
            priority: 50,
            spec: json!({}),
            origin: "file".into(),
            file_path: None,
            created_by: None,
            created_at: at(0),
            updated_at: at(0),
        };
        let runs = runs_for(&pb, &[t1, t2], at(0));
        assert_eq!(
            runs.iter().map(|r| r.tenant_id).collect::<Vec<_>>(),
            vec![t1, t2]
        );
        assert!(
            runs.iter()
                .all(|r| r.trigger == "schedule" && r.playbook_version == 3)
        );
        pb.tenant_id = Some(t2);
        let runs = runs_for(&pb, &[t1, t2], at(0));
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].tenant_id, t2);
    }

    #[test]
    fn wanted_reads_schedule_triggers_of_enabled_playbooks() {
        let spec = json!({"name": "x", "triggers": [{"on": "manual"}, {"on": "schedule", "cron": "5 * * * *"}], "actions": []});
        let mut pb = PlaybookRecord {
            id: Uuid::now_v7(),
            tenant_id: None,
            name: "x".into(),
            description: None,
            version: 1,
            enabled: true,
            priority: 100,
            spec,
            origin: "api".into(),
            file_path: None,
            created_by: None,
            created_at: at(0),
            updated_at: at(0),
        };
        assert_eq!(
            wanted(std::slice::from_ref(&pb)),
            vec![want(pb.id, 1, "5 * * * *")]
        );
        pb.enabled = false;
        assert!(wanted(&[pb]).is_empty());
    }
}
