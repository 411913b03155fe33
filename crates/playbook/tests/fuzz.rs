//! Random input never panics: YAML documents, expressions, templates, scripts, durations.

use bulwark_playbook::{Catalog, Sandbox, compile_script, parse_duration, parse_json, parse_yaml};
use proptest::prelude::*;
use serde_json::json;

const ACCEPTANCE: &str = include_str!("../../../playbooks/examples/ssh-bruteforce-triage.yaml");

fn ctx() -> serde_json::Value {
    json!({"alert": {"severity": "high", "title": "SSH", "tags": ["a"], "n": 3, "ip": "10.0.0.1"}, "actions": {}, "vars": {}})
}

/// Tokens that make random strings look like expressions and templates.
fn expr_token() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("alert".to_string()),
        Just(".".to_string()),
        Just("severity".to_string()),
        Just(" in ".to_string()),
        Just(" and ".to_string()),
        Just(" | lower".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just("(".to_string()),
        Just(")".to_string()),
        Just("\"x\"".to_string()),
        Just("1".to_string()),
        Just(" * ".to_string()),
        Just(" ~ ".to_string()),
        Just("range(".to_string()),
        Just("{{".to_string()),
        Just("}}".to_string()),
        Just("{%".to_string()),
        Just("%}".to_string()),
        Just(" for x in ".to_string()),
        Just(" if ".to_string()),
        Just("endfor".to_string()),
        Just("|".to_string()),
        Just(",".to_string()),
        Just("item".to_string()),
        Just("actions.a.result".to_string()),
        "[ -~]{0,6}",
    ]
}

fn expr_string() -> impl Strategy<Value = String> {
    proptest::collection::vec(expr_token(), 0..24).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn expressions_never_panic(src in expr_string()) {
        let sb = Sandbox::new();
        if let Ok(c) = sb.compile_condition(&src) {
            let _ = c.eval(&ctx());
        }
        let _ = sb.render_str(&src, &ctx());
        let _ = sb.render_value(&json!({"a": src, "b": [src.clone()]}), &ctx());
        let _ = sb.check_template(&src);
    }

    #[test]
    fn arbitrary_text_as_yaml_never_panics(text in "\\PC{0,300}") {
        let _ = parse_yaml(&text, &Catalog::builtin());
    }

    #[test]
    fn mutated_playbooks_never_panic(pos in 0usize..1000, insert in expr_string(), cut in 0usize..40) {
        let mut text = ACCEPTANCE.to_string();
        let mut p = pos.min(text.len());
        while !text.is_char_boundary(p) { p -= 1; }
        let end = (p + cut).min(text.len());
        let mut e = end;
        while !text.is_char_boundary(e) { e -= 1; }
        text.replace_range(p..e, &insert);
        let _ = parse_yaml(&text, &Catalog::builtin());
    }

    #[test]
    fn random_json_never_panics(
        name in "[a-z]{0,3}",
        on in prop_oneof![Just("manual"), Just("schedule"), Just("alert.created"), Just("nope")],
        cond in expr_string(),
        action in prop_oneof![Just("alert.update"), Just("wait"), Just("script"), Just("set"), Just("approval"), Just("x")],
        arg in expr_string(),
        dep in "[a-c]{0,1}",
    ) {
        let doc = json!({
            "name": name,
            "triggers": [{"on": on, "if": cond, "cron": arg}],
            "actions": [
                {"ref": "a", "action": action, "args": {"source": arg, "duration": arg, "values": {"k": arg}, "message": arg, "tags": [arg]}, "depends_on": [dep]},
                {"ref": "b", "action": "alert.comment", "args": {"text": arg}, "run_if": cond, "for_each": cond, "depends_on": ["a"]}
            ]
        });
        let _ = parse_json(&doc, &Catalog::builtin());
    }

    #[test]
    fn durations_and_scripts_never_panic(s in "\\PC{0,40}") {
        let _ = parse_duration(&s);
        if let Ok(script) = compile_script(&s) {
            let _ = script.run(&json!({"a": 1}), &bulwark_playbook::ScriptLimits::default());
        }
    }
}
