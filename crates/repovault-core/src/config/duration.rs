//! Durations as people write them in the config: `"24h"`, `"15m"`, `"1h 30m"`, `"7 days"`, or
//! ISO 8601 (`"PT24H"`). One parser for every duration key, so they all accept the same forms.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// A non-negative duration read from a string such as `"24h"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    pub fn get(self) -> Duration {
        self.0
    }
}

impl From<Duration> for HumanDuration {
    fn from(d: Duration) -> Self {
        Self(d)
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match jiff::SignedDuration::try_from(self.0) {
            Ok(d) => write!(f, "{d:#}"),
            Err(_) => write!(f, "{}s", self.0.as_secs()),
        }
    }
}

/// Parses `"24h"`, `"15m"`, `"1h 30m"`, `"2 days"`, `"PT1H"`; negative values are refused.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let not_a_duration = |e: jiff::Error| {
        format!("{s:?} is not a duration (write e.g. \"24h\", \"15m\" or \"7 days\"): {e}")
    };
    let span: jiff::Span = s.trim().parse().map_err(not_a_duration)?;
    // Days and weeks are taken as 24 hours: retention and grace periods are about elapsed time,
    // not calendar days. Months and years have no fixed length and are refused.
    let parsed = span
        .to_duration(jiff::SpanRelativeTo::days_are_24_hours())
        .map_err(not_a_duration)?;
    Duration::try_from(parsed).map_err(|_| format!("{s:?}: a duration cannot be negative"))
}

impl std::str::FromStr for HumanDuration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_duration(s).map(Self)
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl serde::Serialize for HumanDuration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn friendly_and_iso_forms() {
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5_400)));
        assert_eq!(parse_duration("2 days"), Ok(Duration::from_secs(172_800)));
        assert_eq!(parse_duration("PT1H"), Ok(Duration::from_secs(3_600)));
        assert!(parse_duration("-5m").is_err());
        assert!(parse_duration("soon").is_err());
        assert_eq!(parse_duration("1w"), Ok(Duration::from_secs(604_800)));
        assert!(parse_duration("1 month").is_err());
        assert_eq!(
            HumanDuration(Duration::from_secs(5_400)).to_string(),
            "1h 30m"
        );
    }
}
