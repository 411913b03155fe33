//! Typed identifiers. All ids are UUID v7 (time-ordered, so inserts stay index-friendly); the
//! newtypes keep a tenant id from being passed where an analyst id is expected.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(transparent)]
        #[schema(value_type = String, format = Uuid)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new time-ordered id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl From<Uuid> for $name {
            fn from(u: Uuid) -> Self {
                Self(u)
            }
        }
    };
}

id_type!(
    /// A tenant (an MSSP customer, or `default` for a single-team install).
    TenantId
);
id_type!(
    /// A human user of Bulwark.
    AnalystId
);
id_type!(
    /// An API key (machine credential).
    ApiKeyId
);

/// The millisecond a UUIDv7 was made in (`None` for another version). Alerts take their
/// `first_seen` from it, so a time window is an id range (see [`v7_lowest`]).
pub fn v7_time(id: Uuid) -> Option<chrono::DateTime<chrono::Utc>> {
    if id.get_version_num() != 7 {
        return None;
    }
    let (secs, nanos) = id.get_timestamp()?.to_unix();
    chrono::DateTime::from_timestamp(i64::try_from(secs).ok()?, nanos)
}

/// The lowest UUIDv7 of the millisecond holding `at` (before 1970: the lowest of all): every
/// v7 id made at or after `at` is at least this.
pub fn v7_lowest(at: chrono::DateTime<chrono::Utc>) -> Uuid {
    v7_with(at, [0; 10])
}

/// The highest UUIDv7 of the millisecond holding `at`: every v7 id made at or before `at` is
/// at most this.
pub fn v7_highest(at: chrono::DateTime<chrono::Utc>) -> Uuid {
    v7_with(at, [0xff; 10])
}

fn v7_with(at: chrono::DateTime<chrono::Utc>, rest: [u8; 10]) -> Uuid {
    let ms = u64::try_from(at.timestamp_millis()).unwrap_or(0);
    uuid::Builder::from_unix_timestamp_millis(ms, &rest).into_uuid()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone, Utc};

    #[test]
    fn v7_bounds_enclose_every_id_of_their_millisecond() {
        let at = Utc
            .timestamp_millis_opt(1_764_067_380_123)
            .single()
            .expect("time");
        let id =
            uuid::Builder::from_unix_timestamp_millis(1_764_067_380_123, &[0x5a; 10]).into_uuid();
        assert_eq!(v7_time(id), Some(at));
        assert!(v7_lowest(at) <= id && id <= v7_highest(at));
        assert!(v7_highest(at - Duration::milliseconds(1)) < v7_lowest(at));
        // Sub-millisecond parts of `at` do not move the bounds.
        let later = at + Duration::microseconds(999);
        assert_eq!(v7_lowest(later), v7_lowest(at));
        assert_eq!(v7_highest(later), v7_highest(at));
        // Before the epoch: the lowest id of all.
        let old = Utc
            .with_ymd_and_hms(1900, 1, 1, 0, 0, 0)
            .single()
            .expect("time");
        assert_eq!(v7_time(v7_lowest(old)).map(|t| t.timestamp()), Some(0));
        assert_eq!(v7_time(Uuid::nil()), None);
        // A fresh id lies within the bounds of its own time.
        let fresh = Uuid::now_v7();
        let t = v7_time(fresh).expect("v7");
        assert!(v7_lowest(t) <= fresh && fresh <= v7_highest(t));
    }
}
