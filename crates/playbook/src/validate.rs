//! Load-time validation: everything that can be checked without running the playbook is
//! checked here, and every problem is reported (not just the first).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::catalog::{ActionSchema, ArgType, Catalog};
use crate::duration::parse_duration_bounded;
use crate::error::{PlaybookError, PlaybookErrors, did_you_mean};
use crate::expr::{ExprError, Sandbox, is_template};
use crate::spec::{
    ActionSpec, CompiledAction, CompiledTrigger, ErrorPolicy, Inner, OnError, Playbook,
    PlaybookSpec, RetryPolicy, TriggerKind,
};

pub const MAX_ACTIONS: usize = 100;
pub const MAX_CONCURRENCY: u32 = 32;
pub const DEFAULT_CONCURRENCY: u32 = 4;
pub const MAX_ATTEMPTS: u32 = 20;
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);
pub const MAX_WAIT: Duration = Duration::from_secs(7 * 86_400);

/// Validates a spec without keeping the compiled form.
pub fn validate(spec: &PlaybookSpec, catalog: &Catalog) -> PlaybookErrors {
    match compile(spec.clone(), catalog, Sandbox::shared()) {
        Ok(_) => PlaybookErrors::default(),
        Err(e) => e,
    }
}

/// Checks a playbook name: 1-100 chars of `[a-z0-9._-]`, starting with a letter or digit.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 100 {
        return Err(format!(
            "must be 1-100 characters, got {}",
            name.chars().count()
        ));
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit()) {
        return Err("must start with a lowercase letter or a digit".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "invalid character `{c}`: use lowercase letters, digits, `.`, `_` and `-`"
        ));
    }
    Ok(())
}

/// Checks an action ref: `[a-z][a-z0-9_]{0,63}`.
pub fn check_ref(r: &str) -> Result<(), String> {
    let ok = r.len() <= 64
        && r.starts_with(|c: char| c.is_ascii_lowercase())
        && r.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid ref `{r}`: use 1-64 characters of lowercase letters, digits and `_`, starting with a letter"
        ))
    }
}

/// Parses a 5-field cron expression (UTC).
pub fn parse_cron(expr: &str) -> Result<croner::Cron, String> {
    let fields = expr.split_whitespace().count();
    if fields != 5 {
        return Err(format!(
            "cron `{expr}` has {fields} fields; expected 5 (minute hour day-of-month month day-of-week)"
        ));
    }
    croner::Cron::from_str(expr).map_err(|e| format!("invalid cron `{expr}`: {e}"))
}

struct Checker<'a> {
    errs: Vec<PlaybookError>,
    sandbox: &'a Sandbox,
}

impl Checker<'_> {
    fn err(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.errs.push(PlaybookError::new(path, message));
    }

    fn expr_err(&mut self, path: &str, e: &ExprError) {
        let mut msg = e.message.clone();
        if let Some(o) = e.offset {
            msg.push_str(&format!(" (at offset {o})"));
        }
        if let Some(p) = &e.path {
            self.err(format!("{path}.{}", p.trim_start_matches("args.")), msg);
        } else {
            self.err(path, msg);
        }
    }
}

pub(crate) fn compile(
    spec: PlaybookSpec,
    catalog: &Catalog,
    sandbox: &Sandbox,
) -> Result<Playbook, PlaybookErrors> {
    let mut c = Checker {
        errs: Vec::new(),
        sandbox,
    };
    if let Err(m) = check_name(&spec.name) {
        c.err("name", m);
    }

    // Triggers.
    if spec.triggers.is_empty() {
        c.err("triggers", "at least one trigger is required");
    }
    let mut triggers = Vec::with_capacity(spec.triggers.len());
    for (i, t) in spec.triggers.iter().enumerate() {
        let path = format!("triggers[{i}]");
        let mut condition = None;
        if t.kind_is(TriggerKind::Schedule) {
            if t.condition.is_some() {
                c.err(
                    format!("{path}.if"),
                    "`if` is not allowed on a schedule trigger",
                );
            }
            match &t.cron {
                None => c.err(format!("{path}.cron"), "a schedule trigger needs `cron`"),
                Some(expr) => {
                    if let Err(m) = parse_cron(expr) {
                        c.err(format!("{path}.cron"), m);
                    }
                }
            }
        } else {
            if t.cron.is_some() {
                c.err(
                    format!("{path}.cron"),
                    format!(
                        "`cron` is only allowed on `schedule` triggers, not `{}`",
                        t.on
                    ),
                );
            }
            if let Some(src) = &t.condition {
                match sandbox.compile_condition(src) {
                    Ok(cond) => {
                        for v in cond.referenced_variables() {
                            if v == "actions" || v.starts_with("actions.") {
                                c.err(format!("{path}.if"), "a trigger condition runs before any action: it cannot read `actions`");
                                break;
                            }
                        }
                        condition = Some(cond);
                    }
                    Err(e) => c.expr_err(&format!("{path}.if"), &e),
                }
            }
        }
        if t.on_duplicate && t.on != TriggerKind::AlertCreated {
            c.err(
                format!("{path}.on_duplicate"),
                "`on_duplicate` is only allowed on `alert.created` triggers",
            );
        }
        triggers.push(CompiledTrigger {
            kind: t.on,
            condition,
            cron: t.cron.clone(),
            on_duplicate: t.on_duplicate,
        });
    }

    // Actions: refs first.
    if spec.actions.is_empty() {
        c.err("actions", "at least one action is required");
    }
    if spec.actions.len() > MAX_ACTIONS {
        c.err(
            "actions",
            format!(
                "{} actions; at most {MAX_ACTIONS} are allowed",
                spec.actions.len()
            ),
        );
    }
    let mut index: HashMap<String, usize> = HashMap::new();
    for (i, a) in spec.actions.iter().enumerate() {
        if let Err(m) = check_ref(&a.ref_) {
            c.err(format!("actions[{i}].ref"), m);
        }
        if let Some(&first) = index.get(&a.ref_) {
            c.err(
                format!("actions[{i}].ref"),
                format!(
                    "duplicate ref `{}` (first used by actions[{first}])",
                    a.ref_
                ),
            );
        } else {
            index.insert(a.ref_.clone(), i);
        }
    }
    let refs: Vec<&str> = spec.actions.iter().map(|a| a.ref_.as_str()).collect();
    let suggest = |r: &str| did_you_mean(r, refs.iter().copied());

    // Error handlers.
    let mut policies = Vec::with_capacity(spec.actions.len());
    let mut handler_of: HashMap<usize, Vec<usize>> = HashMap::new();
    for (i, a) in spec.actions.iter().enumerate() {
        let p = match &a.on_error {
            OnError::Fail => ErrorPolicy::Fail,
            OnError::Continue => ErrorPolicy::Continue,
            OnError::Run(h) => match index.get(h) {
                None => {
                    c.err(
                        format!("actions[{i}].on_error.run"),
                        format!("unknown ref `{h}`{}", suggest(h)),
                    );
                    ErrorPolicy::Fail
                }
                Some(&hi) if hi == i => {
                    c.err(
                        format!("actions[{i}].on_error.run"),
                        "an action cannot be its own error handler",
                    );
                    ErrorPolicy::Fail
                }
                Some(&hi) => {
                    handler_of.entry(hi).or_default().push(i);
                    ErrorPolicy::Run(hi)
                }
            },
        };
        policies.push(p);
    }
    for (&h, users) in &handler_of {
        let ha = &spec.actions[h];
        if !ha.depends_on.is_empty() {
            c.err(
                format!("actions[{h}].depends_on"),
                format!("`{}` is an error handler (on_error.run of `{}`): it runs only after that failure and cannot have depends_on", ha.ref_, spec.actions[users[0]].ref_),
            );
        }
        if matches!(ha.on_error, OnError::Run(_)) {
            c.err(
                format!("actions[{h}].on_error.run"),
                "an error handler cannot have its own `on_error: {run: ..}`",
            );
        }
    }

    // Dependencies.
    let mut deps: Vec<Vec<usize>> = vec![Vec::new(); spec.actions.len()];
    for (i, a) in spec.actions.iter().enumerate() {
        let mut seen = HashSet::new();
        for (j, d) in a.depends_on.iter().enumerate() {
            let path = format!("actions[{i}].depends_on[{j}]");
            match index.get(d) {
                None => c.err(path, format!("unknown ref `{d}`{}", suggest(d))),
                Some(&di) if di == i => c.err(path, "an action cannot depend on itself"),
                Some(&di) => {
                    if !seen.insert(di) {
                        c.err(path, format!("`{d}` is listed twice"));
                    } else if let Some(users) = handler_of.get(&di) {
                        c.err(
                            path,
                            format!("`{d}` is an error handler (on_error.run of `{}`) and cannot be a dependency", spec.actions[users[0]].ref_),
                        );
                    } else {
                        deps[i].push(di);
                    }
                }
            }
        }
    }
    let cycles = find_cycles(&deps);
    for cycle in &cycles {
        let names: Vec<&str> = cycle
            .iter()
            .map(|&i| spec.actions[i].ref_.as_str())
            .collect();
        let first = cycle[0];
        c.err(
            format!("actions[{first}].depends_on"),
            format!("dependency cycle: {}", names.join(" -> ")),
        );
    }
    let order = if cycles.is_empty() {
        topo_order(&deps)
    } else {
        (0..spec.actions.len()).collect()
    };
    let ancestors: Vec<HashSet<usize>> = (0..spec.actions.len())
        .map(|i| ancestors_of(i, &deps))
        .collect();

    // Per-action checks.
    let mut actions = Vec::with_capacity(spec.actions.len());
    for (i, a) in spec.actions.iter().enumerate() {
        let path = format!("actions[{i}]");
        let mut allowed: HashSet<usize> = ancestors[i].clone();
        if let Some(users) = handler_of.get(&i) {
            for &u in users {
                allowed.insert(u);
                allowed.extend(ancestors[u].iter().copied());
            }
        }
        let mut vars: Vec<(String, BTreeSet<String>)> = Vec::new();

        let schema = catalog.get(&a.action);
        if schema.is_none() {
            c.err(
                format!("{path}.action"),
                format!(
                    "unknown action `{}`{}",
                    a.action,
                    did_you_mean(&a.action, catalog.names())
                ),
            );
        }

        let run_if = a
            .run_if
            .as_ref()
            .and_then(|src| match sandbox.compile_condition(src) {
                Ok(cond) => {
                    vars.push((format!("{path}.run_if"), cond.referenced_variables()));
                    Some(cond)
                }
                Err(e) => {
                    c.expr_err(&format!("{path}.run_if"), &e);
                    None
                }
            });
        let for_each = a
            .for_each
            .as_ref()
            .and_then(|src| match sandbox.compile_expression(src) {
                Ok(e) => {
                    vars.push((format!("{path}.for_each"), e.referenced_variables()));
                    Some(e)
                }
                Err(e) => {
                    c.expr_err(&format!("{path}.for_each"), &e);
                    None
                }
            });
        let concurrency = match a.concurrency {
            None => DEFAULT_CONCURRENCY,
            Some(n) => {
                if a.for_each.is_none() {
                    c.err(
                        format!("{path}.concurrency"),
                        "`concurrency` is only allowed with `for_each`",
                    );
                }
                if !(1..=MAX_CONCURRENCY).contains(&n) {
                    c.err(
                        format!("{path}.concurrency"),
                        format!("must be 1-{MAX_CONCURRENCY}, got {n}"),
                    );
                }
                n.clamp(1, MAX_CONCURRENCY)
            }
        };
        let retry = match &a.retry {
            None => RetryPolicy::default(),
            Some(r) => {
                if !(1..=MAX_ATTEMPTS).contains(&r.max_attempts) {
                    c.err(
                        format!("{path}.retry.max_attempts"),
                        format!("must be 1-{MAX_ATTEMPTS}, got {}", r.max_attempts),
                    );
                }
                let delay = parse_duration_bounded(&r.delay, Duration::ZERO, MAX_TIMEOUT)
                    .unwrap_or_else(|m| {
                        c.err(format!("{path}.retry.delay"), m);
                        Duration::from_secs(1)
                    });
                let max_delay = parse_duration_bounded(&r.max_delay, Duration::ZERO, MAX_TIMEOUT)
                    .unwrap_or_else(|m| {
                        c.err(format!("{path}.retry.max_delay"), m);
                        Duration::from_secs(300)
                    });
                if delay > max_delay {
                    c.err(
                        format!("{path}.retry.delay"),
                        format!("`{}` is longer than max_delay `{}`", r.delay, r.max_delay),
                    );
                }
                RetryPolicy {
                    max_attempts: r.max_attempts.clamp(1, MAX_ATTEMPTS),
                    backoff: r.backoff,
                    delay,
                    max_delay,
                }
            }
        };
        let timeout = match &a.timeout {
            None => DEFAULT_TIMEOUT,
            Some(t) => parse_duration_bounded(t, Duration::from_millis(1), MAX_TIMEOUT)
                .unwrap_or_else(|m| {
                    c.err(format!("{path}.timeout"), m);
                    DEFAULT_TIMEOUT
                }),
        };

        let mut raw_args: Vec<&'static str> = Vec::new();
        if let Some(schema) = schema {
            check_args(&mut c, &path, a, schema, &mut vars);
            for arg in &schema.args {
                if !arg.templated {
                    raw_args.push(leak_name(&arg.name));
                }
            }
            check_special(&mut c, &path, a);
        }

        // What the expressions and templates read.
        for (p, vs) in &vars {
            check_references(&mut c, p, vs, &allowed, &index, &refs, a.for_each.is_some());
        }

        actions.push(CompiledAction {
            deps: deps[i].clone(),
            run_if,
            for_each,
            concurrency: concurrency as usize,
            retry,
            timeout,
            on_error: policies[i],
            is_handler: handler_of.contains_key(&i),
            raw_args,
            schema: schema.cloned(),
        });
    }

    // Outputs.
    let all: HashSet<usize> = (0..spec.actions.len()).collect();
    for (name, tpl) in &spec.outputs {
        let path = format!("outputs.{name}");
        if name.is_empty() {
            c.err("outputs", "output names cannot be empty");
        }
        match sandbox.check_template(tpl) {
            Ok(vs) => check_references(&mut c, &path, &vs, &all, &index, &refs, false),
            Err(e) => c.expr_err(&path, &e),
        }
    }

    if !c.errs.is_empty() {
        return Err(PlaybookErrors(c.errs));
    }
    Ok(Playbook {
        inner: Arc::new(Inner {
            spec,
            order,
            actions,
            triggers,
            index,
        }),
    })
}

impl crate::spec::TriggerSpec {
    fn kind_is(&self, k: TriggerKind) -> bool {
        self.on == k
    }
}

/// Argument names of built-in schemas are few and fixed; registered schemas could add more.
/// Interned so compiled actions can hold `&'static str` without a lifetime.
fn leak_name(name: &str) -> &'static str {
    use std::sync::{Mutex, OnceLock};
    static NAMES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let set = NAMES.get_or_init(|| Mutex::new(HashSet::new()));
    let mut guard = match set.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    };
    if let Some(&n) = guard.get(name) {
        return n;
    }
    let leaked: &'static str = Box::leak(name.to_owned().into_boxed_str());
    guard.insert(leaked);
    leaked
}

fn check_args(
    c: &mut Checker<'_>,
    path: &str,
    a: &ActionSpec,
    schema: &ActionSchema,
    vars: &mut Vec<(String, BTreeSet<String>)>,
) {
    for (k, v) in &a.args {
        let p = format!("{path}.args.{k}");
        match schema.arg(k) {
            None => c.err(
                &p,
                format!(
                    "unknown argument `{k}` for `{}`{}",
                    schema.name,
                    did_you_mean(k, schema.args.iter().map(|x| x.name.as_str()))
                ),
            ),
            Some(arg) => check_value(c, &p, &arg.ty, v, arg.templated, vars),
        }
    }
    for arg in &schema.args {
        if arg.required && !a.args.contains_key(&arg.name) {
            c.err(
                format!("{path}.args"),
                format!(
                    "missing required argument `{}` for `{}`",
                    arg.name, schema.name
                ),
            );
        }
    }
}

fn check_value(
    c: &mut Checker<'_>,
    path: &str,
    ty: &ArgType,
    v: &Value,
    templated: bool,
    vars: &mut Vec<(String, BTreeSet<String>)>,
) {
    if templated
        && let Value::String(s) = v
        && is_template(s)
    {
        match c.sandbox.check_template(s) {
            Ok(vs) => vars.push((path.to_owned(), vs)),
            Err(e) => c.expr_err(path, &e),
        }
        return;
    }
    match (ty, v) {
        (ArgType::StringList, Value::Array(items)) if templated => {
            for (i, item) in items.iter().enumerate() {
                check_value(
                    c,
                    &format!("{path}[{i}]"),
                    &ArgType::String,
                    item,
                    true,
                    vars,
                );
            }
        }
        (ArgType::Object | ArgType::Any, Value::Object(m)) if templated => {
            for (k, item) in m {
                check_value(c, &format!("{path}.{k}"), &ArgType::Any, item, true, vars);
            }
        }
        (ArgType::Any, Value::Array(items)) if templated => {
            for (i, item) in items.iter().enumerate() {
                check_value(c, &format!("{path}[{i}]"), &ArgType::Any, item, true, vars);
            }
        }
        _ => {
            if let Err(m) = ty.check(v) {
                c.err(path, m);
            }
        }
    }
}

fn literal<'v>(a: &'v ActionSpec, key: &str) -> Option<&'v Value> {
    a.args
        .get(key)
        .filter(|v| !v.as_str().is_some_and(is_template))
}

/// Checks that a single argument schema cannot express.
fn check_special(c: &mut Checker<'_>, path: &str, a: &ActionSpec) {
    match a.action.as_str() {
        "alert.update" if a.args.is_empty() => c.err(
            format!("{path}.args"),
            "alert.update needs at least one of status, severity, determination, resolve_reason, assignee, tags, remove_tags",
        ),
        "script" => {
            if let Some(Value::String(src)) = a.args.get("source")
                && let Err(e) = crate::script::compile_script(src)
            {
                c.err(format!("{path}.args.source"), e.to_string());
            }
        }
        "wait" => {
            match (a.args.contains_key("duration"), a.args.contains_key("until")) {
                (true, true) => c.err(format!("{path}.args"), "give either `duration` or `until`, not both"),
                (false, false) => c.err(format!("{path}.args"), "wait needs `duration` or `until`"),
                _ => {}
            }
            if let Some(Value::String(d)) = literal(a, "duration")
                && let Err(m) = parse_duration_bounded(d, Duration::ZERO, MAX_WAIT)
            {
                c.err(format!("{path}.args.duration"), m);
            }
            if let Some(Value::String(u)) = literal(a, "until")
                && chrono::DateTime::parse_from_rfc3339(u).is_err()
            {
                c.err(format!("{path}.args.until"), format!("`{u}` is not an RFC 3339 time (e.g. 2025-01-31T08:00:00Z)"));
            }
        }
        "approval" => {
            if let Some(v) = literal(a, "approvers")
                && let Some(n) = v.as_i64()
                && !(1..=5).contains(&n)
            {
                c.err(format!("{path}.args.approvers"), format!("must be 1-5, got {n}"));
            }
            if let Some(Value::String(t)) = literal(a, "ttl")
                && let Err(m) = parse_duration_bounded(t, Duration::from_secs(1), MAX_WAIT)
            {
                c.err(format!("{path}.args.ttl"), m);
            }
        }
        "http.request" => {
            if let Some(Value::String(t)) = literal(a, "timeout")
                && let Err(m) = parse_duration_bounded(t, Duration::from_millis(1), MAX_TIMEOUT)
            {
                c.err(format!("{path}.args.timeout"), m);
            }
            if let Some(Value::String(u)) = literal(a, "url")
                && !(u.starts_with("http://") || u.starts_with("https://"))
            {
                c.err(format!("{path}.args.url"), format!("`{u}` is not an http:// or https:// URL"));
            }
        }
        _ => {}
    }
}

/// `actions.<ref>` must name a transitive dependency (else it has no result yet);
/// `item`/`item_index` exist only with `for_each`.
fn check_references(
    c: &mut Checker<'_>,
    path: &str,
    vars: &BTreeSet<String>,
    allowed: &HashSet<usize>,
    index: &HashMap<String, usize>,
    refs: &[&str],
    has_for_each: bool,
) {
    let mut reported = HashSet::new();
    for v in vars {
        let mut parts = v.split('.');
        match parts.next() {
            Some("actions") => {
                let Some(r) = parts.next() else { continue };
                if !reported.insert(r.to_owned()) {
                    continue;
                }
                match index.get(r) {
                    None => c.err(path, format!("`actions.{r}`: unknown action `{r}`{}", did_you_mean(r, refs.iter().copied()))),
                    Some(i) if !allowed.contains(i) => c.err(
                        path,
                        format!("`actions.{r}` has no result when this runs: add `{r}` to depends_on (directly or through another dependency)"),
                    ),
                    Some(_) => {}
                }
            }
            Some(root @ ("item" | "item_index"))
                if !has_for_each
                    && !path.starts_with("outputs")
                    && reported.insert(root.to_owned()) =>
            {
                c.err(
                    path,
                    format!("`{root}` exists only in an action with `for_each`"),
                );
            }
            _ => {}
        }
    }
}

/// Every elementary cycle found by a DFS, each reported once, closed (`a -> b -> a`).
fn find_cycles(deps: &[Vec<usize>]) -> Vec<Vec<usize>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    fn visit(
        n: usize,
        deps: &[Vec<usize>],
        marks: &mut [Mark],
        stack: &mut Vec<usize>,
        out: &mut Vec<Vec<usize>>,
        seen: &mut HashSet<Vec<usize>>,
    ) {
        marks[n] = Mark::Active;
        stack.push(n);
        for &d in &deps[n] {
            match marks[d] {
                Mark::New => visit(d, deps, marks, stack, out, seen),
                Mark::Active => {
                    if let Some(pos) = stack.iter().position(|&x| x == d) {
                        // The stack runs dependent -> dependency; print in "depends on" order reversed
                        // so it reads as execution order: d -> ... -> n -> d.
                        let mut cyc: Vec<usize> = stack[pos..].iter().rev().copied().collect();
                        let mut key = cyc.clone();
                        key.sort_unstable();
                        if seen.insert(key) {
                            let first = cyc[0];
                            cyc.push(first);
                            out.push(cyc);
                        }
                    }
                }
                Mark::Done => {}
            }
        }
        stack.pop();
        marks[n] = Mark::Done;
    }
    let mut marks = vec![Mark::New; deps.len()];
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    for n in 0..deps.len() {
        if marks[n] == Mark::New {
            visit(n, deps, &mut marks, &mut Vec::new(), &mut out, &mut seen);
        }
    }
    out
}

/// Kahn's algorithm; among ready actions the earliest in the document goes first.
fn topo_order(deps: &[Vec<usize>]) -> Vec<usize> {
    let n = deps.len();
    let mut remaining: Vec<usize> = deps.iter().map(Vec::len).collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, ds) in deps.iter().enumerate() {
        for &d in ds {
            dependents[d].push(i);
        }
    }
    let mut ready: std::collections::BTreeSet<usize> =
        (0..n).filter(|&i| remaining[i] == 0).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(i) = ready.pop_first() {
        order.push(i);
        for &j in &dependents[i] {
            remaining[j] -= 1;
            if remaining[j] == 0 {
                ready.insert(j);
            }
        }
    }
    order
}

fn ancestors_of(i: usize, deps: &[Vec<usize>]) -> HashSet<usize> {
    let mut seen = HashSet::new();
    let mut stack: Vec<usize> = deps[i].clone();
    while let Some(d) = stack.pop() {
        if seen.insert(d) {
            stack.extend(deps[d].iter().copied());
        }
    }
    seen.remove(&i);
    seen
}
