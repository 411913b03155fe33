//! Indicator extraction: walks every string value of a payload and pulls out IPs, domains, URLs,
//! e-mail addresses, file hashes and CVE ids, favouring precision (no file names, versions,
//! dotted field names or hex ids) as much as recall. The rules are listed in
//! `docs/normalization.md` § "Indicator extraction".
//!
//! Cost model: each string is refanged only when it contains a defang marker, and each candidate
//! regex runs only when a cheap byte count says it can match (`://` for URLs, `@` for e-mails, two
//! colons for IPv6, three dots for IPv4, a dot for domains). Hashes, CVE ids and technique ids are
//! found by hand-written scanners.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

use crate::model::{Indicator, IndicatorKind};
use crate::refang::refang_tracked;

/// Bounds on the work [`extract_indicators`] does for one payload. When a bound is reached,
/// extraction stops (deterministically) and returns what it found so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtractLimits {
    /// Nesting depth below the top-level value that is still visited (deeper values are skipped).
    pub max_depth: usize,
    /// String values scanned.
    pub max_strings: usize,
    /// Bytes of string values scanned, in total. A string that does not fit is cut at its last
    /// whitespace before the budget so that no token is scanned half.
    pub max_total_bytes: usize,
    /// Distinct indicators returned.
    pub max_indicators: usize,
}

impl Default for ExtractLimits {
    /// 64 levels, 10,000 strings, 1 MiB of text, 1,000 indicators: far above real alerts (a few
    /// KiB, a few dozen indicators), low enough to bound a hostile payload to about a millisecond.
    fn default() -> Self {
        ExtractLimits {
            max_depth: 64,
            max_strings: 10_000,
            max_total_bytes: 1 << 20,
            max_indicators: 1_000,
        }
    }
}

/// Extracts indicators from every string value in `payload` (object keys are not scanned),
/// within `limits`. The result is deduplicated by (kind, value) and sorted by kind, then value.
pub fn extract_indicators(payload: &Value, limits: &ExtractLimits) -> Vec<Indicator> {
    let mut ex = Extractor::new(*limits, false);
    ex.walk(payload, None, 0);
    ex.finish().0
}

/// Indicators plus technique ids found in free text (unverified, in order of appearance).
pub(crate) fn extract_with_techniques(
    payload: &Value,
    limits: &ExtractLimits,
) -> (Vec<Indicator>, Vec<String>) {
    let mut ex = Extractor::new(*limits, true);
    ex.walk(payload, None, 0);
    ex.finish()
}

struct Extractor {
    limits: ExtractLimits,
    scan_techniques: bool,
    strings: usize,
    bytes: usize,
    found: Vec<Indicator>,
    techniques: Vec<String>,
    stopped: bool,
}

impl Extractor {
    fn new(limits: ExtractLimits, scan_techniques: bool) -> Self {
        Extractor {
            limits,
            scan_techniques,
            strings: 0,
            bytes: 0,
            found: Vec::new(),
            techniques: Vec::new(),
            stopped: false,
        }
    }

    fn walk(&mut self, v: &Value, key: Option<&str>, depth: usize) {
        if self.stopped || depth > self.limits.max_depth {
            return;
        }
        match v {
            Value::String(s) => self.visit(s, key),
            Value::Array(items) => {
                for item in items {
                    self.walk(item, key, depth + 1);
                    if self.stopped {
                        return;
                    }
                }
            }
            Value::Object(map) => {
                for (k, item) in map {
                    self.walk(item, Some(k), depth + 1);
                    if self.stopped {
                        return;
                    }
                }
            }
            // Numbers, booleans and null carry no indicators (an IP is never a JSON number).
            _ => {}
        }
    }

    fn visit(&mut self, s: &str, key: Option<&str>) {
        if self.strings >= self.limits.max_strings {
            self.stopped = true;
            return;
        }
        self.strings += 1;
        let budget = self.limits.max_total_bytes.saturating_sub(self.bytes);
        if budget == 0 {
            self.stopped = true;
            return;
        }
        let text = if s.len() <= budget {
            s
        } else {
            self.stopped = true;
            cut_at_token_boundary(s, budget)
        };
        self.bytes += text.len();
        if self.scan_techniques {
            crate::attack::scan_text(text, &mut self.techniques);
        }
        scan(text, KeyContext::of(key), &mut self.found);
        if self.found.len() >= self.limits.max_indicators {
            self.found.sort_unstable();
            self.found.dedup();
            if self.found.len() >= self.limits.max_indicators {
                self.found.truncate(self.limits.max_indicators);
                self.stopped = true;
            }
        }
    }

    fn finish(mut self) -> (Vec<Indicator>, Vec<String>) {
        self.found.sort_unstable();
        self.found.dedup();
        self.found.truncate(self.limits.max_indicators);
        (self.found, self.techniques)
    }
}

/// The longest prefix of `s` within `max` bytes that ends at whitespace (or, failing that, at a
/// char boundary).
fn cut_at_token_boundary(s: &str, max: usize) -> &str {
    let prefix = crate::fields::clip(s, max);
    match prefix.rfind(|c: char| c.is_whitespace()) {
        Some(ws) => &prefix[..ws],
        None => prefix,
    }
}

/// What the JSON key of a string value says about it.
#[derive(Debug, Clone, Copy, Default)]
struct KeyContext {
    /// `id`, `cid`, `detectorId`, `EventUUID`, `AgentIdString`...: hex in it is an identifier.
    id_like: bool,
    /// `FileName`, `FilePath`, `image`, `TargetFilename`...: `name.ext` in it is a file name.
    file_like: bool,
}

impl KeyContext {
    fn of(key: Option<&str>) -> Self {
        let mut ctx = KeyContext::default();
        let Some(key) = key else { return ctx };
        for word in key_words(key) {
            let w = word.to_ascii_lowercase();
            match w.as_str() {
                "id" | "ids" | "uuid" | "guid" | "cid" | "aid" | "uid" | "fuid" | "sid" => {
                    ctx.id_like = true;
                }
                "file" | "filename" | "filepath" | "path" | "image" | "executable" | "exe"
                | "dir" | "directory" | "folder" | "attachment" => ctx.file_like = true,
                _ => {}
            }
        }
        ctx
    }
}

/// Splits a key into words at non-alphanumerics and camel-case humps:
/// `AgentIdString` → Agent, Id, String; `EventUUID` → Event, UUID; `customerIDString` →
/// customer, ID, String; `kibana.alert.uuid` → kibana, alert, uuid.
fn key_words(key: &str) -> impl Iterator<Item = &str> {
    key.split(|c: char| !c.is_ascii_alphanumeric())
        .flat_map(camel_split)
        .filter(|w| !w.is_empty())
}

fn camel_split(s: &str) -> Vec<&str> {
    let b = s.as_bytes();
    let mut parts = Vec::new();
    let mut start = 0;
    for i in 1..b.len() {
        let (prev, cur) = (b[i - 1], b[i]);
        let next_lower = b.get(i + 1).is_some_and(u8::is_ascii_lowercase);
        let boundary = (prev.is_ascii_lowercase() && cur.is_ascii_uppercase())
            || (prev.is_ascii_uppercase() && cur.is_ascii_uppercase() && next_lower)
            || (prev.is_ascii_digit() != cur.is_ascii_digit());
        if boundary {
            parts.push(&s[start..i]);
            start = i;
        }
    }
    parts.push(&s[start..]);
    parts
}

// ---------------------------------------------------------------------------------------------
// Per-string scanning
// ---------------------------------------------------------------------------------------------

static URL_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?i)\b(?:https?|ftps?|sftp|wss?)://[^\s<>"'`{}|\\^]+"#).expect("valid URL regex")
});
static EMAIL_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)+")
        .expect("valid e-mail regex")
});
static IPV4_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}").expect("valid IPv4 regex")
});
static IPV6_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}|[0-9A-Fa-f]{0,4})",
    )
    .expect("valid IPv6 regex")
});
static DOMAIN_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)+")
        .expect("valid domain regex")
});
static CVE_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)\bCVE-([0-9]{4})-([0-9]{4,7})\b").expect("valid CVE regex"));

/// Scans one string value.
fn scan(raw: &str, ctx: KeyContext, out: &mut Vec<Indicator>) {
    if raw.len() < 4 {
        return;
    }
    let (refanged, defang_spots) = refang_tracked(raw);
    let text: &str = &refanged;
    let b = text.as_bytes();

    let (mut dots, mut colons, mut at, mut c_or_v) = (0usize, 0usize, false, false);
    for &c in b {
        match c {
            b'.' => dots += 1,
            b':' => colons += 1,
            b'@' => at = true,
            b'V' | b'v' => c_or_v = true,
            _ => {}
        }
    }

    // Spans that bare-domain detection must skip: URLs and e-mail addresses.
    let mut masked: Vec<(usize, usize)> = Vec::new();
    if colons > 0 && text.contains("://") {
        scan_urls(text, &mut masked, out);
    }
    if at {
        scan_emails(text, &mut masked, out);
    }
    let mut v6_spans: Vec<(usize, usize)> = Vec::new();
    if colons >= 2 {
        scan_ipv6(text, &mut v6_spans, out);
    }
    if dots >= 3 {
        scan_ipv4(text, &v6_spans, out);
    }
    if dots >= 1 {
        scan_domains(text, &masked, &defang_spots, ctx, out);
    }
    if !ctx.id_like && b.len() >= 32 {
        scan_hashes(text, out);
    }
    if c_or_v && b.len() >= 13 {
        scan_cves(text, out);
    }
}

fn overlaps(spans: &[(usize, usize)], start: usize, end: usize) -> bool {
    spans.iter().any(|&(s, e)| start < e && s < end)
}

fn push(out: &mut Vec<Indicator>, kind: IndicatorKind, value: String) {
    out.push(Indicator {
        kind,
        value,
        private: false,
    });
}

fn push_ip(out: &mut Vec<Indicator>, ip: IpAddr) {
    let kind = match ip {
        IpAddr::V4(_) => IndicatorKind::Ipv4,
        IpAddr::V6(_) => IndicatorKind::Ipv6,
    };
    out.push(Indicator {
        kind,
        value: ip.to_string(),
        private: is_private_ip(ip),
    });
}

// --- URLs -------------------------------------------------------------------------------------

fn scan_urls(text: &str, masked: &mut Vec<(usize, usize)>, out: &mut Vec<Indicator>) {
    for m in URL_RE.find_iter(text) {
        let url = trim_url(m.as_str());
        let (start, end) = (m.start(), m.start() + url.len());
        masked.push((start, end));
        if let Some((canonical, host)) = parse_url(url) {
            push(out, IndicatorKind::Url, canonical);
            match host {
                UrlHost::Ip(ip) => push_ip(out, ip),
                UrlHost::Domain(d) => push(out, IndicatorKind::Domain, d),
            }
        }
    }
}

/// Strips trailing punctuation that belongs to the surrounding prose, and closing brackets that
/// have no opening partner inside the URL (`[x](https://a.b/c)`, `(see https://a.b/c)`).
fn trim_url(mut url: &str) -> &str {
    loop {
        let Some(last) = url.chars().last() else {
            return url;
        };
        let drop = match last {
            '.' | ',' | ';' | ':' | '!' | '\'' | '"' => true,
            ')' => url.matches('(').count() < url.matches(')').count(),
            ']' => url.matches('[').count() < url.matches(']').count(),
            _ => false,
        };
        if !drop {
            return url;
        }
        url = &url[..url.len() - last.len_utf8()];
    }
}

enum UrlHost {
    Ip(IpAddr),
    Domain(String),
}

/// Validates a URL and returns its canonical form (lower-case scheme and host) and its host. The
/// host must be an IP literal or a domain that passes [`public_domain`]; URLs to `localhost`,
/// single-label or `.local`/`.internal` hosts are not indicators.
fn parse_url(url: &str) -> Option<(String, UrlHost)> {
    let sep = url.find("://")?;
    let scheme = &url[..sep];
    let rest = &url[sep + 3..];
    let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..auth_end];
    let after = &rest[auth_end..];
    let (userinfo, hostport) = match authority.rfind('@') {
        Some(i) => (&authority[..=i], &authority[i + 1..]),
        None => ("", authority),
    };
    let (host, port) = split_host_port(hostport)?;
    let host_kind = if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        UrlHost::Ip(IpAddr::V6(v6.parse().ok()?))
    } else if let Ok(v4) = host.parse::<Ipv4Addr>() {
        UrlHost::Ip(IpAddr::V4(v4))
    } else {
        UrlHost::Domain(public_domain(host)?)
    };
    let host_text = match &host_kind {
        UrlHost::Ip(IpAddr::V6(v6)) => format!("[{v6}]"),
        UrlHost::Ip(IpAddr::V4(v4)) => v4.to_string(),
        UrlHost::Domain(d) => d.clone(),
    };
    let canonical = format!(
        "{}://{userinfo}{host_text}{port}{after}",
        scheme.to_ascii_lowercase()
    );
    Some((canonical, host_kind))
}

/// Splits `host[:port]` / `[v6][:port]`; the port, when present, must be digits (kept with its
/// colon).
fn split_host_port(hp: &str) -> Option<(&str, &str)> {
    if hp.starts_with('[') {
        let close = hp.find(']')?;
        let (host, port) = hp.split_at(close + 1);
        return valid_port(port).then_some((host, port));
    }
    match hp.rfind(':') {
        Some(i) => {
            let (host, port) = hp.split_at(i);
            valid_port(port).then_some((host, port))
        }
        None => Some((hp, "")),
    }
}

fn valid_port(p: &str) -> bool {
    p.is_empty()
        || (p.len() <= 6 && p.starts_with(':') && p[1..].bytes().all(|c| c.is_ascii_digit()))
}

// --- e-mail -----------------------------------------------------------------------------------

fn scan_emails(text: &str, masked: &mut Vec<(usize, usize)>, out: &mut Vec<Indicator>) {
    for m in EMAIL_RE.find_iter(text) {
        let (start, end) = (m.start(), m.end());
        let inside_url = overlaps(masked, start, end);
        masked.push((start, end));
        if inside_url {
            continue; // userinfo or a query parameter of a URL already extracted
        }
        let email = m.as_str();
        let Some((local, domain)) = email.rsplit_once('@') else {
            continue;
        };
        if local.is_empty()
            || local.len() > 64
            || local.starts_with('.')
            || local.ends_with('.')
            || local.contains("..")
        {
            continue;
        }
        if let Some(domain) = public_domain(domain) {
            push(
                out,
                IndicatorKind::Email,
                format!("{}@{domain}", local.to_ascii_lowercase()),
            );
        }
    }
}

// --- IP addresses -----------------------------------------------------------------------------

fn scan_ipv6(text: &str, spans: &mut Vec<(usize, usize)>, out: &mut Vec<Indicator>) {
    let b = text.as_bytes();
    for m in IPV6_RE.find_iter(text) {
        let (start, end) = (m.start(), m.end());
        let before = start.checked_sub(1).map(|i| b[i]);
        let after = b.get(end).copied();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b':' | b'.'))
            || after.is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b':'))
        {
            continue;
        }
        let Ok(ip) = m.as_str().parse::<Ipv6Addr>() else {
            continue;
        };
        if ip.is_unspecified() {
            continue; // "::" is far more often a separator (`AWS::IAM`) than an address
        }
        spans.push((start, end));
        push_ip(out, IpAddr::V6(ip));
    }
}

fn scan_ipv4(text: &str, v6_spans: &[(usize, usize)], out: &mut Vec<Indicator>) {
    let b = text.as_bytes();
    for m in IPV4_RE.find_iter(text) {
        let (start, end) = (m.start(), m.end());
        if overlaps(v6_spans, start, end) {
            continue;
        }
        // Not part of a longer dotted run (versions `1.2.3.4.5`, OIDs) or an identifier.
        if start > 0 {
            let c = b[start - 1];
            if c.is_ascii_alphanumeric() || c == b'_' || c == b'.' {
                continue;
            }
            // `Chrome/120.0.0.0`, `Safari/537.36`: a product token's version.
            if c == b'/' && start > 1 && b[start - 2].is_ascii_alphanumeric() {
                continue;
            }
        }
        if let Some(&c) = b.get(end) {
            if c.is_ascii_alphanumeric() || c == b'_' {
                continue;
            }
            if c == b'.' && b.get(end + 1).is_some_and(u8::is_ascii_digit) {
                continue;
            }
        }
        if preceded_by_version_word(&text[..start]) {
            continue;
        }
        if let Ok(ip) = m.as_str().parse::<Ipv4Addr>() {
            push_ip(out, IpAddr::V4(ip));
        }
    }
}

/// `version 1.2.3.4`, `ver=10.0.0.1`, `build: 6.1.7601.1`.
fn preceded_by_version_word(before: &str) -> bool {
    let t = before.trim_end_matches([' ', '=', ':']);
    if t.len() == before.len() {
        return false;
    }
    let tail = &t.as_bytes()[t.len().saturating_sub(7)..];
    let tail = String::from_utf8_lossy(tail).to_ascii_lowercase();
    tail.ends_with("version") || tail.ends_with("ver") || tail.ends_with("build")
}

/// Whether an IP is not publicly routable: RFC 1918, loopback, link-local, CGNAT (100.64/10),
/// "this network" (0/8), multicast, reserved 240/4 and broadcast; IPv6 loopback, unspecified,
/// ULA (fc00::/7), link-local (fe80::/10), site-local (fec0::/10), multicast, and IPv4-mapped
/// addresses by their IPv4 part. Documentation ranges (192.0.2/24, 198.51.100/24, 203.0.113/24,
/// 2001:db8::/32) count as public.
pub fn is_private_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_private_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private_v4(v4);
            }
            let seg0 = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (seg0 & 0xfe00) == 0xfc00
                || (seg0 & 0xffc0) == 0xfe80
                || (seg0 & 0xffc0) == 0xfec0
        }
    }
}

fn is_private_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_multicast()
        || ip.is_broadcast()
        || a == 0
        || a >= 240
        || (a == 100 && (64..128).contains(&b))
}

// --- domains ----------------------------------------------------------------------------------

/// TLDs that are also common data-field or identifier words (`user.name`, `host.id`,
/// `process.pid`, `winlog.computer`, `url.domains`...). A bare dotted token ending in one of
/// these is a field reference far more often than a domain, so it is only accepted when it was
/// defanged or appears as a URL host.
const FIELD_WORD_TLDS: &[&str] = &[
    "channel",
    "city",
    "codes",
    "computer",
    "country",
    "data",
    "date",
    "day",
    "direct",
    "directory",
    "domains",
    "download",
    "email",
    "events",
    "exposed",
    "family",
    "group",
    "help",
    "host",
    "id",
    "java",
    "map",
    "media",
    "name",
    "network",
    "new",
    "now",
    "observer",
    "pe",
    "pid",
    "properties",
    "report",
    "rest",
    "security",
    "services",
    "show",
    "software",
    "support",
    "systems",
    "target",
    "tools",
];

/// TLDs that are also common file extensions (`setup.py`, `run.sh`, `README.md`, `invoice.zip`,
/// `Safari.app`, `libx.so`, `main.rs`, `Makefile.am`, `configure.ac`). A bare two-label token
/// ending in one of these is read as a file name unless it was defanged or is a URL host.
const FILE_EXT_TLDS: &[&str] = &[
    "ac", "ai", "am", "app", "bz", "cab", "cat", "cc", "ch", "cx", "gs", "in", "la", "md", "mk",
    "ml", "mo", "mov", "ms", "pl", "pm", "ps", "py", "rs", "run", "sc", "sh", "so", "st", "tf",
    "tk", "ws", "zip",
];

/// First labels that mark a reverse-DNS identifier (`com.apple.news`, `org.apache.commons.io`)
/// when the token has three or more labels.
const REVERSE_DNS_FIRST: &[&str] = &["com", "org", "net", "edu", "gov", "mil", "io"];

fn scan_domains(
    text: &str,
    masked: &[(usize, usize)],
    defang_spots: &[usize],
    ctx: KeyContext,
    out: &mut Vec<Indicator>,
) {
    let b = text.as_bytes();
    for m in DOMAIN_RE.find_iter(text) {
        let (start, end) = (m.start(), m.end());
        if overlaps(masked, start, end) {
            continue;
        }
        let cand = m.as_str();
        let defanged = defang_spots.iter().any(|&p| p >= start && p < end);
        if !bare_context_ok(b, start, end) && !defanged {
            continue;
        }
        let Some((labels, tld)) = label_shape(cand) else {
            continue;
        };
        if !case_consistent(cand, tld) {
            continue;
        }
        let lower = cand.to_ascii_lowercase();
        let tld_l = &lower[lower.len() - tld.len()..];
        if !defanged {
            if ctx.file_like || FIELD_WORD_TLDS.contains(&tld_l) {
                continue;
            }
            if labels == 2 && FILE_EXT_TLDS.contains(&tld_l) {
                continue;
            }
            let first = lower.split('.').next().unwrap_or_default();
            if labels >= 3 && REVERSE_DNS_FIRST.contains(&first) {
                continue;
            }
        }
        if let Some(d) = public_domain(&lower) {
            push(out, IndicatorKind::Domain, d);
        }
    }
}

/// The characters around a bare token must not make it part of a path, an identifier, a
/// wildcard, an e-mail, a key=value key or a call.
fn bare_context_ok(b: &[u8], start: usize, end: usize) -> bool {
    if start > 0 {
        let c = b[start - 1];
        match c {
            b'.' | b'_' | b'$' | b'%' | b'*' | b'@' | b'-' | b'~' | b'#' => return false,
            b'/' | b'\\' => {
                // `//host` and `\\host` (authority, UNC) are fine; `/dir/file.ext` is a path.
                let doubled = start >= 2 && b[start - 2] == c;
                if !doubled {
                    return false;
                }
            }
            _ => {}
        }
    }
    if let Some(&c) = b.get(end)
        && matches!(c, b'_' | b'(' | b'$' | b'@' | b'=' | b'%')
    {
        return false;
    }
    true
}

/// Label count and TLD (as written) of a dotted token, when every label is a valid DNS label and
/// the TLD is alphabetic (or punycode).
fn label_shape(cand: &str) -> Option<(usize, &str)> {
    if cand.len() > 253 {
        return None;
    }
    let mut count = 0;
    let mut last = "";
    for label in cand.split('.') {
        if label.is_empty() || label.len() > 63 || label.starts_with('-') || label.ends_with('-') {
            return None;
        }
        count += 1;
        last = label;
    }
    let tld_ok = last.len() >= 2
        && (last.bytes().all(|c| c.is_ascii_alphabetic())
            || (last.len() > 4 && last[..4].eq_ignore_ascii_case("xn--")));
    (count >= 2 && tld_ok).then_some((count, last))
}

/// `System.IO`, `Microsoft.Azure`, `chrome.mojom.UtilWin`: an upper-case letter in the TLD of an
/// otherwise mixed-case token marks a code identifier. All-upper (`WWW.EXAMPLE.COM`) and
/// lower-case TLDs (`Google.com`) are fine.
fn case_consistent(cand: &str, tld: &str) -> bool {
    if !tld.bytes().any(|c| c.is_ascii_uppercase()) {
        return true;
    }
    !cand.bytes().any(|c| c.is_ascii_lowercase())
}

/// Non-routable names that never count as public domains, whatever the suffix list says.
const NON_ROUTABLE_TLDS: &[&str] = &[
    "arpa",
    "corp",
    "home",
    "internal",
    "intranet",
    "invalid",
    "lan",
    "local",
    "localdomain",
    "localhost",
    "private",
    "test",
];

/// Validates a host name against the public suffix list and returns it lower-cased without a
/// trailing dot. It must end in a suffix the list knows and leave a registrable label under it
/// (`evil.co.uk`, not `co.uk`); a name that *is* a private-section suffix with two or more labels
/// (`s3.amazonaws.com`, `github.io`) is a real host and is accepted too.
pub(crate) fn public_domain(host: &str) -> Option<String> {
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.is_empty() || host.len() > 253 {
        return None;
    }
    let lower = host.to_ascii_lowercase();
    let (_, tld_shape) = label_shape(&lower)?;
    if NON_ROUTABLE_TLDS.contains(&tld_shape) {
        return None;
    }
    let suffix = psl::suffix(lower.as_bytes())?;
    let typ = suffix.typ()?; // unknown TLDs (`.exe`, `.kind`, `.local`) are rejected here
    if psl::domain(lower.as_bytes()).is_some() {
        return Some(lower);
    }
    let is_private_suffix_itself =
        typ == psl::Type::Private && suffix.as_bytes() == lower.as_bytes() && lower.contains('.');
    is_private_suffix_itself.then_some(lower)
}

// --- hashes -----------------------------------------------------------------------------------

fn scan_hashes(text: &str, out: &mut Vec<Indicator>) {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_hexdigit() {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && b[i].is_ascii_hexdigit() {
            i += 1;
        }
        let end = i;
        let Some(kind) = hash_kind(end - start) else {
            continue;
        };
        // The run must stand alone: a hex run glued to other letters or digits is part of a
        // longer identifier (`RMD5267e...`, `0x...`).
        if start > 0 && b[start - 1].is_ascii_alphanumeric() {
            continue;
        }
        if end < b.len() && b[end].is_ascii_alphanumeric() {
            continue;
        }
        let run = &text[start..end];
        if !plausible_hash(run) || in_arn(b, start) {
            continue;
        }
        push(out, kind, run.to_ascii_lowercase());
    }
}

fn hash_kind(len: usize) -> Option<IndicatorKind> {
    match len {
        32 => Some(IndicatorKind::Md5),
        40 => Some(IndicatorKind::Sha1),
        64 => Some(IndicatorKind::Sha256),
        128 => Some(IndicatorKind::Sha512),
        _ => None,
    }
}

/// Rejects placeholders and look-alikes: one repeated character (`000…0`, `fff…f`), all decimal
/// digits (numeric ids), and mixed case (hashes are written in one case; mixed-case hex runs are
/// base64 or random tokens).
fn plausible_hash(run: &str) -> bool {
    let b = run.as_bytes();
    if b.iter().all(|&c| c == b[0]) {
        return false;
    }
    if b.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let upper = b.iter().any(u8::is_ascii_uppercase);
    let lower = b.iter().any(u8::is_ascii_lowercase);
    !(upper && lower)
}

/// Whether the token containing `pos` is an AWS ARN (`arn:aws:guardduty:...:detector/<id>`): hex
/// in ARNs is a resource id.
fn in_arn(b: &[u8], pos: usize) -> bool {
    let token_start = b[..pos]
        .iter()
        .rposition(|c| c.is_ascii_whitespace() || matches!(c, b'"' | b'\'' | b',' | b'(' | b'['))
        .map_or(0, |i| i + 1);
    b[token_start..].len() >= 4 && b[token_start..token_start + 4].eq_ignore_ascii_case(b"arn:")
}

/// Validates and lower-cases a value from a structured hash field (`MD5String`, `file.hash.sha256`).
pub(crate) fn normalize_hash(s: &str) -> Option<String> {
    let b = s.as_bytes();
    hash_kind(b.len())?;
    if !b.iter().all(u8::is_ascii_hexdigit) || b.iter().all(|&c| c == b[0]) {
        return None;
    }
    Some(s.to_ascii_lowercase())
}

// --- CVE --------------------------------------------------------------------------------------

fn scan_cves(text: &str, out: &mut Vec<Indicator>) {
    for caps in CVE_RE.captures_iter(text) {
        let (Some(year), Some(num)) = (caps.get(1), caps.get(2)) else {
            continue;
        };
        let year_ok = year.as_str().parse::<u16>().is_ok_and(|y| y >= 1999);
        if year_ok {
            push(
                out,
                IndicatorKind::Cve,
                format!("CVE-{}-{}", year.as_str(), num.as_str()),
            );
        }
    }
}

// --- one value given by hand -------------------------------------------------------------------

/// Why a value entered by hand is not a valid indicator of the given kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid {kind} indicator: {reason}")]
pub struct InvalidIndicator {
    pub kind: IndicatorKind,
    pub reason: &'static str,
}

/// Validates one value of a known `kind` (entered by an analyst, not found in a payload) and
/// returns it in the canonical form extraction gives it, so that a value added by hand and the
/// same value seen in an alert are one observable. Defanged input is refanged first; surrounding
/// whitespace is ignored.
///
/// The value must be the whole indicator: `ipv4`/`ipv6` parse as addresses (`::` is refused);
/// `domain` is a public name under a known suffix, lower-cased, without a trailing dot; `url`
/// has a scheme (`http`, `https`, `ftp`, `ftps`, `sftp`, `ws`, `wss`) and a public host or IP,
/// with the scheme and host lower-cased; `email` has a public domain and is lower-cased; hashes
/// are hex of the kind's length (32, 40, 64, 128), lower-cased; `cve` is `CVE-YYYY-NNNN+`
/// (year 1999 or later), upper-cased.
pub fn normalize_indicator(kind: IndicatorKind, raw: &str) -> Result<Indicator, InvalidIndicator> {
    let err = |reason| InvalidIndicator { kind, reason };
    let refanged = crate::refang::refang(raw.trim());
    let v = refanged.trim();
    if v.is_empty() {
        return Err(err("empty value"));
    }
    if v.len() > 4096 {
        return Err(err("longer than 4096 bytes"));
    }
    if v.chars().any(char::is_control) {
        return Err(err("contains control characters"));
    }
    let whole = |re: &Regex, s: &str| {
        re.find(s)
            .is_some_and(|m| m.start() == 0 && m.end() == s.len())
    };
    let value = match kind {
        IndicatorKind::Ipv4 => {
            let ip: Ipv4Addr = v.parse().map_err(|_| err("not an IPv4 address"))?;
            return Ok(Indicator {
                kind,
                value: ip.to_string(),
                private: is_private_ip(IpAddr::V4(ip)),
            });
        }
        IndicatorKind::Ipv6 => {
            let inner = v
                .strip_prefix('[')
                .and_then(|x| x.strip_suffix(']'))
                .unwrap_or(v);
            let ip: Ipv6Addr = inner.parse().map_err(|_| err("not an IPv6 address"))?;
            if ip.is_unspecified() {
                return Err(err("the unspecified address :: is not an indicator"));
            }
            return Ok(Indicator {
                kind,
                value: ip.to_string(),
                private: is_private_ip(IpAddr::V6(ip)),
            });
        }
        IndicatorKind::Domain => {
            if !whole(&DOMAIN_RE, v.strip_suffix('.').unwrap_or(v)) {
                return Err(err(
                    "not a domain name (letters, digits, '-' and dots; punycode for IDNs)",
                ));
            }
            public_domain(v)
                .ok_or_else(|| err("not a public domain name (unknown or non-routable suffix)"))?
        }
        IndicatorKind::Url => {
            if !whole(&URL_RE, v) {
                return Err(err("not a URL (expected scheme://host/...)"));
            }
            // Trailing prose punctuation goes, as in extraction.
            parse_url(trim_url(v))
                .map(|(canonical, _)| canonical)
                .ok_or_else(|| err("the URL's host is not a public domain or an IP address"))?
        }
        IndicatorKind::Email => {
            if !whole(&EMAIL_RE, v) {
                return Err(err("not an e-mail address"));
            }
            let (local, domain) = v
                .rsplit_once('@')
                .ok_or_else(|| err("not an e-mail address"))?;
            if local.is_empty()
                || local.len() > 64
                || local.starts_with('.')
                || local.ends_with('.')
                || local.contains("..")
            {
                return Err(err("the local part is not valid"));
            }
            let domain = public_domain(domain)
                .ok_or_else(|| err("the domain is not a public domain name"))?;
            format!("{}@{domain}", local.to_ascii_lowercase())
        }
        IndicatorKind::Md5
        | IndicatorKind::Sha1
        | IndicatorKind::Sha256
        | IndicatorKind::Sha512 => {
            let hash = normalize_hash(v).ok_or_else(|| {
                err("not a hash (hex digits of a hash length, not one repeated digit)")
            })?;
            if hash_kind(hash.len()) != Some(kind) {
                return Err(err(
                    "wrong length for this hash kind (md5 32, sha1 40, sha256 64, sha512 128 hex digits)",
                ));
            }
            hash
        }
        IndicatorKind::Cve => {
            let caps = CVE_RE
                .captures(v)
                .filter(|c| {
                    c.get(0)
                        .is_some_and(|m| m.start() == 0 && m.end() == v.len())
                })
                .ok_or_else(|| err("not a CVE id (CVE-YYYY-NNNN)"))?;
            let (Some(year), Some(num)) = (caps.get(1), caps.get(2)) else {
                return Err(err("not a CVE id (CVE-YYYY-NNNN)"));
            };
            if !year.as_str().parse::<u16>().is_ok_and(|y| y >= 1999) {
                return Err(err("CVE years start at 1999"));
            }
            format!("CVE-{}-{}", year.as_str(), num.as_str())
        }
    };
    Ok(Indicator {
        kind,
        value,
        private: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_words_split() {
        let w = |k: &str| key_words(k).map(str::to_string).collect::<Vec<_>>();
        assert_eq!(w("AgentIdString"), ["Agent", "Id", "String"]);
        assert_eq!(w("EventUUID"), ["Event", "UUID"]);
        assert_eq!(w("customerIDString"), ["customer", "ID", "String"]);
        assert_eq!(w("kibana.alert.uuid"), ["kibana", "alert", "uuid"]);
        assert_eq!(w("MD5String"), ["MD", "5", "String"]);
        assert!(KeyContext::of(Some("detectorId")).id_like);
        assert!(KeyContext::of(Some("cid")).id_like);
        assert!(!KeyContext::of(Some("MD5String")).id_like);
        assert!(!KeyContext::of(Some("SHA256String")).id_like);
        assert!(KeyContext::of(Some("TargetFilename")).file_like);
        assert!(!KeyContext::of(Some("CommandLine")).file_like);
        assert!(!KeyContext::of(Some("profile")).file_like);
    }

    #[test]
    fn public_domain_rules() {
        assert_eq!(
            public_domain("WWW.Reddit.com.").as_deref(),
            Some("www.reddit.com")
        );
        assert_eq!(
            public_domain("iam.amazonaws.com").as_deref(),
            Some("iam.amazonaws.com")
        );
        assert_eq!(
            public_domain("s3.amazonaws.com").as_deref(),
            Some("s3.amazonaws.com")
        );
        assert!(public_domain("x.onion").is_some());
        for bad in [
            "co.uk",
            "com",
            "cmd.exe",
            "localhost.localdomain",
            "hostname.local",
            "svc.cluster.internal",
            "event.kind",
            "1.2.3.4",
            "in-addr.arpa",
        ] {
            assert_eq!(public_domain(bad), None, "{bad}");
        }
    }

    #[test]
    fn private_ranges() {
        let p = |s: &str| is_private_ip(s.parse().expect("test ip"));
        for private in [
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "127.0.0.1",
            "169.254.1.1",
            "100.64.0.1",
            "100.127.255.255",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "ff02::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(p(private), "{private} should be private");
        }
        for public in [
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.9",
            "11.0.0.1",
            "2001:db8::1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(!p(public), "{public} should be public");
        }
    }

    #[test]
    fn hash_rules() {
        assert!(plausible_hash("d41d8cd98f00b204e9800998ecf8427e"));
        assert!(plausible_hash("D41D8CD98F00B204E9800998ECF8427E"));
        assert!(!plausible_hash("00000000000000000000000000000000"));
        assert!(!plausible_hash("12345678901234567890123456789012"));
        assert!(!plausible_hash("D41d8cd98f00b204e9800998ecf8427e"));
        assert_eq!(
            normalize_hash("ABCDEF0123456789ABCDEF0123456789").as_deref(),
            Some("abcdef0123456789abcdef0123456789")
        );
        assert_eq!(normalize_hash("not-a-hash"), None);
    }

    #[test]
    fn url_trimming() {
        assert_eq!(trim_url("https://a.com/x)."), "https://a.com/x");
        assert_eq!(
            trim_url("https://en.wikipedia.org/wiki/Foo_(bar)"),
            "https://en.wikipedia.org/wiki/Foo_(bar)"
        );
        assert_eq!(trim_url("http://t.io/load.sh;"), "http://t.io/load.sh");
        assert_eq!(trim_url("https://x.com/?"), "https://x.com/?");
    }
}
