//! The automation engine's speed: playbook runs per second and alert-to-first-action latency.
//!
//! Runs are started the way production starts them: alerts stored through the ingest
//! transaction with their triggered runs and jobs. Workers are the real engine
//! (`bulwark_engine`), in this process, on the same database. The playbook has three actions
//! and no external I/O: `alert.update` (tags), `alert.comment` and `set`.
//!
//! - Throughput: N runs queued first, then `workers` workers started; the time until the
//!   queue is empty gives runs/s (each run: claim, three actions, four saves, release).
//! - Latency: workers idle; alerts arrive one by one (spaced out); for each, the time from just
//!   before its ingest call to the start of its run's first action, as the step records it.

use anyhow::{Context, bail};
use bulwark_core::{Scope, TenantId};
use bulwark_store::automation::{PlaybookWrite, RunFilter};
use bulwark_store::ingest::{AlertTriggers, IncomingAlert, PlannedRun};
use bulwark_store::{ChangeCtx, NewTenant, Store};
use serde_json::json;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Which 3-action playbook: `db` writes to the alert (update, comment) like a triage playbook;
/// `pure` only computes (three Rhai scripts, each recorded as an attempt), which measures the
/// engine and its saves alone. (`set` is evaluated inside the planner, not recorded as an
/// attempt, so it would understate the work.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    Db,
    Pure,
}

fn playbook_spec(v: Variant) -> serde_json::Value {
    if v == Variant::Pure {
        return json!({
            "name": "bench-three-pure-actions",
            "triggers": [{"on": "alert.created", "if": "alert.severity in [\"critical\", \"high\"]"}],
            "actions": [
                {"ref": "first", "action": "script", "args": {"source": "input.n + 1", "input": {"n": 1}}},
                {"ref": "score", "action": "script", "depends_on": ["first"],
                 "args": {"source": "input.n * 2 + 1", "input": {"n": "{{ actions.first.result }}"}}},
                {"ref": "last", "action": "script", "depends_on": ["score"],
                 "args": {"source": "input.n - 1", "input": {"n": "{{ actions.score.result }}"}}}
            ]
        });
    }
    json!({
        "name": "bench-three-actions",
        "triggers": [{"on": "alert.created", "if": "alert.severity in [\"critical\", \"high\"]"}],
        "actions": [
            {"ref": "tag", "action": "alert.update", "args": {"tags": ["auto-triaged"]}},
            {"ref": "note", "action": "alert.comment", "depends_on": ["tag"],
             "args": {"text": "triaged by {{ playbook.name }} for {{ alert.source_ip }}"}},
            {"ref": "score", "action": "set", "depends_on": ["note"],
             "args": {"values": {"score": "{{ alert.severity }}"}}}
        ]
    })
}

struct Setup {
    store: Store,
    tenant: TenantId,
    planned: PlannedRun,
    _dir: tempfile::TempDir,
}

async fn setup(url: Option<String>, variant: Variant) -> anyhow::Result<Setup> {
    let dir = tempfile::tempdir()?;
    let url = url.unwrap_or_else(|| format!("sqlite://{}", dir.path().join("auto.db").display()));
    let store = bulwark_store::open(&url).await?;
    let ctx = ChangeCtx::system("bench");
    let slug = format!("bench-{}", uuid::Uuid::now_v7().simple());
    let tenant = store
        .create_tenant(
            &ctx,
            NewTenant {
                slug: slug.clone(),
                name: slug,
            },
        )
        .await?
        .id;
    let spec = playbook_spec(variant);
    let pb = bulwark_playbook::parse_json(&spec, &bulwark_playbook::Catalog::builtin())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let name = format!("{}-{}", pb.name(), uuid::Uuid::now_v7().simple());
    let rec = store
        .create_playbook(
            &ctx,
            &Scope::AllTenants,
            tenant,
            PlaybookWrite {
                tenant_id: Some(tenant),
                name: name.clone(),
                description: None,
                enabled: true,
                priority: 100,
                spec: pb.to_json(),
                source: spec.to_string(),
                source_format: "json",
                origin: "api",
                file_path: None,
            },
        )
        .await?;
    Ok(Setup {
        store,
        tenant,
        planned: PlannedRun {
            playbook_id: rec.id,
            playbook_name: name,
            playbook_version: rec.version,
            priority: 100,
        },
        _dir: dir,
    })
}

fn alert(s: &Setup, i: u64) -> anyhow::Result<IncomingAlert> {
    let payload = json!({
        "title": format!("SSH brute force #{i}"),
        "severity": "high",
        "source_id": format!("bench-{}-{i}", uuid::Uuid::now_v7().simple()),
        "src_ip": format!("203.0.{}.{}", (i / 250) % 250, i % 250 + 1),
    });
    let mut a = IncomingAlert::new(
        s.tenant,
        bulwark_normalize::normalize(bulwark_normalize::Source::Generic, &payload)?,
        payload.to_string(),
        bulwark_core::time::now(),
        ChangeCtx::system("bench"),
    );
    a.triggers = AlertTriggers {
        created: vec![s.planned.clone()],
        duplicate: Vec::new(),
    };
    Ok(a)
}

struct Workers {
    stop: watch::Sender<bool>,
    handles: Vec<tokio::task::JoinHandle<()>>,
}

fn start_workers(store: &Store, n: usize) -> Workers {
    let (stop, rx) = watch::channel(false);
    let handles = (0..n)
        .map(|i| {
            let config = bulwark_engine::EngineConfig {
                node_id: format!("bench-w{i}-{}", uuid::Uuid::now_v7().simple()),
                concurrency: std::env::var("BENCH_WORKER_CONCURRENCY")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(bulwark_engine::EngineConfig::default().concurrency),
                ..bulwark_engine::EngineConfig::default()
            };
            tokio::spawn(bulwark_engine::run_worker(
                store.clone(),
                config,
                rx.clone(),
            ))
        })
        .collect();
    Workers { stop, handles }
}

impl Workers {
    async fn stop(self) {
        let _ = self.stop.send(true);
        for h in self.handles {
            let _ = h.await;
        }
    }
}

async fn jobs_left(store: &Store) -> anyhow::Result<i64> {
    Ok(store.job_counts().await?.iter().map(|(_, n)| n).sum())
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Runs per second with `workers` workers draining `runs` queued runs.
async fn throughput(
    url: Option<String>,
    variant: Variant,
    runs: u64,
    workers: usize,
) -> anyhow::Result<(f64, u64)> {
    let s = setup(url, variant).await?;
    let batch: Vec<IncomingAlert> = (0..runs).map(|i| alert(&s, i)).collect::<Result<_, _>>()?;
    for chunk in batch.chunks(500) {
        s.store.ingest(chunk, chrono::Duration::hours(24)).await?;
    }
    let queued = jobs_left(&s.store).await?;
    if queued < runs as i64 {
        bail!("expected {runs} queued runs, found {queued}");
    }
    let started = Instant::now();
    let w = start_workers(&s.store, workers);
    let deadline = started + Duration::from_secs(600);
    while jobs_left(&s.store).await? > 0 {
        if Instant::now() > deadline {
            bail!("runs did not finish in 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    w.stop().await;
    let succeeded = s
        .store
        .list_runs(
            &Scope::AllTenants,
            &RunFilter {
                tenant_id: Some(s.tenant),
                status: Some("succeeded".into()),
                limit: 1,
                ..Default::default()
            },
        )
        .await?;
    if succeeded.is_empty() {
        bail!("no run succeeded");
    }
    Ok((runs as f64 / secs, count_succeeded(&s, runs).await?))
}

async fn count_succeeded(s: &Setup, runs: u64) -> anyhow::Result<u64> {
    let mut n = 0;
    let mut before = None;
    loop {
        let page = s
            .store
            .list_runs(
                &Scope::AllTenants,
                &RunFilter {
                    tenant_id: Some(s.tenant),
                    before,
                    limit: 500,
                    ..Default::default()
                },
            )
            .await?;
        let Some(last) = page.last() else { break };
        before = Some(last.id);
        n += page.iter().filter(|r| r.status == "succeeded").count() as u64;
        if n > runs {
            break;
        }
    }
    Ok(n)
}

/// Alert-to-first-action latencies in ms, one alert at a time, `gap` apart.
async fn latency(url: Option<String>, alerts: u64, workers: usize) -> anyhow::Result<Vec<f64>> {
    let s = setup(url, Variant::Db).await?;
    let w = start_workers(&s.store, workers);
    // Let the workers reach their idle wait.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut out = Vec::with_capacity(alerts as usize);
    for i in 0..alerts {
        let a = alert(&s, i)?;
        let t0 = chrono::Utc::now();
        let o = s.store.ingest(&[a], chrono::Duration::hours(24)).await?;
        let alert_id = o.first().context("no outcome")?.alert_id;
        let deadline = Instant::now() + Duration::from_secs(10);
        let first = loop {
            let runs = s
                .store
                .list_runs(
                    &Scope::AllTenants,
                    &RunFilter {
                        alert_id: Some(alert_id),
                        limit: 1,
                        ..Default::default()
                    },
                )
                .await?;
            if let Some(run) = runs.first() {
                let steps = s.store.run_steps(&Scope::AllTenants, run.id).await?;
                if let Some(step) = steps.iter().min_by_key(|st| st.started_at) {
                    break step.started_at;
                }
            }
            if Instant::now() > deadline {
                bail!("alert {alert_id}: no action started within 10 s");
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        };
        out.push((first - t0).num_microseconds().unwrap_or(0) as f64 / 1000.0);
        // Wait for the run to finish, so each alert meets idle workers.
        while jobs_left(&s.store).await? > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    w.stop().await;
    out.sort_by(f64::total_cmp);
    Ok(out)
}

pub async fn automation(
    url: Option<String>,
    runs: u64,
    workers: Vec<usize>,
    alerts: u64,
) -> anyhow::Result<String> {
    let backend = if url.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    let mut report = format!(
        "### Automation ({backend}, {} cores)\n\nRuns queued by the ingest transaction, workers (64 runs at a time each) in the harness process. `db`: alert.update, alert.comment, set; `pure`: three scripts.\n\n| playbook | workers | runs | runs/s | succeeded |\n| --- | ---: | ---: | ---: | ---: |\n",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    for variant in [Variant::Db, Variant::Pure] {
        for &w in &workers {
            let (rate, ok) = throughput(url.clone(), variant, runs, w).await?;
            let name = format!("{variant:?}").to_lowercase();
            report.push_str(&format!("| {name} | {w} | {runs} | {rate:.0} | {ok} |\n"));
            eprintln!("{name}, {w} worker(s): {rate:.0} runs/s ({ok}/{runs} succeeded)");
        }
    }
    let lat = latency(url, alerts, 1).await?;
    report.push_str(&format!(
        "\nAlert-to-first-action latency, 1 idle worker, {alerts} alerts one at a time: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms\n",
        pct(&lat, 0.5),
        pct(&lat, 0.9),
        pct(&lat, 0.99),
        pct(&lat, 1.0)
    ));
    Ok(report)
}
