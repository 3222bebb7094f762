//! The CLI's TIME argument: RFC 3339, or a duration meaning "that long ago".

use causeway_model::timefmt::Timestamp;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is neither an RFC 3339 time nor a duration like 30s, 10m, 2h or 7d")]
pub struct TimeArgError(pub String);

/// Parse TIME relative to `now` (ns since the epoch).
pub fn parse_time(s: &str, now: Timestamp) -> Result<Timestamp, TimeArgError> {
    if let Ok(t) = Timestamp::parse_rfc3339(s) {
        return Ok(t);
    }
    let err = || TimeArgError(s.to_string());
    let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(err)?;
    let (n, unit) = s.split_at(split);
    let n: i64 = n.parse().map_err(|_| err())?;
    let mult: i64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err(err()),
    };
    let ns = n
        .checked_mul(mult)
        .and_then(|x| x.checked_mul(1_000_000_000))
        .ok_or_else(err)?;
    Ok(Timestamp(now.0.saturating_sub(ns)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_rfc3339() {
        let now = Timestamp(10_000_000_000_000);
        assert_eq!(parse_time("10m", now).unwrap().0, now.0 - 600_000_000_000);
        assert_eq!(parse_time("2h", now).unwrap().0, now.0 - 7_200_000_000_000);
        assert!(parse_time("2026-11-26T17:30:04Z", now).is_ok());
        assert!(parse_time("10", now).is_err());
        assert!(parse_time("m", now).is_err());
        assert!(parse_time("99999999999999999d", now).is_err());
    }
}
