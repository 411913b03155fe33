//! Sandboxed scripts: [Rhai](https://rhai.rs) with operation, size, depth and time limits.
//!
//! No modules (`import` is compiled out), no `eval`, no file or network access (Rhai has
//! none unless a host registers it), `print`/`debug` go nowhere. The input is the variable
//! `input`; the script's final expression becomes the JSON result.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use rhai::packages::{Package, StandardPackage};
use rhai::{AST, Dynamic, Engine, Scope};
use serde_json::Value;

/// Largest script source accepted.
pub const MAX_SCRIPT_SOURCE: usize = 64 * 1024;

/// Limits applied to one script run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptLimits {
    pub max_operations: u64,
    pub max_string_size: usize,
    pub max_array_size: usize,
    pub max_map_size: usize,
    pub max_call_levels: usize,
    pub max_expr_depth: usize,
    /// Wall-clock budget, checked as the script makes progress.
    pub timeout: Duration,
}

impl Default for ScriptLimits {
    fn default() -> Self {
        Self {
            max_operations: 1_000_000,
            max_string_size: 1024 * 1024,
            max_array_size: 10_000,
            max_map_size: 10_000,
            max_call_levels: 32,
            max_expr_depth: 64,
            timeout: Duration::from_secs(2),
        }
    }
}

/// Why a script did not produce a result.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScriptError {
    #[error("script source is {0} bytes, the limit is {MAX_SCRIPT_SOURCE}")]
    TooLarge(usize),
    #[error("script syntax error: {message} (line {line:?}, column {column:?})")]
    Syntax {
        message: String,
        line: Option<usize>,
        column: Option<usize>,
    },
    #[error("script exceeded a limit: {0}")]
    Limit(String),
    #[error("script timed out after {0:?}")]
    Timeout(Duration),
    #[error("script error: {0}")]
    Runtime(String),
    #[error("script input or result cannot be converted: {0}")]
    Conversion(String),
}

/// A compiled script (cheap to clone, `Send + Sync`).
#[derive(Clone)]
pub struct CompiledScript {
    ast: Arc<AST>,
}

impl fmt::Debug for CompiledScript {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompiledScript").finish_non_exhaustive()
    }
}

const TIMEOUT_MARKER: &str = "__bulwark_script_timeout__";

/// Rhai's standard library, built once: `Engine::new()` rebuilds it for every engine, which
/// cost more than running a short script (an engine is made per run for its deadline).
fn standard_library() -> rhai::Shared<rhai::Module> {
    static LIB: OnceLock<rhai::Shared<rhai::Module>> = OnceLock::new();
    LIB.get_or_init(|| StandardPackage::new().as_shared_module())
        .clone()
}

fn engine(limits: &ScriptLimits, deadline: Option<Instant>) -> Engine {
    let mut e = Engine::new_raw();
    e.register_global_module(standard_library());
    e.set_max_operations(limits.max_operations.max(1));
    e.set_max_string_size(limits.max_string_size.max(1));
    e.set_max_array_size(limits.max_array_size.max(1));
    e.set_max_map_size(limits.max_map_size.max(1));
    e.set_max_call_levels(limits.max_call_levels);
    e.set_max_expr_depths(limits.max_expr_depth.max(1), limits.max_expr_depth.max(1));
    e.set_max_variables(1_000);
    e.set_max_functions(200);
    e.disable_symbol("eval");
    e.on_print(|_| {});
    e.on_debug(|_, _, _| {});
    if let Some(deadline) = deadline {
        e.on_progress(move |ops| {
            if ops % 1024 == 0 && Instant::now() >= deadline {
                Some(Dynamic::from(TIMEOUT_MARKER))
            } else {
                None
            }
        });
    }
    e
}

/// Compiles a script; syntax errors carry the position.
pub fn compile_script(src: &str) -> Result<CompiledScript, ScriptError> {
    if src.len() > MAX_SCRIPT_SOURCE {
        return Err(ScriptError::TooLarge(src.len()));
    }
    let e = engine(&ScriptLimits::default(), None);
    let ast = e.compile(src).map_err(|err| ScriptError::Syntax {
        message: err.err_type().to_string(),
        line: err.position().line(),
        column: err.position().position(),
    })?;
    Ok(CompiledScript { ast: Arc::new(ast) })
}

impl CompiledScript {
    /// Runs the script with `input` in scope and returns its last expression as JSON.
    pub fn run(&self, input: &Value, limits: &ScriptLimits) -> Result<Value, ScriptError> {
        let started = Instant::now();
        let e = engine(limits, Some(started + limits.timeout));
        let input = rhai::serde::to_dynamic(input)
            .map_err(|err| ScriptError::Conversion(err.to_string()))?;
        let mut scope = Scope::new();
        scope.push("input", input);
        let out: Dynamic = e
            .eval_ast_with_scope(&mut scope, &self.ast)
            .map_err(|err| classify(*err, limits))?;
        let json: Value = rhai::serde::from_dynamic(&out)
            .map_err(|err| ScriptError::Conversion(err.to_string()))?;
        Ok(json)
    }
}

fn classify(err: rhai::EvalAltResult, limits: &ScriptLimits) -> ScriptError {
    use rhai::EvalAltResult as E;
    match err {
        E::ErrorTerminated(token, _) => {
            if token
                .clone()
                .into_immutable_string()
                .is_ok_and(|s| s.as_str() == TIMEOUT_MARKER)
            {
                ScriptError::Timeout(limits.timeout)
            } else {
                ScriptError::Runtime("terminated".into())
            }
        }
        E::ErrorTooManyOperations(_) => {
            ScriptError::Limit(format!("more than {} operations", limits.max_operations))
        }
        E::ErrorDataTooLarge(what, _) => ScriptError::Limit(format!("{what} too large")),
        E::ErrorStackOverflow(_) => {
            ScriptError::Limit(format!("more than {} call levels", limits.max_call_levels))
        }
        E::ErrorTooManyVariables(_) => ScriptError::Limit("too many variables".into()),
        E::ErrorParsing(p, pos) => ScriptError::Syntax {
            message: p.to_string(),
            line: pos.line(),
            column: pos.position(),
        },
        other => ScriptError::Runtime(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(src: &str, input: Value) -> Result<Value, ScriptError> {
        compile_script(src)?.run(&input, &ScriptLimits::default())
    }

    #[test]
    fn result_conversion() {
        assert_eq!(run("input.a + 1", json!({"a": 41})), Ok(json!(42)));
        assert_eq!(
            run(
                r#"#{ ip: input.ip, score: 0.5, tags: ["x", "y"], ok: true, none: () }"#,
                json!({"ip": "10.0.0.1"})
            ),
            Ok(
                json!({"ip": "10.0.0.1", "score": 0.5, "tags": ["x", "y"], "ok": true, "none": null})
            )
        );
        assert_eq!(run("let x = 1;", json!(null)), Ok(json!(null)));
        assert_eq!(
            run(r#"input.title.to_lower()"#, json!({"title": "SSH"})),
            Ok(json!("ssh"))
        );
    }

    #[test]
    fn syntax_error_has_position() {
        match compile_script("let x = ;\nx") {
            Err(ScriptError::Syntax { line, .. }) => assert_eq!(line, Some(1)),
            other => panic!("expected a syntax error, got {other:?}"),
        }
        assert!(matches!(
            compile_script(&"x".repeat(MAX_SCRIPT_SOURCE + 1)),
            Err(ScriptError::TooLarge(_))
        ));
    }

    #[test]
    fn infinite_loop_is_stopped() {
        let r = run("loop { }", json!(null));
        assert!(matches!(r, Err(ScriptError::Limit(_))), "{r:?}");
        let limits = ScriptLimits {
            max_operations: u64::MAX,
            timeout: Duration::from_millis(50),
            ..ScriptLimits::default()
        };
        let started = Instant::now();
        let r = compile_script("let x = 0; loop { x += 1; }")
            .expect("compiles")
            .run(&json!(null), &limits);
        assert!(matches!(r, Err(ScriptError::Timeout(_))), "{r:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn huge_values_are_stopped() {
        let r = run(r#"let s = "x"; loop { s += s; }"#, json!(null));
        assert!(matches!(r, Err(ScriptError::Limit(_))), "{r:?}");
        let r = run("let a = []; loop { a.push(1); }", json!(null));
        assert!(matches!(r, Err(ScriptError::Limit(_))), "{r:?}");
        let r = run("fn f(n) { f(n + 1) } f(0)", json!(null));
        assert!(matches!(r, Err(ScriptError::Limit(_))), "{r:?}");
    }

    #[test]
    fn no_eval_no_import_no_print() {
        assert!(
            compile_script(r#"eval("1 + 1")"#).is_err()
                || run(r#"eval("1 + 1")"#, json!(null)).is_err()
        );
        assert!(compile_script(r#"import "x" as y; 1"#).is_err());
        assert_eq!(
            run(r#"print("hi"); debug("x"); 1"#, json!(null)),
            Ok(json!(1))
        );
    }
}
