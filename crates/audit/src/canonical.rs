//! Canonical record encoding (format version 1).
//!
//! A record is encoded as one JSON object in the canonical form of RFC 8785
//! (JSON Canonicalization Scheme) restricted to a data model without
//! fractional numbers:
//!
//! * no whitespace anywhere;
//! * object members sorted by key, comparing keys as UTF-16 code-unit
//!   sequences, no duplicate keys;
//! * strings: `"` and `\` escaped as `\"` and `\\`; U+0008, U+0009, U+000A,
//!   U+000C, U+000D as `\b`, `\t`, `\n`, `\f`, `\r`; other code points below
//!   U+0020 as `\u00xx` (lowercase hex); everything else as raw UTF-8;
//! * numbers: integers only, in decimal, no leading zeros, no `+`, no `-0`,
//!   no fraction or exponent;
//! * optional fields are omitted when absent (never `null`), except that a
//!   before/after snapshot may be an explicit JSON `null`.
//!
//! The decoder accepts exactly the bytes the encoder produces. It is a strict
//! hand-written parser that expects the record's members in their canonical
//! order (it never goes through a general JSON parser, whose behaviour could
//! change with cargo features such as `preserve_order` or
//! `arbitrary_precision` enabled elsewhere in the build). As a final guard it
//! re-encodes the decoded record, comparing against the input as it goes
//! (no allocation), and rejects any difference. Hence `encode(decode(b)) == b`
//! for every accepted `b`, and two different byte strings never decode to the
//! same record.
//!
//! See docs/audit.md for the record schema.

use std::borrow::Cow;
use std::cmp::Ordering;

use serde::Serialize;
use serde_json::{Map, Number, Value};
use uuid::Uuid;

use crate::event::EventType;
use crate::record::{
    Actor, ActorKind, AuditRecord, AuditTime, AuditValue, MAX_SAFE_INTEGER, MAX_VALUE_DEPTH,
    RECORD_FORMAT_VERSION, Summary, Target,
};

/// Why bytes are not a valid canonical record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("invalid audit record encoding at byte {offset}: {reason}")]
pub struct DecodeError {
    /// Byte offset at which the problem was detected.
    pub offset: usize,
    /// What is wrong.
    pub reason: &'static str,
}

// ---- encoder ---------------------------------------------------------------

/// Where encoded bytes go: a buffer, or a comparison against expected bytes.
trait Sink {
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

/// Compares the encoding with `rest` without building it.
struct Matcher<'a> {
    rest: &'a [u8],
    ok: bool,
}

impl Sink for Matcher<'_> {
    fn put(&mut self, bytes: &[u8]) {
        if self.ok {
            match self.rest.strip_prefix(bytes) {
                Some(rest) => self.rest = rest,
                None => self.ok = false,
            }
        }
    }
}

/// Encodes a record in canonical form. The database stores exactly these
/// bytes; the chain hash covers them.
pub fn encode_record(r: &AuditRecord) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    write_record(&mut out, r);
    out
}

/// True if `bytes` is exactly `encode_record(r)`.
fn encodes_to(r: &AuditRecord, bytes: &[u8]) -> bool {
    let mut m = Matcher {
        rest: bytes,
        ok: true,
    };
    write_record(&mut m, r);
    m.ok && m.rest.is_empty()
}

// The member order below is the canonical (sorted) order. The decoder expects
// the same order; tests check it against an independent canonicalizer.
fn write_record<S: Sink>(out: &mut S, r: &AuditRecord) {
    out.put(b"{\"actor\":");
    write_actor(out, &r.actor);
    out.put(b",\"event_type\":");
    write_str(out, r.event_type.as_str());
    if let Some(id) = &r.request_id {
        out.put(b",\"request_id\":");
        write_str(out, id);
    }
    out.put(b",\"seq\":");
    write_u64(out, r.seq);
    out.put(b",\"summary\":");
    write_summary(out, &r.summary);
    out.put(b",\"target\":");
    write_target(out, &r.target);
    out.put(b",\"tenant_id\":\"");
    let mut buf = Uuid::encode_buffer();
    out.put(r.tenant_id.hyphenated().encode_lower(&mut buf).as_bytes());
    out.put(b"\",\"ts\":\"");
    out.put(&r.ts.canonical_bytes());
    out.put(b"\",\"v\":");
    write_u64(out, RECORD_FORMAT_VERSION);
    out.put(b"}");
}

fn write_actor<S: Sink>(out: &mut S, a: &Actor) {
    out.put(b"{");
    if let Some(id) = &a.id {
        out.put(b"\"id\":");
        write_str(out, id);
        out.put(b",");
    }
    out.put(b"\"kind\":");
    write_str(out, a.kind.as_str());
    if let Some(name) = &a.name {
        out.put(b",\"name\":");
        write_str(out, name);
    }
    out.put(b"}");
}

fn write_target<S: Sink>(out: &mut S, t: &Target) {
    out.put(b"{");
    if let Some(id) = &t.id {
        out.put(b"\"id\":");
        write_str(out, id);
        out.put(b",");
    }
    out.put(b"\"kind\":");
    write_str(out, &t.kind);
    out.put(b"}");
}

fn write_summary<S: Sink>(out: &mut S, s: &Summary) {
    out.put(b"{");
    let mut sep: &[u8] = b"";
    if let Some(v) = &s.after {
        out.put(b"\"after\":");
        write_value(out, v.as_value());
        sep = b",";
    }
    if let Some(v) = &s.before {
        out.put(sep);
        out.put(b"\"before\":");
        write_value(out, v.as_value());
        sep = b",";
    }
    if let Some(d) = &s.detail {
        out.put(sep);
        out.put(b"\"detail\":");
        write_str(out, d);
    }
    out.put(b"}");
}

fn write_u64<S: Sink>(out: &mut S, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    while i > 0 {
        i -= 1;
        if let Some(slot) = buf.get_mut(i) {
            // `v % 10` is a single digit.
            *slot = b'0' + (v % 10) as u8;
        }
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.put(buf.get(i..).unwrap_or_default());
}

fn write_i64<S: Sink>(out: &mut S, v: i64) {
    if v < 0 {
        out.put(b"-");
    }
    write_u64(out, v.unsigned_abs());
}

/// Writes a JSON value canonically. [`AuditValue`] guarantees integers in the
/// safe range and bounded depth.
fn write_value<S: Sink>(out: &mut S, v: &Value) {
    match v {
        Value::Null => out.put(b"null"),
        Value::Bool(true) => out.put(b"true"),
        Value::Bool(false) => out.put(b"false"),
        Value::Number(n) => match n.as_i64() {
            Some(i) => write_i64(out, i),
            // Unreachable for a validated AuditValue. Writing serde_json's
            // own text keeps this function total; the decoder rejects it, so
            // such bytes could never verify.
            None => out.put(n.to_string().as_bytes()),
        },
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.put(b"[");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.put(b",");
                }
                write_value(out, item);
            }
            out.put(b"]");
        }
        Value::Object(map) => {
            // Sort explicitly: serde_json's map order depends on cargo
            // features (`preserve_order`) enabled anywhere in the build, and
            // its default order (bytes) differs from RFC 8785's (UTF-16).
            let sorted = map
                .keys()
                .zip(map.keys().skip(1))
                .all(|(a, b)| cmp_utf16(a, b) == Ordering::Less);
            out.put(b"{");
            if sorted {
                write_members(out, map.iter());
            } else {
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                entries.sort_by(|a, b| cmp_utf16(a.0, b.0));
                write_members(out, entries.into_iter());
            }
            out.put(b"}");
        }
    }
}

fn write_members<'v, S: Sink>(out: &mut S, members: impl Iterator<Item = (&'v String, &'v Value)>) {
    for (i, (k, v)) in members.enumerate() {
        if i > 0 {
            out.put(b",");
        }
        write_str(out, k);
        out.put(b":");
        write_value(out, v);
    }
}

/// RFC 8785 key order: compare as sequences of UTF-16 code units.
fn cmp_utf16(a: &str, b: &str) -> Ordering {
    if a.is_ascii() && b.is_ascii() {
        a.as_bytes().cmp(b.as_bytes())
    } else {
        a.encode_utf16().cmp(b.encode_utf16())
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// True for the bytes that must be escaped inside a JSON string.
fn needs_escape(c: u8) -> bool {
    c < 0x20 || c == b'"' || c == b'\\'
}

fn write_str<S: Sink>(out: &mut S, s: &str) {
    out.put(b"\"");
    let bytes = s.as_bytes();
    // Fast path (no early exit, so the check vectorizes).
    if !bytes.iter().fold(false, |acc, &c| acc | needs_escape(c)) {
        out.put(bytes);
        out.put(b"\"");
        return;
    }
    let mut start = 0;
    for (i, &c) in bytes.iter().enumerate() {
        let short: &[u8] = match c {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            0x08 => b"\\b",
            0x09 => b"\\t",
            0x0a => b"\\n",
            0x0c => b"\\f",
            0x0d => b"\\r",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.put(bytes.get(start..i).unwrap_or_default());
        if short.is_empty() {
            let hi = HEX.get(usize::from(c >> 4)).copied().unwrap_or(b'0');
            let lo = HEX.get(usize::from(c & 0x0f)).copied().unwrap_or(b'0');
            out.put(&[b'\\', b'u', b'0', b'0', hi, lo]);
        } else {
            out.put(short);
        }
        start = i + 1;
    }
    out.put(bytes.get(start..).unwrap_or_default());
    out.put(b"\"");
}

// ---- decoder ---------------------------------------------------------------

/// Decodes canonical record bytes. Rejects anything that is not exactly the
/// canonical encoding of a valid record.
pub fn decode_record(bytes: &[u8]) -> Result<AuditRecord, DecodeError> {
    let record = parse(bytes, Mode::Build)?;
    if !encodes_to(&record, bytes) {
        // Defence in depth: the parser should already have rejected any
        // non-canonical input.
        return Err(DecodeError {
            offset: 0,
            reason: "bytes are not the canonical encoding of the record",
        });
    }
    Ok(record)
}

/// Checks that `bytes` is a canonical record with the same parser as
/// [`decode_record`], but without materializing strings and snapshots;
/// returns the record's `(tenant_id, seq)`. Used by the verifier, where
/// allocation would dominate the cost. Tests check that it accepts exactly
/// what `decode_record` accepts.
pub(crate) fn validate_record(bytes: &[u8]) -> Result<(Uuid, u64), DecodeError> {
    parse(bytes, Mode::Validate).map(|r| (r.tenant_id, r.seq))
}

/// What the parser materializes. Both modes perform exactly the same checks.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Build the complete record.
    Build,
    /// Only `tenant_id`, `seq`, `ts` and the enums are real; strings are
    /// left empty and snapshots `null`. Such a record never leaves this
    /// module.
    Validate,
}

fn parse(bytes: &[u8], mode: Mode) -> Result<AuditRecord, DecodeError> {
    let text = std::str::from_utf8(bytes).map_err(|e| DecodeError {
        offset: e.valid_up_to(),
        reason: "not valid UTF-8",
    })?;
    let mut p = Parser {
        s: text,
        b: bytes,
        pos: 0,
        mode,
    };
    let record = p.record()?;
    if p.pos != bytes.len() {
        return Err(p.err("trailing data after the record"));
    }
    Ok(record)
}

struct Parser<'a> {
    s: &'a str,
    b: &'a [u8],
    pos: usize,
    mode: Mode,
}

impl<'a> Parser<'a> {
    fn err(&self, reason: &'static str) -> DecodeError {
        DecodeError {
            offset: self.pos,
            reason,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.pos).copied()
    }

    /// Consumes `lit` if the input continues with it.
    fn eat(&mut self, lit: &[u8]) -> bool {
        let end = self.pos.saturating_add(lit.len());
        if self.b.get(self.pos..end) == Some(lit) {
            self.pos = end;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, lit: &[u8], reason: &'static str) -> Result<(), DecodeError> {
        if self.eat(lit) {
            Ok(())
        } else {
            Err(self.err(reason))
        }
    }

    // -- the record schema, members in canonical order --

    fn record(&mut self) -> Result<AuditRecord, DecodeError> {
        self.expect(
            b"{\"actor\":",
            "expected '{\"actor\":' (record must start with its first member)",
        )?;
        let actor = self.actor()?;
        self.expect(b",\"event_type\":", "expected member \"event_type\"")?;
        let event_type = self.parse_str(EventType::parse, "unknown event type")?;
        let request_id = if self.eat(b",\"request_id\":") {
            Some(self.string()?)
        } else {
            None
        };
        self.expect(b",\"seq\":", "expected member \"seq\"")?;
        let seq = self.unsigned()?;
        self.expect(b",\"summary\":", "expected member \"summary\"")?;
        let summary = self.summary()?;
        self.expect(b",\"target\":", "expected member \"target\"")?;
        let target = self.target()?;
        self.expect(b",\"tenant_id\":", "expected member \"tenant_id\"")?;
        let tenant_id =
            self.parse_str(parse_uuid, "tenant_id is not a lowercase hyphenated UUID")?;
        self.expect(b",\"ts\":", "expected member \"ts\"")?;
        let ts = self.parse_str(
            AuditTime::parse_canonical,
            "ts is not a canonical timestamp",
        )?;
        self.expect(b",\"v\":", "expected member \"v\" (or an unknown member)")?;
        if self.unsigned()? != RECORD_FORMAT_VERSION {
            return Err(self.err("unsupported record format version"));
        }
        self.expect(b"}", "expected '}' after \"v\" (unknown member?)")?;
        Ok(AuditRecord {
            tenant_id,
            seq,
            ts,
            actor,
            event_type,
            target,
            summary,
            request_id,
        })
    }

    fn actor(&mut self) -> Result<Actor, DecodeError> {
        self.expect(b"{", "actor is not an object")?;
        let id = if self.eat(b"\"id\":") {
            let id = self.string()?;
            self.expect(b",", "expected ',' after actor id")?;
            Some(id)
        } else {
            None
        };
        self.expect(b"\"kind\":", "expected actor member \"kind\"")?;
        let kind = self.parse_str(ActorKind::parse, "unknown actor kind")?;
        let name = if self.eat(b",\"name\":") {
            Some(self.string()?)
        } else {
            None
        };
        self.expect(b"}", "expected '}' after actor (unknown member?)")?;
        Ok(Actor { kind, id, name })
    }

    fn target(&mut self) -> Result<Target, DecodeError> {
        self.expect(b"{", "target is not an object")?;
        let id = if self.eat(b"\"id\":") {
            let id = self.string()?;
            self.expect(b",", "expected ',' after target id")?;
            Some(id)
        } else {
            None
        };
        self.expect(b"\"kind\":", "expected target member \"kind\"")?;
        let kind = self.string()?;
        self.expect(b"}", "expected '}' after target (unknown member?)")?;
        Ok(Target { kind, id })
    }

    fn summary(&mut self) -> Result<Summary, DecodeError> {
        self.expect(b"{", "summary is not an object")?;
        let mut summary = Summary::default();
        let mut first = true;
        let mut member = |p: &mut Self, key: &[u8]| -> bool {
            let found = if first {
                p.eat(key)
            } else {
                let start = p.pos;
                if p.eat(b",") && p.eat(key) {
                    true
                } else {
                    p.pos = start;
                    false
                }
            };
            if found {
                first = false;
            }
            found
        };
        if member(self, b"\"after\":") {
            summary.after = Some(self.snapshot()?);
        }
        if member(self, b"\"before\":") {
            summary.before = Some(self.snapshot()?);
        }
        if member(self, b"\"detail\":") {
            summary.detail = Some(self.string()?);
        }
        self.expect(
            b"}",
            "expected '}' after summary (unknown or misordered member?)",
        )?;
        Ok(summary)
    }

    /// A before/after snapshot: any JSON value that [`AuditValue`] accepts
    /// (the parser enforces its integer range and depth rules itself).
    fn snapshot(&mut self) -> Result<AuditValue, DecodeError> {
        let at = self.pos;
        let v = self.value(0)?;
        AuditValue::new(v).map_err(|_| DecodeError {
            offset: at,
            reason: "snapshot not allowed (integer range or nesting depth)",
        })
    }

    /// An owned string, or an empty one in validation mode.
    fn string(&mut self) -> Result<String, DecodeError> {
        let s = self.str_cow()?;
        Ok(match self.mode {
            Mode::Build => s.into_owned(),
            Mode::Validate => String::new(),
        })
    }

    /// A string member parsed by `parse` without allocating.
    fn parse_str<T, E>(
        &mut self,
        parse: impl FnOnce(&str) -> Result<T, E>,
        reason: &'static str,
    ) -> Result<T, DecodeError> {
        let at = self.pos;
        let s = self.str_cow()?;
        parse(&s).map_err(|_| DecodeError { offset: at, reason })
    }

    fn unsigned(&mut self) -> Result<u64, DecodeError> {
        let at = self.pos;
        match self.number()? {
            (false, m) => Ok(m),
            (true, _) => Err(DecodeError {
                offset: at,
                reason: "expected an unsigned integer",
            }),
        }
    }

    // -- generic canonical JSON (snapshots) --

    /// A value at nesting `depth` (0 for the snapshot itself). In
    /// validation mode every value is returned as `null`.
    fn value(&mut self, depth: usize) -> Result<Value, DecodeError> {
        match self.peek() {
            Some(b'{') => self.object(depth),
            Some(b'[') => self.array(depth),
            Some(b'"') => self.string().map(Value::String),
            Some(b'-' | b'0'..=b'9') => {
                let at = self.pos;
                let (negative, magnitude) = self.number()?;
                let n = i64::try_from(magnitude)
                    .ok()
                    .filter(|m| *m <= MAX_SAFE_INTEGER)
                    .ok_or(DecodeError {
                        offset: at,
                        reason: "integer outside -(2^53-1)..=2^53-1",
                    })?;
                Ok(Value::Number(Number::from(if negative { -n } else { n })))
            }
            Some(b't') => self.literal(b"true", Value::Bool(true)),
            Some(b'f') => self.literal(b"false", Value::Bool(false)),
            Some(b'n') => self.literal(b"null", Value::Null),
            Some(_) => Err(self.err("unexpected byte (whitespace is not canonical)")),
            None => Err(self.err("unexpected end of input")),
        }
    }

    fn literal(&mut self, lit: &[u8], v: Value) -> Result<Value, DecodeError> {
        self.expect(lit, "invalid literal")?;
        Ok(v)
    }

    /// Depth of a container's contents; bounded, which also bounds recursion.
    fn nested(&self, depth: usize) -> Result<usize, DecodeError> {
        let inner = depth.saturating_add(1);
        if inner > MAX_VALUE_DEPTH {
            Err(self.err("snapshot nested too deeply"))
        } else {
            Ok(inner)
        }
    }

    fn object(&mut self, depth: usize) -> Result<Value, DecodeError> {
        let inner = self.nested(depth)?;
        self.expect(b"{", "expected '{'")?;
        let mut map = Map::new();
        if !self.eat(b"}") {
            // The previous member is stored once the next key is known to
            // sort after it, so keys are compared without copying.
            let mut prev: Option<(Cow<'a, str>, Value)> = None;
            loop {
                let key_at = self.pos;
                let key = self.str_cow()?;
                if let Some((pk, pv)) = prev.take() {
                    if cmp_utf16(&pk, &key) != Ordering::Less {
                        return Err(DecodeError {
                            offset: key_at,
                            reason: "object keys not strictly sorted (unsorted or duplicate)",
                        });
                    }
                    self.insert(&mut map, pk, pv);
                }
                self.expect(b":", "expected ':'")?;
                let v = self.value(inner)?;
                prev = Some((key, v));
                if self.eat(b"}") {
                    break;
                }
                self.expect(b",", "expected ',' or '}'")?;
            }
            if let Some((k, v)) = prev {
                self.insert(&mut map, k, v);
            }
        }
        Ok(match self.mode {
            Mode::Build => Value::Object(map),
            Mode::Validate => Value::Null,
        })
    }

    fn insert(&self, map: &mut Map<String, Value>, k: Cow<'a, str>, v: Value) {
        if self.mode == Mode::Build {
            map.insert(k.into_owned(), v);
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value, DecodeError> {
        let inner = self.nested(depth)?;
        self.expect(b"[", "expected '['")?;
        let mut items = Vec::new();
        if !self.eat(b"]") {
            loop {
                let v = self.value(inner)?;
                if self.mode == Mode::Build {
                    items.push(v);
                }
                if self.eat(b"]") {
                    break;
                }
                self.expect(b",", "expected ',' or ']'")?;
            }
        }
        Ok(match self.mode {
            Mode::Build => Value::Array(items),
            Mode::Validate => Value::Null,
        })
    }

    /// A canonical string; borrowed from the input when it has no escapes.
    fn str_cow(&mut self) -> Result<Cow<'a, str>, DecodeError> {
        self.expect(b"\"", "expected a string")?;
        let mut owned: Option<String> = None;
        let mut run = self.pos;
        loop {
            // Skip to the next byte that ends the string or needs attention.
            let rest = self.b.get(self.pos..).unwrap_or_default();
            let Some(skip) = rest.iter().position(|&c| needs_escape(c)) else {
                self.pos = self.b.len();
                return Err(self.err("unterminated string"));
            };
            self.pos += skip;
            let Some(c) = self.peek() else {
                return Err(self.err("unterminated string"));
            };
            match c {
                b'"' => {
                    let tail = self.slice(run)?;
                    self.pos += 1;
                    return Ok(match owned {
                        None => Cow::Borrowed(tail),
                        Some(mut s) => {
                            s.push_str(tail);
                            Cow::Owned(s)
                        }
                    });
                }
                b'\\' => {
                    let piece = self.slice(run)?;
                    let s = owned.get_or_insert_with(String::new);
                    s.push_str(piece);
                    self.pos += 1;
                    let ch = self.escape()?;
                    s.push(ch);
                    run = self.pos;
                }
                _ => return Err(self.err("unescaped control character in string")),
            }
        }
    }

    /// The input from `start` to the current position. Both positions are at
    /// ASCII bytes or string starts, hence char boundaries.
    fn slice(&self, start: usize) -> Result<&'a str, DecodeError> {
        self.s
            .get(start..self.pos)
            .ok_or_else(|| self.err("internal: not a char boundary"))
    }

    /// Decodes the escape after a backslash; only canonical escapes pass.
    fn escape(&mut self) -> Result<char, DecodeError> {
        let Some(c) = self.peek() else {
            return Err(self.err("unterminated escape"));
        };
        self.pos += 1;
        match c {
            b'"' => Ok('"'),
            b'\\' => Ok('\\'),
            b'b' => Ok('\u{8}'),
            b't' => Ok('\t'),
            b'n' => Ok('\n'),
            b'f' => Ok('\u{c}'),
            b'r' => Ok('\r'),
            b'u' => {
                let end = self.pos.saturating_add(4);
                let Some(&[b'0', b'0', hi, lo]) = self.b.get(self.pos..end) else {
                    return Err(self.err("\\u escape is only canonical for control characters"));
                };
                let (Some(hi), Some(lo)) = (lower_hex(hi), lower_hex(lo)) else {
                    return Err(self.err("\\u escape must use lowercase hex"));
                };
                let v = (hi << 4) | lo;
                if v >= 0x20 || matches!(v, 0x08 | 0x09 | 0x0a | 0x0c | 0x0d) {
                    return Err(self.err("non-canonical \\u escape"));
                }
                self.pos = end;
                Ok(char::from(v))
            }
            _ => Err(self.err("non-canonical escape")),
        }
    }

    /// A canonical integer: `(negative, magnitude)`, magnitude <= u64::MAX.
    fn number(&mut self) -> Result<(bool, u64), DecodeError> {
        let start = self.pos;
        let negative = self.eat(b"-");
        let digits_start = self.pos;
        let mut magnitude: u64 = 0;
        while let Some(d @ b'0'..=b'9') = self.peek() {
            magnitude = magnitude
                .checked_mul(10)
                .and_then(|m| m.checked_add(u64::from(d - b'0')))
                .ok_or(DecodeError {
                    offset: start,
                    reason: "integer out of range",
                })?;
            self.pos += 1;
        }
        let len = self.pos - digits_start;
        if len == 0 {
            return Err(self.err("expected digits"));
        }
        if len > 1 && self.b.get(digits_start) == Some(&b'0') {
            return Err(DecodeError {
                offset: start,
                reason: "leading zero",
            });
        }
        if negative && magnitude == 0 {
            return Err(DecodeError {
                offset: start,
                reason: "negative zero",
            });
        }
        if matches!(self.peek(), Some(b'.' | b'e' | b'E')) {
            return Err(self.err("only integers are allowed"));
        }
        Ok((negative, magnitude))
    }
}

fn lower_hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// Only the lowercase hyphenated form is canonical.
fn parse_uuid(s: &str) -> Result<Uuid, ()> {
    let ok_shape = s.len() == 36
        && s.bytes().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => matches!(c, b'0'..=b'9' | b'a'..=b'f'),
        });
    if !ok_shape {
        return Err(());
    }
    Uuid::try_parse(s).map_err(|_| ())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> AuditRecord {
        AuditRecord {
            tenant_id: Uuid::from_u128(0x0191_8f4e_7c2a_7b3d_9e1f_0a2b_3c4d_5e6f),
            seq: 42,
            ts: AuditTime::parse_canonical("2025-01-02T03:04:05.060708Z").unwrap(),
            actor: Actor {
                kind: ActorKind::User,
                id: Some("a-1".into()),
                name: Some("alice".into()),
            },
            event_type: EventType::AlertUpdated,
            target: Target {
                kind: "alert".into(),
                id: Some("al-9".into()),
            },
            summary: Summary {
                before: Some(AuditValue::new(json!({"status": "new"})).unwrap()),
                after: Some(AuditValue::new(json!({"status": "triaged"})).unwrap()),
                detail: Some("tab\there \"q\" \u{1} é".into()),
            },
            request_id: Some("req-1".into()),
        }
    }

    #[test]
    fn golden_encoding() {
        let bytes = encode_record(&sample());
        let expected = concat!(
            r#"{"actor":{"id":"a-1","kind":"user","name":"alice"},"event_type":"decision.alert.updated","#,
            r#""request_id":"req-1","seq":42,"summary":{"after":{"status":"triaged"},"before":{"status":"new"},"#,
            r#""detail":"tab\there \"q\" \u0001 é"},"target":{"id":"al-9","kind":"alert"},"#,
            r#""tenant_id":"01918f4e-7c2a-7b3d-9e1f-0a2b3c4d5e6f","ts":"2025-01-02T03:04:05.060708Z","v":1}"#
        );
        assert_eq!(std::str::from_utf8(&bytes).unwrap(), expected);
        assert_eq!(decode_record(&bytes).unwrap(), sample());
        // The canonical form is valid JSON that a general parser reads the same way.
        let generic: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(generic["seq"], json!(42));
    }

    #[test]
    fn minimal_record_omits_absent_fields() {
        let mut r = sample();
        r.actor = Actor::system();
        r.target.id = None;
        r.summary = Summary::default();
        r.request_id = None;
        let bytes = encode_record(&r);
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            concat!(
                r#"{"actor":{"kind":"system"},"event_type":"decision.alert.updated","seq":42,"summary":{},"#,
                r#""target":{"kind":"alert"},"tenant_id":"01918f4e-7c2a-7b3d-9e1f-0a2b3c4d5e6f","#,
                r#""ts":"2025-01-02T03:04:05.060708Z","v":1}"#
            )
        );
        assert_eq!(decode_record(&bytes).unwrap(), r);
    }

    #[test]
    fn explicit_null_snapshot_is_distinct_from_absent() {
        let mut r = sample();
        r.summary.before = Some(AuditValue::null());
        let with_null = encode_record(&r);
        r.summary.before = None;
        let absent = encode_record(&r);
        assert_ne!(with_null, absent);
        assert_eq!(
            decode_record(&with_null).unwrap().summary.before,
            Some(AuditValue::null())
        );
        assert_eq!(decode_record(&absent).unwrap().summary.before, None);
    }

    #[test]
    fn utf16_key_order() {
        // U+FF61 sorts before U+1F600 in UTF-8 byte order but after it in
        // UTF-16 code-unit order (surrogates are 0xD83D...).
        let mut r = sample();
        r.summary.after =
            Some(AuditValue::new(json!({"\u{ff61}": 1, "\u{1f600}": 2, "a": 3})).unwrap());
        let bytes = encode_record(&r);
        let text = std::str::from_utf8(&bytes).unwrap();
        assert!(
            text.contains("{\"a\":3,\"\u{1f600}\":2,\"\u{ff61}\":1}"),
            "{text}"
        );
        assert_eq!(decode_record(&bytes).unwrap(), r);
    }

    fn mutate(from: &str, to: &str) -> Vec<u8> {
        let s = String::from_utf8(encode_record(&sample())).unwrap();
        assert!(s.contains(from), "{from}");
        s.replacen(from, to, 1).into_bytes()
    }

    #[test]
    fn non_canonical_inputs_rejected() {
        let cases: Vec<Vec<u8>> = vec![
            mutate("{\"actor\"", "{ \"actor\""),
            mutate("\"seq\":42", "\"seq\": 42"),
            mutate("\"v\":1}", "\"v\":1}\n"),
            mutate("\"seq\":42", "\"seq\":042"),
            mutate("\"seq\":42", "\"seq\":42.0"),
            mutate("\"seq\":42", "\"seq\":4.2e1"),
            mutate("\"seq\":42", "\"seq\":-42"),
            mutate("\"v\":1", "\"v\":2"),
            mutate("01918f4e", "01918F4E"),
            mutate(
                "\"tenant_id\":\"01918f4e-7c2a-7b3d-9e1f-0a2b3c4d5e6f\"",
                "\"tenant_id\":\"01918f4e7c2a7b3d9e1f0a2b3c4d5e6f\"",
            ),
            mutate("\\u0001", "\\u0001\\/"),
            mutate("\\u0001", "\\u0041"),
            mutate("\\u0001", "\\u000A"),
            mutate("\\t", "\\u0009"),
            mutate("\\t", "\t"),
            mutate(" é", " \\u00e9"),
            mutate("\"kind\":\"user\"", "\"kind\":\"User\""),
            mutate("decision.alert.updated", "decision.alert.renamed"),
            mutate("\"name\":\"alice\"", "\"name\":null"),
            mutate("\"request_id\":\"req-1\",", "\"request_id\":null,"),
            mutate(
                "\"request_id\":\"req-1\",",
                "\"request_id\":\"req-1\",\"request_id\":\"req-1\",",
            ),
            mutate(
                "\"actor\":{\"id\":\"a-1\",\"kind\":\"user\"",
                "\"actor\":{\"kind\":\"user\",\"id\":\"a-1\"",
            ),
            mutate("\"v\":1", "\"v\":1,\"zzz\":1"),
            mutate(
                "\"after\":{\"status\":\"triaged\"}",
                "\"after\":{\"status\":0.5}",
            ),
            mutate(
                "\"after\":{\"status\":\"triaged\"}",
                "\"after\":{\"status\":-0}",
            ),
            mutate(
                "\"after\":{\"status\":\"triaged\"}",
                "\"after\":{\"status\":9007199254740992}",
            ),
            mutate(".060708Z", ".060708+00:00"),
            mutate(".060708Z", ".06Z"),
            mutate("\"seq\":42,", ""),
            mutate("\"seq\":42", "\"seq\":18446744073709551616"),
            b"".to_vec(),
            b"{}".to_vec(),
            b"null".to_vec(),
            vec![0xff, 0xfe],
        ];
        for (i, c) in cases.iter().enumerate() {
            assert!(
                decode_record(c).is_err(),
                "case {i}: {}",
                String::from_utf8_lossy(c)
            );
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = "[".repeat(100_000);
        assert!(decode_record(deep.as_bytes()).is_err());
        let s = String::from_utf8(encode_record(&sample())).unwrap();
        let nested = format!("{}1{}", "[".repeat(40), "]".repeat(40));
        let bad = s.replacen("{\"status\":\"triaged\"}", &nested, 1);
        assert!(decode_record(bad.as_bytes()).is_err());
    }

    #[test]
    fn u64_seq_extremes_round_trip() {
        for seq in [0, 1, u64::MAX] {
            let mut r = sample();
            r.seq = seq;
            assert_eq!(decode_record(&encode_record(&r)).unwrap(), r);
        }
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        fn text() -> impl Strategy<Value = String> {
            "[a-z\"\\\\\x00-\x1f é😀]{0,8}"
        }

        fn snapshot() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::Bool),
                (-MAX_SAFE_INTEGER..=MAX_SAFE_INTEGER).prop_map(Value::from),
                text().prop_map(Value::String),
            ];
            leaf.prop_recursive(3, 24, 4, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                    prop::collection::btree_map(text(), inner, 0..4)
                        .prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            })
        }

        fn record() -> impl Strategy<Value = AuditRecord> {
            (
                any::<u128>(),
                any::<u64>(),
                prop::option::of(text()),
                prop::option::of(snapshot()),
                prop::option::of(snapshot()),
                prop::option::of(text()),
            )
                .prop_map(|(t, seq, id, before, after, detail)| AuditRecord {
                    tenant_id: Uuid::from_u128(t),
                    seq,
                    ts: AuditTime::from_unix_micros(1_700_000_000_000_000)
                        .unwrap_or_else(|_| AuditTime::now()),
                    actor: Actor {
                        kind: ActorKind::ApiKey,
                        id: id.clone(),
                        name: None,
                    },
                    event_type: EventType::IncidentClosed,
                    target: Target {
                        kind: "incident".into(),
                        id,
                    },
                    summary: Summary {
                        before: before.and_then(|v| AuditValue::new(v).ok()),
                        after: after.and_then(|v| AuditValue::new(v).ok()),
                        detail,
                    },
                    request_id: None,
                })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2048))]

            /// The verifier's validation path accepts exactly what
            /// `decode_record` accepts, and extracts the same tenant and seq.
            #[test]
            fn validate_accepts_exactly_what_decode_accepts(
                r in record(),
                edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), any::<bool>()), 0..3),
            ) {
                let mut bytes = encode_record(&r);
                for (i, b, insert) in edits {
                    let i = i.index(bytes.len() + 1);
                    if insert { bytes.insert(i, b) } else if i < bytes.len() { bytes[i] = b }
                }
                let decoded = decode_record(&bytes);
                let validated = validate_record(&bytes);
                prop_assert_eq!(decoded.is_ok(), validated.is_ok());
                if let (Ok(d), Ok(v)) = (&decoded, &validated) {
                    prop_assert_eq!((d.tenant_id, d.seq), *v);
                }
                if let (Err(d), Err(v)) = (&decoded, &validated) {
                    prop_assert_eq!(d, v);
                }
            }
        }
    }
}
