//! Expressions and templates: one sandboxed language, [minijinja].
//!
//! * Conditions (`triggers[].if`, `run_if`) and `for_each` are expressions, compiled once at
//!   load time and kept in the [`crate::Playbook`]: trigger conditions run for every alert
//!   against every enabled playbook, so they must not be re-parsed.
//! * Argument templates (`args`, `outputs`) are **checked** at load time (syntax, variables,
//!   forbidden statements) and **re-compiled at run time** when a step is rendered. A step
//!   renders its arguments once and then does I/O that costs milliseconds; compiling a
//!   typical argument template costs a few microseconds (see `examples/bench_expr.rs`), so
//!   caching them would add lifetimes and memory to every loaded playbook for nothing.
//!
//! # Sandbox
//! No loader (`include`/`import`/`extends` are refused), a fuel budget per evaluation
//! (default 50 000), rendered output capped (default 1 MiB), source capped (16 KiB),
//! recursion capped (64), `range()` capped by minijinja at 100 000 items. minijinja 3 charges
//! fuel per instruction **and per byte/slot it is about to allocate** (string repetition,
//! concatenation, list building, comparisons), so fuel bounds both time and memory: with the
//! default budget no single evaluation can build a value much larger than 50 KB, and a
//! template that doubles a string with `{% set %}` runs out of fuel after a few steps.
//! Large payloads (`{{ alert.raw | tojson }}` of a big alert) may need a larger budget.
//!
//! Undefined values are *chainable*: `alert.missing.deeper` is undefined, renders as an
//! empty string and is false in a condition, never an error.

use std::collections::BTreeSet;
use std::fmt;
use std::io;
use std::sync::{Arc, OnceLock};

use minijinja::value::{Serde, Value as MjValue};
use minijinja::{Environment, ErrorKind, UndefinedBehavior};
use serde_json::Value;

/// Default fuel per evaluation.
pub const DEFAULT_FUEL: u64 = 50_000;
/// Default cap on a rendered string or an expression's JSON result.
pub const DEFAULT_MAX_OUTPUT: usize = 1024 * 1024;
const TOO_LARGE_TO_PRINT: &str = "value too large to print";

/// Cap on the source of one expression or template.
pub const MAX_SOURCE: usize = 16 * 1024;

/// What went wrong with an expression or template.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExprErrorKind {
    /// It does not parse.
    Syntax,
    /// It uses something the sandbox refuses (a statement, an oversized source).
    Forbidden,
    /// Evaluation failed (unknown filter, bad operand types, ...).
    Evaluation,
    /// The fuel budget ran out.
    OutOfFuel,
    /// The output exceeded the size cap.
    TooLarge,
    /// The value has the wrong type for its use (e.g. `for_each` not a list).
    Type,
}

/// An expression or template error, naming where it happened.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub struct ExprError {
    pub kind: ExprErrorKind,
    pub message: String,
    /// The argument path, e.g. `args.text`, when rendering arguments.
    pub path: Option<String>,
    /// 1-based line inside the expression/template source.
    pub line: Option<usize>,
    /// Byte offset inside the expression/template source.
    pub offset: Option<usize>,
}

impl fmt::Display for ExprError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = &self.path {
            write!(f, "{p}: ")?;
        }
        write!(f, "{}", self.message)?;
        match (self.offset, self.line) {
            (Some(o), _) => write!(f, " (at offset {o})"),
            (None, Some(l)) if l > 1 => write!(f, " (at line {l})"),
            _ => Ok(()),
        }
    }
}

impl ExprError {
    pub fn new(kind: ExprErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            path: None,
            line: None,
            offset: None,
        }
    }

    pub fn at_path(mut self, path: impl Into<String>) -> Self {
        if self.path.is_none() {
            self.path = Some(path.into());
        }
        self
    }

    fn from_mj(e: &minijinja::Error) -> Self {
        if e.detail() == Some(TOO_LARGE_TO_PRINT) {
            return Self::new(ExprErrorKind::TooLarge, TOO_LARGE_TO_PRINT);
        }
        let kind = match e.kind() {
            ErrorKind::SyntaxError | ErrorKind::BadEscape | ErrorKind::InvalidDelimiter => {
                ExprErrorKind::Syntax
            }
            ErrorKind::OutOfFuel => ExprErrorKind::OutOfFuel,
            _ => ExprErrorKind::Evaluation,
        };
        let message = match e.detail() {
            Some(d) => format!("{}: {d}", e.kind()),
            None => e.kind().to_string(),
        };
        Self {
            kind,
            message,
            path: None,
            line: e.line(),
            offset: None,
        }
    }
}

/// Limits of the sandbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SandboxConfig {
    /// Instructions per evaluation/render.
    pub fuel: u64,
    /// Bytes of rendered output (templates) or serialized result (expressions).
    pub max_output: usize,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            fuel: DEFAULT_FUEL,
            max_output: DEFAULT_MAX_OUTPUT,
        }
    }
}

/// The expression/template environment. Cheap to clone (an `Arc`), `Send + Sync`.
#[derive(Clone)]
pub struct Sandbox {
    env: Arc<Environment<'static>>,
    config: SandboxConfig,
}

impl fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sandbox")
            .field("config", &self.config)
            .finish()
    }
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

/// A context converted once for many evaluations (trigger matching evaluates every
/// playbook's conditions against the same alert).
#[derive(Clone, Debug)]
pub struct PreparedContext(MjValue);

impl PreparedContext {
    pub fn new(ctx: &Value) -> Self {
        Self(MjValue::from(Serde(ctx)))
    }
}

impl Sandbox {
    pub fn new() -> Self {
        Self::with_config(SandboxConfig::default())
    }

    pub fn with_fuel(fuel: u64) -> Self {
        Self::with_config(SandboxConfig {
            fuel,
            ..SandboxConfig::default()
        })
    }

    pub fn with_config(config: SandboxConfig) -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Chainable);
        env.set_fuel(Some(config.fuel));
        env.set_recursion_limit(64);
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        // Printing a (lazily repeated) list walks it: bound the walk before formatting.
        let max_output = config.max_output;
        env.set_formatter(move |out, state, value| {
            use minijinja::value::ValueKind as K;
            if matches!(value.kind(), K::Seq | K::Map | K::Iterable) {
                let mut budget = max_output;
                if to_json_limited(value, &mut budget, 0).is_err() {
                    return Err(minijinja::Error::new(
                        ErrorKind::InvalidOperation,
                        TOO_LARGE_TO_PRINT,
                    ));
                }
            }
            minijinja::escape_formatter(out, state, value)
        });
        env.add_function("cidr_contains", cidr_contains);
        env.add_test("in_cidr", |ip: &str, cidr: &str| cidr_contains(ip, cidr));
        Self {
            env: Arc::new(env),
            config,
        }
    }

    /// The process-wide default sandbox (used by [`crate::parse_yaml`] / [`crate::parse_json`]).
    pub fn shared() -> &'static Sandbox {
        static SHARED: OnceLock<Sandbox> = OnceLock::new();
        SHARED.get_or_init(Sandbox::new)
    }

    pub fn config(&self) -> &SandboxConfig {
        &self.config
    }

    /// Compiles an expression whose value is used as is.
    pub fn compile_expression(&self, source: &str) -> Result<Expr, ExprError> {
        check_source_size(source)?;
        let cell = ExprCell::try_new(self.env.clone(), |env| {
            env.compile_expression_owned(source.to_owned())
        })
        .map_err(|e| ExprError::from_mj(&e))?;
        Ok(Expr {
            cell: Arc::new(cell),
            source: Arc::from(source),
            max_output: self.config.max_output,
        })
    }

    /// Compiles a condition (an expression used for its truthiness).
    pub fn compile_condition(&self, source: &str) -> Result<Condition, ExprError> {
        self.compile_expression(source).map(Condition)
    }

    /// Checks a template (or a plain string) without rendering it; returns the variables it reads
    /// (dotted, e.g. `actions.tag.result`). A single-`{{ expr }}` string is checked as an expression.
    pub fn check_template(&self, source: &str) -> Result<BTreeSet<String>, ExprError> {
        if !is_template(source) {
            return Ok(BTreeSet::new());
        }
        check_source_size(source)?;
        if let Some(expr) = single_expression(source)
            && let Ok(e) = self.compile_expression(expr)
        {
            return Ok(e.referenced_variables());
        }
        check_statements(source)?;
        let t = self
            .env
            .template_from_str(source)
            .map_err(|e| ExprError::from_mj(&e))?;
        Ok(t.undeclared_variables(true).into_iter().collect())
    }

    /// Renders one template string to a string.
    pub fn render_str(&self, source: &str, ctx: &Value) -> Result<String, ExprError> {
        self.render_str_prepared(source, &PreparedContext::new(ctx))
    }

    fn render_str_prepared(
        &self,
        source: &str,
        ctx: &PreparedContext,
    ) -> Result<String, ExprError> {
        if !is_template(source) {
            return Ok(source.to_owned());
        }
        check_source_size(source)?;
        check_statements(source)?;
        let t = self
            .env
            .template_from_str(source)
            .map_err(|e| ExprError::from_mj(&e))?;
        let mut w = LimitedWriter {
            buf: Vec::new(),
            limit: self.config.max_output,
            exceeded: false,
        };
        let res = t.render_captured_to(ctx.0.clone(), &mut w);
        if w.exceeded {
            return Err(ExprError::new(
                ExprErrorKind::TooLarge,
                format!("rendered output exceeds {} bytes", self.config.max_output),
            ));
        }
        res.map_err(|e| ExprError::from_mj(&e))?;
        String::from_utf8(w.buf).map_err(|_| {
            ExprError::new(
                ExprErrorKind::Evaluation,
                "rendered output is not valid UTF-8",
            )
        })
    }

    /// Renders every template string inside `args` (see the crate docs): a string that is exactly
    /// one `{{ expr }}` keeps the expression's JSON type; other templates render to strings;
    /// everything else passes through. Errors name the path (`args.text`, `args.tags[1]`).
    pub fn render_value(&self, args: &Value, ctx: &Value) -> Result<Value, ExprError> {
        let prepared = PreparedContext::new(ctx);
        self.render_value_prepared(args, &prepared, "args", &[])
    }

    /// Like [`Sandbox::render_value`] with a prepared context, a path prefix, and top-level keys
    /// that are passed through untouched (arguments that are never templated).
    pub fn render_value_prepared(
        &self,
        args: &Value,
        ctx: &PreparedContext,
        path: &str,
        raw_keys: &[&str],
    ) -> Result<Value, ExprError> {
        let mut budget = self.config.max_output;
        self.render_walk(args, ctx, path, raw_keys, &mut budget, 0)
    }

    fn render_walk(
        &self,
        v: &Value,
        ctx: &PreparedContext,
        path: &str,
        raw_keys: &[&str],
        budget: &mut usize,
        depth: usize,
    ) -> Result<Value, ExprError> {
        if depth > 64 {
            return Err(
                ExprError::new(ExprErrorKind::TooLarge, "arguments nested too deeply")
                    .at_path(path),
            );
        }
        match v {
            Value::String(s) if is_template(s) => {
                let out = self.render_one(s, ctx).map_err(|e| e.at_path(path))?;
                let size = json_size(&out);
                if size > *budget {
                    return Err(ExprError::new(
                        ExprErrorKind::TooLarge,
                        format!("rendered arguments exceed {} bytes", self.config.max_output),
                    )
                    .at_path(path));
                }
                *budget -= size;
                Ok(out)
            }
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    self.render_walk(item, ctx, &format!("{path}[{i}]"), &[], budget, depth + 1)
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            Value::Object(map) => {
                let mut out = serde_json::Map::with_capacity(map.len());
                for (k, item) in map {
                    let p = format!("{path}.{k}");
                    let rendered = if raw_keys.contains(&k.as_str()) {
                        item.clone()
                    } else {
                        self.render_walk(item, ctx, &p, &[], budget, depth + 1)?
                    };
                    out.insert(k.clone(), rendered);
                }
                Ok(Value::Object(out))
            }
            other => Ok(other.clone()),
        }
    }

    fn render_one(&self, s: &str, ctx: &PreparedContext) -> Result<Value, ExprError> {
        if let Some(expr) = single_expression(s)
            && let Ok(e) = self.compile_expression(expr)
        {
            return e.eval_prepared(ctx);
        }
        self.render_str_prepared(s, ctx).map(Value::String)
    }
}

type MjExpr<'a> = minijinja::Expression<'a, 'static>;

self_cell::self_cell!(
    struct ExprCell {
        owner: Arc<Environment<'static>>,
        #[covariant]
        dependent: MjExpr,
    }
);

/// A compiled expression (cheap to clone, `Send + Sync`).
#[derive(Clone)]
pub struct Expr {
    cell: Arc<ExprCell>,
    source: Arc<str>,
    max_output: usize,
}

impl fmt::Debug for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Expr").field(&&*self.source).finish()
    }
}

impl Expr {
    pub fn source(&self) -> &str {
        &self.source
    }

    fn eval_raw(&self, ctx: &PreparedContext) -> Result<MjValue, ExprError> {
        self.cell
            .borrow_dependent()
            .eval(ctx.0.clone())
            .map_err(|e| ExprError::from_mj(&e))
    }

    /// Evaluates to JSON (undefined → `null`).
    pub fn eval(&self, ctx: &Value) -> Result<Value, ExprError> {
        self.eval_prepared(&PreparedContext::new(ctx))
    }

    pub fn eval_prepared(&self, ctx: &PreparedContext) -> Result<Value, ExprError> {
        let v = self.eval_raw(ctx)?;
        let mut budget = self.max_output;
        to_json_limited(&v, &mut budget, 0).map_err(|e| match e.kind {
            ExprErrorKind::TooLarge => ExprError::new(
                ExprErrorKind::TooLarge,
                format!("expression result exceeds {} bytes", self.max_output),
            ),
            _ => e,
        })
    }

    /// The variables the expression reads, dotted as far as static attribute access goes.
    pub fn referenced_variables(&self) -> BTreeSet<String> {
        self.cell
            .borrow_dependent()
            .undeclared_variables(true)
            .into_iter()
            .collect()
    }
}

/// A compiled condition: an expression used for its truthiness.
#[derive(Clone, Debug)]
pub struct Condition(Expr);

impl Condition {
    pub fn source(&self) -> &str {
        self.0.source()
    }

    pub fn expr(&self) -> &Expr {
        &self.0
    }

    /// Truthiness per minijinja: undefined, none, false, 0, "" and empty collections are false.
    pub fn eval(&self, ctx: &Value) -> Result<bool, ExprError> {
        self.eval_prepared(&PreparedContext::new(ctx))
    }

    pub fn eval_prepared(&self, ctx: &PreparedContext) -> Result<bool, ExprError> {
        self.0.eval_raw(ctx).map(|v| v.is_true())
    }

    pub fn referenced_variables(&self) -> BTreeSet<String> {
        self.0.referenced_variables()
    }
}

/// Whether a string is rendered as a template.
pub fn is_template(s: &str) -> bool {
    s.contains("{{") || s.contains("{%") || s.contains("{#")
}

/// The inner expression of a string that is exactly one `{{ expr }}` (trimmed).
pub fn single_expression(s: &str) -> Option<&str> {
    let t = s.trim();
    let inner = t.strip_prefix("{{")?.strip_suffix("}}")?;
    if inner.contains("{{") || inner.contains("}}") || inner.contains("{%") || inner.contains("{#")
    {
        return None;
    }
    let inner = inner.strip_prefix(['-', '+']).unwrap_or(inner);
    let inner = inner.strip_suffix(['-', '+']).unwrap_or(inner);
    let inner = inner.trim();
    (!inner.is_empty()).then_some(inner)
}

fn check_source_size(source: &str) -> Result<(), ExprError> {
    if source.len() > MAX_SOURCE {
        return Err(ExprError::new(
            ExprErrorKind::Forbidden,
            format!(
                "source is {} bytes, the limit is {MAX_SOURCE}",
                source.len()
            ),
        ));
    }
    Ok(())
}

/// Statements that load other templates: there is no loader, so refuse them with a clear message.
const FORBIDDEN_STATEMENTS: &[&str] = &["include", "import", "from", "extends", "block"];

/// Refuses statements that load templates (`include`, `import`, `extends`, ...).
fn check_statements(source: &str) -> Result<(), ExprError> {
    let mut rest = source;
    while let Some(pos) = rest.find("{%") {
        let after = &rest[pos + 2..];
        let stmt = after.trim_start_matches(['-', '+']).trim_start();
        let word: String = stmt
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if word == "raw" {
            // The content of a raw block is not parsed.
            match after.find("endraw") {
                Some(end) => {
                    rest = &after[end + "endraw".len()..];
                    continue;
                }
                None => break,
            }
        }
        if FORBIDDEN_STATEMENTS.contains(&word.as_str()) {
            return Err(ExprError::new(
                ExprErrorKind::Forbidden,
                format!(
                    "`{{% {word} %}}` is not available in playbook templates (there are no other templates to load)"
                ),
            ));
        }
        rest = after;
    }
    Ok(())
}

struct LimitedWriter {
    buf: Vec<u8>,
    limit: usize,
    exceeded: bool,
}

impl io::Write for LimitedWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len() + data.len() > self.limit {
            self.exceeded = true;
            return Err(io::Error::other("output limit exceeded"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Converts a minijinja value to JSON, charging every item and byte against `budget`:
/// minijinja repeats lists lazily, so `[1] * 100000000` costs nothing until it is walked.
fn to_json_limited(v: &MjValue, budget: &mut usize, depth: usize) -> Result<Value, ExprError> {
    use minijinja::value::ValueKind as K;
    fn charge(budget: &mut usize, n: usize) -> Result<(), ExprError> {
        if n > *budget {
            return Err(ExprError::new(ExprErrorKind::TooLarge, "result too large"));
        }
        *budget -= n;
        Ok(())
    }
    if depth > 128 {
        return Err(ExprError::new(
            ExprErrorKind::TooLarge,
            "result nested too deeply",
        ));
    }
    charge(budget, 1)?;
    Ok(match v.kind() {
        K::Undefined | K::None => Value::Null,
        K::Bool => Value::Bool(v.is_true()),
        K::Number => {
            if let Ok(i) = i64::try_from(v.clone()) {
                Value::from(i)
            } else if let Ok(u) = u64::try_from(v.clone()) {
                Value::from(u)
            } else if let Ok(f) = f64::try_from(v.clone()) {
                serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
            } else {
                Value::String(v.to_string())
            }
        }
        K::String => {
            let s = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
            charge(budget, s.len())?;
            Value::String(s)
        }
        K::Bytes => {
            let b = v.as_bytes().unwrap_or_default();
            charge(budget, b.len())?;
            Value::String(String::from_utf8_lossy(b).into_owned())
        }
        K::Seq | K::Iterable => {
            let iter = v.try_iter().map_err(|e| ExprError::from_mj(&e))?;
            let mut out = Vec::new();
            for item in iter {
                out.push(to_json_limited(&item, budget, depth + 1)?);
            }
            Value::Array(out)
        }
        K::Map => {
            let iter = v.try_iter().map_err(|e| ExprError::from_mj(&e))?;
            let mut out = serde_json::Map::new();
            for key in iter {
                let item = v.get_item(&key).map_err(|e| ExprError::from_mj(&e))?;
                let k = key.as_str().map_or_else(|| key.to_string(), str::to_owned);
                charge(budget, k.len())?;
                out.insert(k, to_json_limited(&item, budget, depth + 1)?);
            }
            Value::Object(out)
        }
        K::Invalid => {
            return Err(ExprError::new(
                ExprErrorKind::Evaluation,
                format!("invalid value: {v}"),
            ));
        }
        _ => {
            let s = v.to_string();
            charge(budget, s.len())?;
            Value::String(s)
        }
    })
}

/// Approximate serialized size of a JSON value (exact for strings' content), without allocating.
pub(crate) fn json_size(v: &Value) -> usize {
    match v {
        Value::Null => 4,
        Value::Bool(_) => 5,
        Value::Number(_) => 8,
        Value::String(s) => s.len() + 2,
        Value::Array(a) => a.iter().map(json_size).sum::<usize>() + a.len() + 2,
        Value::Object(m) => {
            m.iter()
                .map(|(k, v)| k.len() + 3 + json_size(v))
                .sum::<usize>()
                + 2
        }
    }
}

/// `cidr_contains(ip, "10.0.0.0/8")`: whether an IPv4/IPv6 address is inside a CIDR block.
/// Invalid input is simply `false`.
pub fn cidr_contains(ip: &str, cidr: &str) -> bool {
    use std::net::IpAddr;
    let Ok(addr) = ip.trim().parse::<IpAddr>() else {
        return false;
    };
    let (net, bits) = match cidr.trim().split_once('/') {
        Some((n, b)) => (n, b.parse::<u32>().ok()),
        None => (cidr.trim(), None),
    };
    let Ok(net) = net.parse::<IpAddr>() else {
        return false;
    };
    match (addr, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let bits = bits.unwrap_or(32);
            if bits > 32 {
                return false;
            }
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let bits = bits.unwrap_or(128);
            if bits > 128 {
                return false;
            }
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ACCEPTANCE: &str =
        r#"alert.severity in ["critical", "high"] and "ssh" in alert.title | lower"#;

    fn sb() -> Sandbox {
        Sandbox::new()
    }

    #[test]
    fn acceptance_condition() {
        let c = sb().compile_condition(ACCEPTANCE).expect("compiles");
        let ctx = |sev: &str, title: &str| json!({"alert": {"severity": sev, "title": title}});
        assert!(
            c.eval(&ctx("critical", "SSH brute force"))
                .expect("evaluates")
        );
        assert!(
            c.eval(&ctx("high", "Possible sSh scan"))
                .expect("evaluates")
        );
        assert!(!c.eval(&ctx("low", "SSH brute force")).expect("evaluates"));
        assert!(
            !c.eval(&ctx("critical", "RDP brute force"))
                .expect("evaluates")
        );
        // Filters bind tighter than `in`: `"ssh" in (alert.title | lower)`.
        let explicit = sb()
            .compile_condition(
                r#"alert.severity in ["critical", "high"] and "ssh" in (alert.title | lower)"#,
            )
            .expect("compiles");
        for (s, t) in [("critical", "SSH x"), ("low", "SSH"), ("high", "rdp")] {
            assert_eq!(c.eval(&ctx(s, t)), explicit.eval(&ctx(s, t)));
        }
        // Missing fields are falsy, never errors.
        assert!(!c.eval(&json!({})).expect("evaluates"));
        assert!(!c.eval(&json!({"alert": null})).expect("evaluates"));
    }

    #[test]
    fn chained_undefined_is_lenient() {
        let s = sb();
        let c = s
            .compile_condition("alert.source.geo.country == 'FR'")
            .expect("compiles");
        assert!(!c.eval(&json!({"alert": {}})).expect("evaluates"));
        assert_eq!(
            s.render_str("ip={{ alert.source_ip }}", &json!({"alert": {}}))
                .expect("renders"),
            "ip="
        );
        assert_eq!(
            s.render_str("{{ a.b.c.d }}", &json!({})).expect("renders"),
            ""
        );
    }

    #[test]
    fn referenced_variables_are_dotted() {
        let s = sb();
        let e = s
            .compile_expression("actions.enrich.result.score > 80 and alert.title")
            .expect("compiles");
        let v = e.referenced_variables();
        assert!(v.contains("actions.enrich.result.score"), "{v:?}");
        let t = s
            .check_template("{{ actions.tag.status }} for {{ alert.source_ip }}")
            .expect("valid");
        assert!(t.contains("actions.tag.status"), "{t:?}");
    }

    #[test]
    fn render_value_keeps_native_types() {
        let s = sb();
        let ctx = json!({"alert": {"tags": ["a", "b"], "score": 7, "title": "T"}, "playbook": {"name": "pb"}});
        let args = json!({
            "tags": "{{ alert.tags }}",
            "score": "  {{ alert.score * 2 }} ",
            "text": "by {{ playbook.name }}: {{ alert.title }}",
            "nested": {"list": ["{{ alert.score }}", "x", 3]},
            "plain": "no template",
            "n": 5,
            "trim": "{{- alert.title -}}"
        });
        let out = s.render_value(&args, &ctx).expect("renders");
        assert_eq!(
            out,
            json!({
                "tags": ["a", "b"],
                "score": 14,
                "text": "by pb: T",
                "nested": {"list": [7, "x", 3]},
                "plain": "no template",
                "n": 5,
                "trim": "T"
            })
        );
        let err = s
            .render_value(&json!({"text": "{{ alert.title | nosuchfilter }}"}), &ctx)
            .expect_err("must fail");
        assert_eq!(err.path.as_deref(), Some("args.text"));
        let err = s
            .render_value(&json!({"l": ["ok", "{{ 1 + }}"]}), &ctx)
            .expect_err("must fail");
        assert_eq!(err.path.as_deref(), Some("args.l[1]"));
    }

    #[test]
    fn filters_and_functions() {
        let s = sb();
        let ctx = json!({"alert": {"source_ip": "10.1.2.3", "data": {"a": 1}}});
        assert_eq!(
            s.render_str("{{ alert.data | tojson }}", &ctx)
                .expect("renders"),
            r#"{"a": 1}"#
        );
        assert_eq!(
            s.render_str("{{ alert.missing | default('n/a') }}", &ctx)
                .expect("renders"),
            "n/a"
        );
        assert_eq!(
            s.render_str("{{ 'AbC' | upper }}{{ 'AbC' | lower }}", &ctx)
                .expect("renders"),
            "ABCabc"
        );
        let c = s
            .compile_condition("cidr_contains(alert.source_ip, '10.0.0.0/8')")
            .expect("compiles");
        assert!(c.eval(&ctx).expect("evaluates"));
        let c = s
            .compile_condition("alert.source_ip is in_cidr('192.168.0.0/16')")
            .expect("compiles");
        assert!(!c.eval(&ctx).expect("evaluates"));
        assert!(cidr_contains("2001:db8::1", "2001:db8::/32"));
        assert!(!cidr_contains("2001:db8::1", "10.0.0.0/8"));
        assert!(!cidr_contains("junk", "10.0.0.0/8"));
        assert!(!cidr_contains("10.0.0.1", "10.0.0.0/99"));
        assert!(cidr_contains("10.0.0.1", "0.0.0.0/0"));
    }

    #[test]
    fn runaway_is_stopped() {
        let s = sb();
        let e = s
            .render_str(
                "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
                &json!({}),
            )
            .expect_err("must fail");
        assert!(
            matches!(e.kind, ExprErrorKind::OutOfFuel | ExprErrorKind::TooLarge),
            "{e:?}"
        );
        let e = s
            .compile_expression("range(100000000) | list")
            .expect("compiles")
            .eval(&json!({}))
            .expect_err("must fail");
        assert_eq!(e.kind, ExprErrorKind::Evaluation, "{e:?}");
        let e = s
            .compile_expression("'a' * 10000000")
            .expect("compiles")
            .eval(&json!({}))
            .expect_err("must fail");
        assert_eq!(e.kind, ExprErrorKind::OutOfFuel, "{e:?}");
        // With a large budget the output cap still applies.
        let big = Sandbox::with_fuel(100_000_000);
        let e = big
            .render_str("{{ 'a' * 2000000 }}", &json!({}))
            .expect_err("must fail");
        assert_eq!(e.kind, ExprErrorKind::TooLarge, "{e:?}");
        let e = big
            .compile_expression("'a' * 2000000")
            .expect("compiles")
            .eval(&json!({}))
            .expect_err("must fail");
        assert_eq!(e.kind, ExprErrorKind::TooLarge, "{e:?}");
        let e = s
            .render_str(
                "{% for i in range(100) %}{{ 'a' * 100000 }}{% endfor %}",
                &json!({}),
            )
            .expect_err("must fail");
        assert!(
            matches!(e.kind, ExprErrorKind::OutOfFuel | ExprErrorKind::TooLarge),
            "{e:?}"
        );
        let e = s
            .render_str(
                "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}",
                &json!({}),
            )
            .expect_err("must fail");
        assert!(
            matches!(e.kind, ExprErrorKind::Evaluation | ExprErrorKind::OutOfFuel),
            "{e:?}"
        );
        // Doubling a string through variables is charged per byte: out of fuel, not out of memory.
        let doubling = format!(
            "{{% set x = 'a' * 1000 %}}{}{{{{ x }}}}",
            "{% set x = x ~ x %}".repeat(40)
        );
        let e = s.render_str(&doubling, &json!({})).expect_err("must fail");
        assert_eq!(e.kind, ExprErrorKind::OutOfFuel, "{e:?}");
        let ns = "{% set ns = namespace(s='a') %}{% for i in range(60) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}";
        let e = s.render_str(ns, &json!({})).expect_err("must fail");
        assert_eq!(e.kind, ExprErrorKind::OutOfFuel, "{e:?}");
        // Lists repeat lazily in minijinja; converting the result is bounded by the output cap.
        let e = s
            .compile_expression("[1] * 100000000")
            .expect("compiles")
            .eval(&json!({}))
            .expect_err("must fail");
        assert_eq!(e.kind, ExprErrorKind::TooLarge, "{e:?}");
        let e = s
            .render_str("{{ [1] * 100000000 }}", &json!({}))
            .expect_err("must fail");
        assert_eq!(e.kind, ExprErrorKind::TooLarge, "{e:?}");
        assert_eq!(
            s.render_str("{% include 'x' %}", &json!({}))
                .expect_err("must fail")
                .kind,
            ExprErrorKind::Forbidden
        );
        assert_eq!(
            s.render_str("{% set x = 2 %}{{ x * 3 }}", &json!({}))
                .expect("renders"),
            "6"
        );
        let deep_expr = format!("{}1{}", "(".repeat(5000), ")".repeat(5000));
        assert!(s.compile_expression(&deep_expr).is_err());
        let small = Sandbox::with_fuel(100);
        let e = small
            .compile_expression("range(1000) | map('string') | join(',')")
            .expect("compiles")
            .eval(&json!({}))
            .expect_err("must fail");
        assert_eq!(e.kind, ExprErrorKind::OutOfFuel, "{e:?}");
    }

    #[test]
    fn single_expression_detection() {
        assert_eq!(single_expression("{{ x }}"), Some("x"));
        assert_eq!(single_expression("  {{- x.y -}} "), Some("x.y"));
        assert_eq!(single_expression("{{ a }} {{ b }}"), None);
        assert_eq!(single_expression("a {{ b }}"), None);
        assert_eq!(single_expression("{{ }}"), None);
        assert!(is_template("{% if x %}y{% endif %}"));
        assert!(!is_template("plain { text }"));
    }
}
