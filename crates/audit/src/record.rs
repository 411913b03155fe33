//! The audit record data model.
//!
//! Every type here can only hold values that the canonical encoding
//! represents exactly, so `decode_record(&encode_record(r)) == Ok(r)` holds for
//! every constructible record: timestamps are whole microseconds in
//! 1970..=9999 (see [`AuditTime`]) and before/after snapshots contain integers
//! only, with bounded nesting (see [`AuditValue`]).

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use uuid::Uuid;

use crate::event::EventType;

/// Version number stored in every record (`"v":1`).
pub const RECORD_FORMAT_VERSION: u64 = 1;

/// Maximum nesting depth of an [`AuditValue`] (a scalar has depth 0, `[1]`
/// depth 1, `{"a":[1]}` depth 2).
pub const MAX_VALUE_DEPTH: usize = 32;

/// Largest integer magnitude allowed inside an [`AuditValue`]: 2^53 - 1, the
/// I-JSON / RFC 8785 safe range, so every JSON implementation (including ones
/// that parse numbers as IEEE doubles) reads the same value.
pub const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

/// One audited state change, exactly as stored (after decoding).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditRecord {
    /// Tenant whose chain this record belongs to.
    pub tenant_id: Uuid,
    /// Position in the tenant's chain: 1, 2, 3, ... without gaps.
    pub seq: u64,
    /// When the change happened (microsecond precision, UTC).
    pub ts: AuditTime,
    /// Who made the change.
    pub actor: Actor,
    /// What kind of change it was.
    pub event_type: EventType,
    /// What was changed.
    pub target: Target,
    /// Before/after snapshots and free-text detail.
    pub summary: Summary,
    /// Request correlation id, if the change came from an API request.
    pub request_id: Option<String>,
}

/// A record that has not been placed in a chain yet (no tenant, no seq).
/// [`crate::ChainBuilder::append`] turns it into an [`AuditRecord`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRecord {
    /// When the change happened.
    pub ts: AuditTime,
    /// Who made the change.
    pub actor: Actor,
    /// What kind of change it was.
    pub event_type: EventType,
    /// What was changed.
    pub target: Target,
    /// Before/after snapshots and free-text detail.
    pub summary: Summary,
    /// Request correlation id.
    pub request_id: Option<String>,
}

impl NewRecord {
    /// A record with `ts = now`, an empty summary and no request id.
    pub fn new(actor: Actor, event_type: EventType, target: Target) -> Self {
        NewRecord {
            ts: AuditTime::now(),
            actor,
            event_type,
            target,
            summary: Summary::default(),
            request_id: None,
        }
    }

    /// Places the record at `seq` in `tenant_id`'s chain.
    pub fn into_record(self, tenant_id: Uuid, seq: u64) -> AuditRecord {
        AuditRecord {
            tenant_id,
            seq,
            ts: self.ts,
            actor: self.actor,
            event_type: self.event_type,
            target: self.target,
            summary: self.summary,
            request_id: self.request_id,
        }
    }
}

/// The kind of principal that made a change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ActorKind {
    /// An interactive analyst session.
    User,
    /// An API key.
    ApiKey,
    /// A playbook run (automation).
    Playbook,
    /// The platform itself (background jobs, bootstrap, checkpointing).
    System,
}

/// A string that is not a known actor kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown actor kind")]
pub struct UnknownActorKind;

impl ActorKind {
    /// All actor kinds.
    pub const ALL: &'static [ActorKind] = &[
        ActorKind::User,
        ActorKind::ApiKey,
        ActorKind::Playbook,
        ActorKind::System,
    ];

    /// The stored string form.
    pub const fn as_str(self) -> &'static str {
        match self {
            ActorKind::User => "user",
            ActorKind::ApiKey => "api_key",
            ActorKind::Playbook => "playbook",
            ActorKind::System => "system",
        }
    }

    /// Parses the exact stored string form.
    pub fn parse(s: &str) -> Result<Self, UnknownActorKind> {
        match s {
            "user" => Ok(ActorKind::User),
            "api_key" => Ok(ActorKind::ApiKey),
            "playbook" => Ok(ActorKind::Playbook),
            "system" => Ok(ActorKind::System),
            _ => Err(UnknownActorKind),
        }
    }
}

impl fmt::Display for ActorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ActorKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ActorKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        ActorKind::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Who made a change.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Actor {
    /// Kind of principal.
    pub kind: ActorKind,
    /// Stable identifier (analyst id, API key id, playbook id), if any.
    pub id: Option<String>,
    /// Display name at the time of the change (e.g. the login name), if any.
    pub name: Option<String>,
}

impl Actor {
    /// The platform itself, with no id or name.
    pub fn system() -> Self {
        Actor {
            kind: ActorKind::System,
            id: None,
            name: None,
        }
    }
}

/// What was changed.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// Kind of object (`"alert"`, `"incident"`, `"analyst"`, ...).
    pub kind: String,
    /// Object identifier, if any.
    pub id: Option<String>,
}

/// Before/after snapshots of the changed fields and a free-text detail.
/// Each part is optional; `Some(null)` (an explicit JSON null, e.g. "did not
/// exist before") is distinct from `None` ("not recorded").
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Summary {
    /// State before the change.
    pub before: Option<AuditValue>,
    /// State after the change.
    pub after: Option<AuditValue>,
    /// Free-text detail.
    pub detail: Option<String>,
}

/// Why a JSON value cannot be stored in an audit record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// A number that is not an integer in `-(2^53-1) ..= 2^53-1`.
    #[error("audit values may contain only integers in the range -(2^53-1)..=2^53-1")]
    NonIntegerOrUnsafeNumber,
    /// Arrays/objects nested deeper than [`MAX_VALUE_DEPTH`].
    #[error("audit value nested deeper than {MAX_VALUE_DEPTH} levels")]
    TooDeep,
}

/// A JSON value that can be stored in an audit record: any JSON value except
/// non-integer numbers and integers outside the safe range, nested at most
/// [`MAX_VALUE_DEPTH`] levels.
///
/// Floats are excluded because they have no portable canonical text form;
/// store them as strings (e.g. `"0.75"`) or scaled integers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Value", into = "Value")]
pub struct AuditValue(Value);

impl AuditValue {
    /// Validates `value`.
    pub fn new(value: Value) -> Result<Self, ValueError> {
        check_value(&value, 0)?;
        Ok(AuditValue(value))
    }

    /// JSON `null`.
    pub const fn null() -> Self {
        AuditValue(Value::Null)
    }

    /// The wrapped value.
    pub fn as_value(&self) -> &Value {
        &self.0
    }

    /// Unwraps the value.
    pub fn into_value(self) -> Value {
        self.0
    }
}

/// True if `n` is an integer in the safe range.
pub(crate) fn is_safe_integer(n: &serde_json::Number) -> bool {
    if let Some(i) = n.as_i64() {
        (-MAX_SAFE_INTEGER..=MAX_SAFE_INTEGER).contains(&i)
    } else {
        // A u64 above i64::MAX (or a float) is outside the safe range.
        false
    }
}

fn check_value(v: &Value, depth: usize) -> Result<(), ValueError> {
    match v {
        Value::Null | Value::Bool(_) | Value::String(_) => Ok(()),
        Value::Number(n) => {
            if is_safe_integer(n) {
                Ok(())
            } else {
                Err(ValueError::NonIntegerOrUnsafeNumber)
            }
        }
        Value::Array(items) => {
            let depth = enter(depth)?;
            items.iter().try_for_each(|x| check_value(x, depth))
        }
        Value::Object(map) => {
            let depth = enter(depth)?;
            map.values().try_for_each(|x| check_value(x, depth))
        }
    }
}

fn enter(depth: usize) -> Result<usize, ValueError> {
    let d = depth.saturating_add(1);
    if d > MAX_VALUE_DEPTH {
        Err(ValueError::TooDeep)
    } else {
        Ok(d)
    }
}

impl TryFrom<Value> for AuditValue {
    type Error = ValueError;
    fn try_from(value: Value) -> Result<Self, Self::Error> {
        AuditValue::new(value)
    }
}

impl From<AuditValue> for Value {
    fn from(v: AuditValue) -> Value {
        v.0
    }
}

/// Why a timestamp cannot be stored in an audit record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    /// Before 1970-01-01T00:00:00Z or after 9999-12-31T23:59:59.999999Z.
    #[error("audit timestamp outside 1970-01-01T00:00:00Z..=9999-12-31T23:59:59.999999Z")]
    OutOfRange,
    /// A leap-second representation (`:60`), which has no canonical form.
    #[error("audit timestamps cannot represent leap seconds")]
    LeapSecond,
    /// Text that is not exactly `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
    #[error("audit timestamp must be exactly YYYY-MM-DDTHH:MM:SS.ffffffZ")]
    Format,
}

/// A UTC timestamp with microsecond precision (like PostgreSQL `timestamptz`)
/// between 1970-01-01 and 9999-12-31 inclusive. Its canonical text form is
/// exactly `YYYY-MM-DDTHH:MM:SS.ffffffZ` (27 characters).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AuditTime(DateTime<Utc>);

/// Microseconds since the Unix epoch of 9999-12-31T23:59:59.999999Z.
const MAX_MICROS: i64 = 253_402_300_799_999_999;

impl AuditTime {
    /// The current time, truncated to microseconds. A system clock outside
    /// 1970..=9999 yields the Unix epoch, which stands out in any review.
    pub fn now() -> Self {
        let now = Utc::now();
        let micros = if now.nanosecond() >= 1_000_000_000 {
            // Leap-second representation: clamp into the same second.
            now.timestamp()
                .saturating_mul(1_000_000)
                .saturating_add(999_999)
        } else {
            now.timestamp_micros()
        };
        AuditTime::from_unix_micros(micros).unwrap_or(AuditTime(DateTime::UNIX_EPOCH))
    }

    /// Converts `dt`, truncating sub-microsecond digits (as PostgreSQL does).
    pub fn new(dt: DateTime<Utc>) -> Result<Self, TimeError> {
        if dt.nanosecond() >= 1_000_000_000 {
            return Err(TimeError::LeapSecond);
        }
        AuditTime::from_unix_micros(dt.timestamp_micros())
    }

    /// From microseconds since the Unix epoch.
    pub fn from_unix_micros(micros: i64) -> Result<Self, TimeError> {
        if !(0..=MAX_MICROS).contains(&micros) {
            return Err(TimeError::OutOfRange);
        }
        DateTime::from_timestamp_micros(micros)
            .map(AuditTime)
            .ok_or(TimeError::OutOfRange)
    }

    /// Microseconds since the Unix epoch (always `>= 0`).
    pub fn unix_micros(&self) -> i64 {
        self.0.timestamp_micros()
    }

    /// The wrapped `DateTime` (whole microseconds).
    pub fn as_datetime(&self) -> DateTime<Utc> {
        self.0
    }

    /// The canonical text form as bytes: `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
    pub(crate) fn canonical_bytes(&self) -> [u8; 27] {
        let d = self.0.naive_utc();
        let mut out = *b"0000-00-00T00:00:00.000000Z";
        // Year is 1970..=9999, so every field fits its width.
        put_digits(&mut out, 0, 4, d.year().unsigned_abs());
        put_digits(&mut out, 5, 2, d.month());
        put_digits(&mut out, 8, 2, d.day());
        put_digits(&mut out, 11, 2, d.hour());
        put_digits(&mut out, 14, 2, d.minute());
        put_digits(&mut out, 17, 2, d.second());
        put_digits(&mut out, 20, 6, d.nanosecond() / 1000);
        out
    }

    /// The canonical text form `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
    pub fn to_canonical_string(&self) -> String {
        // Only ASCII digits and separators are written.
        String::from_utf8(self.canonical_bytes().to_vec()).unwrap_or_default()
    }

    /// Parses exactly the canonical text form; any other spelling (other
    /// offsets, fewer or more fractional digits, lowercase `t`/`z`, leap
    /// seconds, impossible dates) is rejected.
    pub fn parse_canonical(s: &str) -> Result<Self, TimeError> {
        let b: &[u8; 27] = s.as_bytes().try_into().map_err(|_| TimeError::Format)?;
        let [
            y0,
            y1,
            y2,
            y3,
            b'-',
            mo0,
            mo1,
            b'-',
            d0,
            d1,
            b'T',
            h0,
            h1,
            b':',
            mi0,
            mi1,
            b':',
            s0,
            s1,
            b'.',
            f0,
            f1,
            f2,
            f3,
            f4,
            f5,
            b'Z',
        ] = *b
        else {
            return Err(TimeError::Format);
        };
        let year = digits(&[y0, y1, y2, y3])?;
        let month = digits(&[mo0, mo1])?;
        let day = digits(&[d0, d1])?;
        let hour = digits(&[h0, h1])?;
        let minute = digits(&[mi0, mi1])?;
        let second = digits(&[s0, s1])?;
        let micro = digits(&[f0, f1, f2, f3, f4, f5])?;
        let year = i32::try_from(year).map_err(|_| TimeError::Format)?;
        if second >= 60 {
            return Err(TimeError::LeapSecond);
        }
        let naive = NaiveDate::from_ymd_opt(year, month, day)
            .and_then(|date| date.and_hms_micro_opt(hour, minute, second, micro))
            .ok_or(TimeError::Format)?;
        AuditTime::new(naive.and_utc())
    }
}

fn digits(ds: &[u8]) -> Result<u32, TimeError> {
    ds.iter().try_fold(0u32, |acc, &c| {
        if c.is_ascii_digit() {
            Ok(acc * 10 + u32::from(c - b'0'))
        } else {
            Err(TimeError::Format)
        }
    })
}

/// Writes the low `width` decimal digits of `v` into `out[at..at + width]`.
fn put_digits(out: &mut [u8], at: usize, width: usize, mut v: u32) {
    for i in (at..at + width).rev() {
        if let Some(slot) = out.get_mut(i) {
            // `v % 10` is a single digit.
            *slot = b'0' + (v % 10) as u8;
        }
        v /= 10;
    }
}

impl fmt::Display for AuditTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_canonical_string())
    }
}

impl FromStr for AuditTime {
    type Err = TimeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AuditTime::parse_canonical(s)
    }
}

impl TryFrom<DateTime<Utc>> for AuditTime {
    type Error = TimeError;
    fn try_from(dt: DateTime<Utc>) -> Result<Self, Self::Error> {
        AuditTime::new(dt)
    }
}

impl From<AuditTime> for DateTime<Utc> {
    fn from(t: AuditTime) -> Self {
        t.0
    }
}

impl Serialize for AuditTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_canonical_string())
    }
}

impl<'de> Deserialize<'de> for AuditTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        AuditTime::parse_canonical(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn time_truncates_and_formats() {
        let dt = DateTime::from_timestamp(1_700_000_000, 123_456_789).unwrap();
        let t = AuditTime::new(dt).unwrap();
        assert_eq!(t.to_canonical_string(), "2023-11-14T22:13:20.123456Z");
        assert_eq!(
            AuditTime::parse_canonical("2023-11-14T22:13:20.123456Z"),
            Ok(t)
        );
        assert_eq!(
            AuditTime::from_unix_micros(0).unwrap().to_string(),
            "1970-01-01T00:00:00.000000Z"
        );
        let max = AuditTime::from_unix_micros(MAX_MICROS).unwrap();
        assert_eq!(max.to_string(), "9999-12-31T23:59:59.999999Z");
        assert_eq!(
            AuditTime::from_unix_micros(MAX_MICROS + 1),
            Err(TimeError::OutOfRange)
        );
        assert_eq!(AuditTime::from_unix_micros(-1), Err(TimeError::OutOfRange));
        let now = AuditTime::now();
        assert_eq!(AuditTime::parse_canonical(&now.to_string()), Ok(now));
    }

    #[test]
    fn time_parse_is_strict() {
        for s in [
            "2023-11-14T22:13:20.123456+00:00",
            "2023-11-14T22:13:20.12345Z",
            "2023-11-14T22:13:20.1234567Z",
            "2023-11-14t22:13:20.123456Z",
            "2023-11-14T22:13:20.123456z",
            "2023-11-14 22:13:20.123456Z",
            "2023-02-30T22:13:20.123456Z",
            "2023-11-14T24:00:00.000000Z",
            "2016-12-31T23:59:60.000000Z",
            "1969-12-31T23:59:59.999999Z",
            "+023-11-14T22:13:20.123456Z",
            "2023-11-14T22:13:2٣.123456Z",
            "",
        ] {
            assert!(AuditTime::parse_canonical(s).is_err(), "{s}");
        }
    }

    #[test]
    fn leap_second_rejected() {
        let leap = NaiveDate::from_ymd_opt(2016, 12, 31)
            .unwrap()
            .and_hms_micro_opt(23, 59, 59, 1_500_000)
            .unwrap()
            .and_utc();
        assert_eq!(AuditTime::new(leap), Err(TimeError::LeapSecond));
    }

    #[test]
    fn audit_value_rules() {
        assert!(AuditValue::new(json!({"a": [1, -2, "x", null, true, {"b": {}}]})).is_ok());
        assert!(AuditValue::new(json!(MAX_SAFE_INTEGER)).is_ok());
        assert!(AuditValue::new(json!(-MAX_SAFE_INTEGER)).is_ok());
        assert_eq!(
            AuditValue::new(json!(MAX_SAFE_INTEGER + 1)),
            Err(ValueError::NonIntegerOrUnsafeNumber)
        );
        assert_eq!(
            AuditValue::new(json!(u64::MAX)),
            Err(ValueError::NonIntegerOrUnsafeNumber)
        );
        assert_eq!(
            AuditValue::new(json!({"score": 0.5})),
            Err(ValueError::NonIntegerOrUnsafeNumber)
        );
        let mut v = json!(1);
        for _ in 0..MAX_VALUE_DEPTH {
            v = json!([v]);
        }
        assert!(AuditValue::new(v.clone()).is_ok());
        assert_eq!(AuditValue::new(json!([v])), Err(ValueError::TooDeep));
        assert!(serde_json::from_str::<AuditValue>("[1.5]").is_err());
    }
}
