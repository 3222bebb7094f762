//! Event time: nanoseconds since the Unix epoch, serialized as RFC 3339 with 9 fractional
//! digits in UTC (`2026-11-26T17:30:04.123456789Z`), as the contract requires.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// A point in time, in nanoseconds since the Unix epoch (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The current wall-clock time.
    pub fn now() -> Self {
        Timestamp(OffsetDateTime::now_utc().unix_timestamp_nanos() as i64)
    }

    /// RFC 3339, UTC, nanoseconds.
    pub fn to_rfc3339(self) -> String {
        let secs = self.0.div_euclid(1_000_000_000);
        let nanos = self.0.rem_euclid(1_000_000_000);
        match OffsetDateTime::from_unix_timestamp(secs) {
            Ok(t) => format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second(),
                nanos
            ),
            Err(_) => "1970-01-01T00:00:00.000000000Z".to_string(),
        }
    }

    /// Parse any RFC 3339 time (any offset, any precision).
    pub fn parse_rfc3339(s: &str) -> Result<Self, time::error::Parse> {
        let t = OffsetDateTime::parse(s, &Rfc3339)?;
        Ok(Timestamp(t.unix_timestamp_nanos() as i64))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Timestamp::parse_rfc3339(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_ns() {
        let t = Timestamp(1_795_714_204_123_456_789);
        let s = t.to_rfc3339();
        assert!(s.ends_with(".123456789Z"), "{s}");
        assert_eq!(Timestamp::parse_rfc3339(&s).unwrap(), t);
    }
}
