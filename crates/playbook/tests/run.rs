use std::collections::BTreeMap;

use bulwark_playbook::{
    ActionStatus, Advance, Catalog, Playbook, RunState, RunStatus, Sandbox, Step, StepOutcome,
    UnitStatus, parse_yaml,
};
use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;
use serde_json::{Value, json};

fn pb(yaml: &str) -> Playbook {
    parse_yaml(yaml, &Catalog::builtin()).unwrap_or_else(|e| panic!("{e}"))
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0)
        .single()
        .expect("valid time")
}

fn steps(a: Advance) -> Vec<Step> {
    match a {
        Advance::Steps(s) => s,
        other => panic!("expected steps, got {other:?}"),
    }
}

fn refs(s: &[Step]) -> Vec<String> {
    s.iter()
        .map(|s| match s.item_index {
            Some(i) => format!("{}[{i}]", s.ref_),
            None => s.ref_.clone(),
        })
        .collect()
}

fn ok(st: &mut RunState, s: &Step, out: Value) {
    st.record(
        &s.ref_,
        s.item_index,
        StepOutcome::Succeeded { output: out },
    )
    .expect("record");
}

const LINEAR: &str = r#"
name: linear
triggers: [{on: manual}]
actions:
  - {ref: a, action: alert.comment, args: {text: "first {{ alert.title }}"}}
  - {ref: b, action: alert.comment, depends_on: [a], args: {text: "after {{ actions.a.result.id }}"}}
  - {ref: c, action: alert.update, depends_on: [b], args: {tags: ["{{ actions.b.result.id }}"]}}
outputs:
  last: "{{ actions.c.result }}"
  ids: "{{ [actions.a.result.id, actions.b.result.id] }}"
"#;

#[test]
fn linear_runs_in_order() {
    let p = pb(LINEAR);
    let sb = Sandbox::new();
    let mut st = RunState::new(&p, "run-1", json!({"alert": {"title": "T"}}));
    let s = steps(st.advance(&p, &sb, t0()));
    assert_eq!(refs(&s), ["a"]);
    assert_eq!(s[0].input, json!({"text": "first T"}));
    assert_eq!(s[0].idempotency_key, "run-1:a");
    assert_eq!(s[0].attempt, 1);
    assert_eq!(s[0].timeout, std::time::Duration::from_secs(30));
    assert_eq!(st.advance(&p, &sb, t0()), Advance::Busy);
    ok(&mut st, &s[0], json!({"id": 1}));
    let s = steps(st.advance(&p, &sb, t0()));
    assert_eq!(refs(&s), ["b"]);
    assert_eq!(s[0].input, json!({"text": "after 1"}));
    ok(&mut st, &s[0], json!({"id": 2}));
    let s = steps(st.advance(&p, &sb, t0()));
    assert_eq!(s[0].input, json!({"tags": ["2"]}));
    ok(&mut st, &s[0], json!("done"));
    match st.advance(&p, &sb, t0()) {
        Advance::Finished { status, outputs } => {
            assert_eq!(status, RunStatus::Succeeded);
            assert_eq!(outputs, json!({"last": "done", "ids": [1, 2]}));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(st.status, RunStatus::Succeeded);
    // Finished is sticky; late records are refused.
    assert!(matches!(
        st.advance(&p, &sb, t0()),
        Advance::Finished { .. }
    ));
    assert!(
        st.record("a", None, StepOutcome::Succeeded { output: json!(1) })
            .is_err()
    );
}

#[test]
fn diamond_runs_branches_together() {
    let p = pb(r#"
name: diamond
triggers: [{on: manual}]
actions:
  - {ref: a, action: alert.comment, args: {text: a}}
  - {ref: b, action: alert.comment, depends_on: [a], args: {text: b}}
  - {ref: c, action: alert.comment, depends_on: [a], args: {text: c}}
  - {ref: d, action: alert.comment, depends_on: [b, c], args: {text: "{{ actions.b.result }}{{ actions.c.result }}"}}
"#);
    let sb = Sandbox::new();
    let mut st = RunState::new(&p, "r", json!({}));
    let s = steps(st.advance(&p, &sb, t0()));
    ok(&mut st, &s[0], json!("A"));
    let s = steps(st.advance(&p, &sb, t0()));
    assert_eq!(refs(&s), ["b", "c"]);
    ok(&mut st, &s[1], json!("C"));
    assert_eq!(st.advance(&p, &sb, t0()), Advance::Busy);
    ok(&mut st, &s[0], json!("B"));
    let s = steps(st.advance(&p, &sb, t0()));
    assert_eq!(refs(&s), ["d"]);
    assert_eq!(s[0].input, json!({"text": "BC"}));
}

#[test]
fn run_if_false_skips_and_skips_propagate() {
    let p = pb(r#"
name: skips
triggers: [{on: manual}]
actions:
  - {ref: a, action: alert.comment, run_if: "alert.severity == 'critical'", args: {text: a}}
  - {ref: b, action: alert.comment, depends_on: [a], args: {text: b}}
  - {ref: c, action: alert.comment, args: {text: "{{ alert.severity }}"}}
"#);
    let sb = Sandbox::new();
    let mut st = RunState::new(&p, "r", json!({"alert": {"severity": "low"}}));
    let s = steps(st.advance(&p, &sb, t0()));
    assert_eq!(refs(&s), ["c"]);
    assert_eq!(st.actions["a"].status, ActionStatus::Skipped);
    assert_eq!(
        st.actions["a"].skip_reason.as_deref(),
        Some("run_if was false")
    );
    assert_eq!(st.actions["b"].status, ActionStatus::Skipped);
    assert_eq!(
        st.actions["b"].skip_reason.as_deref(),
        Some("dependency `a` was skipped")
    );
    ok(&mut st, &s[0], json!(null));
    assert!(matches!(
        st.advance(&p, &sb, t0()),
        Advance::Finished {
            status: RunStatus::Succeeded,
            ..
        }
    ));
}

const RETRY: &str = r#"
name: retry
triggers: [{on: manual}]
actions:
  - ref: a
    action: http.request
    args: {url: "https://x"}
    retry: {max_attempts: 5, delay: 10s, max_delay: 30s}
"#;

#[test]
fn retry_backoff_respects_max_delay_and_attempts() {
    let p = pb(RETRY);
    let sb = Sandbox::new();
    let mut st = RunState::new(&p, "r", json!({}));
    let mut now = t0();
    let mut waits = Vec::new();
    for attempt in 1..=5 {
        let s = steps(st.advance(&p, &sb, now));
        assert_eq!(s[0].attempt, attempt);
        assert_eq!(s[0].idempotency_key, "r:a");
        st.record(
            "a",
            None,
            StepOutcome::Failed {
                error: format!("boom {attempt}"),
                retryable: true,
            },
        )
        .expect("record");
        match st.advance(&p, &sb, now) {
            Advance::Waiting { until } => {
                waits.push((until - now).num_seconds());
                assert_eq!(st.status, RunStatus::Waiting);
                // Not ready before its time.
                assert_eq!(
                    st.advance(&p, &sb, until - Duration::seconds(1)),
                    Advance::Waiting { until }
                );
                now = until;
            }
            Advance::Finished { status, .. } => {
                assert_eq!(attempt, 5);
                assert_eq!(status, RunStatus::Failed);
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(waits, [10, 20, 30, 30]);
    assert_eq!(st.error.as_deref(), Some("action `a` failed: boom 5"));
    assert_eq!(st.actions["a"].units[0].attempt, 5);
}

#[test]
fn non_retryable_failure_fails_at_once() {
    let p = pb(RETRY);
    let sb = Sandbox::new();
    let mut st = RunState::new(&p, "r", json!({}));
    steps(st.advance(&p, &sb, t0()));
    st.record(
        "a",
        None,
        StepOutcome::Failed {
            error: "400".into(),
            retryable: false,
        },
    )
    .expect("record");
    assert!(matches!(
        st.advance(&p, &sb, t0()),
        Advance::Finished {
            status: RunStatus::Failed,
            ..
        }
    ));
}

const ON_ERROR: &str = r#"
name: errors
triggers: [{on: manual}]
actions:
  - {ref: a, action: alert.comment, args: {text: a}, on_error: continue}
  - {ref: b, action: alert.comment, depends_on: [a], args: {text: "a was {{ actions.a.status }}: {{ actions.a.error }}"}}
  - {ref: c, action: alert.comment, depends_on: [b], args: {text: c}, on_error: {run: h}}
  - {ref: d, action: alert.comment, depends_on: [c], args: {text: d}}
  - {ref: h, action: alert.comment, args: {text: "handling {{ error.action }}: {{ error.message }}"}}
  - {ref: x, action: alert.comment, args: {text: x}}
"#;

#[test]
fn on_error_continue_and_run_handler() {
    let p = pb(ON_ERROR);
    let sb = Sandbox::new();
    let mut st = RunState::new(&p, "r", json!({}));
    let s = steps(st.advance(&p, &sb, t0()));
    assert_eq!(refs(&s), ["a", "x"]);
    st.record(
        "a",
        None,
        StepOutcome::Failed {
            error: "nope".into(),
            retryable: false,
        },
    )
    .expect("record");
    ok(&mut st, &s[1], json!(null));
    let s = steps(st.advance(&p, &sb, t0()));
    assert_eq!(refs(&s), ["b"]);
    assert_eq!(s[0].input, json!({"text": "a was failed: nope"}));
    ok(&mut st, &s[0], json!(null));
    let s = steps(st.advance(&p, &sb, t0()));
    assert_eq!(refs(&s), ["c"]);
    st.record(
        "c",
        None,
        StepOutcome::Failed {
            error: "edr down".into(),
            retryable: false,
        },
    )
    .expect("record");
    let s = steps(st.advance(&p, &sb, t0()));
    assert_eq!(refs(&s), ["h"]);
    assert_eq!(s[0].input, json!({"text": "handling c: edr down"}));
    assert_eq!(st.actions["d"].status, ActionStatus::Skipped);
    ok(&mut st, &s[0], json!(null));
    assert!(matches!(
        st.advance(&p, &sb, t0()),
        Advance::Finished {
            status: RunStatus::Succeeded,
            ..
        }
    ));
}

#[test]
fn on_error_fail_lets_in_flight_finish_then_fails() {
    let p = pb(ON_ERROR);
    let sb = Sandbox::new();
    let mut st = RunState::new(&p, "r", json!({}));
    let s = steps(st.advance(&p, &sb, t0()));
    ok(&mut st, &s[0], json!(null));
    let s2 = steps(st.advance(&p, &sb, t0()));
    ok(&mut st, &s2[0], json!(null));
    let s3 = steps(st.advance(&p, &sb, t0()));
    assert_eq!(refs(&s3), ["c"]);
    // x is still in flight; the handler of c succeeds but x then fails with on_error: fail.
    st.record(
        "x",
        None,
        StepOutcome::Failed {
            error: "x broke".into(),
            retryable: true,
        },
    )
    .expect("record");
    assert_eq!(
        st.advance(&p, &sb, t0()),
        Advance::Busy,
        "c is still in flight; nothing new starts"
    );
    assert!(st.failing);
    ok(&mut st, &s3[0], json!(null));
    match st.advance(&p, &sb, t0()) {
        Advance::Finished { status, .. } => assert_eq!(status, RunStatus::Failed),
        other => panic!("{other:?}"),
    }
    assert_eq!(st.actions["d"].status, ActionStatus::Skipped);
    assert_eq!(st.actions["h"].status, ActionStatus::Skipped);
    assert_eq!(st.error.as_deref(), Some("action `x` failed: x broke"));
}

#[test]
fn for_each_with_concurrency() {
    let p = pb(r#"
name: fan-out
triggers: [{on: manual}]
actions:
  - ref: tag
    action: observable.tag
    for_each: alert.ips
    concurrency: 2
    args: {value: "{{ item }}", tags: ["seen-{{ item_index }}"]}
  - {ref: sum, action: alert.comment, depends_on: [tag], args: {text: "{{ actions.tag.result | join(',') }}"}}
"#);
    let sb = Sandbox::new();
    let ips = ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"];
    let mut st = RunState::new(&p, "r", json!({"alert": {"ips": ips}}));
    let s = steps(st.advance(&p, &sb, t0()));
    assert_eq!(refs(&s), ["tag[0]", "tag[1]"]);
    assert_eq!(s[1].input, json!({"value": "10.0.0.2", "tags": ["seen-1"]}));
    assert_eq!(s[1].idempotency_key, "r:tag:1");
    assert_eq!(st.advance(&p, &sb, t0()), Advance::Busy);
    ok(&mut st, &s[1], json!("r1"));
    let s2 = steps(st.advance(&p, &sb, t0()));
    assert_eq!(refs(&s2), ["tag[2]"]);
    ok(&mut st, &s[0], json!("r0"));
    ok(&mut st, &s2[0], json!("r2"));
    let s3 = steps(st.advance(&p, &sb, t0()));
    assert_eq!(refs(&s3), ["tag[3]", "tag[4]"]);
    ok(&mut st, &s3[1], json!("r4"));
    ok(&mut st, &s3[0], json!("r3"));
    let s4 = steps(st.advance(&p, &sb, t0()));
    assert_eq!(s4[0].input, json!({"text": "r0,r1,r2,r3,r4"}));
    assert_eq!(
        st.result("tag"),
        Some(&json!(["r0", "r1", "r2", "r3", "r4"]))
    );
}

#[test]
fn for_each_not_a_list_fails_the_action() {
    let p = pb(r#"
name: bad-list
triggers: [{on: manual}]
actions:
  - {ref: a, action: alert.comment, for_each: alert.title, args: {text: "{{ item }}"}, on_error: continue}
  - {ref: b, action: alert.comment, for_each: "alert.none", args: {text: "{{ item }}"}}
"#);
    let sb = Sandbox::new();
    let mut st = RunState::new(&p, "r", json!({"alert": {"title": "x", "none": []}}));
    match st.advance(&p, &sb, t0()) {
        Advance::Finished { status, .. } => assert_eq!(status, RunStatus::Succeeded),
        other => panic!("{other:?}"),
    }
    assert_eq!(st.actions["a"].status, ActionStatus::Failed);
    assert_eq!(
        st.actions["a"].error.as_deref(),
        Some("for_each must evaluate to a list, got a string")
    );
    assert_eq!(st.actions["b"].status, ActionStatus::Succeeded);
    assert_eq!(st.result("b"), Some(&json!([])));
}

#[test]
fn set_and_wait_run_inside_the_state_machine() {
    let p = pb(r#"
name: internal
triggers: [{on: manual}]
actions:
  - {ref: compute, action: set, args: {values: {score: "{{ alert.score * 10 }}", label: "s-{{ alert.score }}"}}}
  - {ref: pause, action: wait, depends_on: [compute], args: {duration: 5m}}
  - {ref: use, action: alert.comment, depends_on: [pause], args: {text: "{{ vars.label }}={{ vars.score }}"}}
"#);
    let sb = Sandbox::new();
    let mut st = RunState::new(&p, "r", json!({"alert": {"score": 7}}));
    let until = t0() + Duration::minutes(5);
    assert_eq!(st.advance(&p, &sb, t0()), Advance::Waiting { until });
    assert_eq!(st.vars.get("score"), Some(&json!(70)));
    assert_eq!(
        st.advance(&p, &sb, t0() + Duration::minutes(1)),
        Advance::Waiting { until }
    );
    let s = steps(st.advance(&p, &sb, until));
    assert_eq!(s[0].input, json!({"text": "s-7=70"}));
}

#[test]
fn paused_approval_resumes_by_record() {
    let p = pb(include_str!(
        "../../../playbooks/examples/critical-approval-containment.yaml"
    ));
    let sb = Sandbox::new();
    let alert =
        json!({"alert": {"severity": "critical", "hostname": "ws-01", "title": "Malware found"}});
    let mut st = RunState::new(&p, "r", alert);
    let s = steps(st.advance(&p, &sb, t0()));
    assert_eq!(s[0].action, "approval");
    assert_eq!(s[0].input["approvers"], json!(2));
    assert_eq!(
        s[0].input["message"],
        json!("Isolate ws-01 (Malware found)?")
    );
    st.record(
        "approve",
        None,
        StepOutcome::Paused {
            reason: "waiting for 2 approvals".into(),
        },
    )
    .expect("record");
    assert_eq!(st.advance(&p, &sb, t0()), Advance::Paused);
    assert_eq!(st.status, RunStatus::Paused);
    // Persisted and reloaded by another worker, then the decision arrives.
    let mut st: RunState =
        serde_json::from_str(&serde_json::to_string(&st).expect("ser")).expect("de");
    ok(
        &mut st,
        &s[0],
        json!({"approved": true, "approvers": ["ann", "bob"]}),
    );
    let s = steps(st.advance(&p, &sb, t0()));
    assert_eq!(s[0].ref_, "isolate");
    assert_eq!(
        s[0].input["url"],
        json!("https://edr.example.com/api/hosts/ws-01/isolate")
    );
    assert_eq!(s[0].input["body"]["approved_by"], json!(["ann", "bob"]));
}

#[test]
fn cancel_stops_everything() {
    let p = pb(LINEAR);
    let sb = Sandbox::new();
    let mut st = RunState::new(&p, "r", json!({}));
    let s = steps(st.advance(&p, &sb, t0()));
    st.cancel();
    assert_eq!(st.status, RunStatus::Cancelled);
    assert!(matches!(
        st.advance(&p, &sb, t0()),
        Advance::Finished {
            status: RunStatus::Cancelled,
            ..
        }
    ));
    assert!(
        st.record(
            &s[0].ref_,
            None,
            StepOutcome::Succeeded { output: json!(1) }
        )
        .is_err()
    );
    assert!(
        st.actions
            .values()
            .all(|a| a.status == ActionStatus::Skipped)
    );
}

#[test]
fn recover_reissues_in_flight_steps_with_the_same_key() {
    let p = pb(LINEAR);
    let sb = Sandbox::new();
    let mut st = RunState::new(&p, "r", json!({}));
    let s = steps(st.advance(&p, &sb, t0()));
    let saved = serde_json::to_value(&st).expect("ser");
    // The worker died; another one loads the state.
    let mut st: RunState = serde_json::from_value(saved).expect("de");
    st.recover();
    let again = steps(st.advance(&p, &sb, t0()));
    assert_eq!(again, s);
    assert_eq!(st.actions["a"].units[0].status, UnitStatus::Running);
}

#[test]
fn record_rejects_unknown_and_stale() {
    let p = pb(LINEAR);
    let sb = Sandbox::new();
    let mut st = RunState::new(&p, "r", json!({}));
    steps(st.advance(&p, &sb, t0()));
    let out = || StepOutcome::Succeeded { output: json!(1) };
    assert!(st.record("zz", None, out()).is_err());
    assert!(st.record("a", Some(3), out()).is_err());
    assert!(st.record("b", None, out()).is_err());
    assert!(st.record("a", None, out()).is_ok());
    assert!(st.record("a", None, out()).is_err(), "twice");
}

#[test]
fn render_error_fails_the_action_without_retry() {
    let p = pb(r#"
name: render
triggers: [{on: manual}]
actions:
  - {ref: a, action: alert.comment, args: {text: "{{ alert.x | int(strict=true) }}{{ nope(1) }}"}, retry: {max_attempts: 3}}
"#);
    let sb = Sandbox::new();
    let mut st = RunState::new(&p, "r", json!({}));
    assert!(matches!(
        st.advance(&p, &sb, t0()),
        Advance::Finished {
            status: RunStatus::Failed,
            ..
        }
    ));
    let err = st.actions["a"].error.clone().unwrap_or_default();
    assert!(err.contains("args.text"), "{err}");
}

// ---- Resume equivalence -------------------------------------------------------------

const MIXED: &str = r#"
name: mixed
triggers: [{on: manual}]
actions:
  - {ref: a, action: http.request, args: {url: "https://a/{{ alert.id }}"}, retry: {max_attempts: 3, delay: 1s}, on_error: continue}
  - {ref: b, action: alert.comment, depends_on: [a], run_if: "actions.a.status == 'succeeded'", args: {text: "{{ actions.a.result }}"}}
  - {ref: c, action: observable.tag, depends_on: [a], for_each: alert.ips, concurrency: 2, args: {value: "{{ item }}", tags: [x]}, retry: {max_attempts: 2, delay: 2s}, on_error: {run: h}}
  - {ref: v, action: set, depends_on: [c], args: {values: {n: "{{ actions.c.result | length }}"}}}
  - {ref: d, action: alert.update, depends_on: [b, v], args: {tags: ["{{ vars.n }}"]}}
  - {ref: h, action: alert.comment, args: {text: "{{ error.message }}"}}
  - {ref: w, action: wait, args: {duration: 3s}}
outputs:
  n: "{{ vars.n }}"
"#;

/// Drives a run to the end. `fail[k]`: whether the k-th executed step fails (and retryably if odd).
/// With `roundtrip`, the state is serialized and reloaded before and after every step.
fn drive(p: &Playbook, fail: &[u8], roundtrip: bool) -> (RunState, Vec<String>) {
    let sb = Sandbox::new();
    let mut st = RunState::new(
        p,
        "run",
        json!({"alert": {"id": 9, "ips": ["1.1.1.1", "2.2.2.2", "3.3.3.3"]}}),
    );
    let mut now = t0();
    let mut log = Vec::new();
    let mut k = 0usize;
    let reload = |st: &RunState| -> RunState {
        serde_json::from_str(&serde_json::to_string(st).expect("ser")).expect("de")
    };
    for _ in 0..200 {
        if roundtrip {
            st = reload(&st);
        }
        match st.advance(p, &sb, now) {
            Advance::Steps(steps) => {
                for s in steps {
                    if roundtrip {
                        st = reload(&st);
                    }
                    let f = fail.get(k).copied().unwrap_or(0);
                    k += 1;
                    log.push(format!("{}:{:?}:{}", s.ref_, s.item_index, s.attempt));
                    let outcome = if f % 3 == 1 {
                        StepOutcome::Failed {
                            error: format!("e{k}"),
                            retryable: f % 2 == 1,
                        }
                    } else {
                        StepOutcome::Succeeded {
                            output: json!({"k": s.idempotency_key}),
                        }
                    };
                    st.record(&s.ref_, s.item_index, outcome).expect("record");
                }
            }
            Advance::Busy => panic!("a sequential driver never leaves steps in flight"),
            Advance::Waiting { until } => {
                assert!(until > now);
                now = until;
            }
            Advance::Paused => panic!("nothing pauses here"),
            Advance::Finished { .. } => return (st, log),
        }
    }
    panic!("run did not finish");
}

#[test]
fn resume_equivalence_all_success() {
    let p = pb(MIXED);
    let (a, la) = drive(&p, &[], false);
    let (b, lb) = drive(&p, &[], true);
    assert_eq!(a, b);
    assert_eq!(la, lb);
    assert_eq!(
        a.status,
        RunStatus::Succeeded,
        "{:?} {:?}",
        a.error,
        a.actions
    );
    assert_eq!(a.outputs, Some(json!({"n": 3})));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn resume_equivalence(fail in proptest::collection::vec(0u8..6, 0..24)) {
        let p = pb(MIXED);
        let (a, la) = drive(&p, &fail, false);
        let (b, lb) = drive(&p, &fail, true);
        prop_assert_eq!(&la, &lb);
        prop_assert_eq!(&a, &b);
        prop_assert!(a.status.is_terminal());
        // Invariants: every action ends terminal; attempts never exceed the policy.
        let max: BTreeMap<&str, u32> = [("a", 3), ("b", 1), ("c", 2), ("d", 1), ("h", 1)].into_iter().collect();
        for (r, s) in &a.actions {
            prop_assert!(s.status != ActionStatus::Pending && s.status != ActionStatus::Running, "{} {:?}", r, s.status);
            if let Some(m) = max.get(r.as_str()) {
                for u in &s.units {
                    prop_assert!(u.attempt <= *m);
                }
            }
        }
    }
}

#[test]
fn rendered_arguments_are_type_checked() {
    let p = pb(r#"
name: types
triggers: [{on: manual}]
actions:
  - {ref: a, action: alert.update, args: {tags: "{{ alert.title }}"}, on_error: continue}
  - {ref: b, action: alert.update, args: {severity: "{{ alert.sev }}", tags: ["{{ alert.id }}", "{{ true }}"]}}
"#);
    let sb = Sandbox::new();
    let mut st = RunState::new(
        &p,
        "r",
        json!({"alert": {"title": "x", "sev": "high", "id": 7}}),
    );
    let s = steps(st.advance(&p, &sb, t0()));
    assert_eq!(refs(&s), ["b"]);
    assert_eq!(
        s[0].input,
        json!({"severity": "high", "tags": ["7", "true"]})
    );
    assert_eq!(
        st.actions["a"].error.as_deref(),
        Some("args.tags: expected a list of strings, got a string")
    );
    let mut st = RunState::new(&p, "r", json!({"alert": {"title": "x", "sev": "urgent"}}));
    st.advance(&p, &sb, t0());
    assert!(
        st.actions["b"]
            .error
            .as_deref()
            .unwrap_or_default()
            .contains("`urgent` is not allowed")
    );
}
