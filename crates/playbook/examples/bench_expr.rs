//! Expression and trigger-matching throughput.
//!
//! `cargo run --release -p bulwark-playbook --example bench_expr`
//!
//! Prints: evaluations/s of the acceptance `if` expression (context prepared once, and
//! converted from JSON on every call), matching 20 playbooks against one alert, and the
//! cost of compiling vs. rendering an argument template (the template-caching decision in
//! `expr.rs`). Numbers are machine-dependent; compare ratios within one run.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bulwark_playbook::{Catalog, PreparedContext, Sandbox, TriggerEvent, TriggerSet, parse_yaml};
use serde_json::json;

const ACCEPTANCE_IF: &str =
    r#"alert.severity in ["critical", "high"] and "ssh" in alert.title | lower"#;

fn alert() -> serde_json::Value {
    json!({
        "alert": {
            "id": "0193f7a2-5c1e-7b3a-9f00-1234567890ab",
            "title": "SSH brute force from 203.0.113.9",
            "severity": "critical",
            "status": "new",
            "source": "wazuh",
            "source_ip": "203.0.113.9",
            "dest_ip": "10.0.4.12",
            "hostname": "bastion-1",
            "tags": ["ssh", "auth"],
            "observables": [{"type": "ip", "value": "203.0.113.9"}, {"type": "user", "value": "root"}],
            "raw": {"rule": {"id": 5712, "level": 10, "description": "sshd: brute force"}, "agent": {"name": "bastion-1"}}
        }
    })
}

fn per_sec(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn time<F: FnMut()>(min: Duration, mut f: F) -> (u64, Duration) {
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < min {
        for _ in 0..100 {
            f();
        }
        n += 100;
    }
    (n, start.elapsed())
}

fn main() {
    let sb = Sandbox::new();
    let ctx = alert();
    let cond = sb.compile_condition(ACCEPTANCE_IF).expect("compiles");
    let prepared = PreparedContext::new(&ctx);
    assert!(cond.eval(&ctx).expect("evaluates"));
    let d = Duration::from_secs(1);

    let (n, t) = time(d, || {
        black_box(cond.eval_prepared(black_box(&prepared)).ok());
    });
    println!(
        "acceptance `if`, prepared context: {:>12.0} evaluations/s ({:.2} µs each)",
        per_sec(n, t),
        t.as_secs_f64() * 1e6 / n as f64
    );
    let (n, t) = time(d, || {
        black_box(cond.eval(black_box(&ctx)).ok());
    });
    println!(
        "acceptance `if`, JSON each time:  {:>12.0} evaluations/s ({:.2} µs each)",
        per_sec(n, t),
        t.as_secs_f64() * 1e6 / n as f64
    );
    let (n, t) = time(d, || {
        black_box(PreparedContext::new(black_box(&ctx)));
    });
    println!(
        "prepare the alert context:        {:>12.2} µs",
        t.as_secs_f64() * 1e6 / n as f64
    );

    // 20 playbooks with typical conditions.
    let conditions = [
        ACCEPTANCE_IF,
        r#"alert.severity == "critical""#,
        r#""phish" in alert.title | lower"#,
        r#"alert.source == "crowdstrike" and alert.severity in ["high", "critical"]"#,
        r#"cidr_contains(alert.source_ip, "10.0.0.0/8")"#,
        r#""ransomware" in alert.tags"#,
        r#"alert.raw.rule.level >= 12"#,
        r#"alert.hostname is startingwith("dc-")"#,
        r#"alert.observables | selectattr("type", "equalto", "hash") | list | length > 0"#,
        r#"alert.status == "new" and alert.severity != "info""#,
    ];
    let catalog = Catalog::builtin();
    let mut pbs = Vec::new();
    for i in 0..20 {
        let yaml = format!(
            "name: pb-{i:02}\npriority: {}\ntriggers:\n  - on: alert.created\n    if: '{}'\nactions:\n  - {{ref: a, action: alert.comment, args: {{text: hi}}}}\n",
            i % 3 * 10,
            conditions[i % conditions.len()].replace('\'', "''")
        );
        let pb = parse_yaml(&yaml, &catalog).unwrap_or_else(|e| panic!("{e}"));
        pbs.push((i as u32, Arc::new(pb)));
    }
    let set = TriggerSet::new(pbs);
    let m = set.matching(TriggerEvent::AlertCreated { duplicate: false }, &ctx);
    assert!(m.errors.is_empty(), "{:?}", m.errors);
    let (n, t) = time(d, || {
        black_box(set.matching(
            TriggerEvent::AlertCreated { duplicate: false },
            black_box(&ctx),
        ));
    });
    println!(
        "matching 20 playbooks / alert:    {:>12.2} µs ({} matched; {:.0} alerts/s)",
        t.as_secs_f64() * 1e6 / n as f64,
        m.matches.len(),
        per_sec(n, t)
    );

    // Template caching decision: compile+render vs. the whole argument render.
    let args = json!({"text": "triaged by {{ playbook.name }} for {{ alert.source_ip }}", "tags": ["{{ alert.severity }}"]});
    let mut rctx = ctx.clone();
    rctx["playbook"] = json!({"name": "ssh-bruteforce-triage"});
    let (n, t) = time(d, || {
        black_box(sb.render_value(black_box(&args), black_box(&rctx)).ok());
    });
    println!(
        "render a step's args (compiles):  {:>12.2} µs",
        t.as_secs_f64() * 1e6 / n as f64
    );
    let (n, t) = time(d, || {
        black_box(
            sb.check_template(black_box(
                "triaged by {{ playbook.name }} for {{ alert.source_ip }}",
            ))
            .ok(),
        );
    });
    println!(
        "compile one template (check):     {:>12.2} µs",
        t.as_secs_f64() * 1e6 / n as f64
    );
}
