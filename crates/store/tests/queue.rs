//! The alert queue's filters give the same alerts whichever way the store reads them: through
//! an index for rare values, or by reading the queue in order for common ones (SQLite decides
//! by a bounded count first; PostgreSQL's planner decides), and a time window bounded by id.
//! 20,500 alerts are written with raw SQL (the ingest path would be slow in a debug build).

use bulwark_core::{AlertAccess, Scope, TenantId};
use bulwark_store::alerts::{AlertFilter, AlertSummary};
use bulwark_store::testing::{exec_raw, fresh, requested_backend};
use bulwark_store::{Backend, ChangeCtx, NewTenant};
use chrono::{DateTime, Duration, TimeZone, Utc};
use uuid::Uuid;

const COMMON: i64 = 20_500;

fn admin() -> AlertAccess {
    AlertAccess {
        scope: Scope::AllTenants,
        bypass_tags: true,
        subjects: vec![],
    }
}

fn all(filter: AlertFilter) -> AlertFilter {
    AlertFilter {
        limit: 100_000,
        ..filter
    }
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("date")
}

/// `COMMON` alerts one minute apart from `start()`, all sharing a word, a tag, an address and
/// an observable; and three rare ones. Like the store's, each id is a UUIDv7 of its alert's
/// first_seen (random below the millisecond).
async fn seed(url: &str, t: TenantId) {
    let pg = requested_backend() == Backend::Postgres;
    let tenant = if pg {
        format!("'{}'::uuid", t.0)
    } else {
        format!("X'{}'", t.0.simple())
    };
    let bulk = if pg {
        format!(
            "INSERT INTO alerts (id, tenant_id, source, source_id, fingerprint, title, severity, normalized, \
             raw_payload, first_seen, last_seen, created_at, updated_at, description, tags, source_ip, rule_name) \
             SELECT (lpad(to_hex(1767225600000 + i * 60000), 12, '0') || '7' || substr(md5('a' || i), 1, 3) \
             || '8' || substr(md5('a' || i), 4, 15))::uuid, {tenant}, 'generic', 'g-' || i, decode(md5(i::text), 'hex'), \
             'Common alert ' || i, 'low', '{{}}', '{{}}', \
             timestamptz '2026-01-01 00:00:00+00' + i * interval '1 minute', \
             timestamptz '2026-01-01 00:00:00+00' + i * interval '1 minute', now(), now(), \
             'runs PowerShell daily', '[\"common-tag\", \"x\"]', '198.51.100.7', 'Rule ' || (i % 7) \
             FROM generate_series(0, {}) i",
            COMMON - 1
        )
    } else {
        format!(
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < {}) \
             INSERT INTO alerts (id, tenant_id, source, source_id, fingerprint, title, severity, normalized, \
             raw_payload, first_seen, last_seen, created_at, updated_at, description, tags, source_ip, rule_name) \
             SELECT unhex(printf('%012x', 1767225600000 + i * 60000) || '7' || substr(hex(randomblob(2)), 1, 3) \
             || '8' || substr(hex(randomblob(8)), 1, 15)), {tenant}, 'generic', 'g-' || i, randomblob(32), 'Common alert ' || i, 'low', \
             '{{}}', '{{}}', strftime('%Y-%m-%dT%H:%M:%S+00:00', '2026-01-01', '+' || i || ' minutes'), \
             strftime('%Y-%m-%dT%H:%M:%S+00:00', '2026-01-01', '+' || i || ' minutes'), '2026-01-01T00:00:00+00:00', \
             '2026-01-01T00:00:00+00:00', 'runs PowerShell daily', '[\"common-tag\",\"x\"]', '198.51.100.7', \
             'Rule ' || (i % 7) FROM n",
            COMMON - 1
        )
    };
    exec_raw(url, &bulk).await.expect("bulk alerts");
    for (i, id) in rare_ids().iter().enumerate() {
        let (id, at) = if pg {
            (
                format!("'{id}'::uuid"),
                "timestamptz '2026-01-05 00:00:30+00'".to_string(),
            )
        } else {
            (
                format!("X'{}'", id.simple()),
                "'2026-01-05T00:00:30+00:00'".to_string(),
            )
        };
        let fp = if pg {
            format!("'\\x{i:064}'::bytea")
        } else {
            format!("X'{i:064}'")
        };
        exec_raw(
            url,
            &format!(
                "INSERT INTO alerts (id, tenant_id, source, source_id, fingerprint, title, severity, normalized, \
                 raw_payload, first_seen, last_seen, created_at, updated_at, description, tags, dest_ip) \
                 VALUES ({id}, {tenant}, 'generic', 'rare-{i}', {fp}, 'Rare alert {i}', 'high', '{{}}', '{{}}', \
                 {at}, {at}, {at}, {at}, 'Tool output matches MimiKatz signatures', '[\"rare-tag\"]', '203.0.113.5')"
            ),
        )
        .await
        .expect("rare alert");
    }
    // One observable on every common alert, one on the rare ones.
    let (common_obs, rare_obs, private) = if pg {
        (
            format!("'{}'::uuid", Uuid::now_v7()),
            format!("'{}'::uuid", Uuid::now_v7()),
            "false",
        )
    } else {
        (
            format!("X'{}'", Uuid::now_v7().simple()),
            format!("X'{}'", Uuid::now_v7().simple()),
            "0",
        )
    };
    for (id, value) in [(&common_obs, "common.example"), (&rare_obs, "evil.example")] {
        exec_raw(
            url,
            &format!(
                "INSERT INTO observables (id, tenant_id, kind, value, is_private, first_seen, last_seen) \
                 SELECT {id}, {tenant}, 'domain', '{value}', {private}, first_seen, first_seen FROM alerts LIMIT 1"
            ),
        )
        .await
        .expect("observable");
    }
    exec_raw(
        url,
        &format!(
            "INSERT INTO alert_observables (alert_id, observable_id) SELECT id, {common_obs} FROM alerts \
             WHERE source_id LIKE 'g-%'"
        ),
    )
    .await
    .expect("links");
    exec_raw(
        url,
        &format!(
            "INSERT INTO alert_observables (alert_id, observable_id) SELECT id, {rare_obs} FROM alerts \
             WHERE source_id LIKE 'rare-%'"
        ),
    )
    .await
    .expect("links");
}

/// UUIDv7s of 2026-01-05T00:00:30Z, the rare alerts' first_seen.
fn rare_ids() -> [Uuid; 3] {
    let ms = 1_767_571_230_000;
    [0x01, 0x80, 0xf0].map(|b| uuid::Builder::from_unix_timestamp_millis(ms, &[b; 10]).into_uuid())
}

fn ids(items: &[AlertSummary]) -> Vec<Uuid> {
    items.iter().map(|a| a.id).collect()
}

fn sorted_desc(items: &[AlertSummary]) -> bool {
    items.windows(2).all(|w| w[0].id > w[1].id)
}

#[tokio::test]
async fn filters_give_the_same_alerts_however_they_are_read() {
    let db = fresh().await;
    let s = &db.store;
    let t = s
        .create_tenant(
            &ChangeCtx::system("test"),
            NewTenant {
                slug: "acme".into(),
                name: "acme".into(),
            },
        )
        .await
        .expect("tenant")
        .id;
    seed(&db.url, t).await;
    let a = admin();
    let mut rare = rare_ids().to_vec();
    rare.sort_by(|x, y| y.cmp(x));

    // Common values (read in queue order on SQLite) and rare ones (through an index).
    let cases: Vec<(&str, AlertFilter, usize)> = vec![
        (
            "common text",
            AlertFilter {
                text: Some("powershell".into()),
                ..AlertFilter::default()
            },
            COMMON as usize,
        ),
        (
            "common text, across case",
            AlertFilter {
                text: Some("RUNS powerSHELL".into()),
                ..AlertFilter::default()
            },
            COMMON as usize,
        ),
        (
            "common tag",
            AlertFilter {
                tag: Some("common-tag".into()),
                ..AlertFilter::default()
            },
            COMMON as usize,
        ),
        (
            "common address",
            AlertFilter {
                ip: Some("198.51.100.7".into()),
                ..AlertFilter::default()
            },
            COMMON as usize,
        ),
        (
            "common observable",
            AlertFilter {
                observable: Some("common.example".into()),
                ..AlertFilter::default()
            },
            COMMON as usize,
        ),
        (
            "rule name",
            AlertFilter {
                text: Some("rule 3".into()),
                ..AlertFilter::default()
            },
            (0..COMMON).filter(|i| i % 7 == 3).count(),
        ),
    ];
    for (name, filter, want) in cases {
        let got = s.list_alerts(&a, &all(filter.clone())).await.expect(name);
        assert_eq!(got.len(), want, "{name}");
        assert!(sorted_desc(&got), "{name}: newest first");
        // The first page is the head of the whole list.
        let page = s
            .list_alerts(
                &a,
                &AlertFilter {
                    limit: 50,
                    ..filter
                },
            )
            .await
            .expect(name);
        assert_eq!(ids(&page), ids(&got[..50]), "{name}: first page");
    }
    for (name, filter) in [
        (
            "rare text",
            AlertFilter {
                text: Some("mimikatz".into()),
                ..AlertFilter::default()
            },
        ),
        (
            "rare text, across case",
            AlertFilter {
                text: Some("MATCHES MIMIKATZ".into()),
                ..AlertFilter::default()
            },
        ),
        (
            "rare tag",
            AlertFilter {
                tag: Some("rare-tag".into()),
                ..AlertFilter::default()
            },
        ),
        (
            "rare address",
            AlertFilter {
                ip: Some("203.0.113.5".into()),
                ..AlertFilter::default()
            },
        ),
        (
            "rare observable",
            AlertFilter {
                observable: Some("evil.example".into()),
                ..AlertFilter::default()
            },
        ),
    ] {
        let got = s.list_alerts(&a, &all(filter)).await.expect(name);
        assert_eq!(ids(&got), rare, "{name}");
    }
    for text in ["\"mimikatz", "mimikatz\"", "zz", "nothing like this"] {
        let got = s
            .list_alerts(
                &a,
                &all(AlertFilter {
                    text: Some(text.into()),
                    ..AlertFilter::default()
                }),
            )
            .await
            .expect(text);
        assert!(got.is_empty(), "{text}: {}", got.len());
    }

    // A day in the middle: 5,000+ newer alerts, so the window is bounded by id first.
    let since = start() + Duration::days(4);
    let until = start() + Duration::days(5);
    for oldest_first in [false, true] {
        let got = s
            .list_alerts(
                &a,
                &all(AlertFilter {
                    since: Some(since),
                    until: Some(until),
                    oldest_first,
                    ..AlertFilter::default()
                }),
            )
            .await
            .expect("window");
        assert_eq!(
            got.len(),
            1440 + 3,
            "one day of minutes and the rare alerts"
        );
        assert!(
            got.iter()
                .all(|x| x.first_seen >= since && x.first_seen < until)
        );
        // Paging through it with the cursor gives the same alerts.
        let mut paged = Vec::new();
        let mut after = None;
        loop {
            let page = s
                .list_alerts(
                    &a,
                    &AlertFilter {
                        since: Some(since),
                        until: Some(until),
                        oldest_first,
                        after,
                        limit: 400,
                        ..AlertFilter::default()
                    },
                )
                .await
                .expect("page");
            paged.extend(ids(&page));
            match page.last() {
                Some(last) if page.len() == 400 => after = Some(last.id),
                _ => break,
            }
        }
        assert_eq!(paged, ids(&got), "oldest_first {oldest_first}");
    }
    // One end open, far from where the queue starts reading (10,000+ alerts on the far side):
    // also bounded by id, and the same alerts as plain conditions give.
    let everything = s
        .list_alerts(&a, &all(AlertFilter::default()))
        .await
        .expect("everything");
    let cut = start() + Duration::days(10);
    for (since, until, oldest_first) in [
        (Some(cut), None, true),
        (None, Some(cut), false),
        (Some(cut), None, false),
        (None, Some(cut), true),
    ] {
        let got = s
            .list_alerts(
                &a,
                &all(AlertFilter {
                    since,
                    until,
                    oldest_first,
                    ..AlertFilter::default()
                }),
            )
            .await
            .expect("open window");
        let mut want: Vec<Uuid> = everything
            .iter()
            .filter(|x| since.is_none_or(|t| x.first_seen >= t))
            .filter(|x| until.is_none_or(|t| x.first_seen < t))
            .map(|x| x.id)
            .collect();
        if oldest_first {
            want.reverse();
        }
        assert!(!want.is_empty());
        assert_eq!(
            ids(&got),
            want,
            "since {since:?}, until {until:?}, oldest_first {oldest_first}"
        );
    }
    let empty = s
        .list_alerts(
            &a,
            &all(AlertFilter {
                since: Some(start() - Duration::days(30)),
                until: Some(start() - Duration::days(29)),
                ..AlertFilter::default()
            }),
        )
        .await
        .expect("empty window");
    assert!(empty.is_empty());
}
