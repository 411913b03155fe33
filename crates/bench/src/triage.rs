//! The `triage` suite: the alert queue at scale.
//!
//! Loads a large, realistic data set straight into the tables (bulk multi-row INSERTs in big
//! transactions; going through the ingest path would take hours for a million alerts), then
//! measures the queue as analysts use it, through the store's own methods (`list_alerts`,
//! `get_alert`), so the real queries, indexes and tag rules are what is timed. The incident
//! timeline is measured as the SQL it needs (see [`TIMELINE_SQL`]) until the store has a
//! timeline method.
//!
//! The data is deterministic (a seeded generator), so SQLite and PostgreSQL get the same rows.

use anyhow::{Context, bail};
use bulwark_core::{AlertAccess, Scope, TenantId};
use bulwark_store::alerts::AlertFilter;
use bulwark_store::tag_access::{TagAccessConfig, TagRule, Untagged};
use bulwark_store::{ChangeCtx, NewTenant, Store};
use chrono::{DateTime, Duration as Span, Utc};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, Instant};
use uuid::Uuid;

// ---------------------------------------------------------------------------------------------
// Deterministic randomness

/// SplitMix64: small, fast, and the same sequence on every machine.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// A rank in `0..n` with P(k) roughly proportional to 1/(k+1) (Zipf): a few values are
    /// everywhere, most are rare, as with hosts, IPs and domains in real alerts.
    fn zipf(&mut self, n: usize) -> usize {
        (((n as f64 + 1.0).powf(self.unit()) - 1.0) as usize).min(n - 1)
    }

    fn weighted<'a, T>(&mut self, items: &'a [(T, u32)]) -> &'a T {
        let total: u32 = items.iter().map(|x| x.1).sum();
        let mut r = self.below(total as usize) as u32;
        for (t, w) in items {
            if r < *w {
                return t;
            }
            r -= w;
        }
        &items[items.len() - 1].0
    }

    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }

    fn bytes<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        for chunk in out.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
        out
    }

    /// A UUIDv7 for `at` (ids sort by time, as the store's ids do).
    fn uuid_at(&mut self, at: DateTime<Utc>) -> Uuid {
        uuid::Builder::from_unix_timestamp_millis(at.timestamp_millis() as u64, &self.bytes())
            .into_uuid()
    }
}

/// The largest UUIDv7 of the millisecond `at`: a keyset cursor that pages from `at` backwards.
fn cursor_at(at: DateTime<Utc>) -> Uuid {
    uuid::Builder::from_unix_timestamp_millis(at.timestamp_millis() as u64, &[0xff; 10]).into_uuid()
}

// ---------------------------------------------------------------------------------------------
// The data set

/// Tenants (slug suffix, share of the alerts in percent).
pub(crate) const TENANTS: &[(&str, u32)] = &[
    ("acme", 40),
    ("globex", 25),
    ("initech", 15),
    ("umbrella", 12),
    ("hooli", 8),
];
pub(crate) const TENANT_PREFIX: &str = "triage-";
/// Days of history the alerts and incidents span.
const DAYS: i64 = 90;

const SOURCES: &[(&str, u32)] = &[
    ("wazuh", 45),
    ("suricata", 30),
    ("generic", 10),
    ("crowdstrike", 8),
    ("elastic", 5),
    ("sentinelone", 2),
];
const SEVERITIES: &[(&str, u32)] = &[
    ("info", 20),
    ("low", 30),
    ("medium", 30),
    ("high", 15),
    ("critical", 5),
];

struct Rule {
    title: &'static str,
    name: &'static str,
    tags: &'static [&'static str],
    mitre: &'static str,
    weight: u32,
}

/// Detection rules; titles take `{host}`, `{user}`, `{proc}`, `{domain}`, `{word}`, `{path}`,
/// `{n}` and `{cve}`. PowerShell rules are ~6% of alerts (the "common word" search).
#[rustfmt::skip]
const RULES: &[Rule] = &[
    Rule { title: "sshd: brute force trying to get access to the system", name: "SSH brute force", tags: &["authentication", "brute-force"], mitre: "T1110", weight: 90 },
    Rule { title: "Multiple failed logins for user {user}", name: "Failed logon burst", tags: &["authentication"], mitre: "T1110", weight: 70 },
    Rule { title: "ET MALWARE Possible stealer exfiltration to {domain}", name: "ET MALWARE stealer exfiltration", tags: &["malware", "exfiltration", "network"], mitre: "T1041", weight: 60 },
    Rule { title: "ET SCAN Nmap scripting engine user-agent detected", name: "ET SCAN Nmap NSE", tags: &["scan", "network"], mitre: "T1046", weight: 80 },
    Rule { title: "Suspicious PowerShell download cradle on {host}", name: "PowerShell download cradle", tags: &["powershell", "execution"], mitre: "T1059.001", weight: 30 },
    Rule { title: "Encoded PowerShell command line executed by {user}", name: "Encoded PowerShell", tags: &["powershell", "execution", "defense-evasion"], mitre: "T1027", weight: 25 },
    Rule { title: "PowerShell script block logging: {word} module loaded", name: "PowerShell script block", tags: &["powershell"], mitre: "T1059.001", weight: 20 },
    Rule { title: "New service installed: {word}svc", name: "Service installation", tags: &["persistence"], mitre: "T1543.003", weight: 40 },
    Rule { title: "Scheduled task created: {word}", name: "Scheduled task", tags: &["persistence", "execution"], mitre: "T1053.005", weight: 35 },
    Rule { title: "File integrity: {path} modified", name: "Integrity checksum changed", tags: &["fim", "pci"], mitre: "T1565", weight: 80 },
    Rule { title: "Web attack: SQL injection attempt against {host}", name: "SQL injection", tags: &["web", "attack"], mitre: "T1190", weight: 50 },
    Rule { title: "Web attack: path traversal in request to /{word}/{word}", name: "Path traversal", tags: &["web", "attack"], mitre: "T1190", weight: 40 },
    Rule { title: "Outbound connection to known C2 {domain}", name: "C2 beacon", tags: &["c2", "network", "malware"], mitre: "T1071", weight: 20 },
    Rule { title: "DNS query for newly registered domain {domain}", name: "Newly registered domain", tags: &["dns", "network"], mitre: "T1568", weight: 60 },
    Rule { title: "Privilege escalation: {user} added to local administrators", name: "Admin group change", tags: &["privilege-escalation", "identity"], mitre: "T1098", weight: 15 },
    Rule { title: "Lateral movement via SMB from {host}", name: "SMB lateral movement", tags: &["lateral-movement", "network"], mitre: "T1021.002", weight: 15 },
    Rule { title: "Credential dumping: LSASS memory access by {proc}", name: "LSASS access", tags: &["credential-access"], mitre: "T1003.001", weight: 10 },
    Rule { title: "Impossible travel for {user}", name: "Impossible travel", tags: &["identity", "cloud"], mitre: "T1078", weight: 20 },
    Rule { title: "Mass file rename on {host} (possible ransomware)", name: "Ransomware behaviour", tags: &["ransomware", "impact"], mitre: "T1486", weight: 5 },
    Rule { title: "USB storage device mounted on {host}", name: "Removable media", tags: &["dlp"], mitre: "T1052", weight: 30 },
    Rule { title: "Antivirus: {word}.{word} quarantined", name: "AV detection", tags: &["malware", "endpoint"], mitre: "T1204", weight: 50 },
    Rule { title: "Firewall: denied inbound connection burst", name: "Firewall deny burst", tags: &["network", "firewall"], mitre: "T1046", weight: 90 },
    Rule { title: "Cloud: security group opened to 0.0.0.0/0", name: "Open security group", tags: &["cloud", "misconfiguration"], mitre: "T1562.007", weight: 10 },
    Rule { title: "Suspicious process {proc} spawned by winword.exe", name: "Office child process", tags: &["execution", "phishing"], mitre: "T1566.001", weight: 15 },
    Rule { title: "Phishing: user {user} clicked a reported link", name: "Phishing click", tags: &["phishing", "email"], mitre: "T1566.002", weight: 20 },
    Rule { title: "Kerberos pre-authentication failures for {user}", name: "Kerberos preauth failures", tags: &["authentication", "identity"], mitre: "T1558", weight: 25 },
    Rule { title: "Data exfiltration: {n} MB uploaded to {domain}", name: "Large upload", tags: &["exfiltration", "dlp"], mitre: "T1567", weight: 10 },
    Rule { title: "Rootkit check: hidden process {n}", name: "Rootcheck anomaly", tags: &["endpoint"], mitre: "T1014", weight: 10 },
    Rule { title: "Audit: sudo to root by {user}", name: "Sudo to root", tags: &["linux", "privilege-escalation"], mitre: "T1548.003", weight: 60 },
    Rule { title: "Vulnerability {cve} detected in {word} package", name: "Vulnerability detector", tags: &["vulnerability"], mitre: "T1190", weight: 80 },
];

#[rustfmt::skip]
const PROCS: &[&str] = &[
    "powershell.exe", "cmd.exe", "rundll32.exe", "regsvr32.exe", "mshta.exe", "wscript.exe",
    "python3", "bash", "curl", "certutil.exe", "svchost.exe", "explorer.exe", "java", "node",
];
const TLDS: &[&str] = &[
    "com", "net", "org", "io", "ru", "cn", "xyz", "top", "info", "biz",
];
#[rustfmt::skip]
const FIRST: &[&str] = &[
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory",
    "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter", "yolanda",
];
#[rustfmt::skip]
const LAST: &[&str] = &[
    "smith", "jones", "garcia", "miller", "davis", "lopez", "wilson", "moore", "taylor", "lee",
    "white", "harris", "clark", "lewis", "young",
];
const HOST_KINDS: &[(&str, u32)] = &[("ws", 60), ("srv", 15), ("web", 10), ("db", 10), ("dc", 5)];
const ANALYSTS: usize = 20;

/// Planted words for the free-text cases: none of them can come out of the word generator.
const RARE_WORD: &str = "mimikatz";
const MEDIUM_WORD: &str = "kerberoast";
const COMMON_WORD: &str = "powershell";

/// The incident whose timeline is measured.
const TIMELINE_TITLE: &str = "Benchmark timeline incident (1,000 linked alerts)";

/// A value to bind; rows are vectors of these so one insert routine serves every table.
enum Val {
    U(Uuid),
    OU(Option<Uuid>),
    S(String),
    OS(Option<String>),
    I(i64),
    B(bool),
    Bytes(Vec<u8>),
    T(DateTime<Utc>),
    OT(Option<DateTime<Utc>>),
    J(Value),
}

struct Table {
    name: &'static str,
    columns: &'static [&'static str],
}

#[rustfmt::skip]
const ALERTS: Table = Table {
    name: "alerts",
    columns: &[
        "id", "tenant_id", "source", "source_id", "fingerprint", "title", "severity",
        "severity_original", "rule_name", "rule_id", "event_time", "source_ip", "dest_ip",
        "hostname", "username", "status", "normalized", "raw_payload", "latest_payload",
        "duplicate_count", "first_seen", "last_seen", "created_at", "updated_at", "description",
        "determination", "resolve_reason", "assignee_id", "tags", "acknowledged_at", "closed_at",
        "deleted_at",
    ],
};
#[rustfmt::skip]
const OBSERVABLES: Table = Table {
    name: "observables",
    columns: &[
        "id", "tenant_id", "kind", "value", "is_private", "first_seen", "last_seen", "sightings",
    ],
};
#[rustfmt::skip]
const ALERT_OBSERVABLES: Table = Table {
    name: "alert_observables",
    columns: &[
        "alert_id", "observable_id",
    ],
};
#[rustfmt::skip]
const INCIDENTS: Table = Table {
    name: "incidents",
    columns: &[
        "id", "tenant_id", "number", "title", "description", "severity", "status", "assignee_id",
        "tags", "created_by", "created_at", "updated_at", "closed_at",
    ],
};
#[rustfmt::skip]
const INCIDENT_ALERTS: Table = Table {
    name: "incident_alerts",
    columns: &[
        "incident_id", "alert_id", "tenant_id", "linked_at", "linked_by",
    ],
};
#[rustfmt::skip]
const INCIDENT_EVENTS: Table = Table {
    name: "incident_events",
    columns: &[
        "id", "tenant_id", "incident_id", "kind", "detail", "actor_kind", "actor_id", "actor_name",
        "created_at",
    ],
};
#[rustfmt::skip]
const COMMENTS: Table = Table {
    name: "comments",
    columns: &[
        "id", "tenant_id", "alert_id", "incident_id", "author_kind", "author_id", "author_name",
        "body", "mentions", "created_at",
    ],
};
#[rustfmt::skip]
const ALERT_ACTIVITIES: Table = Table {
    name: "alert_activities",
    columns: &[
        "id", "tenant_id", "alert_id", "kind", "old_value", "new_value", "actor_kind", "actor_id",
        "actor_name", "created_at",
    ],
};

struct Chunk {
    table: &'static Table,
    rows: Vec<Vec<Val>>,
}

/// One observable as aggregated over the load.
struct Obs {
    id: Uuid,
    private: bool,
    first: DateTime<Utc>,
    last: DateTime<Utc>,
    sightings: i64,
}

/// A stored alert, as the incident generator needs it.
#[derive(Clone, Copy)]
struct AlertRef {
    id: Uuid,
    at: DateTime<Utc>,
}

struct Gen {
    rng: Rng,
    tenants: Vec<Uuid>,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    words: Vec<String>,
    hosts: Vec<Vec<String>>,
    users: Vec<Vec<String>>,
    ext_ips: Vec<String>,
    domains: Vec<String>,
    hashes: Vec<String>,
    urls: Vec<String>,
    cves: Vec<String>,
    analysts: Vec<Uuid>,
    tenant_weights: Vec<(usize, u32)>,
    rule_weights: Vec<(usize, u32)>,
    observables: HashMap<(usize, &'static str, String), Obs>,
    links: Vec<(Uuid, Uuid)>,
    by_tenant: Vec<Vec<AlertRef>>,
    tx: tokio::sync::mpsc::Sender<Chunk>,
}

/// Deterministic analyst ids (assignees), so a reused database is measured with the same ones.
fn analyst_id(k: usize) -> Uuid {
    Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 | k as u128)
}

/// The host of rank `rank` of tenant `t` (rank 0 is the noisiest).
fn host_name(t: usize, rank: usize, kind: &str) -> String {
    format!("{}-{kind}-{rank:04}", TENANTS[t].0)
}

/// A word made of consonant-vowel syllables: thousands of distinct words whose trigrams
/// overlap like natural language's do. No `k`, `q`, `x`, `y`: the planted words cannot occur.
fn word(rng: &mut Rng) -> String {
    const C: &[u8] = b"bcdfghjlmnprstvwz";
    const V: &[u8] = b"aeiou";
    let syllables = 2 + rng.below(3);
    let mut w = String::with_capacity(syllables * 2 + 1);
    for _ in 0..syllables {
        w.push(*rng.pick(C) as char);
        w.push(*rng.pick(V) as char);
    }
    if rng.chance(0.3) {
        w.push(*rng.pick(C) as char);
    }
    w
}

impl Gen {
    fn new(tenants: Vec<Uuid>, end: DateTime<Utc>, tx: tokio::sync::mpsc::Sender<Chunk>) -> Self {
        let mut rng = Rng(0x5EED_B01D);
        let words: Vec<String> = (0..4000).map(|_| word(&mut rng)).collect();
        let hosts = (0..TENANTS.len())
            .map(|t| {
                (0..500)
                    .map(|r| host_name(t, r, rng.weighted::<&str>(HOST_KINDS)))
                    .collect()
            })
            .collect();
        let users = (0..TENANTS.len())
            .map(|_| {
                (0..300)
                    .map(|_| format!("{}.{}", rng.pick(FIRST), rng.pick(LAST)))
                    .collect()
            })
            .collect();
        let ext_ips = (0..30_000)
            .map(|_| {
                let b: [u8; 4] = rng.bytes();
                format!("{}.{}.{}.{}", 11 + b[0] % 200, b[1], b[2], 1 + b[3] % 254)
            })
            .collect();
        let domains: Vec<String> = (0..8000)
            .map(|i| {
                format!(
                    "{}-{}.{}",
                    words[i % 4000],
                    words[(i * 7 + 3) % 4000],
                    TLDS[i % TLDS.len()]
                )
            })
            .collect();
        let hashes = (0..40_000)
            .map(|_| hex::encode(rng.bytes::<32>()))
            .collect();
        let urls = (0..10_000)
            .map(|i| {
                format!(
                    "https://{}/{}/{}.php",
                    domains[(i * 13) % domains.len()],
                    words[(i * 31) % 4000],
                    words[(i * 17 + 5) % 4000]
                )
            })
            .collect();
        let cves = (0..500)
            .map(|i| format!("CVE-20{}-{}", 18 + i % 7, 1000 + i * 37))
            .collect();
        Gen {
            rng,
            start: end - Span::days(DAYS),
            end,
            words,
            hosts,
            users,
            ext_ips,
            domains,
            hashes,
            urls,
            cves,
            analysts: (0..ANALYSTS).map(analyst_id).collect(),
            tenant_weights: TENANTS
                .iter()
                .enumerate()
                .map(|(k, (_, w))| (k, *w))
                .collect(),
            rule_weights: RULES
                .iter()
                .enumerate()
                .map(|(k, r)| (k, r.weight))
                .collect(),
            observables: HashMap::new(),
            links: Vec::new(),
            by_tenant: vec![Vec::new(); tenants.len()],
            tenants,
            tx,
        }
    }

    fn send(&self, table: &'static Table, rows: Vec<Vec<Val>>) -> anyhow::Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        self.tx
            .blocking_send(Chunk { table, rows })
            .map_err(|_| anyhow::anyhow!("the loader stopped"))
    }

    fn words(&mut self, n: usize) -> String {
        let mut s = String::new();
        for i in 0..n {
            if i > 0 {
                s.push(' ');
            }
            let k = self.rng.zipf(self.words.len());
            s.push_str(&self.words[k]);
        }
        s
    }

    /// Sees observable (kind, value) on an alert of tenant `t` at `at`; returns its id.
    fn observe(
        &mut self,
        t: usize,
        kind: &'static str,
        value: String,
        private: bool,
        at: DateTime<Utc>,
    ) -> Uuid {
        let rng = &mut self.rng;
        let o = self
            .observables
            .entry((t, kind, value))
            .or_insert_with(|| Obs {
                id: rng.uuid_at(at),
                private,
                first: at,
                last: at,
                sightings: 0,
            });
        o.last = at;
        o.sightings += 1;
        o.id
    }

    fn fill(&mut self, template: &str, t: usize, host: &str, user: &str, domain: &str) -> String {
        let mut out = String::with_capacity(template.len() + 32);
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            out.push_str(&rest[..open]);
            let Some(close) = rest[open..].find('}') else {
                break;
            };
            let key = &rest[open + 1..open + close];
            let v = match key {
                "host" => host.to_string(),
                "user" => user.to_string(),
                "domain" => domain.to_string(),
                "proc" => self.rng.pick(PROCS).to_string(),
                "word" => {
                    let k = self.rng.zipf(self.words.len());
                    self.words[k].clone()
                }
                "path" => format!(
                    "/etc/{}/{}.conf",
                    self.words[self.rng.zipf(200)],
                    self.words[self.rng.below(4000)]
                ),
                "n" => (10 + self.rng.below(5000)).to_string(),
                "cve" => self.cves[self.rng.zipf(self.cves.len())].clone(),
                _ => TENANTS[t].0.to_string(),
            };
            out.push_str(&v);
            rest = &rest[open + close + 1..];
        }
        out.push_str(rest);
        out
    }

    /// Alert `i` of `n`, at its time; sends nothing (the caller batches).
    fn alert(&mut self, i: u64, n: u64) -> Vec<Val> {
        let at = self.start
            + Span::microseconds(
                ((self.end - self.start).num_microseconds().unwrap_or(0) as f64
                    * (i as f64 / n as f64)) as i64,
            );
        let t = *self.rng.weighted(&self.tenant_weights);
        let id = self.rng.uuid_at(at);
        self.by_tenant[t].push(AlertRef { id, at });
        let source = *self.rng.weighted(SOURCES);
        let rule_ix = *self.rng.weighted(&self.rule_weights);
        let rule = &RULES[rule_ix];
        let severity = *self.rng.weighted(SEVERITIES);
        let host = self.hosts[t][self.rng.zipf(500)].clone();
        let user = self.users[t][self.rng.zipf(300)].clone();
        let src_ip = self.ext_ips[self.rng.zipf(self.ext_ips.len())].clone();
        let dst_ip = {
            let k = self.rng.zipf(2000);
            format!("10.{}.{}.{}", t, k / 250, 1 + k % 250)
        };
        let domain = self.domains[self.rng.zipf(self.domains.len())].clone();
        let title = self.fill(rule.title, t, &host, &user, &domain);
        let proc = *self.rng.pick(PROCS);
        let filler = 8 + self.rng.below(16);
        let filler = self.words(filler);
        let mut description = format!(
            "{} on {host}: process {proc} (user {user}) connected from {src_ip} to {dst_ip}. {filler}",
            rule.name,
        );
        // Planted words: ~50 alerts carry the rare one, ~0.5% the medium one.
        if i % (n / 50).max(1) == 17 {
            description.push_str(&format!(" Tool output matches {RARE_WORD} signatures."));
        }
        if i % 200 == 3 {
            description.push_str(&format!(" Possible {MEDIUM_WORD} activity."));
        }
        let mut tags: Vec<String> = if self.rng.chance(0.2) {
            Vec::new()
        } else {
            rule.tags.iter().map(|s| s.to_string()).collect()
        };
        if self.rng.chance(0.03) {
            tags.push("soc-tier2".into());
        }
        if self.rng.chance(0.01) {
            tags.push("customer-vip".into());
        }

        // Triage state depends on age: recent alerts are mostly new, old ones mostly closed.
        let age_days = (self.end - at).num_hours() as f64 / 24.0;
        let statuses: &[(&str, u32)] = if age_days < 1.0 {
            &[
                ("new", 80),
                ("triaged", 10),
                ("in_progress", 8),
                ("escalated", 2),
            ]
        } else if age_days < 7.0 {
            &[
                ("new", 30),
                ("triaged", 15),
                ("in_progress", 15),
                ("escalated", 5),
                ("resolved", 25),
                ("false_positive", 10),
            ]
        } else {
            &[
                ("new", 10),
                ("triaged", 5),
                ("in_progress", 3),
                ("escalated", 2),
                ("resolved", 55),
                ("false_positive", 25),
            ]
        };
        let status = *self.rng.weighted(statuses);
        let closed = matches!(status, "resolved" | "false_positive");
        let mut assignee = if (status != "new" && self.rng.chance(0.85)) || self.rng.chance(0.05) {
            Some(self.analysts[self.rng.zipf(ANALYSTS)])
        } else {
            None
        };
        // A new analyst with a short queue (~200 alerts): the "my alerts" page at its hardest.
        if i % 5000 == 4321 {
            assignee = Some(analyst_id(ANALYSTS));
        }
        let handled = at + Span::minutes(5 + self.rng.below(600) as i64);
        let (determination, resolve_reason) = match status {
            "resolved" => (
                Some(
                    if self.rng.chance(0.3) {
                        "malicious"
                    } else {
                        "benign"
                    }
                    .to_string(),
                ),
                Some(
                    if self.rng.chance(0.5) {
                        "true_positive"
                    } else {
                        "expected_activity"
                    }
                    .to_string(),
                ),
            ),
            "false_positive" => (
                Some("benign".to_string()),
                Some("false_positive_rule_tuning_needed".to_string()),
            ),
            _ => (None, None),
        };
        let duplicates = if self.rng.chance(0.2) {
            1 + self.rng.zipf(60) as i64
        } else {
            0
        };
        let last_seen = at + Span::seconds(duplicates * (30 + self.rng.below(600) as i64));

        // Observables: source and destination IP, one of domain / hash / user, sometimes more.
        let mut indicators = vec![
            ("ipv4", src_ip.clone(), false),
            ("ipv4", dst_ip.clone(), true),
        ];
        match self.rng.below(3) {
            0 => indicators.push(("domain", domain.clone(), false)),
            1 => indicators.push((
                "sha256",
                self.hashes[self.rng.zipf(self.hashes.len())].clone(),
                false,
            )),
            _ => indicators.push(("email", format!("{user}@{}.example", TENANTS[t].0), true)),
        }
        if self.rng.chance(0.4) {
            indicators.push((
                "url",
                self.urls[self.rng.zipf(self.urls.len())].clone(),
                false,
            ));
        }
        if self.rng.chance(0.3) {
            indicators.push((
                "sha256",
                self.hashes[self.rng.zipf(self.hashes.len())].clone(),
                false,
            ));
        }
        if rule.name == "Vulnerability detector" {
            indicators.push((
                "cve",
                self.cves[self.rng.zipf(self.cves.len())].clone(),
                false,
            ));
        }
        indicators.sort();
        indicators.dedup_by(|a, b| a.0 == b.0 && a.1 == b.1);
        for (kind, value, private) in &indicators {
            let obs = self.observe(t, kind, value.clone(), *private, at);
            self.links.push((id, obs));
        }

        let source_id = if source == "generic" && self.rng.chance(0.5) {
            None
        } else {
            Some(format!("{source}-{i}"))
        };
        let normalized = json!({
            "source": source, "source_id": source_id, "title": title, "severity": severity,
            "rule_name": rule.name, "rule_id": format!("{}", 5000 + rule_ix), "hostname": host,
            "username": user, "source_ip": src_ip, "dest_ip": dst_ip, "tags": tags,
            "mitre_techniques": [rule.mitre],
            "indicators": indicators.iter().map(|(k, v, p)| json!({"kind": k, "value": v, "private": p})).collect::<Vec<_>>(),
        });
        let log_words = 30 + self.rng.below(40);
        let log_words = self.words(log_words);
        let pid = 1000 + self.rng.below(60000);
        let raw = json!({
            "id": format!("{i}.{}", at.timestamp()), "timestamp": at.to_rfc3339(),
            "rule": {"level": 3 + rule_ix % 12, "description": title, "id": format!("{}", 5000 + rule_ix),
                     "mitre": {"id": [rule.mitre]}, "groups": rule.tags},
            "agent": {"name": host, "ip": dst_ip},
            "data": {"srcip": src_ip, "dstip": dst_ip, "srcuser": user, "process": proc},
            "full_log": format!("{} {host} {proc}[{pid}]: {description} {log_words}", at.format("%b %d %H:%M:%S")),
        })
        .to_string();
        let latest = (duplicates > 0).then(|| raw.clone());
        vec![
            Val::U(id),
            Val::U(self.tenants[t]),
            Val::S(source.to_string()),
            Val::OS(source_id),
            Val::Bytes(self.rng.bytes::<32>().to_vec()),
            Val::S(title),
            Val::S(severity.to_string()),
            Val::OS(Some(format!("{}", 3 + rule_ix % 12))),
            Val::OS(Some(rule.name.to_string())),
            Val::OS(Some(format!("{}", 5000 + rule_ix))),
            Val::OT(Some(at - Span::seconds(2))),
            Val::OS(Some(src_ip)),
            Val::OS(Some(dst_ip)),
            Val::OS(Some(host)),
            Val::OS(Some(user)),
            Val::S(status.to_string()),
            Val::J(normalized),
            Val::S(raw),
            Val::OS(latest),
            Val::I(duplicates),
            Val::T(at),
            Val::T(last_seen),
            Val::T(at),
            Val::T(if status == "new" {
                last_seen
            } else {
                handled.max(last_seen)
            }),
            Val::OS(Some(description)),
            Val::OS(determination),
            Val::OS(resolve_reason),
            Val::OU(assignee),
            Val::J(json!(tags)),
            Val::OT((status != "new").then_some(handled)),
            Val::OT(closed.then_some(handled)),
            Val::OT(self.rng.chance(0.001).then_some(handled)),
        ]
    }

    fn activity(
        &mut self,
        t: usize,
        alert: Uuid,
        kind: &str,
        old: Option<&str>,
        new: Option<String>,
        at: DateTime<Utc>,
    ) -> Vec<Val> {
        let who = self.rng.zipf(ANALYSTS);
        vec![
            Val::U(self.rng.uuid_at(at)),
            Val::U(self.tenants[t]),
            Val::U(alert),
            Val::S(kind.to_string()),
            Val::OS(old.map(str::to_string)),
            Val::OS(new),
            Val::S("user".into()),
            Val::OS(Some(analyst_id(who).to_string())),
            Val::OS(Some(format!("analyst{who}"))),
            Val::T(at),
        ]
    }

    fn event(
        &mut self,
        t: usize,
        incident: Uuid,
        kind: &str,
        detail: Value,
        at: DateTime<Utc>,
    ) -> Vec<Val> {
        let who = self.rng.zipf(ANALYSTS);
        vec![
            Val::U(self.rng.uuid_at(at)),
            Val::U(self.tenants[t]),
            Val::U(incident),
            Val::S(kind.to_string()),
            Val::J(detail),
            Val::S("user".into()),
            Val::OS(Some(analyst_id(who).to_string())),
            Val::OS(Some(format!("analyst{who}"))),
            Val::T(at),
        ]
    }

    fn comment(
        &mut self,
        t: usize,
        alert: Option<Uuid>,
        incident: Option<Uuid>,
        at: DateTime<Utc>,
    ) -> Vec<Val> {
        let who = self.rng.zipf(ANALYSTS);
        let n = 10 + self.rng.below(20);
        let body = format!("Checked {}; {}", self.words(3), self.words(n));
        vec![
            Val::U(self.rng.uuid_at(at)),
            Val::U(self.tenants[t]),
            Val::OU(alert),
            Val::OU(incident),
            Val::S("user".into()),
            Val::OS(Some(analyst_id(who).to_string())),
            Val::OS(Some(format!("analyst{who}"))),
            Val::S(body),
            Val::J(json!([])),
            Val::T(at),
        ]
    }

    /// Everything, in dependency order (alerts, observables, links, incidents, timelines).
    fn run(mut self, alerts: u64, incidents: u64) -> anyhow::Result<()> {
        const BATCH: usize = 2000;
        let mut rows = Vec::with_capacity(BATCH);
        let mut activities = Vec::new();
        let mut comments = Vec::new();
        for i in 0..alerts {
            let row = self.alert(i, alerts);
            // Triage history of the alert: status change and assignment.
            if let (Val::U(id), Val::S(status), Val::T(at), Val::U(tenant)) =
                (&row[0], &row[15], &row[20], &row[1])
            {
                let t = self.tenants.iter().position(|x| x == tenant).unwrap_or(0);
                if status != "new" {
                    let (id, status, at) = (*id, status.clone(), *at);
                    let act = self.activity(
                        t,
                        id,
                        "status",
                        Some("new"),
                        Some(status),
                        at + Span::minutes(7),
                    );
                    activities.push(act);
                    if self.rng.chance(0.03) {
                        let c = self.comment(t, Some(id), None, at + Span::minutes(9));
                        comments.push(c);
                    }
                }
            }
            rows.push(row);
            if rows.len() == BATCH {
                self.send(
                    &ALERTS,
                    std::mem::replace(&mut rows, Vec::with_capacity(BATCH)),
                )?;
            }
            if activities.len() >= BATCH {
                self.send(&ALERT_ACTIVITIES, std::mem::take(&mut activities))?;
            }
            if comments.len() >= BATCH {
                self.send(&COMMENTS, std::mem::take(&mut comments))?;
            }
        }
        self.send(&ALERTS, rows)?;
        self.send(&ALERT_ACTIVITIES, activities)?;
        self.send(&COMMENTS, comments)?;

        let observables: Vec<Vec<Val>> = std::mem::take(&mut self.observables)
            .into_iter()
            .map(|((t, kind, value), o)| {
                vec![
                    Val::U(o.id),
                    Val::U(self.tenants[t]),
                    Val::S(kind.to_string()),
                    Val::S(value),
                    Val::B(o.private),
                    Val::T(o.first),
                    Val::T(o.last),
                    Val::I(o.sightings),
                ]
            })
            .collect();
        let mut observables = observables.into_iter().peekable();
        while observables.peek().is_some() {
            self.send(&OBSERVABLES, observables.by_ref().take(BATCH).collect())?;
        }
        let links = std::mem::take(&mut self.links);
        for chunk in links.chunks(BATCH * 4) {
            self.send(
                &ALERT_OBSERVABLES,
                chunk
                    .iter()
                    .map(|(a, o)| vec![Val::U(*a), Val::U(*o)])
                    .collect(),
            )?;
        }
        drop(links);
        self.incidents(incidents)?;
        self.timeline_incident()
    }

    fn incidents(&mut self, n: u64) -> anyhow::Result<()> {
        let weights = self.tenant_weights.clone();
        let mut numbers = vec![0i64; TENANTS.len()];
        let (mut inc, mut links, mut events, mut comments, mut acts) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let span = (self.end - self.start).num_microseconds().unwrap_or(0) as f64;
        for k in 0..n {
            let at = self.start + Span::microseconds((span * (k as f64 / n as f64)) as i64);
            let t = *self.rng.weighted(&weights);
            numbers[t] += 1;
            let id = self.rng.uuid_at(at);
            let rule = &RULES[self.rng.below(RULES.len())];
            let status = *self.rng.weighted(&[
                ("open", 10),
                ("in_progress", 10),
                ("contained", 10),
                ("recovered", 30),
                ("closed", 40),
            ]);
            // Statuses of the incident lifecycle (the store refuses to read others).
            let closed = status == "closed";
            let updated = at + Span::hours(1 + self.rng.below(72) as i64);
            let description = format!("Opened from {} alerts. {}", rule.name, self.words(12));
            inc.push(vec![
                Val::U(id),
                Val::U(self.tenants[t]),
                Val::I(numbers[t]),
                Val::S(format!("{} ({})", rule.name, self.words(2))),
                Val::OS(Some(description)),
                Val::S(self.rng.weighted(SEVERITIES).to_string()),
                Val::S(status.to_string()),
                Val::OU(Some(analyst_id(self.rng.zipf(ANALYSTS)))),
                Val::J(json!(rule.tags)),
                Val::OS(Some("analyst0".into())),
                Val::T(at),
                Val::T(updated),
                Val::OT(closed.then_some(updated)),
            ]);
            events.push(self.event(t, id, "created", json!({"title": rule.name}), at));
            // Linked alerts: recent alerts of the tenant, before the incident was opened.
            let pool = &self.by_tenant[t];
            let end = pool.partition_point(|a| a.at <= at);
            let want = 1 + self.rng.below(8);
            let mut pos = end;
            let mut chosen = Vec::with_capacity(want);
            while chosen.len() < want && pos > 0 {
                pos = pos.saturating_sub(1 + self.rng.below(20));
                chosen.push(self.by_tenant[t][pos]);
            }
            for (j, a) in chosen.into_iter().enumerate() {
                let linked = at + Span::seconds(j as i64 + 1);
                links.push(vec![
                    Val::U(id),
                    Val::U(a.id),
                    Val::U(self.tenants[t]),
                    Val::T(linked),
                    Val::OS(Some("analyst0".into())),
                ]);
                events.push(self.event(t, id, "alert_linked", json!({"alert_id": a.id}), linked));
                acts.push(self.activity(
                    t,
                    a.id,
                    "incident_linked",
                    None,
                    Some(id.to_string()),
                    linked,
                ));
            }
            if status != "open" {
                events.push(self.event(
                    t,
                    id,
                    "status_changed",
                    json!({"from": "open", "to": status}),
                    updated,
                ));
            }
            for c in 0..self.rng.below(3) {
                comments.push(self.comment(
                    t,
                    None,
                    Some(id),
                    at + Span::minutes(30 * (c as i64 + 1)),
                ));
            }
            if inc.len() >= 2000 {
                self.send(&INCIDENTS, std::mem::take(&mut inc))?;
                self.send(&INCIDENT_ALERTS, std::mem::take(&mut links))?;
                self.send(&INCIDENT_EVENTS, std::mem::take(&mut events))?;
                self.send(&COMMENTS, std::mem::take(&mut comments))?;
                self.send(&ALERT_ACTIVITIES, std::mem::take(&mut acts))?;
            }
        }
        self.send(&INCIDENTS, inc)?;
        self.send(&INCIDENT_ALERTS, links)?;
        self.send(&INCIDENT_EVENTS, events)?;
        self.send(&COMMENTS, comments)?;
        self.send(&ALERT_ACTIVITIES, acts)
    }

    /// One incident of the biggest tenant with 1,000 alerts of its last 30 days linked, and
    /// the history such an incident accumulates: a link event and an activity per alert,
    /// triage activities and comments on the alerts, the incident's own events and comments.
    fn timeline_incident(&mut self) -> anyhow::Result<()> {
        let t = 0;
        let at = self.end - Span::days(2);
        let id = self.rng.uuid_at(at);
        self.send(
            &INCIDENTS,
            vec![vec![
                Val::U(id),
                Val::U(self.tenants[t]),
                Val::I(1_000_000),
                Val::S(TIMELINE_TITLE.into()),
                Val::OS(Some("Campaign across the estate".into())),
                Val::S("critical".into()),
                Val::S("in_progress".into()),
                Val::OU(Some(analyst_id(0))),
                Val::J(json!(["campaign"])),
                Val::OS(Some("analyst0".into())),
                Val::T(at),
                Val::T(self.end),
                Val::OT(None),
            ]],
        )?;
        let since = self.end - Span::days(30);
        let recent: Vec<AlertRef> = self.by_tenant[t]
            .iter()
            .filter(|a| a.at >= since)
            .copied()
            .collect();
        let stride = (recent.len() / 1000).max(1);
        let chosen: Vec<AlertRef> = recent.iter().step_by(stride).take(1000).copied().collect();
        let (mut links, mut events, mut comments, mut acts) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        events.push(self.event(t, id, "created", json!({"title": TIMELINE_TITLE}), at));
        for (j, a) in chosen.iter().enumerate() {
            let linked = at + Span::seconds(j as i64);
            links.push(vec![
                Val::U(id),
                Val::U(a.id),
                Val::U(self.tenants[t]),
                Val::T(linked),
                Val::OS(Some("analyst0".into())),
            ]);
            events.push(self.event(t, id, "alert_linked", json!({"alert_id": a.id}), linked));
            acts.push(self.activity(
                t,
                a.id,
                "incident_linked",
                None,
                Some(id.to_string()),
                linked,
            ));
            acts.push(self.activity(
                t,
                a.id,
                "assignee",
                None,
                Some(analyst_id(1).to_string()),
                a.at + Span::minutes(3),
            ));
            acts.push(self.activity(
                t,
                a.id,
                "status",
                Some("new"),
                Some("escalated".into()),
                a.at + Span::minutes(4),
            ));
            if j % 5 == 0 {
                comments.push(self.comment(t, Some(a.id), None, a.at + Span::minutes(6)));
            }
        }
        for k in 0..40 {
            let when = at + Span::minutes(20 * k);
            events.push(self.event(t, id, "note", json!({"n": k}), when));
        }
        for k in 0..60 {
            comments.push(self.comment(t, None, Some(id), at + Span::minutes(15 * k + 1)));
        }
        self.send(&INCIDENT_ALERTS, links)?;
        self.send(&INCIDENT_EVENTS, events)?;
        self.send(&COMMENTS, comments)?;
        self.send(&ALERT_ACTIVITIES, acts)
    }
}

// ---------------------------------------------------------------------------------------------
// Loading

/// Binds one row of values; `$b` is a `Separated` of the backend's query builder.
macro_rules! bind_row {
    ($b:expr, $row:expr) => {
        for v in $row {
            match v {
                Val::U(x) => {
                    $b.push_bind(x);
                }
                Val::OU(x) => {
                    $b.push_bind(x);
                }
                Val::S(x) => {
                    $b.push_bind(x);
                }
                Val::OS(x) => {
                    $b.push_bind(x);
                }
                Val::I(x) => {
                    $b.push_bind(x);
                }
                Val::B(x) => {
                    $b.push_bind(x);
                }
                Val::Bytes(x) => {
                    $b.push_bind(x);
                }
                Val::T(x) => {
                    $b.push_bind(x);
                }
                Val::OT(x) => {
                    $b.push_bind(x);
                }
                Val::J(x) => {
                    $b.push_bind(sqlx::types::Json(x));
                }
            }
        }
    };
}

macro_rules! insert_fn {
    ($name:ident, $db:ty, $conn:ty) => {
        /// Multi-row INSERTs of at most ~30,000 parameters each (SQLite's limit is 32,766).
        async fn $name(conn: &mut $conn, table: &Table, rows: Vec<Vec<Val>>) -> anyhow::Result<()> {
            let per = (30_000 / table.columns.len()).min(1000);
            let mut rows = rows.into_iter().peekable();
            while rows.peek().is_some() {
                let chunk: Vec<Vec<Val>> = rows.by_ref().take(per).collect();
                let mut qb = sqlx::QueryBuilder::<$db>::new(format!(
                    "INSERT INTO {} ({}) ",
                    table.name,
                    table.columns.join(", ")
                ));
                qb.push_values(chunk, |mut b, row| {
                    bind_row!(b, row);
                });
                qb.build()
                    .execute(&mut *conn)
                    .await
                    .with_context(|| format!("inserting into {}", table.name))?;
            }
            Ok(())
        }
    };
}

insert_fn!(insert_sqlite, sqlx::Sqlite, sqlx::SqliteConnection);
insert_fn!(insert_pg, sqlx::Postgres, sqlx::PgConnection);

enum Loader {
    Sqlite(sqlx::SqliteConnection),
    Pg(sqlx::PgConnection),
}

impl Loader {
    async fn open(url: &str) -> anyhow::Result<Self> {
        use sqlx::{ConnectOptions, Executor};
        use std::str::FromStr;
        if url.starts_with("postgres") {
            let mut c = sqlx::postgres::PgConnectOptions::from_str(url)?
                .connect()
                .await?;
            c.execute("SET synchronous_commit = off").await?;
            // Skips foreign-key triggers during the load (superuser only; the data is
            // consistent by construction, and everything is inserted in dependency order).
            if c.execute("SET session_replication_role = replica")
                .await
                .is_err()
            {
                eprintln!("note: not a superuser; loading with foreign-key checks");
            }
            Ok(Loader::Pg(c))
        } else {
            let c = sqlx::sqlite::SqliteConnectOptions::from_str(url)?
                .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sqlx::sqlite::SqliteSynchronous::Off)
                .foreign_keys(false)
                .pragma("cache_size", "-262144")
                .connect()
                .await?;
            Ok(Loader::Sqlite(c))
        }
    }

    async fn exec(&mut self, sql: &'static str) -> anyhow::Result<()> {
        use sqlx::Executor;
        match self {
            Loader::Sqlite(c) => {
                c.execute(sql).await?;
            }
            Loader::Pg(c) => {
                c.execute(sql).await?;
            }
        }
        Ok(())
    }

    async fn insert(&mut self, table: &Table, rows: Vec<Vec<Val>>) -> anyhow::Result<()> {
        match self {
            Loader::Sqlite(c) => insert_sqlite(c, table, rows).await,
            Loader::Pg(c) => insert_pg(c, table, rows).await,
        }
    }
}

/// Loads the whole data set; returns the rows per table and the seconds it took.
async fn load(
    url: &str,
    tenants: Vec<Uuid>,
    alerts: u64,
    incidents: u64,
) -> anyhow::Result<(Vec<(&'static str, u64)>, f64)> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Chunk>(8);
    let end = bulwark_core::time::now();
    let generator =
        tokio::task::spawn_blocking(move || Gen::new(tenants, end, tx).run(alerts, incidents));
    let mut db = Loader::open(url).await?;
    let t0 = Instant::now();
    let mut counts: Vec<(&'static str, u64)> = Vec::new();
    let mut in_tx = 0usize;
    let mut last_report = Instant::now();
    db.exec("BEGIN").await?;
    while let Some(chunk) = rx.recv().await {
        let n = chunk.rows.len();
        match counts.iter_mut().find(|(t, _)| *t == chunk.table.name) {
            Some(c) => c.1 += n as u64,
            None => counts.push((chunk.table.name, n as u64)),
        }
        db.insert(chunk.table, chunk.rows).await?;
        in_tx += n;
        // Big transactions (a commit per ~100,000 rows).
        if in_tx >= 100_000 {
            db.exec("COMMIT").await?;
            db.exec("BEGIN").await?;
            in_tx = 0;
        }
        if last_report.elapsed() > Duration::from_secs(15) {
            last_report = Instant::now();
            eprintln!(
                "  {:.0} s: {}",
                t0.elapsed().as_secs_f64(),
                counts
                    .iter()
                    .map(|(t, n)| format!("{t} {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    db.exec("COMMIT").await?;
    generator.await??;
    let secs = t0.elapsed().as_secs_f64();
    Ok((counts, secs))
}

/// After the load: PostgreSQL's statistics and visibility map as autovacuum would leave them
/// (done now rather than waited for). SQLite gets nothing: Bulwark never runs ANALYZE, so the
/// planner works without statistics in production too.
async fn settle(url: &str) -> anyhow::Result<f64> {
    let t0 = Instant::now();
    let mut db = Loader::open(url).await?;
    match &mut db {
        Loader::Pg(_) => db.exec("VACUUM (ANALYZE)").await?,
        Loader::Sqlite(_) => db.exec("PRAGMA wal_checkpoint(TRUNCATE)").await?,
    }
    Ok(t0.elapsed().as_secs_f64())
}

// ---------------------------------------------------------------------------------------------
// The incident timeline

/// The size of the incident timeline (incident events, the linked alerts' arrivals, comments
/// on the incident and on its alerts, the alerts' activities), reported next to the timing of
/// the store's own timeline query.
const TIMELINE_SQL: &str = "SELECT at, kind, ref_id, summary FROM ( \
     SELECT e.created_at AS at, 'event' AS kind, e.id AS ref_id, e.kind AS summary \
       FROM incident_events e WHERE e.incident_id = $1 \
     UNION ALL SELECT a.first_seen, 'alert', a.id, a.title \
       FROM incident_alerts l JOIN alerts a ON a.id = l.alert_id WHERE l.incident_id = $1 AND a.deleted_at IS NULL \
     UNION ALL SELECT c.created_at, 'comment', c.id, c.body FROM comments c WHERE c.incident_id = $1 \
     UNION ALL SELECT c.created_at, 'alert_comment', c.id, c.body \
       FROM incident_alerts l JOIN comments c ON c.alert_id = l.alert_id WHERE l.incident_id = $1 \
     UNION ALL SELECT v.created_at, 'alert_activity', v.id, v.kind \
       FROM incident_alerts l JOIN alert_activities v ON v.alert_id = l.alert_id WHERE l.incident_id = $1 \
     ) t ORDER BY at, ref_id LIMIT 100";

/// Direct SQL reads the store has no method for (yet).
enum Reader {
    Sqlite(sqlx::SqlitePool),
    Pg(sqlx::PgPool),
}

impl Reader {
    async fn open(url: &str) -> anyhow::Result<Self> {
        Ok(if url.starts_with("postgres") {
            Reader::Pg(
                sqlx::postgres::PgPoolOptions::new()
                    .max_connections(2)
                    .connect(url)
                    .await?,
            )
        } else {
            Reader::Sqlite(
                sqlx::sqlite::SqlitePoolOptions::new()
                    .max_connections(2)
                    .connect(url)
                    .await?,
            )
        })
    }

    async fn timeline_size(&self, incident: Uuid) -> anyhow::Result<i64> {
        let sql = TIMELINE_SQL
            .replace(
                "SELECT at, kind, ref_id, summary FROM",
                "SELECT COUNT(*) FROM",
            )
            .replace(" ORDER BY at, ref_id LIMIT 100", "");
        let (n,): (i64,) = match self {
            Reader::Sqlite(p) => {
                sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(incident)
                    .fetch_one(p)
                    .await?
            }
            Reader::Pg(p) => {
                sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(incident)
                    .fetch_one(p)
                    .await?
            }
        };
        Ok(n)
    }

    async fn uuid(&self, sql: &'static str) -> anyhow::Result<Option<Uuid>> {
        Ok(match self {
            Reader::Sqlite(p) => sqlx::query_scalar(sql).fetch_optional(p).await?,
            Reader::Pg(p) => sqlx::query_scalar(sql).fetch_optional(p).await?,
        })
    }

    async fn text(&self, sql: &'static str, bind: Uuid) -> anyhow::Result<Option<String>> {
        Ok(match self {
            Reader::Sqlite(p) => sqlx::query_scalar(sql).bind(bind).fetch_optional(p).await?,
            Reader::Pg(p) => sqlx::query_scalar(sql).bind(bind).fetch_optional(p).await?,
        })
    }

    async fn close(&self) {
        match self {
            Reader::Sqlite(p) => p.close().await,
            Reader::Pg(p) => p.close().await,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Measuring

pub(crate) struct Stats {
    pub(crate) n: usize,
    pub(crate) p50: f64,
    pub(crate) p95: f64,
    pub(crate) p99: f64,
    pub(crate) max: f64,
}

pub(crate) fn stats(mut ms: Vec<f64>) -> Stats {
    ms.sort_by(|a, b| a.total_cmp(b));
    let at = |p: f64| {
        let i = ((ms.len() as f64 * p).ceil() as usize).clamp(1, ms.len().max(1)) - 1;
        ms.get(i).copied().unwrap_or(0.0)
    };
    Stats {
        n: ms.len(),
        p50: at(0.50),
        p95: at(0.95),
        p99: at(0.99),
        max: ms.last().copied().unwrap_or(0.0),
    }
}

/// Runs `f(i)` `iterations` times after two warm-up calls, sequentially (one analyst's
/// latency, not throughput); stops early after `budget`.
async fn time_it<F, Fut>(
    iterations: u32,
    budget: Duration,
    mut f: F,
) -> anyhow::Result<(Stats, usize)>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = anyhow::Result<usize>>,
{
    let mut rows = 0;
    for i in 0..2 {
        let t = Instant::now();
        rows = f(u32::MAX - i).await?;
        if t.elapsed() > budget / 10 {
            break;
        }
    }
    let mut ms = Vec::with_capacity(iterations as usize);
    let t0 = Instant::now();
    for i in 0..iterations {
        let t = Instant::now();
        f(i).await?;
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
        if t0.elapsed() > budget {
            break;
        }
    }
    Ok((stats(ms), rows))
}

/// Changes a case's filter for iteration `i`.
type Vary = Box<dyn Fn(u32, &mut AlertFilter)>;

/// A queue query: who asks and with which filter. `vary` changes the filter per iteration.
struct Case {
    name: String,
    access: AlertAccess,
    filter: AlertFilter,
    vary: Option<Vary>,
    /// Count the matching alerts once (not for pages over everything).
    count: bool,
}

fn page(limit: u32) -> AlertFilter {
    AlertFilter {
        limit,
        ..AlertFilter::default()
    }
}

struct Measured {
    name: String,
    matches: String,
    stats: Stats,
    target_ms: f64,
}

pub(crate) async fn triage(
    url: Option<String>,
    alerts: u64,
    incidents: u64,
    iterations: u32,
    reuse: bool,
) -> anyhow::Result<String> {
    let dir = tempfile::tempdir()?;
    let url = url.unwrap_or_else(|| format!("sqlite://{}", dir.path().join("triage.db").display()));
    let backend = if url.starts_with("postgres") {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    let t0 = Instant::now();
    let store: Store = bulwark_store::open(&url).await?;
    eprintln!(
        "store opened (migrations) in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
    let ctx = ChangeCtx::system("bench");
    let mut tenants = Vec::new();
    let existing = store
        .tenant_by_slug(&format!("{TENANT_PREFIX}{}", TENANTS[0].0))
        .await?;
    let mut report = String::new();
    if existing.is_some() && reuse {
        for (slug, _) in TENANTS {
            let t = store
                .tenant_by_slug(&format!("{TENANT_PREFIX}{slug}"))
                .await?
                .context("tenant of an earlier load is missing")?;
            tenants.push(t.id.0);
        }
        eprintln!("reusing the data loaded earlier");
        report.push_str("(data loaded by an earlier run, reused)\n\n");
    } else {
        if existing.is_some() {
            bail!(
                "the database already holds a triage data set; pass --reuse or use an empty database"
            );
        }
        for (slug, _) in TENANTS {
            let t = store
                .create_tenant(
                    &ctx,
                    NewTenant {
                        slug: format!("{TENANT_PREFIX}{slug}"),
                        name: slug.to_string(),
                    },
                )
                .await?;
            tenants.push(t.id.0);
        }
        eprintln!("loading {alerts} alerts and {incidents} incidents ...");
        let (counts, secs) = load(&url, tenants.clone(), alerts, incidents).await?;
        // The loader writes the alerts table directly, past ingestion, which keeps the
        // dashboard's roll-up: build it from the loaded alerts.
        let t1 = Instant::now();
        store.rebuild_dashboard_rollup().await?;
        eprintln!(
            "dashboard roll-up built in {:.1} s",
            t1.elapsed().as_secs_f64()
        );
        let settle_secs = settle(&url).await?;
        let rows: u64 = counts.iter().map(|c| c.1).sum();
        report.push_str(&format!(
            "Load: {rows} rows in {secs:.0} s ({:.0} rows/s); {}; then {} {settle_secs:.0} s.\n\n",
            rows as f64 / secs,
            counts
                .iter()
                .map(|(t, n)| format!("{t} {n}"))
                .collect::<Vec<_>>()
                .join(", "),
            if backend == "SQLite" {
                "WAL checkpoint"
            } else {
                "VACUUM (ANALYZE)"
            },
        ));
    }
    if backend == "SQLite" {
        let path = url
            .trim_start_matches("sqlite://")
            .trim_start_matches("sqlite:");
        if let Ok(m) = std::fs::metadata(path) {
            report.push_str(&format!(
                "Database file: {:.2} GB.\n\n",
                m.len() as f64 / 1e9
            ));
        }
    }
    let report_load = report;
    let reader = Reader::open(&url).await?;

    // Who asks.
    let admin = AlertAccess {
        scope: Scope::AllTenants,
        bypass_tags: true,
        subjects: vec!["role:admin".into()],
    };
    let analyst = |ts: Vec<Uuid>| AlertAccess {
        scope: Scope::Tenants(ts.into_iter().map(TenantId).collect()),
        bypass_tags: false,
        subjects: vec![format!("user:{}", analyst_id(3)), "role:analyst".into()],
    };
    // Tag access for the biggest tenant: analysts see phishing and identity alerts only.
    store
        .set_tag_access(
            &ctx,
            &Scope::AllTenants,
            TenantId(tenants[0]),
            &TagAccessConfig {
                enabled: true,
                untagged: Untagged::AdminOnly,
                default_tag: None,
                rules: vec![
                    TagRule {
                        subject: "role:analyst".into(),
                        tag: "phishing".into(),
                    },
                    TagRule {
                        subject: "role:analyst".into(),
                        tag: "identity".into(),
                    },
                ],
            },
        )
        .await?;

    // Targets found in the data.
    let newest = store
        .list_alerts(&admin, &page(1))
        .await?
        .first()
        .map(|a| a.first_seen)
        .context("no alerts")?;
    let obs_mid = observable_near(&reader, tenants[0], 2000).await?;
    let obs_rare = observable_near(&reader, tenants[0], 30).await?;
    let obs_top = observable_near(&reader, tenants[0], i64::MAX / 2).await?;
    let host = host_of_rank(&store, &admin, 40).await?;
    let ip_mid = obs_value_near(&reader, tenants[0], "ipv4", 3000).await?;
    let incident = reader
        .uuid("SELECT id FROM incidents WHERE number = 1000000")
        .await?
        .context("the timeline incident is missing")?;
    let light_assignee = analyst_id(ANALYSTS);
    let t_small = tenants[1];

    let mut cases: Vec<Case> = Vec::new();
    let mut case = |name: &str, access: &AlertAccess, filter: AlertFilter| {
        let f = &filter;
        let count = !matches!(access.scope, Scope::AllTenants)
            || f.tenant_id.is_some()
            || !f.status.is_empty()
            || !f.severity.is_empty()
            || f.source.is_some()
            || f.assignee_id.is_some()
            || f.tag.is_some()
            || f.since.is_some()
            || f.text.is_some()
            || f.observable.is_some()
            || f.hostname.is_some()
            || f.ip.is_some();
        cases.push(Case {
            name: name.into(),
            access: access.clone(),
            filter,
            vary: None,
            count,
        });
    };
    let a1 = analyst(vec![t_small]);
    let a2 = analyst(vec![t_small, tenants[2]]);
    let restricted = analyst(vec![tenants[0]]);
    case("first page, admin (all tenants)", &admin, page(50));
    case("first page, analyst (one tenant)", &a1, page(50));
    case("first page, analyst (two tenants)", &a2, page(50));
    case(
        "status new,triaged + severity critical,high",
        &admin,
        AlertFilter {
            status: vec!["new".into(), "triaged".into()],
            severity: vec!["critical".into(), "high".into()],
            ..page(50)
        },
    );
    case(
        "status + severity, analyst (one tenant)",
        &a1,
        AlertFilter {
            status: vec!["new".into(), "triaged".into()],
            severity: vec!["critical".into(), "high".into()],
            ..page(50)
        },
    );
    case(
        "source = sentinelone (2%)",
        &admin,
        AlertFilter {
            source: Some("sentinelone".into()),
            ..page(50)
        },
    );
    case(
        "tag = lateral-movement",
        &admin,
        AlertFilter {
            tag: Some("lateral-movement".into()),
            ..page(50)
        },
    );
    case(
        "tag = ransomware (rare)",
        &admin,
        AlertFilter {
            tag: Some("ransomware".into()),
            ..page(50)
        },
    );
    case(
        "assignee with ~1% of the alerts",
        &admin,
        AlertFilter {
            assignee_id: Some(analyst_id(ANALYSTS - 1)),
            ..page(50)
        },
    );
    case(
        "assignee with a short queue (~200 alerts)",
        &admin,
        AlertFilter {
            assignee_id: Some(light_assignee),
            ..page(50)
        },
    );
    case(
        "first seen in one day, 30 days ago",
        &admin,
        AlertFilter {
            since: Some(newest - Span::days(31)),
            until: Some(newest - Span::days(30)),
            ..page(50)
        },
    );
    case(
        "last 24 h, oldest first, no end (since alone)",
        &admin,
        AlertFilter {
            since: Some(newest - Span::days(1)),
            oldest_first: true,
            ..page(50)
        },
    );
    case(
        "first seen in the last 7 days",
        &admin,
        AlertFilter {
            since: Some(newest - Span::days(7)),
            ..page(50)
        },
    );
    case(
        "first seen 30 to 60 days ago",
        &admin,
        AlertFilter {
            since: Some(newest - Span::days(60)),
            until: Some(newest - Span::days(30)),
            ..page(50)
        },
    );
    case(
        &format!("text \"{COMMON_WORD}\" (common)"),
        &admin,
        AlertFilter {
            text: Some(COMMON_WORD.into()),
            ..page(50)
        },
    );
    case(
        &format!("text \"{COMMON_WORD}\", analyst (one tenant)"),
        &a1,
        AlertFilter {
            text: Some(COMMON_WORD.into()),
            ..page(50)
        },
    );
    case(
        &format!("text \"{MEDIUM_WORD}\" (0.5%)"),
        &admin,
        AlertFilter {
            text: Some(MEDIUM_WORD.into()),
            ..page(50)
        },
    );
    case(
        &format!("text \"{RARE_WORD}\" (rare)"),
        &admin,
        AlertFilter {
            text: Some(RARE_WORD.into()),
            ..page(50)
        },
    );
    case(
        "text \"Mimikatz\", analyst (one tenant)",
        &a1,
        AlertFilter {
            text: Some("Mimikatz".into()),
            ..page(50)
        },
    );
    case(
        &format!("observable {} (busy)", obs_mid),
        &admin,
        AlertFilter {
            observable: Some(obs_mid.clone()),
            ..page(50)
        },
    );
    case(
        &format!("observable {} (the most common)", obs_top),
        &admin,
        AlertFilter {
            observable: Some(obs_top.clone()),
            ..page(50)
        },
    );
    case(
        &format!("observable {} (rare)", obs_rare),
        &admin,
        AlertFilter {
            observable: Some(obs_rare.clone()),
            ..page(50)
        },
    );
    case(
        &format!("hostname {host}"),
        &admin,
        AlertFilter {
            hostname: Some(host.clone()),
            ..page(50)
        },
    );
    case(
        &format!("ip {ip_mid}"),
        &admin,
        AlertFilter {
            ip: Some(ip_mid.clone()),
            ..page(50)
        },
    );
    case("tag-restricted analyst, first page", &restricted, page(50));
    case(
        "tag-restricted analyst, status new",
        &restricted,
        AlertFilter {
            status: vec!["new".into()],
            ..page(50)
        },
    );
    // Deep pages: a cursor somewhere in the 90 days, different on every iteration.
    let span_ms = Span::days(DAYS - 1).num_milliseconds();
    cases.push(Case {
        name: "deep cursor page (random point in 90 days)".into(),
        access: admin.clone(),
        filter: page(50),
        count: false,
        vary: Some(Box::new(move |i, f| {
            let ms = (u64::from(i).wrapping_mul(0x9E37_79B9) % span_ms as u64) as i64;
            f.after = Some(cursor_at(newest - Span::milliseconds(ms)));
        })),
    });
    cases.push(Case {
        name: "deep cursor page, status new + severity critical".into(),
        access: admin.clone(),
        filter: AlertFilter {
            status: vec!["new".into()],
            severity: vec!["critical".into()],
            ..page(50)
        },
        count: false,
        vary: Some(Box::new(move |i, f| {
            let ms = (u64::from(i).wrapping_mul(0x9E37_79B9) % span_ms as u64) as i64;
            f.after = Some(cursor_at(newest - Span::milliseconds(ms)));
        })),
    });

    let budget = Duration::from_secs(30);
    let mut results: Vec<Measured> = Vec::new();
    for c in &cases {
        let (s, _) = time_it(iterations, budget, |i| {
            let mut f = c.filter.clone();
            if let Some(v) = &c.vary {
                v(i, &mut f);
            }
            let store = store.clone();
            let access = c.access.clone();
            async move { Ok(store.list_alerts(&access, &f).await?.len()) }
        })
        .await?;
        // How many alerts match: the whole result, once, not timed; not when a page alone
        // takes seconds (the whole result could take hours).
        let matches = if !c.count {
            "-".to_string()
        } else if s.p50 > 2000.0 {
            "(not counted)".to_string()
        } else {
            let all = AlertFilter {
                limit: u32::MAX,
                ..c.filter.clone()
            };
            store.list_alerts(&c.access, &all).await?.len().to_string()
        };
        eprintln!(
            "{:<55} p50 {:>8.2} ms  p99 {:>8.2} ms  ({matches} matching)",
            c.name, s.p50, s.p99
        );
        results.push(Measured {
            name: c.name.clone(),
            matches,
            stats: s,
            target_ms: 50.0,
        });
    }

    // One alert in full, a different one each time.
    let sample = store
        .list_alerts(
            &admin,
            &AlertFilter {
                after: Some(cursor_at(newest - Span::days(20))),
                ..page(200)
            },
        )
        .await?;
    let ids: Vec<Uuid> = sample.iter().map(|a| a.id).collect();
    let (s, _) = time_it(iterations, budget, |i| {
        let store = store.clone();
        let admin = admin.clone();
        let id = ids[i as usize % ids.len().max(1)];
        async move {
            store.get_alert(&admin, id).await?;
            Ok(1)
        }
    })
    .await?;
    eprintln!(
        "{:<55} p50 {:>8.2} ms  p99 {:>8.2} ms",
        "get_alert", s.p50, s.p99
    );
    results.push(Measured {
        name: "one alert in full (`get_alert`)".into(),
        matches: "1".into(),
        stats: s,
        target_ms: 50.0,
    });

    // The incident timeline through the store (the route's query), first page of 100.
    let size = reader.timeline_size(incident).await?;
    let (s, _) = time_it(iterations, budget, |_| {
        let store = store.clone();
        let admin = admin.clone();
        async move {
            let filter = bulwark_store::incidents::TimelineFilter {
                kinds: Vec::new(),
                after: None,
                limit: 100,
            };
            Ok(store
                .incident_timeline(&admin, incident, &filter)
                .await?
                .len())
        }
    })
    .await?;
    eprintln!(
        "{:<55} p50 {:>8.2} ms  p99 {:>8.2} ms",
        "incident timeline", s.p50, s.p99
    );
    results.push(Measured {
        name: "incident timeline, first 100 entries (1,000 linked alerts)".into(),
        matches: format!("{size} entries"),
        stats: s,
        target_ms: 100.0,
    });
    let title = reader
        .text("SELECT title FROM incidents WHERE id = $1", incident)
        .await?;
    if title.as_deref() != Some(TIMELINE_TITLE) {
        bail!("unexpected timeline incident {title:?}");
    }

    reader.close().await;
    store.close().await;

    let mut out = format!(
        "### Triage queue ({backend}, {alerts} alerts, {incidents} incidents, {iterations} iterations per query, one client)\n\n{report_load}"
    );
    out.push_str("| query | matching alerts | p50 | p95 | p99 | max | target (p99) |\n| --- | ---: | ---: | ---: | ---: | ---: | --- |\n");
    for r in &results {
        let ok = if r.stats.p99 <= r.target_ms {
            "met"
        } else {
            "**missed**"
        };
        out.push_str(&format!(
            "| {} | {} | {:.2} ms | {:.2} ms | {:.2} ms | {:.2} ms | < {:.0} ms {ok}{} |\n",
            r.name,
            r.matches,
            r.stats.p50,
            r.stats.p95,
            r.stats.p99,
            r.stats.max,
            r.target_ms,
            if r.stats.n < iterations as usize {
                format!(" ({} runs)", r.stats.n)
            } else {
                String::new()
            },
        ));
    }
    Ok(out)
}

/// An observable value of tenant `t` seen on about `sightings` alerts.
async fn observable_near(reader: &Reader, t: Uuid, sightings: i64) -> anyhow::Result<String> {
    obs_value_near(reader, t, "%", sightings).await
}

async fn obs_value_near(
    reader: &Reader,
    t: Uuid,
    kind: &str,
    sightings: i64,
) -> anyhow::Result<String> {
    // External indicators (what analysts pivot on), not the tenant's own addresses.
    let sql = "SELECT value FROM observables WHERE tenant_id = $1 AND kind LIKE $2 AND is_private = false \
               ORDER BY ABS(sightings - $3), value LIMIT 1";
    let v: Option<String> = match reader {
        Reader::Sqlite(p) => {
            sqlx::query_scalar(sql)
                .bind(t)
                .bind(kind)
                .bind(sightings)
                .fetch_optional(p)
                .await?
        }
        Reader::Pg(p) => {
            sqlx::query_scalar(sql)
                .bind(t)
                .bind(kind)
                .bind(sightings)
                .fetch_optional(p)
                .await?
        }
    };
    v.context("no observables")
}

/// The hostname of the noisiest-but-`rank` host of the biggest tenant, found through the data.
async fn host_of_rank(store: &Store, admin: &AlertAccess, rank: usize) -> anyhow::Result<String> {
    // Host names are deterministic: `<tenant>-<kind>-<rank>`; find the kind by trying.
    for (kind, _) in HOST_KINDS {
        let name = host_name(0, rank, kind);
        let f = AlertFilter {
            hostname: Some(name.clone()),
            ..page(1)
        };
        if !store.list_alerts(admin, &f).await?.is_empty() {
            return Ok(name);
        }
    }
    bail!("no host of rank {rank}")
}
