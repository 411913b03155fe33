//! Integrations written in Rust: SMTP email and DNS. Their schema (fields, actions) is declared
//! in YAML like every other type (`native: email`); only the call is code.

use crate::types::ActionDef;
use crate::{CallError, Instance, Integrations};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

pub fn exists(name: &str) -> bool {
    matches!(name, "email" | "dns")
}

pub async fn call(
    name: &str,
    rt: &Integrations,
    inst: &Instance,
    def: &ActionDef,
    input: &Value,
    deadline: Instant,
) -> Result<Value, CallError> {
    let budget = deadline.saturating_duration_since(Instant::now());
    match name {
        "email" => email(rt, inst, &def.name, input, budget).await,
        "dns" => dns(&def.name, input, budget).await,
        other => Err(CallError::fatal(format!("no native handler `{other}`"))),
    }
}

/// A native type's health check: for email, connect and authenticate (sends nothing).
pub async fn health(name: &str, inst: &Instance) -> Result<String, CallError> {
    match name {
        "email" => {
            let (transport, _) = smtp_transport(inst, Duration::from_secs(15))?;
            match transport.test_connection().await {
                Ok(true) => Ok("OK: the SMTP server accepted the connection".into()),
                Ok(false) => Err(CallError::fatal("the SMTP server refused the connection")),
                Err(e) => Err(CallError::fatal(format!("SMTP: {}", smtp_reason(&e)))),
            }
        }
        "dns" => Ok("OK: uses the system resolver".into()),
        other => Err(CallError::fatal(format!("no native handler `{other}`"))),
    }
}

fn smtp_reason(e: &lettre::transport::smtp::Error) -> String {
    // lettre's messages name the server's answer; they never contain the password.
    let s = e.to_string();
    s.chars().filter(|c| !c.is_control()).take(300).collect()
}

type Smtp = lettre::AsyncSmtpTransport<lettre::Tokio1Executor>;

fn smtp_transport(inst: &Instance, timeout: Duration) -> Result<(Smtp, String), CallError> {
    use lettre::transport::smtp::authentication::Credentials;
    let host = inst
        .config_str("host")
        .ok_or_else(|| CallError::fatal("host: not configured"))?
        .to_owned();
    let port = inst
        .config
        .get("port")
        .and_then(Value::as_u64)
        .and_then(|p| u16::try_from(p).ok())
        .unwrap_or(587);
    let security = inst.config_str("security").unwrap_or("starttls");
    let builder = match security {
        "tls" => Smtp::relay(&host).map_err(|e| CallError::fatal(format!("SMTP: {e}")))?,
        "starttls" => {
            Smtp::starttls_relay(&host).map_err(|e| CallError::fatal(format!("SMTP: {e}")))?
        }
        "none" => Smtp::builder_dangerous(&host),
        _ => return Err(CallError::fatal("security: expected tls, starttls or none")),
    };
    let mut builder = builder.port(port).timeout(Some(timeout));
    if let (Some(u), Some(p)) = (inst.config_str("username"), inst.secret("password")) {
        builder = builder.credentials(Credentials::new(u.to_owned(), p.to_owned()));
    }
    Ok((builder.build(), security.to_owned()))
}

async fn email(
    rt: &Integrations,
    inst: &Instance,
    action: &str,
    input: &Value,
    budget: Duration,
) -> Result<Value, CallError> {
    use lettre::AsyncTransport;
    use lettre::message::{Mailbox, Message, header::ContentType};
    let host = inst
        .config_str("host")
        .ok_or_else(|| CallError::fatal("host: not configured"))?;
    let port = inst
        .config
        .get("port")
        .and_then(Value::as_u64)
        .and_then(|p| u16::try_from(p).ok())
        .unwrap_or(587);
    let cleartext = inst.config_str("security") == Some("none");
    rt.policy().check_host(host, port, cleartext).await?;
    let from: Mailbox = inst
        .config_str("from")
        .ok_or_else(|| CallError::fatal("from: not configured"))?
        .parse()
        .map_err(|_| CallError::fatal("from: not an e-mail address"))?;
    let (subject, text) = match action {
        "notify" => (
            input
                .get("title")
                .and_then(Value::as_str)
                .unwrap_or("Bulwark notification"),
            input
                .get("text")
                .and_then(Value::as_str)
                .unwrap_or_default(),
        ),
        _ => (
            input
                .get("subject")
                .and_then(Value::as_str)
                .unwrap_or_default(),
            input
                .get("text")
                .and_then(Value::as_str)
                .unwrap_or_default(),
        ),
    };
    let to: Vec<String> = match input.get("to") {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => inst
            .config
            .get("default_to")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
    };
    if to.is_empty() {
        return Err(CallError::fatal(
            "to: no recipient (give `to` or configure default_to)",
        ));
    }
    let mut mb = Message::builder().from(from).subject(subject);
    for t in &to {
        let m: Mailbox = t
            .parse()
            .map_err(|_| CallError::fatal(format!("to: `{t}` is not an e-mail address")))?;
        mb = mb.to(m);
    }
    let msg = mb
        .header(ContentType::TEXT_PLAIN)
        .body(text.to_owned())
        .map_err(|e| CallError::fatal(format!("message: {e}")))?;
    let (transport, _) = smtp_transport(inst, budget.max(Duration::from_secs(1)))?;
    let resp = tokio::time::timeout(budget, transport.send(msg))
        .await
        .map_err(|_| CallError::retry("SMTP: timed out"))?
        .map_err(|e| {
            let transient = e.is_transient() || e.is_timeout();
            let m = format!("SMTP: {}", smtp_reason(&e));
            if transient {
                CallError::retry(m)
            } else {
                CallError::fatal(m)
            }
        })?;
    Ok(json!({
        "sent": true,
        "to": to,
        "code": resp.code().to_string(),
        "message": resp.message().collect::<Vec<_>>().join(" "),
    }))
}

async fn dns(action: &str, input: &Value, budget: Duration) -> Result<Value, CallError> {
    if action != "resolve" {
        return Err(CallError::fatal(format!("dns has no action `{action}`")));
    }
    let name = input
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| CallError::fatal("input.name: required"))?;
    if name.len() > 253 || name.contains(['/', ' ', ':']) {
        return Err(CallError::fatal("input.name: not a host name"));
    }
    let found = tokio::time::timeout(budget, tokio::net::lookup_host((name, 0)))
        .await
        .map_err(|_| CallError::retry("DNS: timed out"))?;
    match found {
        Ok(addrs) => {
            let mut ips: Vec<String> = addrs.map(|a| a.ip().to_string()).collect();
            ips.sort();
            ips.dedup();
            Ok(json!({"name": name, "found": !ips.is_empty(), "addresses": ips}))
        }
        Err(_) => Ok(json!({"name": name, "found": false, "addresses": []})),
    }
}
