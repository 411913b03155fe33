//! Verification throughput over a 1,000,000-record chain.
//!
//! `cargo run --release --example bench_verify [-- N]`
//!
//! Builds N realistic records in memory (one tenant, a signed checkpoint
//! every 10,000 records), then times single-threaded verification of the
//! full chain, including canonical decoding of every record and checkpoint
//! checks. Also times the export -> verify_export path.

use std::time::{Duration, Instant};

use bulwark_audit::*;
use serde_json::json;
use uuid::Uuid;

fn record(i: u64) -> NewRecord {
    let events = EventType::ALL;
    NewRecord {
        ts: AuditTime::from_unix_micros(1_735_689_600_000_000 + i as i64 * 997)
            .unwrap_or_else(|_| AuditTime::now()),
        actor: Actor {
            kind: ActorKind::User,
            id: Some(format!(
                "0192a4c1-{:04x}-7000-8000-00000000{:04x}",
                i % 97,
                i % 13
            )),
            name: Some("alice@example.org".into()),
        },
        event_type: events[(i as usize) % events.len()],
        target: Target {
            kind: "alert".into(),
            id: Some(format!("0192a4c1-0000-7000-8000-{i:012x}")),
        },
        summary: Summary {
            before: AuditValue::new(json!({"status": "new", "assignee": null, "severity": 3})).ok(),
            after: AuditValue::new(
                json!({"status": "in_progress", "assignee": "alice", "severity": 4}),
            )
            .ok(),
            detail: None,
        },
        request_id: Some(format!("req-{i:016x}")),
    }
}

/// CPU time consumed by this thread (Linux `schedstat`), to report
/// throughput independently of other load on the machine.
fn thread_cpu() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    Some(Duration::from_nanos(
        s.split_whitespace().next()?.parse().ok()?,
    ))
}

/// Runs `f` and returns (wall time, thread CPU time if known).
fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration, Option<Duration>) {
    let (c0, t0) = (thread_cpu(), Instant::now());
    let out = f();
    let wall = t0.elapsed();
    let cpu = thread_cpu().zip(c0).map(|(b, a)| b.saturating_sub(a));
    (out, wall, cpu)
}

fn rate(n: u64, wall: Duration, cpu: Option<Duration>) -> String {
    let per_wall = n as f64 / wall.as_secs_f64();
    match cpu {
        Some(c) if !c.is_zero() => format!(
            "{per_wall:.0} records/s wall ({:.2?}), {:.0} records/s per CPU-second ({:.2?} on CPU)",
            wall,
            n as f64 / c.as_secs_f64(),
            c
        ),
        _ => format!("{per_wall:.0} records/s wall ({wall:.2?})"),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let tenant = Uuid::now_v7();
    let signer = CheckpointSigner::generate()?;

    let t0 = Instant::now();
    let mut builder = ChainBuilder::new(tenant, None);
    let mut rows = Vec::with_capacity(n as usize);
    let mut checkpoints = Vec::new();
    let mut total_bytes = 0usize;
    for i in 1..=n {
        let a = builder.append(record(i))?;
        total_bytes += a.record_bytes.len();
        if i.is_multiple_of(10_000) {
            checkpoints.push(signer.sign(tenant, &a.head, AuditTime::now()));
        }
        rows.push(a.into_row());
    }
    let build = t0.elapsed();
    println!(
        "built {n} records ({:.0} bytes avg) + {} checkpoints in {:.2?} ({:.0} appends/s)",
        total_bytes as f64 / n as f64,
        checkpoints.len(),
        build,
        n as f64 / build.as_secs_f64()
    );

    let keys = [signer.verifying_key()];
    let (report, wall, cpu) = timed(|| -> Result<VerifyReport, Box<dyn std::error::Error>> {
        let mut v = Verifier::with_checkpoints(tenant, None, &keys, &checkpoints)?;
        for row in &rows {
            v.feed(row)?;
        }
        Ok(v.finish_with_head(&builder.head()))
    });
    let report = report?;
    assert!(report.is_ok(), "{report:?}");
    println!(
        "Verifier: {} records, {} checkpoints: {}",
        report.records_checked,
        report.checkpoints_checked,
        rate(report.records_checked, wall, cpu)
    );

    // Hash chain only (no decode), for reference.
    let (ok, wall, cpu) = timed(|| {
        let mut prev = genesis_hash(tenant);
        rows.iter().all(|row| {
            let h = chain_hash(tenant, row.seq, &prev, &row.record_bytes);
            prev = h;
            h == row.hash
        })
    });
    assert!(ok);
    println!("hash chain only: {}", rate(n, wall, cpu));

    // Decode only, for reference.
    let (ok, wall, cpu) = timed(|| {
        rows.iter()
            .all(|row| decode_record(&row.record_bytes).is_ok())
    });
    assert!(ok);
    println!("decode_record only: {}", rate(n, wall, cpu));

    // Export and verify the export.
    let t3 = Instant::now();
    let header = ExportHeader {
        exported_at: AuditTime::now(),
        public_key: Some(signer.verifying_key()),
        retired_public_keys: vec![],
        tenants: vec![tenant],
    };
    let mut w = ExportWriter::new(Vec::new(), &header)?;
    w.begin_tenant(tenant, &builder.head(), &checkpoints)?;
    for row in &rows {
        w.write_record(row)?;
    }
    let file = w.finish()?;
    let export = t3.elapsed();
    let (reports, wall, cpu) = timed(|| verify_export(&file[..], Some(&signer.verifying_key())));
    assert!(reports?.iter().all(VerifyReport::is_ok));
    println!(
        "export: {} MiB written in {:.2?}; verify_export: {}",
        file.len() >> 20,
        export,
        rate(n, wall, cpu)
    );
    Ok(())
}
