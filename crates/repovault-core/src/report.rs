//! The run report: what happened to every repository in one backup run. It is the `--json`
//! output and the source of the exit code.

use std::collections::BTreeMap;

use jiff::Timestamp;
use repovault_forge::ApiStats;
use serde::Serialize;

use crate::plan::{ListingFailure, SourcePlan};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RepoStatus {
    Ok,
    Failed,
}

#[derive(Debug, Clone, Serialize)]
pub struct RepoError {
    /// `auth`, `not-found`, `network`, `timeout`, `corrupt`, `tooling`, `store`, `cache`, `other`.
    pub kind: String,
    pub message: String,
    pub retryable: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct RepoReport {
    pub source: String,
    pub host: String,
    pub repo: String,
    /// The remote, redacted.
    pub url: String,
    pub status: RepoStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<RepoError>,
    /// Whether any ref or HEAD differed from the previous snapshot.
    pub changed: bool,
    pub refs: usize,
    /// Objects in the bundle written by this run (0 when nothing was new).
    pub new_objects: u64,
    pub bundle_bytes: u64,
    /// Bytes the snapshot added to the store (compressed and encrypted).
    pub bytes_added: u64,
    pub chain_length: usize,
    /// Set when this snapshot started the bundle chain over with a new base.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_base: Option<NewBase>,
    /// The cache had to be rebuilt from the store first.
    pub cache_rebuilt: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
    /// Earlier snapshots of this repository in the store; they stay restorable whatever
    /// happened upstream.
    pub previous_snapshots: usize,
    /// The repository's newest snapshot after this run: this run's, or (when it failed) the
    /// last good one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latest_snapshot: Option<SnapshotRef>,
    pub duration_ms: u64,
    /// Forge repositories: the wiki, LFS and metadata parts. A failed part fails the
    /// repository, but the snapshot still holds every part that worked.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<PartReport>,
}

/// One part of a forge repository (`wiki`, `lfs`, `meta`).
#[derive(Debug, Clone, Serialize)]
pub struct PartReport {
    pub part: String,
    pub status: RepoStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<RepoError>,
    /// Figures such as `refs`, `objects`, `issues`, `updated`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub details: BTreeMap<String, u64>,
    pub duration_ms: u64,
}

impl PartReport {
    pub fn ok(part: &str) -> Self {
        Self {
            part: part.into(),
            status: RepoStatus::Ok,
            error: None,
            details: BTreeMap::new(),
            duration_ms: 0,
        }
    }

    pub fn failed(part: &str, error: RepoError) -> Self {
        Self {
            error: Some(error),
            status: RepoStatus::Failed,
            ..Self::ok(part)
        }
    }

    pub fn detail(mut self, key: &str, value: u64) -> Self {
        self.details.insert(key.into(), value);
        self
    }

    /// Records how long the part took, since `started`.
    pub fn timed(mut self, started: std::time::Instant) -> Self {
        self.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self
    }
}

/// One source: what listing it found and, for forges, the API figures of the whole run.
#[derive(Debug, Clone, Serialize)]
pub struct SourceReport {
    pub name: String,
    pub kind: String,
    /// Repositories the forge listed, before include/exclude and the skip filters.
    pub listed: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failures: Vec<ListingFailure>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api: Option<ApiStats>,
}

/// Why a snapshot's bundle chain was started over.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct NewBase {
    /// `chain-length`, `increments`, `rewritten` or `requested`.
    pub reason: String,
    /// The same in words, with the figures that decided it.
    pub message: String,
    /// The new base is the old chain put together (nearly free in the store), rather than
    /// packed afresh (which leaves unreachable objects behind and costs a full copy).
    pub consolidated: bool,
}

impl NewBase {
    pub fn new(reason: &repovault_git::NewBaseReason, consolidated: bool) -> Self {
        Self {
            reason: reason.code().to_owned(),
            message: reason.to_string(),
            consolidated,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct SnapshotRef {
    pub id: String,
    pub time: Timestamp,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub run_id: String,
    pub started: Timestamp,
    pub finished: Timestamp,
    pub duration_ms: u64,
    pub store: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<SourceReport>,
    pub repos: Vec<RepoReport>,
    pub totals: Totals,
    /// Bytes the whole store occupies after the run (`None` when it could not be listed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store_size_bytes: Option<u64>,
    /// The run was asked to stop: `totals.not_started` repositories were left for the next run.
    pub cancelled: bool,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Totals {
    pub repos: usize,
    pub ok: usize,
    pub failed: usize,
    pub changed: usize,
    /// Repositories whose chain started over with a new base in this run.
    pub new_bases: usize,
    pub new_objects: u64,
    pub bytes_added: u64,
    /// Repositories not started because the run was stopped.
    pub not_started: usize,
    /// Orgs, users or other targets of a source that could not be listed.
    pub listing_failures: usize,
}

impl RunReport {
    pub fn new(
        run_id: String,
        started: Timestamp,
        store: String,
        mut repos: Vec<RepoReport>,
    ) -> Self {
        repos.sort_by(|a, b| (&a.source, &a.host, &a.repo).cmp(&(&b.source, &b.host, &b.repo)));
        let finished = Timestamp::now();
        let mut totals = Totals {
            repos: repos.len(),
            ..Totals::default()
        };
        for r in &repos {
            match r.status {
                RepoStatus::Ok => totals.ok += 1,
                RepoStatus::Failed => totals.failed += 1,
            }
            totals.changed += usize::from(r.changed);
            totals.new_bases += usize::from(r.new_base.is_some());
            totals.new_objects += r.new_objects;
            totals.bytes_added += r.bytes_added;
        }
        let duration_ms =
            u64::try_from(finished.as_millisecond() - started.as_millisecond()).unwrap_or(0);
        Self {
            run_id,
            started,
            finished,
            duration_ms,
            store,
            sources: Vec::new(),
            repos,
            totals,
            store_size_bytes: None,
            cancelled: false,
        }
    }

    /// Adds the sources' listings and their forges' request figures (taken now, after the run).
    pub fn add_sources(&mut self, sources: &[SourcePlan]) {
        for s in sources {
            self.totals.listing_failures += s.failures.len();
            self.sources.push(SourceReport {
                name: s.name.clone(),
                kind: s.kind.as_str().into(),
                listed: s.listed,
                failures: s.failures.clone(),
                api: s.forge.as_ref().map(|f| f.stats()),
            });
        }
    }

    /// Every repository of the plan was backed up, and every source could be listed.
    pub fn all_ok(&self) -> bool {
        self.totals.failed == 0 && self.totals.listing_failures == 0 && !self.cancelled
    }
}

/// A byte count for people: `512 B`, `2.0 KiB`, `3.1 MiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_counts_whole_seconds() {
        let started = Timestamp::now() - jiff::SignedDuration::from_millis(2_500);
        let r = RunReport::new("r".into(), started, "s".into(), Vec::new());
        assert!(
            (2_500..60_000).contains(&r.duration_ms),
            "{}",
            r.duration_ms
        );
        assert!(r.all_ok());
    }
}
