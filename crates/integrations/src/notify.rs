//! Notifications: rules per tenant turn events into messages sent through a channel
//! integration (Slack, Teams, e-mail, webhook, PagerDuty: every type with `channel: true`).
//!
//! **Where deliveries come from.** A delivery and its `notification` job are written by the
//! store in the transaction of the event (see `bulwark_store::notifications`): nothing an API
//! call or an ingest batch acknowledged can lose its notification. SLA warnings come from
//! [`scan_duty`], run by the node holding the scanner lease, idempotent per (rule, incident).
//!
//! **Delivering** ([`process`]): the job's delivery is rendered (the rule's `title` and
//! `template`, sandboxed minijinja with fuel and no loader, over the delivery's stored
//! context) and sent with the channel's `notify` action through [`Integrations::call`], so the
//! outbound policy, timeouts, retries on 429/5xx inside the call, rate limits, the circuit
//! breaker and secret redaction all apply. Each attempt is recorded on the delivery. A
//! retryable failure is tried again after `notify_backoff` (30 s), doubling per attempt, up to
//! [`DELIVERY_ATTEMPTS`]; a failure retrying cannot fix (a template error, a 4xx, a disabled
//! or deleted channel) fails at once. A failed delivery keeps its error (secrets redacted),
//! is audited as `notification.failed`, is listed by `GET /api/v1/notifications/deliveries
//! ?status=failed` and counted on `/metrics`.

use crate::{CallError, Integrations, JobOutcome, template};
use bulwark_core::Scope;
use bulwark_store::Store;
use bulwark_store::automation::ClaimedJob;
use bulwark_store::notifications::{AttemptOutcome, DELIVERY_ATTEMPTS, Delivery};
use chrono::Utc;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// How often the scanner duty runs.
pub const SCAN_EVERY_SECS: u64 = 15;
/// The budget of one delivery attempt (the call's own retries included).
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest rendered title and text.
const MAX_TITLE: usize = 250;
const MAX_TEXT: usize = 20_000;
/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// Checks that a template compiles (for the API: `422` naming the field otherwise).
pub fn check_template(source: &str) -> Result<(), String> {
    template::env()
        .template_from_str(source)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Renders a rule's title and text over a delivery's context.
pub fn render(title: &str, text: &str, ctx: &Value) -> Result<(String, String), String> {
    let t = template::render_text(title, ctx).map_err(|e| format!("title: {e}"))?;
    let m = template::render_text(text, ctx).map_err(|e| format!("template: {e}"))?;
    let t: String = t.trim().chars().take(MAX_TITLE).collect();
    let m: String = m.chars().take(MAX_TEXT).collect();
    Ok((if t.is_empty() { "Bulwark".into() } else { t }, m))
}

/// An example context of an event, for test messages and template previews.
pub fn sample_context(event: &str) -> Value {
    let alert = json!({"id": Uuid::nil(), "title": "Test alert: brute force against web-01", "severity": "high",
        "source": "generic", "hostname": "web-01", "source_ip": "203.0.113.7", "rule_name": "sshd brute force",
        "tags": ["test"], "status": "new"});
    let incident = json!({"id": Uuid::nil(), "number": 1, "title": "Test incident", "severity": "high",
        "status": "open", "tags": ["test"]});
    let mut ctx = json!({"test": true, "alert": alert, "incident": incident,
        "approval": {"id": Uuid::nil(), "playbook_name": "contain-host", "message": "Isolate web-01?", "step": "isolate"},
        "run": {"id": Uuid::nil(), "playbook_name": "enrich-and-notify", "error": "test error"},
        "sla": {"minutes": 60, "minutes_left": 15, "breached": false},
        "changes": {"before": {"status": "open"}, "after": {"status": "in_progress"}}});
    if let Some(m) = ctx.as_object_mut() {
        m.insert("event".into(), json!(event));
    }
    ctx
}

/// Works on one `notification` job: `{"delivery": id}`.
pub async fn process(store: &Store, rt: &Arc<Integrations>, job: &ClaimedJob) -> JobOutcome {
    let Some(id) = job
        .payload
        .get("delivery")
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<Uuid>().ok())
    else {
        tracing::warn!(job = %job.id, "notification job without a delivery id; dropped");
        return JobOutcome::Done;
    };
    let d = match store.delivery_for_worker(id).await {
        Ok(Some(d)) => d,
        Ok(None) => return JobOutcome::Done,
        Err(e) => {
            return JobOutcome::RetryAt(
                Utc::now() + chrono::Duration::seconds(30),
                format!("loading the delivery: {e}"),
            );
        }
    };
    if d.status == "sent" || d.status == "failed" {
        return JobOutcome::Done;
    }
    match attempt(store, rt, &d).await {
        Ok(AttemptOutcome::Failed {
            retry_at: Some(at),
            error,
            ..
        }) => JobOutcome::RetryAt(at, error),
        Ok(_) => JobOutcome::Done,
        Err(e) => JobOutcome::RetryAt(
            Utc::now() + chrono::Duration::seconds(30),
            format!("recording the delivery: {e}"),
        ),
    }
}

/// One attempt of a delivery, recorded. Returns what was recorded.
pub async fn attempt(
    store: &Store,
    rt: &Arc<Integrations>,
    d: &Delivery,
) -> Result<AttemptOutcome, bulwark_store::StoreError> {
    let number = d.attempts + 1;
    let (title, message, result) = match send(store, rt, d).await {
        Ok((t, m)) => (Some(t), Some(m), Ok(())),
        Err((t, m, e)) => (t, m, Err(e)),
    };
    let outcome = match result {
        Ok(()) => AttemptOutcome::Sent {
            title: title.unwrap_or_default(),
            message: message.unwrap_or_default(),
        },
        Err(e) => {
            let retry_at =
                (e.retryable && number < d.max_attempts.min(DELIVERY_ATTEMPTS)).then(|| {
                    let wait = rt
                        .settings
                        .notify_backoff
                        .saturating_mul(2u32.saturating_pow(u32::try_from(number - 1).unwrap_or(0)))
                        .min(MAX_BACKOFF);
                    Utc::now()
                        + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::hours(1))
                });
            tracing::info!(delivery = %d.id, attempt = number, retry = retry_at.is_some(), error = %e.message,
                "notification delivery failed");
            AttemptOutcome::Failed {
                title,
                message,
                error: e.message,
                retry_at,
            }
        }
    };
    store.record_delivery_attempt(d.id, &outcome).await?;
    Ok(outcome)
}

type SendError = (Option<String>, Option<String>, CallError);

/// Renders and sends; the rendered text is returned with a failure too (when rendering
/// worked), so the delivery shows what was attempted.
async fn send(
    store: &Store,
    rt: &Arc<Integrations>,
    d: &Delivery,
) -> Result<(String, String), SendError> {
    let fail = |e: CallError| (None, None, e);
    let rule = match d.rule_id {
        Some(r) => store
            .notification_rule_of(r)
            .await
            .map_err(|e| fail(CallError::retry(format!("loading the rule: {e}"))))?,
        None => None,
    };
    let Some(rule) = rule else {
        return Err(fail(CallError::fatal(
            "the notification rule was deleted before the delivery was sent",
        )));
    };
    let (title, text) = render(&rule.title, &rule.template, &d.context)
        .map_err(|e| fail(CallError::fatal(format!("rendering failed: {e}"))))?;
    let with = |e: CallError| (Some(title.clone()), Some(text.clone()), e);
    let rec = store
        .get_integration(&Scope::Tenants(vec![d.tenant_id]), d.integration_id)
        .await
        .map_err(|e| match e {
            bulwark_store::StoreError::NotFound => with(CallError::fatal(
                "the channel integration no longer exists in this tenant",
            )),
            other => with(CallError::retry(format!(
                "loading the channel integration: {other}"
            ))),
        })?;
    if !rec.enabled {
        return Err(with(CallError::fatal(format!(
            "the channel integration `{}` is disabled",
            rec.name
        ))));
    }
    let inst = rt.open(&rec).map_err(with)?;
    let Some(def) = inst.ty.action("notify").filter(|_| inst.ty.channel) else {
        return Err(with(CallError::fatal(format!(
            "integration `{}` ({}) is not a notification channel",
            rec.name, rec.type_name
        ))));
    };
    let mut input = json!({"title": title, "text": text});
    if def.inputs.iter().any(|i| i.name == "event")
        && let Some(m) = input.as_object_mut()
    {
        m.insert("event".into(), d.context.clone());
    }
    rt.call(
        &inst,
        "notify",
        &input,
        &format!("notification:{}", d.id),
        CALL_TIMEOUT,
    )
    .await
    .map_err(|e| with(inst.redactor.error(e)))?;
    Ok((title, text))
}

/// Sends a rule's test message now: a delivery with one attempt, recorded like any other.
pub async fn send_test(
    store: &Store,
    rt: &Arc<Integrations>,
    scope: &Scope,
    rule_id: Uuid,
    event: &str,
) -> Result<Delivery, bulwark_store::StoreError> {
    let d = store
        .create_test_delivery(scope, rule_id, sample_context(event))
        .await?;
    attempt(store, rt, &d).await?;
    store.get_notification_delivery(scope, d.id).await
}

/// The scanner duty: on the node that holds the `notification-scanner` lease, queues the SLA
/// warnings that are due (idempotent per rule and incident).
pub async fn scan_duty(store: &Store, worker: &str) {
    match store
        .try_lease(
            "notification-scanner",
            worker,
            Duration::from_secs(SCAN_EVERY_SECS * 4),
        )
        .await
    {
        Ok(true) => {}
        Ok(false) => return,
        Err(e) => {
            tracing::warn!(error = %e, "notification scanner: cannot take the lease");
            return;
        }
    }
    match store.queue_sla_notifications(Utc::now()).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(queued = n, "SLA warnings queued"),
        Err(e) => tracing::warn!(error = %e, "notification scanner failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_compile_render_and_are_bounded() {
        assert!(check_template("{{ alert.title }} on {{ alert.hostname }}").is_ok());
        assert!(check_template("{{ alert.title ").is_err());
        assert!(check_template("{% include 'x' %}").is_ok()); // compiles; no loader at render
        let ctx = sample_context("alert.created");
        let (t, m) = render(
            "[{{ alert.severity | upper }}] {{ alert.title }}",
            "{{ alert.hostname }} {{ alert.source_ip }}",
            &ctx,
        )
        .expect("render");
        assert_eq!(t, "[HIGH] Test alert: brute force against web-01");
        assert_eq!(m, "web-01 203.0.113.7");
        assert!(render("x", "{% include 'other' %}", &ctx).is_err());
        assert!(render("x", "{% for i in range(100000000) %}x{% endfor %}", &ctx).is_err());
        let (t, _) = render("  ", "x", &ctx).expect("render");
        assert_eq!(t, "Bulwark");
    }
}
