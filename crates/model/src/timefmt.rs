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

    /// RFC 3339, UTC, nanoseconds. Written digit by digit: this runs once per event on the
    /// agent's hot path, where `format!` showed up in profiles.
    pub fn to_rfc3339(self) -> String {
        let secs = self.0.div_euclid(1_000_000_000);
        let nanos = self.0.rem_euclid(1_000_000_000) as u32;
        let Ok(t) = OffsetDateTime::from_unix_timestamp(secs) else {
            return "1970-01-01T00:00:00.000000000Z".to_string();
        };
        let mut b = [0u8; 30];
        fn put(b: &mut [u8], mut v: u32) {
            for slot in b.iter_mut().rev() {
                *slot = b'0' + (v % 10) as u8;
                v /= 10;
            }
        }
        put(&mut b[0..4], t.year().clamp(0, 9999) as u32);
        b[4] = b'-';
        put(&mut b[5..7], u32::from(u8::from(t.month())));
        b[7] = b'-';
        put(&mut b[8..10], u32::from(t.day()));
        b[10] = b'T';
        put(&mut b[11..13], u32::from(t.hour()));
        b[13] = b':';
        put(&mut b[14..16], u32::from(t.minute()));
        b[16] = b':';
        put(&mut b[17..19], u32::from(t.second()));
        b[19] = b'.';
        put(&mut b[20..29], nanos);
        b[29] = b'Z';
        // Every byte written above is ASCII.
        String::from_utf8_lossy(&b).into_owned()
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
