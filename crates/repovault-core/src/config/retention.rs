//! `[retention]` (which snapshots `forget` keeps) and `[prune]` (how unused data is deleted and
//! how maintenance runs are kept apart).

use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, HumanDuration};
use crate::retention::Policy;

/// `[retention]`: the default policy of `repovault forget`. Every key is optional; a count of
/// 0 is the same as leaving the key out.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    pub keep_last: Option<u32>,
    pub keep_hourly: Option<u32>,
    pub keep_daily: Option<u32>,
    pub keep_weekly: Option<u32>,
    pub keep_monthly: Option<u32>,
    pub keep_yearly: Option<u32>,
    pub keep_within: Option<HumanDuration>,
}

impl RetentionConfig {
    /// Whether the section sets anything at all.
    pub fn is_set(&self) -> bool {
        *self != Self::default()
    }

    pub fn policy(&self) -> Policy {
        Policy {
            last: self.keep_last.unwrap_or(0),
            hourly: self.keep_hourly.unwrap_or(0),
            daily: self.keep_daily.unwrap_or(0),
            weekly: self.keep_weekly.unwrap_or(0),
            monthly: self.keep_monthly.unwrap_or(0),
            yearly: self.keep_yearly.unwrap_or(0),
            within: self.keep_within.map(HumanDuration::get),
        }
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.is_set() {
            self.policy()
                .validate()
                .map_err(|e| ConfigError::Invalid(format!("[retention]: {e}")))?;
        }
        Ok(())
    }
}

/// `[prune]`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PruneConfig {
    /// How long unused data stays marked before a prune deletes it. Must be longer than any
    /// backup run: a backup that started before the mark may still reference that data.
    #[serde(default = "default_grace")]
    pub grace: HumanDuration,
    /// How long the maintenance lease lasts without a refresh (it is refreshed every third of
    /// this while the run lives); a crashed run's lease is taken over after it.
    #[serde(default = "default_lease_ttl")]
    pub lease_ttl: HumanDuration,
}

/// Below this grace `forget --prune`/`prune` warn: backups of large forges run for hours.
pub const SHORT_GRACE: Duration = Duration::from_secs(3600);

fn default_grace() -> HumanDuration {
    HumanDuration(Duration::from_secs(24 * 3600))
}

fn default_lease_ttl() -> HumanDuration {
    HumanDuration(Duration::from_secs(15 * 60))
}

impl Default for PruneConfig {
    fn default() -> Self {
        Self {
            grace: default_grace(),
            lease_ttl: default_lease_ttl(),
        }
    }
}

impl PruneConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.lease_ttl.get() < Duration::from_secs(10) {
            return Err(ConfigError::Invalid(
                "[prune] lease_ttl must be at least 10s (it is refreshed every third of it)".into(),
            ));
        }
        Ok(())
    }
}
