//! Automatic enrichment: observables → the tenant's intel integrations → a cached, merged
//! reputation (see `bulwark_store::enrichment` for the cache and the merge).
//!
//! An `enrichment` job names observables (queued by ingestion for new or due ones, by the API
//! for a manual request). For each observable and each of its tenant's enabled enrichment
//! integrations whose type has an action for the observable's kind (`enrich: {kinds, input}`
//! in the definition), the worker takes the lookup ([`Store::claim_lookup`]: only when the
//! cached answer expired, no backoff runs and nobody else holds it), calls the action, turns
//! the result into a verdict and score with the definition's `reputation` expressions, and
//! records it. Lookups of one integration run one after the other (its rate limit paces
//! them); different integrations run at the same time.
//!
//! **Never sent out**: private and reserved addresses (RFC 1918, loopback, link-local, CGNAT,
//! documentation and benchmarking ranges, ...), reserved and internal domain names
//! (`.local`, `.internal`, `.corp`, `.home.arpa`, `.test`, ...), URLs and e-mail addresses on
//! them, and whatever the tenant's allow-list names ([`NeverSent`]).
//!
//! **Failures** (the vendor is down, rate-limited, answers garbage, rejects the key) are
//! recorded on the lookup with the vendor's reason and retried with backoff; the job comes
//! back when the earliest retry is due. Nothing a vendor answers can crash the worker.

use crate::{CallError, Integrations, JobOutcome, types::ActionDef, types::IntegrationType};
use bulwark_core::TenantId;
use bulwark_store::Store;
use bulwark_store::automation::ClaimedJob;
use bulwark_store::enrichment::{EnrichTarget, LookupKey, LookupOutcome};
use bulwark_store::integrations::IntegrationRecord;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// How long a worker holds one lookup (the call's budget plus margin).
const LOOKUP_LEASE: Duration = Duration::from_secs(120);
/// The budget of one lookup call (a rate limit may make it wait for its slot).
const CALL_TIMEOUT: Duration = Duration::from_secs(45);

/// Suffixes of names that are internal by standard or by common practice: never sent out.
const RESERVED_SUFFIXES: &[&str] = &[
    "localhost",
    "local",
    "localdomain",
    "internal",
    "intranet",
    "private",
    "corp",
    "home",
    "lan",
    "home.arpa",
    "arpa",
    "invalid",
    "test",
    "example",
    "onion",
    "alt",
];

/// Whether an address is private or reserved: not publicly routable (see
/// `bulwark_normalize::is_private_ip`), or in a documentation, benchmarking or protocol
/// assignment range, which no real attacker uses.
pub fn reserved_ip(ip: IpAddr) -> bool {
    if bulwark_normalize::is_private_ip(ip) {
        return true;
    }
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            matches!(
                (o[0], o[1], o[2]),
                (192, 0, 2) | (198, 51, 100) | (203, 0, 113) | (192, 0, 0) | (192, 88, 99)
            ) || (o[0] == 198 && (o[1] & 0xfe) == 18)
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            (s[0] == 0x2001 && s[1] == 0x0db8)
                || v6.to_ipv4().is_some_and(|v4| reserved_ip(v4.into()))
        }
    }
}

/// Whether a host name is reserved or internal (a single label counts: it only resolves
/// inside a network).
pub fn reserved_domain(name: &str) -> bool {
    let n = name.trim_end_matches('.').to_ascii_lowercase();
    !n.contains('.')
        || RESERVED_SUFFIXES
            .iter()
            .any(|s| n == *s || n.ends_with(&format!(".{s}")))
}

/// One allow-list entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowEntry {
    /// An address range (a single address is a /32 or /128).
    Cidr(IpAddr, u8),
    /// A domain and its subdomains (also URLs and e-mail addresses on them).
    Domain(String),
    /// Exactly this value (a hash, a URL).
    Exact(String),
}

impl AllowEntry {
    /// Reads one entry: `10.0.0.0/8`, `192.0.2.7`, `corp.example.org` (or `*.corp.example.org`),
    /// anything else as an exact value.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let s = raw.trim();
        if s.is_empty() {
            return Err("empty".into());
        }
        if let Some((ip, len)) = s.split_once('/')
            && let Ok(ip) = ip.parse::<IpAddr>()
        {
            let max = if ip.is_ipv4() { 32 } else { 128 };
            let len: u8 = len
                .parse()
                .ok()
                .filter(|l| *l <= max)
                .ok_or_else(|| format!("`{s}`: the prefix length must be 0 to {max}"))?;
            return Ok(AllowEntry::Cidr(ip, len));
        }
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(AllowEntry::Cidr(ip, if ip.is_ipv4() { 32 } else { 128 }));
        }
        let d = s.strip_prefix("*.").unwrap_or(s).trim_end_matches('.');
        let domain_like = d.contains('.')
            && !d.contains("://")
            && d.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_')
            && d.split('.').all(|l| !l.is_empty() && l.len() <= 63)
            && d.chars().any(|c| c.is_ascii_alphabetic());
        // A 32/40/64-hex value is a hash, not a domain: it has no dot anyway.
        if domain_like {
            return Ok(AllowEntry::Domain(d.to_ascii_lowercase()));
        }
        Ok(AllowEntry::Exact(s.to_owned()))
    }

    fn matches_ip(&self, ip: IpAddr) -> bool {
        match (self, ip) {
            (AllowEntry::Cidr(IpAddr::V4(net), len), IpAddr::V4(v)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(*len)).unwrap_or(0);
                (u32::from(*net) & mask) == (u32::from(v) & mask)
            }
            (AllowEntry::Cidr(IpAddr::V6(net), len), IpAddr::V6(v)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(*len)).unwrap_or(0);
                (u128::from(*net) & mask) == (u128::from(v) & mask)
            }
            _ => false,
        }
    }

    fn matches_domain(&self, host: &str) -> bool {
        let h = host.trim_end_matches('.').to_ascii_lowercase();
        match self {
            AllowEntry::Domain(d) => h == *d || h.ends_with(&format!(".{d}")),
            _ => false,
        }
    }
}

/// Parses a tenant's allow-list; an entry that cannot be read is reported by position.
pub fn parse_allow_list(list: &[String]) -> Result<Vec<AllowEntry>, String> {
    list.iter()
        .enumerate()
        .map(|(i, e)| AllowEntry::parse(e).map_err(|m| format!("entry {i}: {m}")))
        .collect()
}

/// Why an observable is never sent out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NeverSent {
    /// A private or reserved address, a reserved or internal name (or a URL or e-mail on one).
    Reserved,
    /// The tenant's allow-list names it.
    AllowListed(String),
}

impl std::fmt::Display for NeverSent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NeverSent::Reserved => f.write_str(
                "a private or reserved address or internal name: never sent to an intel service",
            ),
            NeverSent::AllowListed(e) => write!(
                f,
                "on the tenant's enrichment allow-list (`{e}`): never sent to an intel service"
            ),
        }
    }
}

/// Whether an observable may be sent to intel services, and if not why.
pub fn never_sent(
    kind: &str,
    value: &str,
    is_private: bool,
    allow: &[AllowEntry],
) -> Option<NeverSent> {
    let listed = |e: &AllowEntry| -> String {
        match e {
            AllowEntry::Cidr(ip, len) => format!("{ip}/{len}"),
            AllowEntry::Domain(d) => d.clone(),
            AllowEntry::Exact(v) => v.clone(),
        }
    };
    if is_private {
        return Some(NeverSent::Reserved);
    }
    for e in allow {
        if let AllowEntry::Exact(v) = e
            && v.eq_ignore_ascii_case(value)
        {
            return Some(NeverSent::AllowListed(listed(e)));
        }
    }
    enum Host {
        Ip(IpAddr),
        Name(String),
    }
    let host = match kind {
        "ipv4" | "ipv6" => match value.parse::<IpAddr>() {
            Ok(ip) => Some(Host::Ip(ip)),
            // Not an address after all: nothing to send.
            Err(_) => return Some(NeverSent::Reserved),
        },
        "domain" => Some(Host::Name(value.to_owned())),
        "url" => match crate::outbound::Url::parse(value) {
            Ok(u) => match u.host_str() {
                Some(h) => Some(Host::Name(h.to_owned())),
                None => return Some(NeverSent::Reserved),
            },
            Err(_) => return Some(NeverSent::Reserved),
        },
        "email" => match value.rsplit_once('@') {
            Some((_, d)) => Some(Host::Name(d.to_owned())),
            None => return Some(NeverSent::Reserved),
        },
        _ => None,
    };
    match host {
        Some(Host::Ip(ip)) => {
            if reserved_ip(ip) {
                return Some(NeverSent::Reserved);
            }
            if let Some(e) = allow.iter().find(|e| e.matches_ip(ip)) {
                return Some(NeverSent::AllowListed(listed(e)));
            }
        }
        Some(Host::Name(n)) => {
            if let Ok(ip) = n.trim_matches(['[', ']']).parse::<IpAddr>() {
                return never_sent("ipv4", &ip.to_string(), false, allow);
            }
            if reserved_domain(&n) {
                return Some(NeverSent::Reserved);
            }
            if let Some(e) = allow.iter().find(|e| e.matches_domain(&n)) {
                return Some(NeverSent::AllowListed(listed(e)));
            }
        }
        None => {}
    }
    None
}

/// The action of a type that enriches observables of `kind`, if any.
pub fn enrich_action<'a>(ty: &'a IntegrationType, kind: &str) -> Option<&'a ActionDef> {
    ty.actions.iter().find(|a| {
        a.enrich
            .as_ref()
            .is_some_and(|e| e.kinds.iter().any(|k| k == kind))
    })
}

/// The integrations of `all` that can enrich `kind` (for the API's manual request).
pub fn integrations_for<'a>(
    rt: &Integrations,
    all: &'a [IntegrationRecord],
    kind: &str,
) -> Vec<&'a IntegrationRecord> {
    all.iter()
        .filter(|r| {
            rt.get_type(&r.type_name)
                .is_some_and(|t| enrich_action(&t, kind).is_some())
        })
        .collect()
}

fn store_retry(e: impl std::fmt::Display) -> JobOutcome {
    JobOutcome::RetryAt(
        Utc::now() + chrono::Duration::seconds(30),
        format!("database: {e}"),
    )
}

/// Works on one enrichment job.
pub async fn process(store: &Store, rt: &Arc<Integrations>, job: &ClaimedJob) -> JobOutcome {
    let ids: Vec<Uuid> = job
        .payload
        .get("observables")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().and_then(|s| s.parse().ok()))
                .collect()
        })
        .unwrap_or_default();
    let force = job
        .payload
        .get("force")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let targets = match store.enrichment_targets(&ids).await {
        Ok(t) => t,
        Err(e) => return store_retry(e),
    };
    let mut by_tenant: BTreeMap<TenantId, Vec<EnrichTarget>> = BTreeMap::new();
    for t in targets {
        by_tenant.entry(t.tenant_id).or_default().push(t);
    }
    let mut earliest_retry: Option<DateTime<Utc>> = None;
    let mut last_error = String::new();
    for (tenant, targets) in by_tenant {
        let (settings, integrations) = match tokio::try_join!(
            store.enrichment_settings_of(tenant),
            store.enrichment_integrations(tenant)
        ) {
            Ok(x) => x,
            Err(e) => return store_retry(e),
        };
        // A list that no longer parses (edited by hand) fails closed: nothing is sent.
        let Ok(allow) = parse_allow_list(&settings.allow_list) else {
            tracing::warn!(%tenant, "the enrichment allow-list cannot be read; nothing is sent");
            continue;
        };
        let eligible: Vec<EnrichTarget> = targets
            .into_iter()
            .filter(|t| never_sent(&t.kind, &t.value, t.is_private, &allow).is_none())
            .collect();
        let mut set = tokio::task::JoinSet::new();
        for rec in integrations {
            let Some(ty) = rt.get_type(&rec.type_name) else {
                continue;
            };
            let work: Vec<(EnrichTarget, String, String)> = eligible
                .iter()
                .filter_map(|t| {
                    let def = enrich_action(&ty, &t.kind)?;
                    let input = def.enrich.as_ref()?.input.clone();
                    Some((t.clone(), def.name.clone(), input))
                })
                .collect();
            if work.is_empty() {
                continue;
            }
            let (store, rt) = (store.clone(), rt.clone());
            let ttl = settings.cache_ttl_secs;
            set.spawn(async move { lookups(&store, &rt, &rec, work, ttl, force).await });
        }
        while let Some(r) = set.join_next().await {
            match r {
                Ok(Ok(Some((at, e)))) => {
                    earliest_retry = Some(earliest_retry.map_or(at, |x| x.min(at)));
                    last_error = e;
                }
                Ok(Ok(None)) => {}
                Ok(Err(e)) => return store_retry(e),
                Err(e) => {
                    // A panic inside a lookup task: recorded as a job failure, retried.
                    return JobOutcome::RetryAt(
                        Utc::now() + chrono::Duration::seconds(60),
                        format!("lookup task failed: {e}"),
                    );
                }
            }
        }
    }
    match earliest_retry {
        Some(at) => JobOutcome::RetryAt(
            at.max(Utc::now() + chrono::Duration::seconds(5)),
            last_error,
        ),
        None => JobOutcome::Done,
    }
}

/// One integration's lookups, in order. `Some((when, why))` when a retryable failure wants the
/// job back.
async fn lookups(
    store: &Store,
    rt: &Integrations,
    rec: &IntegrationRecord,
    work: Vec<(EnrichTarget, String, String)>,
    ttl_secs: i64,
    force: bool,
) -> Result<Option<(DateTime<Utc>, String)>, bulwark_store::StoreError> {
    let inst = rt.open(rec);
    let mut retry: Option<(DateTime<Utc>, String)> = None;
    for (target, action, input_name) in work {
        let key = LookupKey {
            tenant_id: target.tenant_id,
            kind: target.kind.clone(),
            value: target.value.clone(),
            integration_id: rec.id,
            integration: rec.name.clone(),
            type_name: rec.type_name.clone(),
            action: action.clone(),
        };
        if !store.claim_lookup(&key, LOOKUP_LEASE, force).await? {
            continue;
        }
        let input = json!({ input_name: target.value });
        let outcome: Result<Value, CallError> = match &inst {
            Ok(inst) => {
                let idem = format!("enrich:{}:{}", rec.id, target.id);
                rt.call(inst, &action, &input, &idem, CALL_TIMEOUT).await
            }
            Err(e) => Err(e.clone()),
        };
        let recorded = match outcome {
            Ok(result) => {
                let (score, verdict) = inst
                    .as_ref()
                    .ok()
                    .and_then(|i| i.ty.action(&action))
                    .and_then(|def| Integrations::reputation(def, &input, &result))
                    .unwrap_or((0, "unknown".into()));
                store
                    .record_lookup(
                        &key,
                        LookupOutcome::Found {
                            verdict,
                            score,
                            result,
                            ttl_secs,
                        },
                    )
                    .await?;
                None
            }
            Err(e) => {
                tracing::info!(integration = %rec.name, kind = %key.kind, error = %e.message, "enrichment lookup failed");
                let at = store
                    .record_lookup(
                        &key,
                        LookupOutcome::Failed {
                            error: e.message.clone(),
                            retryable: e.retryable,
                        },
                    )
                    .await?;
                // Only failures that may pass bring the job back; the others wait for the
                // next sighting after their (longer) backoff, or a manual request.
                at.filter(|_| e.retryable).map(|at| (at, e.message))
            }
        };
        if let Some((at, e)) = recorded
            && retry.as_ref().is_none_or(|(x, _)| at < *x)
        {
            retry = Some((at, e));
        }
    }
    Ok(retry)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allow(list: &[&str]) -> Vec<AllowEntry> {
        parse_allow_list(&list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
            .expect("allow-list")
    }

    #[test]
    fn private_reserved_and_internal_values_are_never_sent() {
        let none: Vec<AllowEntry> = Vec::new();
        for (kind, value) in [
            ("ipv4", "10.1.2.3"),
            ("ipv4", "192.168.0.1"),
            ("ipv4", "127.0.0.1"),
            ("ipv4", "169.254.169.254"),
            ("ipv4", "100.64.0.1"),
            ("ipv4", "203.0.113.9"),
            ("ipv4", "198.18.0.1"),
            ("ipv6", "fd00::1"),
            ("ipv6", "2001:db8::1"),
            ("ipv6", "::ffff:10.0.0.1"),
            ("domain", "fileserver.corp"),
            ("domain", "printer.local"),
            ("domain", "x.home.arpa"),
            ("domain", "intranet"),
            ("url", "http://10.0.0.5/admin"),
            ("url", "https://wiki.internal/page"),
            ("url", "http://[fd00::1]/"),
            ("email", "bob@mail.lan"),
        ] {
            assert_eq!(
                never_sent(kind, value, false, &none),
                Some(NeverSent::Reserved),
                "{kind} {value}"
            );
        }
        for (kind, value) in [
            ("ipv4", "45.33.32.156"),
            ("ipv6", "2606:4700::1111"),
            ("domain", "evil-c2.net"),
            ("url", "http://evil-c2.net/x.exe"),
            ("sha256", "ab".repeat(32).as_str()),
        ] {
            assert_eq!(
                never_sent(kind, value, false, &none),
                None,
                "{kind} {value}"
            );
        }
        // Marked private at ingestion: never, whatever the value.
        assert_eq!(
            never_sent("ipv4", "45.33.32.156", true, &none),
            Some(NeverSent::Reserved)
        );
    }

    #[test]
    fn the_allow_list_covers_ranges_domains_and_exact_values() {
        let list = allow(&[
            "45.33.32.0/24",
            "2606:4700::/32",
            "*.partner.example.org",
            "ACME.COM",
            "44d88612fea8a8f36de82e1278abb02f",
        ]);
        let hit = |k: &str, v: &str| {
            matches!(
                never_sent(k, v, false, &list),
                Some(NeverSent::AllowListed(_))
            )
        };
        assert!(hit("ipv4", "45.33.32.156"));
        assert!(!hit("ipv4", "45.33.33.1"));
        assert!(hit("ipv6", "2606:4700::1111"));
        assert!(hit("domain", "partner.example.org"));
        assert!(hit("domain", "a.b.partner.example.org"));
        assert!(!hit("domain", "notpartner.example.org"));
        assert!(hit("url", "https://www.acme.com/login"));
        assert!(hit("url", "http://45.33.32.7/x"));
        assert!(hit("email", "ceo@acme.com"));
        assert!(hit("md5", "44d88612fea8a8f36de82e1278abb02f"));
        assert!(!hit("md5", "54d88612fea8a8f36de82e1278abb02f"));
        assert_eq!(
            AllowEntry::parse("10.0.0.0/33").err().as_deref(),
            Some("`10.0.0.0/33`: the prefix length must be 0 to 32")
        );
        assert_eq!(
            AllowEntry::parse("0.0.0.0/0"),
            Ok(AllowEntry::Cidr("0.0.0.0".parse().expect("ip"), 0))
        );
        assert!(hit_all(&allow(&["0.0.0.0/0"])));
    }

    fn hit_all(list: &[AllowEntry]) -> bool {
        never_sent("ipv4", "8.8.8.8", false, list).is_some()
    }

    #[test]
    fn enrichment_actions_by_kind() {
        let rt = Integrations::for_tests(&[]);
        let vt = rt.get_type("virustotal").expect("vt");
        assert_eq!(
            enrich_action(&vt, "ipv4").map(|a| a.name.as_str()),
            Some("lookup_ip")
        );
        assert_eq!(
            enrich_action(&vt, "sha256").map(|a| a.name.as_str()),
            Some("lookup_hash")
        );
        assert!(enrich_action(&vt, "cve").is_none());
        let slack = rt.get_type("slack").expect("slack");
        assert!(enrich_action(&slack, "ipv4").is_none());
    }
}
