//! Retention: which snapshots `forget` keeps. A pure function of the policy, the snapshots and
//! `now`; nothing here touches the store.
//!
//! Each repository (snapshots with the same host and `repo:` tag) is its own group. Within a
//! group the rules are restic's (`restic forget`), applied newest first:
//!
//! - `last N` keeps the N newest snapshots;
//! - `hourly/daily/weekly/monthly/yearly N` keep the newest snapshot of each of the N most
//!   recent hours/days/ISO weeks/months/years that have snapshots (calendar periods in UTC);
//! - `within D` keeps every snapshot taken less than D before the group's newest snapshot
//!   (not before `now`: if backups stop, the last ones are not aged out);
//! - the rules are independent; a snapshot is kept when any rule keeps it.
//!
//! On top of restic: a snapshot protected forever, or until a time still in the future, is kept
//! (and is still counted by the rules, so protecting one never costs another its place); one
//! whose protection ended is removed and not counted; the newest snapshot of a repository is
//! always kept; and a policy that would keep nothing is refused. Snapshots without a `repo:`
//! tag were not made by repovault and are left alone.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::{tz::TimeZone, SignedDuration, Timestamp};
use repovault_store::{Protection, SnapshotInfo};
use serde::Serialize;

use crate::snapshots::repo_of;

/// How many snapshots of each kind to keep; 0 means the rule is off.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Policy {
    pub last: u32,
    pub hourly: u32,
    pub daily: u32,
    pub weekly: u32,
    pub monthly: u32,
    pub yearly: u32,
    #[serde(serialize_with = "serialize_within")]
    pub within: Option<Duration>,
}

fn serialize_within<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.collect_str(&crate::config::HumanDuration(*d)),
        None => s.serialize_none(),
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error("the retention policy keeps nothing: give at least one of keep-last, keep-hourly, keep-daily, keep-weekly, keep-monthly, keep-yearly (a count of 1 or more) or keep-within (longer than 0s)")]
    KeepsNothing,
}

impl Policy {
    pub fn validate(&self) -> Result<(), PolicyError> {
        let counts = [
            self.last,
            self.hourly,
            self.daily,
            self.weekly,
            self.monthly,
            self.yearly,
        ];
        let within = self.within.is_some_and(|d| !d.is_zero());
        if counts.iter().all(|c| *c == 0) && !within {
            return Err(PolicyError::KeepsNothing);
        }
        Ok(())
    }
}

/// Why a snapshot stays or goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case", tag = "rule", content = "value")]
pub enum Reason {
    Last,
    Hourly,
    Daily,
    Weekly,
    Monthly,
    Yearly,
    Within,
    ProtectedForever,
    ProtectedUntil(Timestamp),
    /// The newest snapshot of its repository; never removed.
    Newest,
    /// Removed: no rule keeps it.
    NotMatched,
    /// Removed: its protection (delete-after) ended at this time.
    ProtectionEnded(Timestamp),
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Last => f.write_str("last"),
            Self::Hourly => f.write_str("hourly"),
            Self::Daily => f.write_str("daily"),
            Self::Weekly => f.write_str("weekly"),
            Self::Monthly => f.write_str("monthly"),
            Self::Yearly => f.write_str("yearly"),
            Self::Within => f.write_str("within"),
            Self::ProtectedForever => f.write_str("protected forever"),
            Self::ProtectedUntil(t) => write!(f, "protected until {t}"),
            Self::Newest => f.write_str("newest of the repository"),
            Self::NotMatched => f.write_str("no rule keeps it"),
            Self::ProtectionEnded(t) => write!(f, "protection ended {t}"),
        }
    }
}

/// The verdict on one snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    pub id: String,
    pub time: Timestamp,
    pub keep: bool,
    pub reasons: Vec<Reason>,
}

/// One repository's snapshots, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Group {
    pub host: String,
    pub repo: String,
    pub snapshots: Vec<Decision>,
}

impl Group {
    pub fn kept(&self) -> impl Iterator<Item = &Decision> {
        self.snapshots.iter().filter(|d| d.keep)
    }

    pub fn removed(&self) -> impl Iterator<Item = &Decision> {
        self.snapshots.iter().filter(|d| !d.keep)
    }
}

/// What `forget` would do to a set of snapshots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub now: Timestamp,
    pub policy: Policy,
    /// Ordered by host, then repository.
    pub groups: Vec<Group>,
    /// Snapshots without a `repo:` tag, which are never touched.
    pub foreign: Vec<String>,
}

impl Plan {
    /// Full ids of the snapshots to delete.
    pub fn to_remove(&self) -> Vec<String> {
        self.groups
            .iter()
            .flat_map(Group::removed)
            .map(|d| d.id.clone())
            .collect()
    }
}

/// Applies `policy` to `snapshots` as of `now`.
pub fn plan(
    policy: &Policy,
    snapshots: &[SnapshotInfo],
    now: Timestamp,
) -> Result<Plan, PolicyError> {
    policy.validate()?;
    let mut groups: BTreeMap<(String, String), Vec<&SnapshotInfo>> = BTreeMap::new();
    let mut foreign = Vec::new();
    for s in snapshots {
        match repo_of(s) {
            Some(repo) => groups
                .entry((s.host.clone(), repo.to_owned()))
                .or_default()
                .push(s),
            None => foreign.push(s.id.clone()),
        }
    }
    let groups = groups
        .into_iter()
        .map(|((host, repo), mut list)| {
            list.sort_by(|a, b| b.time.cmp(&a.time).then_with(|| b.id.cmp(&a.id)));
            Group {
                host,
                repo,
                snapshots: decide(policy, &list, now),
            }
        })
        .collect();
    Ok(Plan {
        now,
        policy: *policy,
        groups,
        foreign,
    })
}

/// A calendar period as restic numbers it (`ymdh`, `ymd`, `yw` with the ISO week's year, `ym`,
/// `y`), in UTC.
fn period(rule: Reason, t: Timestamp) -> i64 {
    let dt = t.to_zoned(TimeZone::UTC).datetime();
    let (y, m, d, h) = (
        i64::from(dt.year()),
        i64::from(dt.month()),
        i64::from(dt.day()),
        i64::from(dt.hour()),
    );
    match rule {
        Reason::Hourly => ((y * 100 + m) * 100 + d) * 100 + h,
        Reason::Daily => (y * 100 + m) * 100 + d,
        Reason::Weekly => {
            let w = dt.date().iso_week_date();
            i64::from(w.year()) * 100 + i64::from(w.week())
        }
        Reason::Monthly => y * 100 + m,
        _ => y,
    }
}

fn decide(policy: &Policy, newest_first: &[&SnapshotInfo], now: Timestamp) -> Vec<Decision> {
    let mut rules: Vec<(Reason, u32, Option<i64>)> = [
        (Reason::Hourly, policy.hourly),
        (Reason::Daily, policy.daily),
        (Reason::Weekly, policy.weekly),
        (Reason::Monthly, policy.monthly),
        (Reason::Yearly, policy.yearly),
    ]
    .into_iter()
    .map(|(r, n)| (r, n, None))
    .collect();
    let mut last_left = policy.last;
    let cutoff = match (newest_first.first(), policy.within) {
        (Some(newest), Some(d)) if !d.is_zero() => Some(
            newest
                .time
                .checked_sub(SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX))
                .unwrap_or(Timestamp::MIN),
        ),
        _ => None,
    };
    newest_first
        .iter()
        .enumerate()
        .map(|(nr, s)| {
            let mut reasons = Vec::new();
            let ended = match s.protection {
                Some(Protection::Until(t)) if t <= now => Some(t),
                _ => None,
            };
            if ended.is_none() {
                if last_left > 0 {
                    last_left -= 1;
                    reasons.push(Reason::Last);
                }
                for (rule, left, last) in &mut rules {
                    if *left == 0 {
                        continue;
                    }
                    let p = period(*rule, s.time);
                    if *last != Some(p) {
                        *last = Some(p);
                        *left -= 1;
                        reasons.push(*rule);
                    }
                }
                if cutoff.is_some_and(|c| s.time > c) {
                    reasons.push(Reason::Within);
                }
            }
            match s.protection {
                Some(Protection::Forever) => reasons.push(Reason::ProtectedForever),
                Some(Protection::Until(t)) if t > now => reasons.push(Reason::ProtectedUntil(t)),
                _ => {}
            }
            if nr == 0 && reasons.is_empty() {
                reasons.push(Reason::Newest);
            }
            let keep = !reasons.is_empty();
            if !keep {
                reasons.push(ended.map_or(Reason::NotMatched, Reason::ProtectionEnded));
            }
            Decision {
                id: s.id.clone(),
                time: s.time,
                keep,
                reasons,
            }
        })
        .collect()
}

#[cfg(test)]
#[path = "retention_tests.rs"]
mod tests;
