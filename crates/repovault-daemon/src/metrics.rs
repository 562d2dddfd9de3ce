//! Prometheus metrics: one registry, filled from run records, backup reports and the daemon's
//! state, served on `/metrics` (OpenMetrics) and written by one-shot runs as a node-exporter
//! textfile or pushed to a Pushgateway (Prometheus text format 0.0.4, which both read).
//!
//! Every name starts with `repovault_`; timestamps are `_timestamp_seconds`, durations
//! `_seconds`, sizes `_bytes`, counters `_total`. docs/OPERATIONS.md lists them all.

use std::path::Path;
use std::sync::atomic::AtomicU64;

use jiff::Timestamp;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use repovault_core::report::{RepoStatus, RunReport};

use crate::runner::{Outcome, RunRecord};
use crate::state::RepoState;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TaskLabels {
    task: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    task: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabels {
    source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RepoLabels {
    source: String,
    host: String,
    repo: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
}

type FGauge = Gauge<f64, AtomicU64>;

/// The figures a source's API client reports for one run (GitHub and other forges).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiFigures {
    pub source: String,
    pub requests: u64,
    pub not_modified: u64,
    pub retries: u64,
    pub rate_limit_wait_ms: u64,
    pub rate_limit_remaining: Option<u64>,
}

/// The one place that reads API figures out of a run report: one entry per forge source (plain
/// git sources make no API requests).
pub fn api_figures(report: &RunReport) -> Vec<ApiFigures> {
    report
        .sources
        .iter()
        .filter_map(|s| {
            s.api.as_ref().map(|a| ApiFigures {
                source: s.name.clone(),
                requests: a.requests,
                not_modified: a.not_modified,
                retries: a.retries,
                rate_limit_wait_ms: a.rate_limit_wait_ms,
                rate_limit_remaining: a.remaining,
            })
        })
        .collect()
}

pub struct Metrics {
    registry: Registry,
    job_last_run: Family<TaskLabels, Gauge>,
    job_last_success: Family<TaskLabels, Gauge>,
    job_last_duration: Family<TaskLabels, FGauge>,
    job_failed: Family<TaskLabels, Gauge>,
    job_running: Family<TaskLabels, Gauge>,
    job_runs: Family<RunLabels, Counter>,
    backup_repos: Family<SourceLabels, Gauge>,
    backup_failed: Family<SourceLabels, Gauge>,
    backup_added: Family<SourceLabels, Counter>,
    repo_last_success: Family<RepoLabels, Gauge>,
    repo_failed: Family<RepoLabels, Gauge>,
    repo_duration: Family<RepoLabels, FGauge>,
    repo_added: Family<RepoLabels, Gauge>,
    store_size: Gauge,
    api_requests: Family<SourceLabels, Counter>,
    api_not_modified: Family<SourceLabels, Counter>,
    api_rate_limit_remaining: Family<SourceLabels, Gauge>,
    api_retries: Family<SourceLabels, Counter>,
    api_rate_limit_wait: Family<SourceLabels, Counter<f64, AtomicU64>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Timestamps and byte counts as gauge values; values beyond i64 do not occur in practice.
fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let m = Self {
            job_last_run: Family::default(),
            job_last_success: Family::default(),
            job_last_duration: Family::default(),
            job_failed: Family::default(),
            job_running: Family::default(),
            job_runs: Family::default(),
            backup_repos: Family::default(),
            backup_failed: Family::default(),
            backup_added: Family::default(),
            repo_last_success: Family::default(),
            repo_failed: Family::default(),
            repo_duration: Family::default(),
            repo_added: Family::default(),
            store_size: Gauge::default(),
            api_requests: Family::default(),
            api_not_modified: Family::default(),
            api_rate_limit_remaining: Family::default(),
            api_retries: Family::default(),
            api_rate_limit_wait: Family::default(),
            registry: Registry::default(),
        };
        let build: Family<BuildLabels, Gauge> = Family::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").into(),
            })
            .set(1);
        let r = &mut registry;
        r.register(
            "repovault_build_info",
            "repovault version (always 1)",
            build,
        );
        r.register(
            "repovault_job_last_run_timestamp_seconds",
            "When the last finished run of the task started",
            m.job_last_run.clone(),
        );
        r.register(
            "repovault_job_last_success_timestamp_seconds",
            "When the last successful run of the task finished",
            m.job_last_success.clone(),
        );
        r.register(
            "repovault_job_last_duration_seconds",
            "How long the last finished run of the task took",
            m.job_last_duration.clone(),
        );
        r.register(
            "repovault_job_failed",
            "1 when the last finished run of the task failed",
            m.job_failed.clone(),
        );
        r.register(
            "repovault_job_running",
            "1 while a run of the task is going",
            m.job_running.clone(),
        );
        r.register(
            "repovault_job_runs",
            "Runs by outcome (success, failure, skipped: the previous run was still going)",
            m.job_runs.clone(),
        );
        r.register(
            "repovault_backup_repositories",
            "Repositories of the source in the last backup",
            m.backup_repos.clone(),
        );
        r.register(
            "repovault_backup_repositories_failed",
            "Repositories of the source that failed in the last backup",
            m.backup_failed.clone(),
        );
        r.register(
            "repovault_backup_added_bytes",
            "Bytes backups of the source added to the store",
            m.backup_added.clone(),
        );
        r.register(
            "repovault_repository_last_success_timestamp_seconds",
            "Time of the repository's newest snapshot",
            m.repo_last_success.clone(),
        );
        r.register(
            "repovault_repository_failed",
            "1 when the repository's last backup failed",
            m.repo_failed.clone(),
        );
        r.register(
            "repovault_repository_last_duration_seconds",
            "How long the repository's last backup took",
            m.repo_duration.clone(),
        );
        r.register(
            "repovault_repository_added_bytes",
            "Bytes the repository's last successful backup added to the store",
            m.repo_added.clone(),
        );
        r.register(
            "repovault_store_size_bytes",
            "Bytes the store occupies in its backend, measured after the last backup",
            m.store_size.clone(),
        );
        r.register(
            "repovault_api_requests",
            "Forge API requests made by backups of the source",
            m.api_requests.clone(),
        );
        r.register(
            "repovault_api_not_modified",
            "Forge API requests answered 304 Not Modified (free under GitHub's rate limit)",
            m.api_not_modified.clone(),
        );
        r.register(
            "repovault_api_rate_limit_remaining",
            "Forge API requests left in the rate-limit window at the end of the last backup",
            m.api_rate_limit_remaining.clone(),
        );
        r.register(
            "repovault_api_retries",
            "Forge API requests sent again after a server error, a broken connection or a rate-limit wait",
            m.api_retries.clone(),
        );
        r.register(
            "repovault_api_rate_limit_wait_seconds",
            "Time backups of the source spent waiting for forge rate limits",
            m.api_rate_limit_wait.clone(),
        );
        Self { registry, ..m }
    }

    pub fn set_running(&self, task: &str, running: bool) {
        self.job_running
            .get_or_create(&TaskLabels { task: task.into() })
            .set(i64::from(running));
    }

    /// A run ended (or was skipped). `count` is false when replaying the state at start-up:
    /// counters only count what this process saw.
    pub fn observe_run(&self, run: &RunRecord, count: bool) {
        let task = TaskLabels {
            task: run.task.clone(),
        };
        if count {
            self.job_runs
                .get_or_create(&RunLabels {
                    task: run.task.clone(),
                    outcome: run.outcome.as_str().into(),
                })
                .inc();
        }
        let finished = run.finished.unwrap_or(run.started);
        match run.outcome {
            Outcome::Skipped | Outcome::Running => return,
            Outcome::Success => {
                self.job_last_success
                    .get_or_create(&task)
                    .set(finished.as_second());
            }
            Outcome::Failure | Outcome::Interrupted => {}
        }
        self.job_last_run
            .get_or_create(&task)
            .set(run.started.as_second());
        let secs = finished
            .as_millisecond()
            .saturating_sub(run.started.as_millisecond());
        self.job_last_duration
            .get_or_create(&task)
            .set(secs as f64 / 1000.0);
        self.job_failed
            .get_or_create(&task)
            .set(i64::from(run.outcome != Outcome::Success));
    }

    /// A backup's per-source figures, the store size and the API figures.
    pub fn observe_backup(&self, report: &RunReport) {
        let mut sources: std::collections::BTreeMap<&str, (i64, i64, u64)> = Default::default();
        for r in &report.repos {
            let e = sources.entry(r.source.as_str()).or_default();
            e.0 += 1;
            e.1 += i64::from(r.status == RepoStatus::Failed);
            e.2 += r.bytes_added;
        }
        for (source, (repos, failed, added)) in sources {
            let l = SourceLabels {
                source: source.into(),
            };
            self.backup_repos.get_or_create(&l).set(repos);
            self.backup_failed.get_or_create(&l).set(failed);
            self.backup_added.get_or_create(&l).inc_by(added);
        }
        if let Some(size) = report.store_size_bytes {
            self.store_size.set(int(size));
        }
        for api in api_figures(report) {
            let l = SourceLabels { source: api.source };
            self.api_requests.get_or_create(&l).inc_by(api.requests);
            self.api_not_modified
                .get_or_create(&l)
                .inc_by(api.not_modified);
            self.api_retries.get_or_create(&l).inc_by(api.retries);
            self.api_rate_limit_wait
                .get_or_create(&l)
                .inc_by(api.rate_limit_wait_ms as f64 / 1000.0);
            if let Some(left) = api.rate_limit_remaining {
                self.api_rate_limit_remaining
                    .get_or_create(&l)
                    .set(int(left));
            }
        }
    }

    /// Replaces the per-repository series: repositories that left the plan disappear.
    pub fn set_repositories<'a>(&self, repos: impl IntoIterator<Item = &'a RepoState>) {
        self.repo_last_success.clear();
        self.repo_failed.clear();
        self.repo_duration.clear();
        self.repo_added.clear();
        for r in repos {
            let l = RepoLabels {
                source: r.source.clone(),
                host: r.host.clone(),
                repo: r.repo.clone(),
            };
            if let Some(s) = &r.latest_snapshot {
                self.repo_last_success
                    .get_or_create(&l)
                    .set(s.time.as_second());
            }
            self.repo_failed
                .get_or_create(&l)
                .set(i64::from(r.status == RepoStatus::Failed));
            self.repo_duration
                .get_or_create(&l)
                .set(r.duration_ms as f64 / 1000.0);
            self.repo_added.get_or_create(&l).set(int(r.bytes_added));
        }
    }

    /// OpenMetrics text, for Prometheus scraping `/metrics`.
    pub fn openmetrics(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Prometheus text format 0.0.4: what the node exporter's textfile collector and the
    /// Pushgateway read.
    pub fn prometheus_text(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        out
    }
}

pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";
pub use prometheus_client::encoding::prometheus_text::CONTENT_TYPE as PROMETHEUS_TEXT_CONTENT_TYPE;

/// The per-repository view of one report, for one-shot runs (which have no daemon state).
pub fn repo_states(report: &RunReport) -> Vec<RepoState> {
    let mut st = crate::state::State::default();
    st.record_backup(report, None);
    st.repos.into_values().collect()
}

/// Writes `text` to `path` for the node exporter's textfile collector: to a temp file in the same
/// directory, then renamed, so the collector never reads half a file. Mode 0644: the exporter
/// usually runs as another user, and metrics hold no secrets.
pub fn write_textfile(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other("the metrics file path has no file name"))?;
    // The collector reads only `*.prom`; a leading dot keeps a leftover temp file out of it too.
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// Seconds since the epoch, for the status page's ages.
pub fn age_seconds(now: Timestamp, then: Timestamp) -> i64 {
    now.as_second() - then.as_second()
}

#[cfg(test)]
mod tests {
    use super::*;
    use repovault_core::config::JobKind;

    #[test]
    fn names_follow_prometheus_conventions() {
        let m = Metrics::new();
        let now = Timestamp::now();
        m.observe_run(
            &RunRecord {
                id: 1,
                task: "backup".into(),
                kind: JobKind::Backup,
                scheduled: now,
                started: now,
                finished: Some(now),
                outcome: Outcome::Success,
                summary: String::new(),
                error: None,
            },
            true,
        );
        let text = m.prometheus_text();
        assert!(
            text.contains("repovault_job_runs_total{task=\"backup\",outcome=\"success\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE repovault_job_runs_total counter"),
            "{text}"
        );
        assert!(text.contains("repovault_job_last_success_timestamp_seconds{task=\"backup\"}"));
        let om = m.openmetrics();
        assert!(om.ends_with("# EOF\n"), "{om}");
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            assert!(line.starts_with("repovault_"), "{line}");
        }
    }

    #[test]
    fn textfile_is_replaced_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = dir.path().join("repovault.prom");
        write_textfile(&p, "a 1\n").expect("write");
        write_textfile(&p, "b 2\n").expect("write");
        assert_eq!(std::fs::read_to_string(&p).expect("read"), "b 2\n");
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 1);
    }
}
