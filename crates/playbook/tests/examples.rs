//! Every playbook in `playbooks/examples/` must load, and a few facts about them hold.

use std::path::PathBuf;
use std::sync::Arc;

use bulwark_playbook::{Advance, Catalog, RunState, Sandbox, TriggerEvent, TriggerSet, parse_yaml};
use chrono::{TimeZone, Utc};
use serde_json::json;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../playbooks/examples")
}

fn load_all() -> Vec<(String, bulwark_playbook::Playbook)> {
    let mut out = Vec::new();
    let entries = std::fs::read_dir(dir()).expect("playbooks/examples exists");
    for entry in entries {
        let path = entry.expect("dir entry").path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("readable");
        let file = path
            .file_name()
            .and_then(|f| f.to_str())
            .unwrap_or_default()
            .to_owned();
        match parse_yaml(&text, &Catalog::builtin()) {
            Ok(pb) => {
                assert_eq!(
                    format!("{}.yaml", pb.name()),
                    file,
                    "file name matches the playbook name"
                );
                out.push((file, pb));
            }
            Err(e) => panic!("{}", e.render_for_file(&file)),
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn every_example_validates() {
    let all = load_all();
    let names: Vec<&str> = all.iter().map(|(_, p)| p.name()).collect();
    for expected in [
        "ssh-bruteforce-triage",
        "phishing-triage",
        "enrich-and-escalate",
        "critical-approval-containment",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
}

#[test]
fn examples_match_the_alerts_they_are_for() {
    let set: TriggerSet<String> = TriggerSet::new(
        load_all()
            .into_iter()
            .map(|(_, p)| (p.name().to_owned(), Arc::new(p)))
            .collect(),
    );
    let names = |ctx: serde_json::Value| -> Vec<String> {
        let m = set.matching(TriggerEvent::AlertCreated { duplicate: false }, &ctx);
        assert!(m.errors.is_empty(), "{:?}", m.errors);
        m.matches.into_iter().map(|m| m.playbook_name).collect()
    };
    assert_eq!(
        names(
            json!({"alert": {"severity": "critical", "title": "SSH brute force", "source_ip": "10.1.1.1"}})
        ),
        ["ssh-bruteforce-triage"]
    );
    assert_eq!(
        names(
            json!({"alert": {"severity": "critical", "title": "SSH brute force", "source_ip": "203.0.113.9"}})
        ),
        ["enrich-and-escalate", "ssh-bruteforce-triage"],
        "same priority: by name"
    );
    assert!(names(json!({"alert": {"severity": "low", "title": "SSH brute force"}})).is_empty());
    // Priority order: containment (10) before phishing (50).
    assert_eq!(
        names(
            json!({"alert": {"severity": "critical", "title": "Phishing mail with malware", "hostname": "ws1"}})
        ),
        ["critical-approval-containment", "phishing-triage"]
    );
}

#[test]
fn enrich_and_escalate_escalates_on_a_high_score() {
    let (_, pb) = load_all()
        .into_iter()
        .find(|(_, p)| p.name() == "enrich-and-escalate")
        .expect("present");
    let sb = Sandbox::new();
    let now = Utc
        .with_ymd_and_hms(2025, 1, 1, 0, 0, 0)
        .single()
        .expect("time");
    let run = |score: i64| {
        let mut st = RunState::new(&pb, "r", json!({"alert": {"source_ip": "203.0.113.9"}}));
        let Advance::Steps(s) = st.advance(&pb, &sb, now) else {
            panic!("steps")
        };
        assert_eq!(
            s[0].input["url"],
            json!("https://intel.example.com/api/v1/ip/203.0.113.9")
        );
        st.record(
            "intel",
            None,
            bulwark_playbook::StepOutcome::Succeeded {
                output: json!({"status": 200, "body": {"score": score}}),
            },
        )
        .expect("record");
        match st.advance(&pb, &sb, now) {
            Advance::Steps(s) => s.into_iter().map(|s| s.ref_).collect::<Vec<_>>(),
            Advance::Finished { .. } => vec![],
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(run(95), ["escalate"]);
    assert!(run(10).is_empty());
}
