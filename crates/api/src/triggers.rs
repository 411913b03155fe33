//! Which playbooks an event starts: the enabled playbooks' triggers, compiled once and kept in
//! memory, matched per alert at ingestion (before the transaction that stores the alert and
//! its runs) and per change of an alert or incident made through the API.
//!
//! The set is reloaded when the store's playbook marker changes. The marker is checked at most
//! once per `refresh` interval, on the request that finds it stale (no background task), and at
//! once after this node changed a playbook; other nodes see a change within `refresh`. A run
//! of a playbook disabled meanwhile is cancelled by the worker, not executed.
//!
//! Runs started by a playbook's own actions (`alert.update` ...) do not trigger `alert.updated`:
//! a playbook cannot start itself in a loop.

use bulwark_core::TenantId;
use bulwark_normalize::NormalizedAlert;
use bulwark_playbook::{Catalog, Playbook, TriggerEvent, TriggerKind, TriggerSet};
use bulwark_store::automation::{NewRun, PlaybookRecord};
use bulwark_store::ingest::{AlertTriggers, PlannedRun, trigger_view};
use bulwark_store::{Store, StoreResult};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// A playbook version as the matcher knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlaybookKey {
    pub id: Uuid,
    pub version: i32,
}

/// One tenant's view: global playbooks plus its own.
#[derive(Debug)]
struct TenantTriggers {
    set: TriggerSet<PlaybookKey>,
    /// Trigger kinds present, so an event nobody listens to costs nothing.
    kinds: Vec<TriggerKind>,
    /// Some `alert.created` trigger also fires on duplicates.
    on_duplicate: bool,
}

impl TenantTriggers {
    fn new(playbooks: Vec<(PlaybookKey, Arc<Playbook>)>) -> Self {
        let mut kinds = Vec::new();
        let mut on_duplicate = false;
        for t in playbooks.iter().flat_map(|(_, p)| p.triggers()) {
            if !kinds.contains(&t.kind) {
                kinds.push(t.kind);
            }
            on_duplicate |= t.kind == TriggerKind::AlertCreated && t.on_duplicate;
        }
        Self {
            set: TriggerSet::new(playbooks),
            kinds,
            on_duplicate,
        }
    }

    fn listens(&self, kind: TriggerKind) -> bool {
        self.kinds.contains(&kind)
    }

    fn planned(&self, event: TriggerEvent, ctx: &Value) -> Vec<PlannedRun> {
        let matched = self.set.matching(event, ctx);
        for e in &matched.errors {
            tracing::warn!(playbook = %e.playbook_name, trigger = e.trigger_index, error = %e.error,
                "trigger condition could not be evaluated; counted as not matched");
        }
        matched
            .matches
            .into_iter()
            .map(|m| PlannedRun {
                playbook_id: m.playbook_id.id,
                playbook_name: m.playbook_name,
                playbook_version: m.playbook_id.version,
                priority: m.priority,
            })
            .collect()
    }
}

/// The compiled triggers of every enabled playbook at one marker.
#[derive(Debug)]
pub struct Snapshot {
    marker: String,
    global: TenantTriggers,
    tenants: HashMap<TenantId, TenantTriggers>,
}

/// A stored playbook that could not be compiled (it is skipped, not matched).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedPlaybook {
    pub name: String,
    pub error: String,
}

impl Snapshot {
    fn empty() -> Self {
        Self {
            marker: String::new(),
            global: TenantTriggers::new(Vec::new()),
            tenants: HashMap::new(),
        }
    }

    /// Compiles enabled playbooks (the record's `enabled` is what counts, whatever the spec
    /// says). Pure: the store is read by the caller.
    pub fn build(marker: String, records: &[PlaybookRecord]) -> (Self, Vec<SkippedPlaybook>) {
        Self::build_with(marker, records, &Catalog::builtin())
    }

    /// [`Snapshot::build`] against a catalog with more actions (the integrations').
    pub fn build_with(
        marker: String,
        records: &[PlaybookRecord],
        catalog: &Catalog,
    ) -> (Self, Vec<SkippedPlaybook>) {
        let mut skipped = Vec::new();
        let mut global = Vec::new();
        let mut own: HashMap<TenantId, Vec<(PlaybookKey, Arc<Playbook>)>> = HashMap::new();
        for r in records.iter().filter(|r| r.enabled) {
            let mut spec = r.spec.clone();
            if let Some(o) = spec.as_object_mut() {
                o.insert("enabled".into(), Value::Bool(true));
            }
            let pb = match bulwark_playbook::parse_json(&spec, catalog) {
                Ok(pb) => Arc::new(pb),
                Err(e) => {
                    skipped.push(SkippedPlaybook {
                        name: r.name.clone(),
                        error: e.to_string(),
                    });
                    continue;
                }
            };
            let key = PlaybookKey {
                id: r.id,
                version: r.version,
            };
            match r.tenant_id {
                None => global.push((key, pb)),
                Some(t) => own.entry(t).or_default().push((key, pb)),
            }
        }
        let tenants = own
            .into_iter()
            .map(|(t, mut list)| {
                list.extend(global.iter().cloned());
                (t, TenantTriggers::new(list))
            })
            .collect();
        let snapshot = Self {
            marker,
            global: TenantTriggers::new(global),
            tenants,
        };
        (snapshot, skipped)
    }

    fn tenant(&self, t: TenantId) -> &TenantTriggers {
        self.tenants.get(&t).unwrap_or(&self.global)
    }

    /// Whether some playbook of `tenant` (or a global one) has a trigger of `kind`.
    pub fn listens(&self, tenant: TenantId, kind: TriggerKind) -> bool {
        self.tenant(tenant).listens(kind)
    }

    /// The runs an incoming alert starts, new or duplicate.
    pub fn for_new_alert(
        &self,
        tenant: TenantId,
        alert: &NormalizedAlert,
        received_at: DateTime<Utc>,
    ) -> AlertTriggers {
        let set = self.tenant(tenant);
        if !set.listens(TriggerKind::AlertCreated) {
            return AlertTriggers::default();
        }
        let ctx = json!({ "alert": trigger_view(tenant, alert, received_at) });
        AlertTriggers {
            created: set.planned(TriggerEvent::AlertCreated { duplicate: false }, &ctx),
            duplicate: if set.on_duplicate {
                set.planned(TriggerEvent::AlertCreated { duplicate: true }, &ctx)
            } else {
                Vec::new()
            },
        }
    }

    /// The runs a change starts. `subject` is the alert or incident as the API shows it.
    pub fn for_change(
        &self,
        tenant: TenantId,
        event: TriggerEvent,
        subject: &Value,
    ) -> Vec<PlannedRun> {
        let set = self.tenant(tenant);
        let (kind, field) = match event {
            TriggerEvent::AlertCreated { .. } => (TriggerKind::AlertCreated, "alert"),
            TriggerEvent::AlertUpdated => (TriggerKind::AlertUpdated, "alert"),
            TriggerEvent::IncidentCreated => (TriggerKind::IncidentCreated, "incident"),
            TriggerEvent::IncidentUpdated => (TriggerKind::IncidentUpdated, "incident"),
        };
        if !set.listens(kind) {
            return Vec::new();
        }
        set.planned(event, &json!({ field: subject }))
    }
}

/// The node's trigger cache.
pub struct Triggers {
    current: RwLock<Arc<Snapshot>>,
    /// Milliseconds since `epoch` of the last marker check (`u64::MAX`: never).
    checked_ms: AtomicU64,
    epoch: Instant,
    refresh: Duration,
    reloading: tokio::sync::Mutex<()>,
    catalog: Catalog,
}

impl Triggers {
    pub fn new(refresh: Duration) -> Self {
        Self::with_catalog(refresh, Catalog::builtin())
    }

    pub fn with_catalog(refresh: Duration, catalog: Catalog) -> Self {
        Self {
            catalog,
            current: RwLock::new(Arc::new(Snapshot::empty())),
            checked_ms: AtomicU64::new(u64::MAX),
            epoch: Instant::now(),
            refresh,
            reloading: tokio::sync::Mutex::new(()),
        }
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn stale(&self) -> bool {
        let checked = self.checked_ms.load(Ordering::Relaxed);
        let now = self.epoch.elapsed().as_millis() as u64;
        checked == u64::MAX || now.saturating_sub(checked) >= self.refresh.as_millis() as u64
    }

    /// The current snapshot, reloaded first when the marker check is due and the playbooks
    /// changed. While another request reloads, the previous snapshot is used.
    pub async fn current(&self, store: &Store) -> StoreResult<Arc<Snapshot>> {
        if !self.stale() {
            return Ok(self.snapshot());
        }
        let first = self.checked_ms.load(Ordering::Relaxed) == u64::MAX;
        let _guard = if first {
            // Nothing loaded yet: wait for whoever loads it.
            self.reloading.lock().await
        } else {
            match self.reloading.try_lock() {
                Ok(g) => g,
                Err(_) => return Ok(self.snapshot()),
            }
        };
        if self.stale() {
            self.reload_if_changed(store).await?;
        }
        Ok(self.snapshot())
    }

    /// Checks the marker now and reloads when it changed (after this node changed a playbook).
    pub async fn reload(&self, store: &Store) -> StoreResult<()> {
        let _guard = self.reloading.lock().await;
        self.reload_if_changed(store).await
    }

    async fn reload_if_changed(&self, store: &Store) -> StoreResult<()> {
        let marker = store.playbooks_marker().await?;
        if marker != self.snapshot().marker {
            let records = store.enabled_playbooks().await?;
            let (snapshot, skipped) = Snapshot::build_with(marker, &records, &self.catalog);
            for s in skipped {
                tracing::error!(playbook = %s.name, error = %s.error, "stored playbook does not compile; its triggers are ignored");
            }
            *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(snapshot);
        }
        self.checked_ms
            .store(self.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
        Ok(())
    }
}

/// The subject of a change made through the API, for [`on_change`].
pub enum Changed<'a> {
    Alert(&'a bulwark_store::alerts::AlertDetail),
    Incident(&'a bulwark_store::incidents::IncidentDetail),
}

/// Starts the runs a change made through the API triggers, once the change has committed.
/// Unlike ingestion, the runs are written in their own transaction: a node that dies between
/// the two loses them (documented in docs/automation.md). A failure here is logged, not
/// returned, because the change itself succeeded.
pub async fn on_change(
    state: &crate::state::AppState,
    event: TriggerEvent,
    changed: Changed<'_>,
    requested_by: Option<String>,
) -> usize {
    let (tenant, alert_id, incident_id, kind) = match (&changed, event) {
        (Changed::Alert(a), _) => (
            a.summary.tenant_id,
            Some(a.summary.id),
            None,
            TriggerKind::AlertUpdated,
        ),
        (Changed::Incident(i), TriggerEvent::IncidentCreated) => (
            i.incident.tenant_id,
            None,
            Some(i.incident.id),
            TriggerKind::IncidentCreated,
        ),
        (Changed::Incident(i), _) => (
            i.incident.tenant_id,
            None,
            Some(i.incident.id),
            TriggerKind::IncidentUpdated,
        ),
    };
    let snapshot = match state.triggers.current(&state.store).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot load playbook triggers; change-triggered runs not started");
            return 0;
        }
    };
    if !snapshot.listens(tenant, kind) {
        return 0;
    }
    let subject = match &changed {
        Changed::Alert(a) => serde_json::to_value(a),
        Changed::Incident(i) => serde_json::to_value(i),
    };
    let Ok(subject) = subject else {
        return 0;
    };
    let planned = snapshot.for_change(tenant, event, &subject);
    if planned.is_empty() {
        return 0;
    }
    let runs = change_runs(tenant, event, planned, alert_id, incident_id, requested_by);
    match state.store.create_runs(&runs).await {
        Ok(ids) => ids.len(),
        Err(e) => {
            tracing::error!(error = %e, ?event, "could not start the runs a change triggered");
            0
        }
    }
}

/// Runs to create for a change of an alert or incident made through the API.
pub fn change_runs(
    tenant: TenantId,
    event: TriggerEvent,
    planned: Vec<PlannedRun>,
    alert_id: Option<Uuid>,
    incident_id: Option<Uuid>,
    requested_by: Option<String>,
) -> Vec<NewRun> {
    let trigger = match event {
        TriggerEvent::AlertCreated { .. } => "alert.created",
        TriggerEvent::AlertUpdated => "alert.updated",
        TriggerEvent::IncidentCreated => "incident.created",
        TriggerEvent::IncidentUpdated => "incident.updated",
    };
    planned
        .into_iter()
        .map(|p| NewRun {
            tenant_id: tenant,
            playbook_id: p.playbook_id,
            playbook_name: p.playbook_name,
            playbook_version: p.playbook_version,
            trigger: trigger.into(),
            alert_id,
            incident_id,
            input: json!({}),
            requested_by: requested_by.clone(),
            priority: p.priority,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(tenant: Option<TenantId>, name: &str, spec: Value) -> PlaybookRecord {
        PlaybookRecord {
            id: Uuid::now_v7(),
            tenant_id: tenant,
            name: name.into(),
            description: None,
            version: 1,
            enabled: true,
            priority: 100,
            spec,
            origin: "api".into(),
            file_path: None,
            created_by: None,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    fn on_created(name: &str, cond: &str) -> Value {
        json!({
            "name": name,
            "triggers": [{"on": "alert.created", "if": cond}],
            "actions": [{"ref": "a", "action": "set", "args": {"values": {"x": 1}}}]
        })
    }

    fn alert(title: &str) -> NormalizedAlert {
        bulwark_normalize::normalize(
            bulwark_normalize::Source::Generic,
            &json!({"title": title, "severity": "high"}),
        )
        .expect("normalize")
    }

    #[test]
    fn a_stored_playbook_that_does_not_compile_is_skipped_and_named() {
        let good = record(None, "good", on_created("good", "true"));
        let bad = record(None, "bad", json!({"name": "bad", "actions": "nope"}));
        let (snap, skipped) = Snapshot::build("m".into(), &[good, bad]);
        assert_eq!(skipped.len(), 1);
        assert_eq!(skipped[0].name, "bad");
        let t = TenantId(Uuid::now_v7());
        assert_eq!(
            snap.for_new_alert(t, &alert("x"), Utc::now()).created.len(),
            1
        );
    }

    #[test]
    fn a_condition_that_errors_does_not_match_and_is_reported() {
        let set = TenantTriggers::new(vec![(
            PlaybookKey {
                id: Uuid::now_v7(),
                version: 1,
            },
            Arc::new(
                bulwark_playbook::parse_json(
                    &on_created("p", "alert.title | int > 3"),
                    &Catalog::builtin(),
                )
                .expect("valid"),
            ),
        )]);
        let t = TenantId(Uuid::now_v7());
        let ctx = json!({ "alert": trigger_view(t, &alert("ssh"), Utc::now()) });
        let m = set
            .set
            .matching(TriggerEvent::AlertCreated { duplicate: false }, &ctx);
        assert!(m.matches.is_empty());
        assert_eq!(m.errors.len(), 1, "the evaluation error is reported");
    }

    #[test]
    fn the_record_decides_enabled_and_other_tenants_see_only_globals() {
        let acme = TenantId(Uuid::now_v7());
        let mut spec = on_created("own", "true");
        spec["enabled"] = json!(false);
        let own = record(Some(acme), "own", spec);
        let mut off = record(None, "off", on_created("off", "true"));
        off.enabled = false;
        let (snap, _) = Snapshot::build("m".into(), &[own, off]);
        let names = |t| {
            snap.for_new_alert(t, &alert("x"), Utc::now())
                .created
                .into_iter()
                .map(|p| p.playbook_name)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(acme),
            vec!["own".to_string()],
            "enabled record wins over the spec"
        );
        assert!(names(TenantId(Uuid::now_v7())).is_empty());
        assert!(!snap.listens(acme, TriggerKind::AlertUpdated));
    }

    #[test]
    fn the_trigger_view_has_the_fields_of_the_stored_alert() {
        let t = TenantId(Uuid::now_v7());
        let v = trigger_view(t, &alert("SSH brute force"), Utc::now());
        assert_eq!(v["title"], "SSH brute force");
        assert_eq!(v["severity"], "high");
        assert_eq!(v["status"], "new");
        assert_eq!(v["source"], "generic");
        assert!(v["normalized"]["indicators"].is_array());
    }
}
