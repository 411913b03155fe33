use std::sync::Arc;

use bulwark_playbook::{Catalog, Playbook, TriggerEvent, TriggerSet, next_fire, parse_yaml};
use chrono::{TimeZone, Utc};
use serde_json::json;

fn pb(name: &str, priority: i32, trigger: &str) -> Arc<Playbook> {
    let yaml = format!(
        "name: {name}\npriority: {priority}\ntriggers:\n{trigger}\nactions:\n  - {{ref: a, action: alert.comment, args: {{text: x}}}}\n"
    );
    Arc::new(parse_yaml(&yaml, &Catalog::builtin()).unwrap_or_else(|e| panic!("{e}\n{yaml}")))
}

#[test]
fn matching_orders_filters_and_reports_errors() {
    let disabled = {
        let mut spec = pb("disabled", 1, "  - on: alert.created").spec().clone();
        spec.enabled = false;
        Arc::new(Playbook::from_spec(spec, &Catalog::builtin()).expect("valid"))
    };
    let set = TriggerSet::new(vec![
        (1u32, pb("zeta", 10, "  - on: alert.created")),
        (
            2,
            pb(
                "alpha",
                10,
                "  - on: alert.created\n    if: alert.severity == 'high'",
            ),
        ),
        (
            3,
            pb("first", 5, "  - on: alert.created\n    on_duplicate: true"),
        ),
        (
            4,
            pb(
                "broken",
                1,
                "  - on: alert.created\n    if: alert.n + 1 > 2",
            ),
        ),
        (
            5,
            pb(
                "updates",
                1,
                "  - on: alert.updated\n  - on: incident.created",
            ),
        ),
        (6, disabled),
        (
            7,
            pb("cron", 1, "  - on: schedule\n    cron: '*/15 * * * *'"),
        ),
        (
            8,
            pb("twice", 50, "  - on: alert.created\n  - on: alert.created"),
        ),
    ]);
    assert_eq!(set.len(), 7);
    let ctx = json!({"alert": {"severity": "high", "n": "text"}});
    let m = set.matching(TriggerEvent::AlertCreated { duplicate: false }, &ctx);
    let got: Vec<(u32, &str, i32)> = m
        .matches
        .iter()
        .map(|m| (m.playbook_id, m.playbook_name.as_str(), m.priority))
        .collect();
    assert_eq!(
        got,
        [
            (3, "first", 5),
            (2, "alpha", 10),
            (1, "zeta", 10),
            (8, "twice", 50)
        ]
    );
    assert_eq!(m.errors.len(), 1);
    assert_eq!(m.errors[0].playbook_id, 4);
    assert_eq!(m.errors[0].trigger_index, 0);

    let dup = set.matching(TriggerEvent::AlertCreated { duplicate: true }, &ctx);
    assert_eq!(
        dup.matches
            .iter()
            .map(|m| m.playbook_id)
            .collect::<Vec<_>>(),
        [3]
    );
    let upd = set.matching(TriggerEvent::IncidentCreated, &json!({}));
    assert_eq!(
        upd.matches
            .iter()
            .map(|m| m.playbook_id)
            .collect::<Vec<_>>(),
        [5]
    );
    assert!(
        set.matching(TriggerEvent::IncidentUpdated, &json!({}))
            .matches
            .is_empty()
    );
    assert_eq!(set.schedule_triggers(), [(7, "*/15 * * * *".to_string())]);
}

#[test]
fn next_fire_times() {
    let t = Utc
        .with_ymd_and_hms(2025, 3, 1, 10, 7, 30)
        .single()
        .expect("time");
    assert_eq!(
        next_fire("*/15 * * * *", t),
        Utc.with_ymd_and_hms(2025, 3, 1, 10, 15, 0).single()
    );
    assert_eq!(
        next_fire("0 3 * * *", t),
        Utc.with_ymd_and_hms(2025, 3, 2, 3, 0, 0).single()
    );
    // Strictly after.
    let on = Utc
        .with_ymd_and_hms(2025, 3, 1, 10, 15, 0)
        .single()
        .expect("time");
    assert_eq!(
        next_fire("*/15 * * * *", on),
        Utc.with_ymd_and_hms(2025, 3, 1, 10, 30, 0).single()
    );
    assert_eq!(next_fire("not a cron", t), None);
    assert_eq!(next_fire("0 0 30 2 *", t), None);
}
