use bulwark_playbook::{Catalog, OnError, PlaybookErrors, TriggerKind, parse_json, parse_yaml};
use serde_json::json;

const ACCEPTANCE: &str = include_str!("../../../playbooks/examples/ssh-bruteforce-triage.yaml");

fn errors(yaml: &str) -> PlaybookErrors {
    match parse_yaml(yaml, &Catalog::builtin()) {
        Ok(_) => panic!("expected errors for:\n{yaml}"),
        Err(e) => e,
    }
}

fn has(errs: &PlaybookErrors, path: &str, needle: &str) -> bool {
    errs.errors()
        .iter()
        .any(|e| e.path == path && e.message.contains(needle))
}

fn assert_has(errs: &PlaybookErrors, path: &str, needle: &str) {
    assert!(
        has(errs, path, needle),
        "no error at `{path}` containing `{needle}` in:\n{errs}"
    );
}

#[test]
fn acceptance_example_loads() {
    let pb = parse_yaml(ACCEPTANCE, &Catalog::builtin()).expect("acceptance example loads");
    assert_eq!(pb.name(), "ssh-bruteforce-triage");
    assert!(pb.enabled());
    assert_eq!(pb.priority(), 100);
    assert_eq!(pb.topological_order(), vec!["tag", "note"]);
    let spec = pb.spec();
    assert_eq!(spec.triggers[0].on, TriggerKind::AlertCreated);
    assert_eq!(spec.actions[1].depends_on, vec!["tag".to_string()]);
    assert_eq!(spec.actions[0].on_error, OnError::Fail);
    assert_eq!(pb.timeout("tag"), Some(std::time::Duration::from_secs(30)));
}

#[test]
fn spec_round_trips_through_json() {
    let pb = parse_yaml(ACCEPTANCE, &Catalog::builtin()).expect("loads");
    let stored = pb.to_json();
    let again = parse_json(&stored, &Catalog::builtin()).expect("reloads");
    assert_eq!(again.spec(), pb.spec());
    // Defaults are not written out.
    assert!(stored.get("priority").is_none());
    assert!(stored.get("enabled").is_none());
    let text = serde_json::to_string(pb.spec()).expect("serializes");
    let back: bulwark_playbook::PlaybookSpec = serde_json::from_str(&text).expect("deserializes");
    assert_eq!(&back, pb.spec());
}

#[test]
fn on_error_forms() {
    let doc = json!({
        "name": "x", "triggers": [{"on": "manual"}],
        "actions": [
            {"ref": "a", "action": "alert.comment", "args": {"text": "a"}, "on_error": "continue"},
            {"ref": "b", "action": "alert.comment", "args": {"text": "b"}, "on_error": {"run": "h"}},
            {"ref": "h", "action": "alert.comment", "args": {"text": "{{ error.message }}"}}
        ]
    });
    let pb = parse_json(&doc, &Catalog::builtin()).expect("loads");
    assert_eq!(pb.spec().actions[0].on_error, OnError::Continue);
    assert_eq!(pb.spec().actions[1].on_error, OnError::Run("h".into()));
    assert_eq!(pb.to_json()["actions"][1]["on_error"], json!({"run": "h"}));
    let mut bad = doc.clone();
    bad["actions"][0]["on_error"] = json!("ignore");
    let e = parse_json(&bad, &Catalog::builtin()).expect_err("must fail");
    assert_eq!(e.errors()[0].path, "actions[0].on_error");
    assert!(
        e.errors()[0].message.contains("unknown on_error `ignore`"),
        "{e}"
    );
}

#[test]
fn unknown_fields_are_named_with_line() {
    let yaml = ACCEPTANCE.replace("    depends_on: [tag]", "    depends_onn: [tag]");
    let e = errors(&yaml);
    let first = &e.errors()[0];
    assert!(first.message.contains("unknown field `depends_onn`"), "{e}");
    assert_eq!(first.path, "actions[1].depends_onn");
    assert_eq!(first.line, Some(14));
    let rendered = e.render_for_file("ssh.yaml");
    assert!(
        rendered.starts_with("ssh.yaml:14: actions[1].depends_onn: unknown field `depends_onn`"),
        "{rendered}"
    );

    let e = errors(&ACCEPTANCE.replace(
        "  - on: alert.created",
        "  - on: alert.created\n    when: x",
    ));
    assert!(
        e.errors()[0].message.contains("unknown field `when`"),
        "{e}"
    );
    let e = errors(&ACCEPTANCE.replace("on: alert.created", "on: alert.deleted"));
    assert!(e.errors()[0].message.contains("alert.deleted"), "{e}");
    let e = errors("name: [unclosed\n");
    assert!(e.errors()[0].line.is_some(), "{e:?}");
    let e = errors("");
    assert!(e.errors()[0].message.contains("empty"), "{e}");
}

#[test]
fn collects_every_problem() {
    let yaml = r#"
name: bad name!
triggers:
  - on: schedule
    cron: "61 * * * *"
    if: "true"
  - on: alert.updated
    on_duplicate: true
    cron: "* * * * *"
  - on: alert.created
    if: "alert.severity ==="
actions:
  - ref: tag
    action: alert.updte
    depends_on: [note]
  - ref: note
    action: alert.comment
    depends_on: [tag, ghost]
    args:
      text: "{{ alert.title | }}"
  - ref: note
    action: alert.comment
  - ref: Bad
    action: alert.update
    args:
      severity: hihg
      tags: "not a list"
      colour: red
    timeout: 2h
    retry: {max_attempts: 50, delay: 5q}
    concurrency: 4
  - ref: w
    action: wait
    args: {duration: 8d}
  - ref: s
    action: script
    args: {source: "let x = ;"}
  - ref: appr
    action: approval
    args: {message: ok, approvers: 9, ttl: 30d}
  - ref: pager
    action: alert.comment
    args: {text: "{{ actions.tag.result }}"}
"#;
    let e = errors(yaml);
    assert_has(&e, "name", "invalid character ` `");
    assert_has(&e, "triggers[0].cron", "invalid cron `61 * * * *`");
    assert_has(&e, "triggers[0].if", "not allowed on a schedule");
    assert_has(
        &e,
        "triggers[1].on_duplicate",
        "only allowed on `alert.created`",
    );
    assert_has(&e, "triggers[1].cron", "only allowed on `schedule`");
    assert_has(&e, "triggers[2].if", "syntax error");
    assert_has(&e, "actions[0].action", "did you mean `alert.update`");
    assert_has(&e, "actions[1].depends_on[1]", "unknown ref `ghost`");
    assert_has(&e, "actions[1].args.text", "syntax error");
    assert_has(&e, "actions[2].ref", "duplicate ref `note`");
    assert_has(&e, "actions[2].args", "missing required argument `text`");
    assert_has(&e, "actions[3].ref", "invalid ref `Bad`");
    assert_has(&e, "actions[3].args.severity", "did you mean `high`");
    assert_has(
        &e,
        "actions[3].args.tags",
        "expected a list of strings, got a string",
    );
    assert_has(&e, "actions[3].args.colour", "unknown argument `colour`");
    assert_has(&e, "actions[3].timeout", "exceeds the maximum of 1h");
    assert_has(&e, "actions[3].retry.max_attempts", "must be 1-20");
    assert_has(&e, "actions[3].retry.delay", "unknown unit `q`");
    assert_has(&e, "actions[3].concurrency", "only allowed with `for_each`");
    assert_has(&e, "actions[4].args.duration", "exceeds the maximum of 7d");
    assert_has(&e, "actions[5].args.source", "syntax error");
    assert_has(&e, "actions[6].args.approvers", "must be 1-5");
    assert_has(&e, "actions[6].args.ttl", "exceeds the maximum of 7d");
    assert_has(&e, "actions[7].args.text", "add `tag` to depends_on");
    assert!(
        e.errors()
            .iter()
            .any(|x| x.message.contains("dependency cycle: ")),
        "{e}"
    );
    assert!(e.len() >= 24, "{e}");
    // Lines are located for validation errors too.
    let line_of = |path: &str| {
        e.errors()
            .iter()
            .find(|x| x.path == path)
            .and_then(|x| x.line)
    };
    assert_eq!(line_of("actions[1].depends_on[1]"), Some(18));
    assert_eq!(line_of("actions[3].args.colour"), Some(28));
}

#[test]
fn cycle_is_named() {
    let yaml = ACCEPTANCE.replace(
        "      tags: [\"auto-triaged\"]",
        "      tags: [\"auto-triaged\"]\n    depends_on: [note]",
    );
    let e = errors(&yaml);
    let msg = e
        .errors()
        .iter()
        .find(|x| x.message.starts_with("dependency cycle"))
        .map(|x| x.message.clone())
        .unwrap_or_default();
    assert!(
        msg == "dependency cycle: tag -> note -> tag"
            || msg == "dependency cycle: note -> tag -> note",
        "{e}"
    );
}

#[test]
fn templates_may_read_only_transitive_dependencies() {
    let ok = r#"
name: chain
triggers: [{on: manual}]
actions:
  - {ref: a, action: set, args: {values: {x: 1}}}
  - {ref: b, action: set, depends_on: [a], args: {values: {y: "{{ actions.a.result.x }}"}}}
  - {ref: c, action: alert.comment, depends_on: [b], run_if: "actions.a.result.x == 1", args: {text: "{{ actions.a.result.x }}"}}
outputs:
  total: "{{ actions.c.status }}"
"#;
    parse_yaml(ok, &Catalog::builtin()).expect("transitive dependencies are readable");
    let bad = ok.replace("depends_on: [b], run_if", "run_if");
    let e = errors(&bad);
    assert_has(&e, "actions[2].run_if", "add `a` to depends_on");
    assert_has(&e, "actions[2].args.text", "add `a` to depends_on");
    let bad = ok.replace("{{ actions.c.status }}", "{{ actions.zz.status }}");
    assert_has(&errors(&bad), "outputs.total", "unknown action `zz`");
    let bad = ok.replace("{{ actions.a.result.x }}\"}}}", "{{ item }}\"}}}");
    assert_has(
        &errors(&bad),
        "actions[1].args.values.y",
        "only in an action with `for_each`",
    );
}

#[test]
fn error_handler_rules() {
    let base = r#"
name: handlers
triggers: [{on: manual}]
actions:
  - {ref: a, action: alert.comment, args: {text: a}, on_error: {run: h}}
  - {ref: b, action: alert.comment, depends_on: [a], args: {text: "{{ actions.a.status }}"}}
  - {ref: h, action: alert.comment, args: {text: "{{ error.message }} {{ actions.a.error }}"}}
"#;
    parse_yaml(base, &Catalog::builtin()).expect("a handler may read the failed action");
    let e = errors(&base.replace("depends_on: [a]", "depends_on: [a, h]"));
    assert_has(&e, "actions[1].depends_on[1]", "is an error handler");
    let e = errors(&base.replace("{run: h}", "{run: hh}"));
    assert_has(&e, "actions[0].on_error.run", "did you mean `h`");
    let e = errors(&base.replace("{run: h}", "{run: a}"));
    assert_has(&e, "actions[0].on_error.run", "its own error handler");
    let e = errors(&base.replace(
        "args: {text: \"{{ error.message }}",
        "depends_on: [b], args: {text: \"{{ error.message }}",
    ));
    assert_has(&e, "actions[2].depends_on", "cannot have depends_on");
}

#[test]
fn action_specific_rules() {
    let doc = |action: &str, args: serde_json::Value| json!({"name": "x", "triggers": [{"on": "manual"}], "actions": [{"ref": "a", "action": action, "args": args}]});
    let cat = Catalog::builtin();
    let err = |action: &str, args: serde_json::Value| {
        parse_json(&doc(action, args), &cat)
            .expect_err("must fail")
            .to_string()
    };
    assert!(err("alert.update", json!({})).contains("at least one of"));
    assert!(err("wait", json!({})).contains("needs `duration` or `until`"));
    assert!(
        err(
            "wait",
            json!({"duration": "1m", "until": "2030-01-01T00:00:00Z"})
        )
        .contains("not both")
    );
    assert!(err("wait", json!({"until": "tomorrow"})).contains("RFC 3339"));
    assert!(err("http.request", json!({"url": "ftp://x"})).contains("not an http"));
    assert!(
        err("http.request", json!({"url": "https://x", "method": "get"}))
            .contains("did you mean `GET`")
    );
    assert!(err("set", json!({"values": [1]})).contains("expected an object"));
    // Templated values are accepted for any type at load time.
    for (action, args) in [
        (
            "alert.update",
            json!({"tags": "{{ alert.tags }}", "severity": "{{ alert.severity }}"}),
        ),
        (
            "approval",
            json!({"message": "ok", "approvers": "{{ vars.n }}"}),
        ),
        ("wait", json!({"duration": "{{ vars.d }}"})),
        (
            "http.request",
            json!({"url": "{{ vars.url }}", "body": {"a": ["{{ alert.id }}", 1]}}),
        ),
        (
            "script",
            json!({"source": "input.a + 1", "input": {"a": "{{ alert.n }}"}}),
        ),
    ] {
        parse_json(&doc(action, args.clone()), &cat)
            .unwrap_or_else(|e| panic!("{action} {args}: {e}"));
    }
    let mut d = doc("alert.comment", json!({"text": "x"}));
    d["actions"][0]["for_each"] = json!("alert.ips");
    d["actions"][0]["concurrency"] = json!(33);
    assert!(
        parse_json(&d, &cat)
            .expect_err("must fail")
            .to_string()
            .contains("must be 1-32")
    );
    d["actions"][0]["concurrency"] = json!(2);
    d["actions"][0]["args"]["text"] = json!("{{ item }} #{{ item_index }}");
    parse_json(&d, &cat).expect("item is in scope with for_each");
}

#[test]
fn limits_on_counts_and_names() {
    let mut actions = Vec::new();
    for i in 0..101 {
        actions.push(
            json!({"ref": format!("a{i}"), "action": "alert.comment", "args": {"text": "x"}}),
        );
    }
    let d = json!({"name": "x", "triggers": [{"on": "manual"}], "actions": actions});
    assert!(
        parse_json(&d, &Catalog::builtin())
            .expect_err("must fail")
            .to_string()
            .contains("at most 100")
    );
    let d = json!({"name": "x".repeat(101), "triggers": [], "actions": []});
    let e = parse_json(&d, &Catalog::builtin()).expect_err("must fail");
    assert!(e.to_string().contains("1-100 characters"), "{e}");
    assert!(e.to_string().contains("at least one trigger"), "{e}");
    assert!(e.to_string().contains("at least one action"), "{e}");
    let d = json!({"name": "-x", "triggers": [{"on": "schedule", "cron": "* * * *"}], "actions": [{"ref": "a", "action": "set", "args": {"values": {}}}]});
    let e = parse_json(&d, &Catalog::builtin())
        .expect_err("must fail")
        .to_string();
    assert!(
        e.contains("must start with a lowercase letter or a digit"),
        "{e}"
    );
    assert!(e.contains("has 4 fields; expected 5"), "{e}");
}

#[test]
fn registered_actions_are_accepted() {
    let mut cat = Catalog::builtin();
    cat.register(bulwark_playbook::ActionSchema::new(
        "slack.post",
        "Post a message",
        true,
        vec![
            bulwark_playbook::ArgSchema::new(
                "channel",
                bulwark_playbook::ArgType::String,
                "channel",
            )
            .required(),
        ],
    ));
    let d = json!({"name": "x", "triggers": [{"on": "manual"}], "actions": [{"ref": "a", "action": "slack.post", "args": {"channel": "#soc"}}]});
    parse_json(&d, &cat).expect("registered action validates");
    assert!(parse_json(&d, &Catalog::builtin()).is_err());
}
