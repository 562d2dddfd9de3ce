//! What the daemon remembers across restarts: recent runs and the last outcome of every
//! repository. Kept as one JSON file (written atomically, mode 0600) so the status page and the
//! metrics come back after a restart.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;
use repovault_core::report::{RepoStatus, RunReport, SnapshotRef};
use serde::{Deserialize, Serialize};

use crate::runner::{Outcome, RunRecord};

const VERSION: u32 = 1;
/// However long the history window, a daemon running a job every minute must not grow its state
/// without bound.
const MAX_RUNS: usize = 2_000;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    pub version: u32,
    /// The store this state describes; a different store starts afresh.
    pub store: String,
    pub next_run_id: u64,
    pub runs: Vec<RunRecord>,
    /// By `source`, `host`, `repo`.
    pub repos: BTreeMap<String, RepoState>,
    /// Measured after the last backup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_size_bytes: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RepoState {
    pub source: String,
    pub host: String,
    pub repo: String,
    pub status: RepoStatus,
    pub last_attempt: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_success: Option<Timestamp>,
    /// The newest snapshot in the store.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latest_snapshot: Option<SnapshotRef>,
    /// Added to the store by the last successful run.
    pub bytes_added: u64,
    pub duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<RepoErrorState>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RepoErrorState {
    pub kind: String,
    pub message: String,
    /// When the repository started failing (the first failed run of the current streak).
    pub since: Timestamp,
}

fn key(source: &str, host: &str, repo: &str) -> String {
    format!("{source}\u{0}{host}\u{0}{repo}")
}

#[derive(Debug, thiserror::Error)]
#[error("daemon state {path}: {message}")]
pub struct StateError {
    pub path: PathBuf,
    pub message: String,
}

impl State {
    /// Reads the state file. A missing file is a fresh start; an unreadable or corrupt one is
    /// moved aside (`.corrupt`) and reported, and the daemon starts afresh rather than not at all.
    pub fn load(path: &Path, store: &str) -> (Self, Option<StateError>) {
        let fresh = Self {
            version: VERSION,
            store: store.to_owned(),
            ..Self::default()
        };
        let text = match std::fs::read(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (fresh, None),
            Err(e) => return (fresh, Some(err(path, e))),
        };
        match serde_json::from_slice::<State>(&text) {
            Ok(s) if s.version == VERSION && s.store == store => (s, None),
            Ok(s) if s.version != VERSION => (
                fresh,
                Some(err(
                    path,
                    format!("version {} is not {VERSION}; starting afresh", s.version),
                )),
            ),
            Ok(_) => (fresh, None),
            Err(e) => {
                let aside = path.with_extension("json.corrupt");
                let _ = std::fs::rename(path, &aside);
                (
                    fresh,
                    Some(err(
                        path,
                        format!(
                            "unreadable ({e}); moved to {} and starting afresh",
                            aside.display()
                        ),
                    )),
                )
            }
        }
    }

    /// Writes the state atomically (a temp file renamed over the old one), mode 0600.
    pub fn save(&self, path: &Path) -> Result<(), StateError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let parent = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(parent).map_err(|e| err(parent, e))?;
        let text = serde_json::to_vec_pretty(self).map_err(|e| err(path, e))?;
        let tmp = path.with_extension("json.tmp");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| err(&tmp, e))?;
        f.write_all(&text).map_err(|e| err(&tmp, e))?;
        f.sync_all().map_err(|e| err(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| err(path, e))
    }

    /// Runs that were still `running` when the daemon last stopped did not finish.
    pub fn mark_interrupted(&mut self, now: Timestamp) -> usize {
        let mut n = 0;
        for r in &mut self.runs {
            if r.outcome == Outcome::Running {
                r.outcome = Outcome::Interrupted;
                r.finished = Some(now);
                r.error = Some("the daemon stopped while this ran".into());
                n += 1;
            }
        }
        n
    }

    pub fn start_run(&mut self, record: RunRecord) -> u64 {
        let id = self.next_run_id;
        self.next_run_id += 1;
        self.runs.push(RunRecord { id, ..record });
        id
    }

    pub fn run_mut(&mut self, id: u64) -> Option<&mut RunRecord> {
        self.runs.iter_mut().rev().find(|r| r.id == id)
    }

    /// Drops runs that finished longer than `history` ago (and the oldest beyond a hard cap).
    pub fn prune(&mut self, now: Timestamp, history: Duration) {
        let cutoff = now
            .checked_sub(
                jiff::SignedDuration::try_from(history).unwrap_or(jiff::SignedDuration::MAX),
            )
            .unwrap_or(Timestamp::MIN);
        self.runs
            .retain(|r| r.outcome == Outcome::Running || r.finished.unwrap_or(r.started) >= cutoff);
        if self.runs.len() > MAX_RUNS {
            let extra = self.runs.len() - MAX_RUNS;
            self.runs.drain(..extra);
        }
    }

    /// Takes in a backup's report: every repository's outcome. Repositories of the sources the
    /// run covered that it did not see any more (removed from the config, deleted upstream and
    /// no longer listed) are forgotten, unless the run was cut short.
    pub fn record_backup(&mut self, report: &RunReport, only_source: Option<&str>) {
        let now = report.finished;
        if report.store_size_bytes.is_some() {
            self.store_size_bytes = report.store_size_bytes;
        }
        if !report.cancelled {
            let seen: std::collections::BTreeSet<String> = report
                .repos
                .iter()
                .map(|r| key(&r.source, &r.host, &r.repo))
                .collect();
            self.repos.retain(|k, r| {
                let covered = only_source.is_none_or(|s| s == r.source);
                !covered || seen.contains(k)
            });
        }
        for r in &report.repos {
            let k = key(&r.source, &r.host, &r.repo);
            let old = self.repos.get(&k);
            let ok = r.status == RepoStatus::Ok;
            let error = r.error.as_ref().map(|e| RepoErrorState {
                kind: e.kind.clone(),
                message: e.message.clone(),
                since: old.and_then(|o| o.error.as_ref()).map_or(now, |o| o.since),
            });
            let entry = RepoState {
                source: r.source.clone(),
                host: r.host.clone(),
                repo: r.repo.clone(),
                status: r.status,
                last_attempt: now,
                last_success: if ok {
                    Some(now)
                } else {
                    old.and_then(|o| o.last_success)
                },
                latest_snapshot: r
                    .latest_snapshot
                    .clone()
                    .or_else(|| old.and_then(|o| o.latest_snapshot.clone())),
                bytes_added: if ok {
                    r.bytes_added
                } else {
                    old.map_or(0, |o| o.bytes_added)
                },
                duration_ms: r.duration_ms,
                error,
            };
            self.repos.insert(k, entry);
        }
    }

    /// The most recent run of `task`, finished or not.
    pub fn last_run(&self, task: &str) -> Option<&RunRecord> {
        self.runs
            .iter()
            .rev()
            .find(|r| r.task == task && r.outcome != Outcome::Skipped)
    }
}

fn err(path: &Path, e: impl std::fmt::Display) -> StateError {
    StateError {
        path: path.to_owned(),
        message: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use repovault_core::config::JobKind;
    use repovault_core::report::{RepoError, RepoReport};

    fn repo(name: &str, ok: bool) -> RepoReport {
        RepoReport {
            source: "s".into(),
            host: "h".into(),
            repo: name.into(),
            url: format!("https://h/{name}.git"),
            status: if ok {
                RepoStatus::Ok
            } else {
                RepoStatus::Failed
            },
            error: (!ok).then(|| RepoError {
                kind: "network".into(),
                message: "connection refused".into(),
                retryable: true,
            }),
            changed: ok,
            refs: 1,
            new_objects: 1,
            bundle_bytes: 10,
            bytes_added: if ok { 100 } else { 0 },
            chain_length: 1,
            new_base: None,
            parts: Vec::new(),
            cache_rebuilt: false,
            snapshot: ok.then(|| "abc".into()),
            previous_snapshots: 0,
            latest_snapshot: ok.then(|| SnapshotRef {
                id: "abc".into(),
                time: Timestamp::now(),
            }),
            duration_ms: 5,
        }
    }

    fn run(id: u64, outcome: Outcome, finished: Timestamp) -> RunRecord {
        RunRecord {
            id,
            task: "backup".into(),
            kind: JobKind::Backup,
            scheduled: finished,
            started: finished,
            finished: (outcome != Outcome::Running).then_some(finished),
            outcome,
            summary: String::new(),
            error: None,
        }
    }

    #[test]
    fn failures_keep_the_last_success_and_survive_a_reload() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.json");
        let (mut st, e) = State::load(&path, "/store");
        assert!(e.is_none());
        let first = RunReport::new(
            "r1".into(),
            Timestamp::now(),
            "/store".into(),
            vec![repo("a/x", true), repo("a/y", true)],
        );
        st.record_backup(&first, None);
        let second = RunReport::new(
            "r2".into(),
            Timestamp::now(),
            "/store".into(),
            vec![repo("a/x", false)],
        );
        st.record_backup(&second, None);
        // a/y is no longer part of the plan: forgotten. a/x failed: its last success stays.
        assert_eq!(st.repos.len(), 1);
        let x = st.repos.values().next().expect("a/x");
        assert_eq!(x.status, RepoStatus::Failed);
        assert!(x.last_success.is_some());
        assert_eq!(x.bytes_added, 100);
        assert_eq!(
            x.latest_snapshot.as_ref().map(|s| s.id.as_str()),
            Some("abc")
        );
        st.start_run(run(0, Outcome::Running, Timestamp::now()));
        st.save(&path).expect("save");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);

        let (mut again, e) = State::load(&path, "/store");
        assert!(e.is_none());
        assert_eq!(again.repos.len(), 1);
        assert_eq!(again.mark_interrupted(Timestamp::now()), 1);
        assert_eq!(again.runs[0].outcome, Outcome::Interrupted);
        // Another store: nothing carried over.
        let (other, _) = State::load(&path, "/elsewhere");
        assert!(other.repos.is_empty());
    }

    #[test]
    fn corrupt_state_is_moved_aside_and_old_runs_pruned() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.json");
        std::fs::write(&path, "{ not json").expect("write");
        let (st, e) = State::load(&path, "/store");
        assert!(e.is_some());
        assert!(st.runs.is_empty());
        assert!(dir.path().join("state.json.corrupt").exists());

        let mut st = st;
        let now = Timestamp::now();
        let old = now - jiff::SignedDuration::from_hours(24 * 10);
        st.start_run(run(0, Outcome::Success, old));
        st.start_run(run(0, Outcome::Failure, now));
        st.prune(now, Duration::from_secs(7 * 86_400));
        assert_eq!(st.runs.len(), 1);
        assert_eq!(st.runs[0].outcome, Outcome::Failure);
    }
}
