//! Times `normalize` (mapping + indicator extraction + ATT&CK verification) over the project's
//! fixtures and, when present, the workspace's shared fixtures. Run in release mode:
//!
//! ```text
//! cargo run --release --example bench_extract
//! ```

use std::time::Instant;

use bulwark_normalize::{Source, normalize};
use serde_json::Value;

fn load_all() -> Vec<(Source, Value)> {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut out = Vec::new();
    for source in Source::ALL {
        let dir = format!("{root}/tests/fixtures/{}", source.as_str());
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if let Ok(text) = std::fs::read_to_string(entry.path())
                && let Ok(v) = serde_json::from_str(&text)
            {
                out.push((source, v));
            }
        }
    }
    let shared = format!("{root}/../../../shared/fixtures/alerts");
    for entry in std::fs::read_dir(&shared).into_iter().flatten().flatten() {
        let Ok(text) = std::fs::read_to_string(entry.path()) else {
            continue;
        };
        let Ok(doc) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        let source = match doc["format"].as_str() {
            Some("falco" | "thehive" | "stix" | "osquery") => Source::Generic,
            Some(f) => match f.parse() {
                Ok(s) => s,
                Err(_) => continue,
            },
            None => continue,
        };
        out.push((source, doc["payload"].clone()));
    }
    out
}

fn main() {
    let payloads = load_all();
    let bytes: usize = payloads.iter().map(|(_, v)| v.to_string().len()).sum();
    // Warm up (compiles the regexes and parses the ATT&CK list).
    for (s, v) in &payloads {
        let _ = normalize(*s, v);
    }
    let rounds = 2_000;
    let start = Instant::now();
    let mut indicators = 0usize;
    for _ in 0..rounds {
        for (s, v) in &payloads {
            if let Ok(a) = normalize(*s, v) {
                indicators += a.indicators.len();
            }
        }
    }
    let elapsed = start.elapsed();
    let n = rounds * payloads.len();
    println!(
        "{} payloads (avg {} bytes), {n} normalize() calls: {:.1} µs/alert, {:.0} alerts/s on one core ({} indicators)",
        payloads.len(),
        bytes / payloads.len().max(1),
        elapsed.as_secs_f64() * 1e6 / n as f64,
        n as f64 / elapsed.as_secs_f64(),
        indicators / rounds
    );
    // Per-payload breakdown, slowest first.
    let mut per: Vec<(f64, String)> = payloads
        .iter()
        .map(|(s, v)| {
            let t = Instant::now();
            for _ in 0..200 {
                let _ = normalize(*s, v);
            }
            let title = normalize(*s, v).map(|a| a.title).unwrap_or_default();
            (
                t.elapsed().as_secs_f64() * 1e6 / 200.0,
                format!("{s}: {}", title.chars().take(60).collect::<String>()),
            )
        })
        .collect();
    per.sort_by(|a, b| b.0.total_cmp(&a.0));
    for (us, name) in per.iter().take(8) {
        println!("  {us:7.1} µs  {name}");
    }
}
