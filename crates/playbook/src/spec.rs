//! The playbook document (YAML or JSON) and its validated, compiled form.
//!
//! [`PlaybookSpec`] is what the author wrote (it serializes back to the same shape, so the
//! store can keep it as JSON and reload it). [`Playbook`] is the validated form the engine
//! uses: it holds the spec, the topological order, and the compiled conditions.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::catalog::Catalog;
use crate::error::{PlaybookError, PlaybookErrors};
use crate::expr::{Condition, Expr, Sandbox};

/// Largest accepted playbook document.
pub const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

fn yes() -> bool {
    true
}
fn is_true(b: &bool) -> bool {
    *b
}
fn is_false(b: &bool) -> bool {
    !*b
}
fn default_priority() -> i32 {
    100
}
fn is_default_priority(p: &i32) -> bool {
    *p == 100
}

/// A playbook as written.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaybookSpec {
    /// Stable identifier: 1-100 chars of `[a-z0-9._-]`, starting with a letter or digit.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub enabled: bool,
    /// Lower runs first.
    #[serde(
        default = "default_priority",
        skip_serializing_if = "is_default_priority"
    )]
    pub priority: i32,
    pub triggers: Vec<TriggerSpec>,
    pub actions: Vec<ActionSpec>,
    /// Name → template, rendered when the run ends.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub outputs: BTreeMap<String, String>,
}

/// What starts a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum TriggerKind {
    #[serde(rename = "alert.created")]
    AlertCreated,
    #[serde(rename = "alert.updated")]
    AlertUpdated,
    #[serde(rename = "incident.created")]
    IncidentCreated,
    #[serde(rename = "incident.updated")]
    IncidentUpdated,
    #[serde(rename = "schedule")]
    Schedule,
    #[serde(rename = "manual")]
    Manual,
}

impl TriggerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TriggerKind::AlertCreated => "alert.created",
            TriggerKind::AlertUpdated => "alert.updated",
            TriggerKind::IncidentCreated => "incident.created",
            TriggerKind::IncidentUpdated => "incident.updated",
            TriggerKind::Schedule => "schedule",
            TriggerKind::Manual => "manual",
        }
    }
}

impl fmt::Display for TriggerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerSpec {
    pub on: TriggerKind,
    /// Condition expression (not allowed on `schedule`).
    #[serde(rename = "if", default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<String>,
    /// 5-field cron, required for and only for `schedule` (UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// `alert.created` only: also trigger when a duplicate of an existing alert arrives.
    #[serde(default, skip_serializing_if = "is_false")]
    pub on_duplicate: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionSpec {
    #[serde(rename = "ref")]
    pub ref_: String,
    pub action: String,
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub args: serde_json::Map<String, serde_json::Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_if: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub for_each: Option<String>,
    /// Only with `for_each`: at most this many items outstanding (1-32, default 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetrySpec>,
    /// Duration, default "30s", at most "1h".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    #[serde(default, skip_serializing_if = "OnError::is_default")]
    pub on_error: OnError,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backoff {
    #[default]
    Exponential,
    Fixed,
}

fn default_attempts() -> u32 {
    1
}
fn default_delay() -> String {
    "1s".into()
}
fn default_max_delay() -> String {
    "5m".into()
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetrySpec {
    /// Total attempts including the first (1-20, default 1).
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    #[serde(default)]
    pub backoff: Backoff,
    /// Delay before the second attempt (default "1s").
    #[serde(default = "default_delay")]
    pub delay: String,
    /// Upper bound of any delay (default "5m").
    #[serde(default = "default_max_delay")]
    pub max_delay: String,
}

/// What a failure of the action does to the run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum OnError {
    /// The run fails (steps in flight finish; nothing new starts).
    #[default]
    Fail,
    /// The failure counts as done: dependents run and can read `actions.<ref>.status == "failed"`.
    Continue,
    /// Run the named handler action (which runs only as a handler) with `error` in its context.
    Run(String),
}

impl OnError {
    fn is_default(&self) -> bool {
        *self == OnError::Fail
    }
}

impl Serialize for OnError {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self {
            OnError::Fail => s.serialize_str("fail"),
            OnError::Continue => s.serialize_str("continue"),
            OnError::Run(r) => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("run", r)?;
                m.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for OnError {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = OnError;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("`fail`, `continue` or `{run: <ref>}`")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<OnError, E> {
                match v {
                    "fail" => Ok(OnError::Fail),
                    "continue" => Ok(OnError::Continue),
                    other => Err(E::custom(format!(
                        "unknown on_error `{other}`: expected `fail`, `continue` or `{{run: <ref>}}`"
                    ))),
                }
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<OnError, A::Error> {
                let mut run: Option<String> = None;
                while let Some(key) = map.next_key::<String>()? {
                    if key == "run" {
                        if run.is_some() {
                            return Err(serde::de::Error::duplicate_field("run"));
                        }
                        run = Some(map.next_value()?);
                    } else {
                        return Err(serde::de::Error::unknown_field(&key, &["run"]));
                    }
                }
                run.map(OnError::Run)
                    .ok_or_else(|| serde::de::Error::missing_field("run"))
            }
        }
        d.deserialize_any(V)
    }
}

/// Retry policy with parsed durations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub backoff: Backoff,
    pub delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 1,
            backoff: Backoff::Exponential,
            delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// Delay before the next attempt after attempt number `failed_attempt` (1-based) failed:
    /// fixed: `delay`; exponential: `delay * 2^(failed_attempt-1)`; both capped at `max_delay`.
    pub fn delay_after(&self, failed_attempt: u32) -> Duration {
        let d = match self.backoff {
            Backoff::Fixed => self.delay,
            Backoff::Exponential => {
                let factor = 1u32
                    .checked_shl(failed_attempt.saturating_sub(1))
                    .unwrap_or(u32::MAX);
                self.delay.checked_mul(factor).unwrap_or(self.max_delay)
            }
        };
        d.min(self.max_delay)
    }
}

/// What a failure does, with the handler resolved to its index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ErrorPolicy {
    Fail,
    Continue,
    Run(usize),
}

#[derive(Clone, Debug)]
pub(crate) struct CompiledAction {
    pub deps: Vec<usize>,
    pub run_if: Option<Condition>,
    pub for_each: Option<Expr>,
    pub concurrency: usize,
    pub retry: RetryPolicy,
    pub timeout: Duration,
    pub on_error: ErrorPolicy,
    /// Runs only as some action's `on_error: {run: ..}` handler.
    pub is_handler: bool,
    /// Top-level argument names that are never rendered.
    pub raw_args: Vec<&'static str>,
    /// The catalog entry, to check rendered arguments at run time.
    pub schema: Option<crate::catalog::ActionSchema>,
}

/// A trigger with its condition compiled.
#[derive(Clone, Debug)]
pub struct CompiledTrigger {
    pub kind: TriggerKind,
    pub condition: Option<Condition>,
    pub cron: Option<String>,
    pub on_duplicate: bool,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub spec: PlaybookSpec,
    pub order: Vec<usize>,
    pub actions: Vec<CompiledAction>,
    pub triggers: Vec<CompiledTrigger>,
    pub index: HashMap<String, usize>,
}

/// A validated, compiled playbook. Cheap to clone (an `Arc`), `Send + Sync`.
#[derive(Clone, Debug)]
pub struct Playbook {
    pub(crate) inner: Arc<Inner>,
}

impl Playbook {
    /// Validates and compiles a spec with the shared sandbox.
    pub fn from_spec(spec: PlaybookSpec, catalog: &Catalog) -> Result<Playbook, PlaybookErrors> {
        crate::validate::compile(spec, catalog, Sandbox::shared())
    }

    /// Validates and compiles a spec; conditions are compiled in `sandbox`.
    pub fn from_spec_with(
        spec: PlaybookSpec,
        catalog: &Catalog,
        sandbox: &Sandbox,
    ) -> Result<Playbook, PlaybookErrors> {
        crate::validate::compile(spec, catalog, sandbox)
    }

    pub fn spec(&self) -> &PlaybookSpec {
        &self.inner.spec
    }

    pub fn name(&self) -> &str {
        &self.inner.spec.name
    }

    pub fn priority(&self) -> i32 {
        self.inner.spec.priority
    }

    pub fn enabled(&self) -> bool {
        self.inner.spec.enabled
    }

    /// Action refs in the order they can run (dependencies first; ties in document order).
    pub fn topological_order(&self) -> Vec<&str> {
        self.inner
            .order
            .iter()
            .filter_map(|&i| self.inner.spec.actions.get(i))
            .map(|a| a.ref_.as_str())
            .collect()
    }

    pub fn action(&self, r: &str) -> Option<&ActionSpec> {
        self.inner
            .index
            .get(r)
            .and_then(|&i| self.inner.spec.actions.get(i))
    }

    pub fn retry_policy(&self, r: &str) -> Option<RetryPolicy> {
        self.inner
            .index
            .get(r)
            .and_then(|&i| self.inner.actions.get(i))
            .map(|a| a.retry)
    }

    pub fn timeout(&self, r: &str) -> Option<Duration> {
        self.inner
            .index
            .get(r)
            .and_then(|&i| self.inner.actions.get(i))
            .map(|a| a.timeout)
    }

    pub fn triggers(&self) -> &[CompiledTrigger] {
        &self.inner.triggers
    }

    /// The spec as JSON, for storage; [`parse_json`] reloads it.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.inner.spec).unwrap_or(serde_json::Value::Null)
    }
}

/// Parses and validates a YAML playbook. Errors carry the YAML line where known.
pub fn parse_yaml(text: &str, catalog: &Catalog) -> Result<Playbook, PlaybookErrors> {
    parse_yaml_with(text, catalog, Sandbox::shared())
}

/// [`parse_yaml`] with conditions compiled in a given sandbox.
pub fn parse_yaml_with(
    text: &str,
    catalog: &Catalog,
    sandbox: &Sandbox,
) -> Result<Playbook, PlaybookErrors> {
    if text.len() > MAX_DOCUMENT_BYTES {
        return Err(PlaybookErrors::single(
            "",
            format!(
                "document is {} bytes, the limit is {MAX_DOCUMENT_BYTES}",
                text.len()
            ),
        ));
    }
    if text.trim().is_empty() {
        return Err(PlaybookErrors::single("", "empty document"));
    }
    let de = serde_norway::Deserializer::from_str(text);
    let spec: PlaybookSpec = match serde_path_to_error::deserialize(de) {
        Ok(s) => s,
        Err(e) => {
            let path = clean_path(&e.path().to_string());
            let inner = e.into_inner();
            let line = inner.location().map(|l| l.line());
            let mut message = strip_yaml_location(&inner.to_string());
            // serde_norway prefixes nested errors with its own path: `actions[1]: unknown field ..`.
            if let Some((prefix, rest)) = message.split_once(": ")
                && !prefix.contains(' ')
                && path.starts_with(prefix)
            {
                message = rest.to_owned();
            }
            let line = line.or_else(|| locate_line(text, &path));
            return Err(PlaybookErrors(vec![
                PlaybookError::new(path, message).at_line(line),
            ]));
        }
    };
    crate::validate::compile(spec, catalog, sandbox).map_err(|errs| {
        PlaybookErrors(
            errs.into_iter()
                .map(|e| {
                    let line = e.line.or_else(|| locate_line(text, &e.path));
                    e.at_line(line)
                })
                .collect(),
        )
    })
}

/// Parses and validates a JSON playbook (same shape as the YAML one).
pub fn parse_json(
    value: &serde_json::Value,
    catalog: &Catalog,
) -> Result<Playbook, PlaybookErrors> {
    parse_json_with(value, catalog, Sandbox::shared())
}

/// [`parse_json`] with conditions compiled in a given sandbox.
pub fn parse_json_with(
    value: &serde_json::Value,
    catalog: &Catalog,
    sandbox: &Sandbox,
) -> Result<Playbook, PlaybookErrors> {
    let spec: PlaybookSpec = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = clean_path(&e.path().to_string());
        PlaybookErrors::single(path, e.into_inner().to_string())
    })?;
    crate::validate::compile(spec, catalog, sandbox)
}

fn clean_path(p: &str) -> String {
    if p == "." {
        String::new()
    } else {
        p.to_owned()
    }
}

/// serde_norway appends " at line L column C"; the line is reported separately.
fn strip_yaml_location(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) if msg[i..].contains(" column ") => msg[..i].to_owned(),
        _ => msg.to_owned(),
    }
}

enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

fn path_segments(path: &str) -> Vec<Seg<'_>> {
    let mut out = Vec::new();
    for part in path.split('.') {
        let (key, mut rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !key.is_empty() {
            out.push(Seg::Key(key));
        }
        while let Some(end) = rest.find(']') {
            if let Ok(n) = rest[1..end].parse() {
                out.push(Seg::Index(n));
            }
            rest = &rest[end + 1..];
        }
    }
    out
}

/// Best-effort: the 1-based line of `path` (e.g. `actions[1].depends_on[0]`) in block-style
/// YAML. Falls back to the deepest part of the path that was found.
pub(crate) fn locate_line(text: &str, path: &str) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let is_content = |l: &str| {
        let t = l.trim_start();
        !t.is_empty() && !t.starts_with('#') && t != "---"
    };
    // The block being searched: lines (start..end), children indented more than `parent`.
    let (mut start, mut end) = (0usize, lines.len());
    let mut parent_indent: Option<usize> = None;
    let mut found: Option<usize> = None;
    // For a sequence item, the item's own content starts on the `- ` line itself.
    let mut item_line: Option<(usize, usize)> = None;
    for seg in path_segments(path) {
        let child_indent = match item_line.take() {
            Some((l, col)) => {
                // Keys of this item sit at the column after "- ".
                let _ = l;
                Some(col)
            }
            None => (start..end)
                .filter(|&i| is_content(lines[i]))
                .map(|i| indent(lines[i]))
                .find(|&ind| parent_indent.is_none_or(|p| ind > p)),
        };
        let Some(ci) = child_indent else { break };
        match seg {
            Seg::Key(k) => {
                let hit = (start..end).find(|&i| {
                    let l = lines[i];
                    if !is_content(l) {
                        return false;
                    }
                    let (ind, t) = if indent(l) == ci {
                        (ci, l.trim_start())
                    } else if indent(l) + 2 == ci && l.trim_start().starts_with("- ") {
                        (ci, &l.trim_start()[2..])
                    } else {
                        return false;
                    };
                    let _ = ind;
                    t.strip_prefix(k)
                        .is_some_and(|r| r.trim_start().starts_with(':'))
                        || t.strip_prefix(&format!("\"{k}\""))
                            .is_some_and(|r| r.trim_start().starts_with(':'))
                });
                let Some(h) = hit else { break };
                found = Some(h);
                let block_end = (h + 1..end)
                    .find(|&i| {
                        is_content(lines[i])
                            && indent(lines[i]) <= ci
                            && !(indent(lines[i]) == ci && lines[i].trim_start().starts_with("- "))
                    })
                    .unwrap_or(end);
                start = h + 1;
                end = block_end;
                parent_indent = Some(ci);
            }
            Seg::Index(n) => {
                let items: Vec<usize> = (start..end)
                    .filter(|&i| {
                        is_content(lines[i])
                            && indent(lines[i]) == ci
                            && lines[i].trim_start().starts_with('-')
                    })
                    .collect();
                let Some(&h) = items.get(n) else { break };
                found = Some(h);
                let next = items.get(n + 1).copied().unwrap_or(end);
                let col = ci + 2;
                // Keys of the item: the remainder of the "- " line and the lines below it.
                start = h;
                end = next;
                parent_indent = Some(ci);
                item_line = Some((h, col));
            }
        }
    }
    found.map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "name: x\ntriggers:\n  - on: manual\nactions:\n  - ref: a\n    action: alert.comment\n    args:\n      text: hi\n  - ref: b\n    action: alert.comment\n    depends_on: [a]\n    args:\n      text: hi\n";

    #[test]
    fn locates_lines() {
        assert_eq!(locate_line(DOC, "name"), Some(1));
        assert_eq!(locate_line(DOC, "triggers[0].on"), Some(3));
        assert_eq!(locate_line(DOC, "actions[0]"), Some(5));
        assert_eq!(locate_line(DOC, "actions[0].ref"), Some(5));
        assert_eq!(locate_line(DOC, "actions[0].args.text"), Some(8));
        assert_eq!(locate_line(DOC, "actions[1].depends_on[0]"), Some(11));
        assert_eq!(locate_line(DOC, "actions[1].args.text"), Some(13));
        assert_eq!(locate_line(DOC, "actions[5]"), Some(4));
        assert_eq!(locate_line("", "x"), None);
    }

    #[test]
    fn retry_delays() {
        let p = RetryPolicy {
            max_attempts: 10,
            backoff: Backoff::Exponential,
            delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(10),
        };
        let d: Vec<u64> = (1..=6).map(|a| p.delay_after(a).as_secs()).collect();
        assert_eq!(d, vec![1, 2, 4, 8, 10, 10]);
        assert_eq!(p.delay_after(200), Duration::from_secs(10));
        let f = RetryPolicy {
            backoff: Backoff::Fixed,
            ..p
        };
        assert_eq!(f.delay_after(5), Duration::from_secs(1));
    }
}
