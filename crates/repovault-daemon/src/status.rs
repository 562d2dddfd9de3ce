//! The daemon's status as one document: `/api/status` serves it as JSON, `/` renders it.

use jiff::Timestamp;
use repovault_core::config::JobKind;
use repovault_core::report::RepoStatus;
use serde::Serialize;

use crate::runner::RunRecord;
use crate::service::Shared;
use crate::state::RepoState;

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub version: &'static str,
    pub host: String,
    pub now: Timestamp,
    pub store: String,
    pub ready: bool,
    pub stopping: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store_size_bytes: Option<u64>,
    pub totals: Totals,
    pub tasks: Vec<TaskStatus>,
    pub repositories: Vec<RepoView>,
    /// Newest first.
    pub runs: Vec<RunRecord>,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Totals {
    pub repositories: usize,
    pub ok: usize,
    pub failed: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct TaskStatus {
    pub name: String,
    pub kind: JobKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub cron: String,
    pub jitter: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_run: Option<Timestamp>,
    pub running: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_run: Option<RunRecord>,
}

/// A repository as the status page and `/api/status` show it: its state and how old its newest
/// snapshot is.
#[derive(Debug, Clone, Serialize)]
pub struct RepoView {
    #[serde(flatten)]
    pub state: RepoState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub age_seconds: Option<i64>,
}

impl Shared {
    pub(crate) fn status(&self) -> Status {
        let now = Timestamp::now();
        let st = self.state();
        let mut repositories: Vec<RepoView> = st
            .repos
            .values()
            .map(|r| RepoView {
                age_seconds: r
                    .latest_snapshot
                    .as_ref()
                    .map(|s| crate::metrics::age_seconds(now, s.time)),
                state: r.clone(),
            })
            .collect();
        // Failures first: they are what a person opens the page for.
        repositories.sort_by(|a, b| {
            let (a, b) = (&a.state, &b.state);
            (a.status == RepoStatus::Ok, &a.repo, &a.source, &a.host).cmp(&(
                b.status == RepoStatus::Ok,
                &b.repo,
                &b.source,
                &b.host,
            ))
        });
        let failed = repositories
            .iter()
            .filter(|r| r.state.status == RepoStatus::Failed)
            .count();
        let tasks = self
            .tasks
            .iter()
            .enumerate()
            .map(|(i, t)| TaskStatus {
                name: t.task.name.clone(),
                kind: t.task.kind,
                source: t.task.source.clone(),
                cron: t.schedule.cron.as_str().to_owned(),
                jitter: t.schedule.jitter.to_string(),
                next_run: self.next_run(i),
                running: self.is_running(&t.task.name),
                last_run: st.last_run(&t.task.name).cloned(),
            })
            .collect();
        Status {
            version: env!("CARGO_PKG_VERSION"),
            host: crate::notify::hostname(),
            now,
            store: self.options.store.clone(),
            ready: self.ready.load(std::sync::atomic::Ordering::SeqCst),
            stopping: self.stopping.load(std::sync::atomic::Ordering::SeqCst),
            store_size_bytes: st.store_size_bytes,
            totals: Totals {
                repositories: repositories.len(),
                ok: repositories.len() - failed,
                failed,
            },
            tasks,
            repositories,
            runs: st.runs.iter().rev().cloned().collect(),
        }
    }
}
