//! The seam between the daemon and the commands it runs: the daemon decides when, a
//! [`JobRunner`] (implemented by the binary) does the work.

use jiff::Timestamp;
use repovault_core::config::{JobKind, ScheduleConfig};
use repovault_core::report::RunReport;
use repovault_core::Cancel;
use serde::Serialize;

/// One thing to run: a job kind, optionally limited to one source.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Task {
    /// `backup`, `backup:<source>`, `prune`, ...: at most one run per name at a time.
    pub name: String,
    pub kind: JobKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl Task {
    pub fn new(kind: JobKind, source: Option<String>) -> Self {
        let name = match &source {
            Some(s) => format!("{kind}:{s}"),
            None => kind.to_string(),
        };
        Self { name, kind, source }
    }

    pub fn of(schedule: &ScheduleConfig) -> Self {
        Self::new(schedule.job, schedule.source.clone())
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Success,
    Failure,
    /// Not started: the previous run of the same task was still going.
    Skipped,
    /// Still going (only ever seen in the state and on the status page).
    Running,
    /// The daemon stopped (or died) while it ran.
    Interrupted,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Skipped => "skipped",
            Self::Running => "running",
            Self::Interrupted => "interrupted",
        }
    }
}

/// What a finished run reports back.
#[derive(Debug, Clone)]
pub struct JobOutcome {
    pub outcome: Outcome,
    /// One line for people: "backed up 12/12 repositories, +3.1 MiB".
    pub summary: String,
    /// Why it failed, when it did.
    pub error: Option<String>,
    /// The run report of a backup, when one was made.
    pub backup: Option<RunReport>,
}

impl JobOutcome {
    /// A job other than a backup that did all it should.
    pub fn succeeded(summary: impl Into<String>) -> Self {
        Self {
            outcome: Outcome::Success,
            summary: summary.into(),
            error: None,
            backup: None,
        }
    }

    pub fn failed(error: impl Into<String>) -> Self {
        let error = error.into();
        Self {
            outcome: Outcome::Failure,
            summary: error.clone(),
            error: Some(error),
            backup: None,
        }
    }
}

/// Runs one task to its end. Called on a blocking thread; `cancel` is set when the daemon is
/// asked to stop, and the runner should stop at its next safe point.
pub trait JobRunner: Send + Sync + 'static {
    fn run(&self, task: &Task, cancel: &Cancel) -> JobOutcome;
}

/// A run as the daemon remembers it.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct RunRecord {
    pub id: u64,
    pub task: String,
    pub kind: JobKind,
    pub scheduled: Timestamp,
    pub started: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished: Option<Timestamp>,
    pub outcome: Outcome,
    pub summary: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}
