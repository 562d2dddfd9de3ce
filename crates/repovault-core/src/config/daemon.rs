//! `[daemon]` and `[[schedule]]`: what `repovault daemon` serves and when it runs which job.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::{ConfigError, HumanDuration};

/// The address the daemon listens on unless `[daemon] listen` or `--listen` say otherwise. Loopback:
/// the status page has no authentication.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9680";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonConfig {
    /// `host:port` of the HTTP server (`/healthz`, `/readyz`, `/metrics`, `/api/status`, `/`).
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// How long finished runs stay in the daemon's state and on the status page.
    #[serde(default = "default_history")]
    pub history: HumanDuration,
    /// The time zone cron expressions are read in (IANA name, e.g. `Europe/Berlin`); default the
    /// system's (UTC in the container image).
    pub time_zone: Option<String>,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            history: default_history(),
            time_zone: None,
        }
    }
}

fn default_listen() -> SocketAddr {
    DEFAULT_LISTEN
        .parse()
        .expect("DEFAULT_LISTEN is a valid socket address")
}

fn default_history() -> HumanDuration {
    HumanDuration(Duration::from_secs(7 * 86_400))
}

impl DaemonConfig {
    /// The configured time zone, or the system's.
    pub fn time_zone(&self) -> Result<jiff::tz::TimeZone, ConfigError> {
        match &self.time_zone {
            None => Ok(jiff::tz::TimeZone::system()),
            Some(name) => jiff::tz::TimeZone::get(name)
                .map_err(|e| ConfigError::Invalid(format!("daemon.time_zone {name:?}: {e}"))),
        }
    }
}

/// The jobs a schedule can run.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, serde::Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum JobKind {
    Backup,
    Forget,
    Prune,
    Check,
    Verify,
}

impl JobKind {
    pub const ALL: [JobKind; 5] = [
        JobKind::Backup,
        JobKind::Forget,
        JobKind::Prune,
        JobKind::Check,
        JobKind::Verify,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Backup => "backup",
            Self::Forget => "forget",
            Self::Prune => "prune",
            Self::Check => "check",
            Self::Verify => "verify",
        }
    }
}

impl fmt::Display for JobKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `[[schedule]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    pub job: JobKind,
    /// Five fields (minute hour day month weekday), or six with seconds first.
    pub cron: CronSchedule,
    /// Each run starts after a random delay of up to this long.
    #[serde(default)]
    pub jitter: HumanDuration,
    /// Back up only this source (backup jobs only).
    pub source: Option<String>,
    /// Prune right after forgetting, under the same lease (forget jobs only).
    #[serde(default)]
    pub prune: bool,
    /// Also read this share of the data: `"5%"`, `"1/10"`, `"500MiB"` or `"all"` (check jobs
    /// only; structure only without it).
    pub read_data: Option<String>,
    /// Verify this many repositories, chosen at random each run (verify jobs only; all without it).
    pub sample: Option<usize>,
}

impl ScheduleConfig {
    /// The name runs of this entry are known by: `backup`, or `backup:<source>`. At most one run
    /// per name at a time.
    pub fn task_name(&self) -> String {
        match &self.source {
            Some(s) => format!("{}:{s}", self.job),
            None => self.job.to_string(),
        }
    }
}

/// A parsed cron expression, kept with the text it came from.
#[derive(Clone)]
pub struct CronSchedule {
    text: String,
    cron: croner::Cron,
}

impl CronSchedule {
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The first time strictly after `after` that matches, in `after`'s time zone.
    pub fn next_after(&self, after: &jiff::Zoned) -> Option<jiff::Zoned> {
        self.cron.find_next_occurrence(after, false).ok()
    }
}

impl fmt::Debug for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CronSchedule({:?})", self.text)
    }
}

impl FromStr for CronSchedule {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let cron = croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Optional)
            .year(croner::parser::Year::Disallowed)
            .build()
            .parse(s)
            .map_err(|e| format!("{s:?} is not a cron expression (e.g. \"0 3 * * *\"): {e}"))?;
        Ok(Self {
            text: s.trim().to_owned(),
            cron,
        })
    }
}

impl<'de> Deserialize<'de> for CronSchedule {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn five_and_six_fields() {
        let daily: CronSchedule = "0 3 * * *".parse().expect("valid");
        let tz = jiff::tz::TimeZone::UTC;
        let t = jiff::Timestamp::from_second(1_700_000_000)
            .expect("valid")
            .to_zoned(tz.clone());
        let next = daily.next_after(&t).expect("a next time");
        assert_eq!(next.hour(), 3);
        assert_eq!(next.minute(), 0);
        assert!(next > t);
        let every_2s: CronSchedule = "*/2 * * * * *".parse().expect("valid");
        let n = every_2s.next_after(&t).expect("next");
        assert!(n.timestamp().as_second() - t.timestamp().as_second() <= 2);
        assert!("0 3 * *".parse::<CronSchedule>().is_err());
        assert!("61 * * * *".parse::<CronSchedule>().is_err());
        assert!("@daily".parse::<CronSchedule>().is_ok());
    }
}
