//! E-mail over SMTP against a real (minimal) SMTP server started by the test on 127.0.0.1.

use bulwark_core::TenantId;
use bulwark_integrations::Integrations;
use bulwark_store::integrations::IntegrationRecord;
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// Accepts SMTP sessions (no TLS, AUTH PLAIN accepted for `bulwark`/`smtp-pass`) and keeps
/// every message's envelope and data.
type Inbox = Arc<Mutex<Vec<(Vec<String>, String)>>>;

async fn smtp_server() -> (u16, Inbox) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = l.local_addr().expect("addr").port();
    let got: Inbox = Default::default();
    let store = got.clone();
    tokio::spawn(async move {
        while let Ok((sock, _)) = l.accept().await {
            let store = store.clone();
            tokio::spawn(async move {
                let (r, mut w) = sock.into_split();
                let mut lines = BufReader::new(r).lines();
                let _ = w.write_all(b"220 fake.smtp ESMTP\r\n").await;
                let mut rcpt = Vec::new();
                while let Ok(Some(line)) = lines.next_line().await {
                    let up = line.to_ascii_uppercase();
                    let reply: &[u8] = if up.starts_with("EHLO") || up.starts_with("HELO") {
                        b"250-fake.smtp\r\n250 AUTH PLAIN LOGIN\r\n"
                    } else if up.starts_with("AUTH PLAIN") {
                        use base64::Engine;
                        let cred = line.split_whitespace().nth(2).unwrap_or_default();
                        let raw = base64::engine::general_purpose::STANDARD
                            .decode(cred)
                            .unwrap_or_default();
                        if raw == b"\0bulwark\0smtp-pass" {
                            b"235 2.7.0 Authentication successful\r\n"
                        } else {
                            b"535 5.7.8 Authentication credentials invalid\r\n"
                        }
                    } else if up.starts_with("MAIL FROM") {
                        b"250 OK\r\n"
                    } else if up.starts_with("RCPT TO") {
                        rcpt.push(line[8..].trim().to_owned());
                        b"250 OK\r\n"
                    } else if up == "DATA" {
                        let _ = w
                            .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                            .await;
                        let mut data = String::new();
                        while let Ok(Some(l)) = lines.next_line().await {
                            if l == "." {
                                break;
                            }
                            data.push_str(&l);
                            data.push('\n');
                        }
                        if let Ok(mut g) = store.lock() {
                            g.push((std::mem::take(&mut rcpt), data));
                        }
                        b"250 2.0.0 queued as 12345\r\n"
                    } else if up == "QUIT" {
                        let _ = w.write_all(b"221 bye\r\n").await;
                        break;
                    } else if up == "RSET" || up == "NOOP" {
                        b"250 OK\r\n"
                    } else {
                        b"502 unknown\r\n"
                    };
                    if w.write_all(reply).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    (port, got)
}

fn record(rt: &Integrations, port: u16, password: &str) -> IntegrationRecord {
    let id = uuid::Uuid::now_v7();
    let secrets = json!({"password": password})
        .as_object()
        .cloned()
        .unwrap_or_default();
    IntegrationRecord {
        id,
        tenant_id: TenantId(uuid::Uuid::now_v7()),
        type_name: "email".into(),
        name: "mail".into(),
        description: None,
        config: json!({"host": "127.0.0.1", "port": port, "security": "none", "username": "bulwark",
                       "from": "Bulwark <soc@example.org>", "default_to": ["oncall@example.org"]}),
        secrets: rt.seal(id, &secrets),
        enabled: true,
        is_default: true,
        enrichment: false,
        health_status: None,
        health_message: None,
        health_checked_at: None,
        health_latency_ms: None,
        created_by: None,
        created_at: chrono::Utc::now(),
        updated_at: chrono::Utc::now(),
    }
}

#[tokio::test]
async fn sends_through_a_local_smtp_server() {
    let (port, got) = smtp_server().await;
    let rt = Integrations::for_tests(&["127.0.0.1"]);
    let inst = rt.open(&record(&rt, port, "smtp-pass")).expect("open");
    let t = Duration::from_secs(10);
    let out = rt
        .call(&inst, "send", &json!({"to": ["analyst@example.org"], "subject": "Alert", "text": "host web-01 is beaconing"}), "k", t)
        .await
        .expect("sent");
    assert_eq!(out["sent"], true);
    assert_eq!(out["code"], "250");
    let out = rt
        .call(
            &inst,
            "notify",
            &json!({"title": "New critical alert", "text": "see Bulwark"}),
            "k",
            t,
        )
        .await
        .expect("notify");
    assert_eq!(out["to"], json!(["oncall@example.org"]));
    let msgs = got.lock().expect("lock").clone();
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[0].0, vec!["<analyst@example.org>".to_string()]);
    assert!(
        msgs[0].1.contains("Subject: Alert") && msgs[0].1.contains("host web-01 is beaconing"),
        "{}",
        msgs[0].1
    );
    assert!(msgs[1].1.contains("Subject: New critical alert"));
    assert!(rt.health(&inst).await.ok);

    // A wrong password: the server's reason, never the password.
    let bad = rt
        .open(&record(&rt, port, "wrong-password-1"))
        .expect("open");
    let err = rt
        .call(
            &bad,
            "send",
            &json!({"to": ["a@example.org"], "subject": "s", "text": "t"}),
            "k",
            t,
        )
        .await
        .expect_err("auth");
    assert!(
        err.message.contains("535") || err.message.to_lowercase().contains("credentials"),
        "{err:?}"
    );
    assert!(!err.message.contains("wrong-password-1"));
    let h = rt.health(&bad).await;
    assert!(!h.message.contains("wrong-password-1"));

    // Unencrypted SMTP to a destination the operator did not allow is refused.
    let strict = Integrations::for_tests(&[]);
    let inst = strict
        .open(&record(&strict, port, "smtp-pass"))
        .expect("open");
    let err = strict
        .call(
            &inst,
            "send",
            &json!({"to": ["a@example.org"], "subject": "s", "text": "t"}),
            "k",
            t,
        )
        .await
        .expect_err("refused");
    assert!(err.message.contains("refused"), "{err:?}");
}

/// A notification rule on the e-mail channel: an incident opened in the store queues a
/// delivery in its transaction; the job handler renders it and the SMTP server receives it.
#[tokio::test]
async fn an_incident_notification_arrives_by_e_mail() {
    use bulwark_core::{AlertAccess, Scope};
    use bulwark_store::incidents::{Acting, NewIncident};
    use bulwark_store::integrations::IntegrationWrite;
    use bulwark_store::notifications::RuleWrite;
    use bulwark_store::{ChangeCtx, NewTenant};

    let (port, got) = smtp_server().await;
    let rt = Arc::new(Integrations::for_tests(&["127.0.0.1"]));
    let db = bulwark_store::testing::fresh().await;
    let store = db.store.clone();
    let ctx = ChangeCtx::system("test");
    let t = store
        .create_tenant(
            &ctx,
            NewTenant {
                slug: "acme".into(),
                name: "Acme".into(),
            },
        )
        .await
        .expect("tenant")
        .id;
    let rec = record(&rt, port, "smtp-pass");
    store
        .create_integration(
            &ctx,
            &Scope::AllTenants,
            IntegrationWrite {
                id: rec.id,
                tenant_id: t,
                type_name: "email".into(),
                name: "mail".into(),
                description: None,
                config: rec.config.clone(),
                secrets: rec.secrets.clone(),
                secret_fields: vec!["password".into()],
                enabled: true,
                is_default: true,
                enrichment: false,
            },
        )
        .await
        .expect("integration");
    store
        .create_notification_rule(
            &ctx,
            &Scope::AllTenants,
            RuleWrite {
                id: uuid::Uuid::now_v7(),
                tenant_id: t,
                name: "incidents by mail".into(),
                event: "incident.created".into(),
                min_severity: Some("high".into()),
                sla_minutes: None,
                warn_minutes: None,
                integration_id: rec.id,
                title: "Incident #{{ incident.number }}: {{ incident.title }}".into(),
                template: "Severity {{ incident.severity }}, opened by {{ incident.created_by }}"
                    .into(),
                enabled: true,
            },
        )
        .await
        .expect("rule");
    let access = AlertAccess {
        scope: Scope::AllTenants,
        bypass_tags: true,
        subjects: vec![],
    };
    let who = Acting {
        ctx: &ctx,
        access: &access,
        platform_tenant: t,
    };
    for (title, severity) in [
        ("Ransomware on fs-01", "critical"),
        ("Phish reported", "low"),
    ] {
        store
            .create_incident(
                &who,
                NewIncident {
                    tenant_id: t,
                    title: Some(title.into()),
                    severity: Some(severity.into()),
                    ..Default::default()
                },
            )
            .await
            .expect("incident");
    }
    let jobs = store
        .claim_jobs("w", &["notification"], 10, Duration::from_secs(60))
        .await
        .expect("claim");
    assert_eq!(jobs.len(), 1, "only the critical incident notifies");
    let outcome = bulwark_integrations::notify::process(&store, &rt, &jobs[0]).await;
    assert_eq!(outcome, bulwark_integrations::JobOutcome::Done);
    let msgs = got.lock().expect("lock").clone();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].0, vec!["<oncall@example.org>".to_string()]);
    assert!(
        msgs[0]
            .1
            .contains("Subject: Incident #1: Ransomware on fs-01")
            && msgs[0].1.contains("Severity critical, opened by test"),
        "{}",
        msgs[0].1
    );
    let d = store
        .list_notification_deliveries(
            &Scope::AllTenants,
            &bulwark_store::notifications::DeliveryFilter {
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .expect("deliveries");
    assert_eq!(d[0].status, "sent");
    assert_eq!(
        d[0].title.as_deref(),
        Some("Incident #1: Ransomware on fs-01")
    );
}
