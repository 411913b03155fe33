//! Timestamps are kept at microsecond precision everywhere, because PostgreSQL stores
//! microseconds: a value written and read back must compare equal on both backends.

use chrono::{DateTime, SubsecRound, Utc};

pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}
