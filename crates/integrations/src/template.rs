//! Request templates and output expressions (minijinja, the playbooks' language), bounded by
//! fuel so a definition cannot loop or allocate without limit.

use minijinja::{Environment, UndefinedBehavior};
use serde_json::Value;
use std::sync::OnceLock;

const FUEL: u64 = 200_000;

/// The shared environment: no loader (no include/import), lenient undefined values, fuel.
pub fn env() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_fuel(Some(FUEL));
        env.set_undefined_behavior(UndefinedBehavior::Chainable);
        env.set_recursion_limit(64);
        env.add_filter("base64", |s: String| {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode(s)
        });
        env.add_filter("base64url", |s: String| {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
        });
        // `x is contains(y)`: the reverse of `in` (for `selectattr('roles', 'contains', 'a')`).
        env.add_test(
            "contains",
            |v: minijinja::Value, item: minijinja::Value| -> bool {
                match (v.as_str(), item.as_str()) {
                    (Some(s), Some(i)) => s.contains(i),
                    _ => v.try_iter().is_ok_and(|mut it| it.any(|x| x == item)),
                }
            },
        );
        env.add_filter("sha256", |s: String| {
            use sha2::Digest;
            hex::encode(sha2::Sha256::digest(s.as_bytes()))
        });
        env
    })
}

/// Renders a template string. A template that is exactly one `{{ expr }}` keeps the
/// expression's type (a list stays a list).
pub fn render(template: &str, ctx: &Value) -> Result<Value, String> {
    let t = template.trim();
    // `{{ expr }}` alone. The expression may itself end in `}}` (a dict literal), so the test
    // is whether the inside compiles as one expression, not whether it holds braces.
    if let Some(inner) = t.strip_prefix("{{").and_then(|r| r.strip_suffix("}}"))
        && !inner.contains("{{")
        && let Ok(e) = env().compile_expression(inner.trim())
    {
        return eval_compiled(&e, ctx);
    }
    if !template.contains("{{") && !template.contains("{%") {
        return Ok(Value::String(template.to_owned()));
    }
    env()
        .render_str(
            template,
            minijinja::Value::from(minijinja::value::Serde(ctx)),
        )
        .map(Value::String)
        .map_err(|e| e.to_string())
}

/// Renders to text (objects and lists as JSON).
pub fn render_text(template: &str, ctx: &Value) -> Result<String, String> {
    Ok(match render(template, ctx)? {
        Value::String(s) => s,
        Value::Null => String::new(),
        other => other.to_string(),
    })
}

/// Renders every string inside a JSON value.
pub fn render_value(v: &Value, ctx: &Value) -> Result<Value, String> {
    Ok(match v {
        Value::String(s) => render(s, ctx)?,
        Value::Array(a) => Value::Array(
            a.iter()
                .map(|x| render_value(x, ctx))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, x)| Ok((k.clone(), render_value(x, ctx)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

/// Evaluates an expression to JSON (undefined is null).
pub fn eval(expr: &str, ctx: &Value) -> Result<Value, String> {
    let e = env().compile_expression(expr).map_err(|e| e.to_string())?;
    eval_compiled(&e, ctx)
}

fn eval_compiled(e: &minijinja::Expression<'_, '_>, ctx: &Value) -> Result<Value, String> {
    let v = e
        .eval(minijinja::Value::from(minijinja::value::Serde(ctx)))
        .map_err(|e| e.to_string())?;
    if v.is_undefined() || v.is_none() {
        return Ok(Value::Null);
    }
    serde_json::to_value(&v).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn native_values_and_text() {
        let ctx = json!({"input": {"ips": ["1.2.3.4"], "n": 3, "s": "a b"}});
        assert_eq!(
            render("{{ input.ips }}", &ctx).expect("r"),
            json!(["1.2.3.4"])
        );
        assert_eq!(render("{{ input.n }}", &ctx).expect("r"), json!(3));
        assert_eq!(
            render("/x/{{ input.s | urlencode }}", &ctx).expect("r"),
            json!("/x/a%20b")
        );
        assert_eq!(
            render("{{ input.missing.deeper }}", &ctx).expect("r"),
            Value::Null
        );
        assert_eq!(eval("input.n * 2", &ctx).expect("e"), json!(6));
        // A dict literal ends in `}}` too: still one expression, still an object.
        assert_eq!(
            render("{{ input.q or {'term': {'a': 'b'}} }}", &ctx).expect("r"),
            json!({"term": {"a": "b"}})
        );
        assert_eq!(
            render("{{ input.n }} and {{ input.s }}", &ctx).expect("r"),
            json!("3 and a b")
        );
        assert!(render("{% for i in range(100000000) %}x{% endfor %}", &ctx).is_err());
        assert_eq!(
            eval("input.ips is contains('1.2.3.4')", &ctx).expect("e"),
            json!(true)
        );
        assert_eq!(
            eval("input.s is contains('z')", &ctx).expect("e"),
            json!(false)
        );
    }
}
