//! Printing: JSON documents, human tables, and progress while a backup runs.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressStyle};
use repovault_core::backup::Observer;
use repovault_core::plan::RepoJob;
pub use repovault_core::report::human_bytes;
use repovault_core::report::{RepoReport, RepoStatus};
use serde::Serialize;

/// Set when logs are JSON lines: then every line on stderr must be one, so messages go through
/// the log instead of plain `eprintln!`.
static JSON_LOGS: AtomicBool = AtomicBool::new(false);

pub fn set_json_logs(on: bool) {
    JSON_LOGS.store(on, Ordering::Relaxed);
}

pub fn json_logs() -> bool {
    JSON_LOGS.load(Ordering::Relaxed)
}

/// A problem for the person or the log collector reading stderr.
pub fn error(msg: &str) {
    if json_logs() {
        tracing::error!("{msg}");
    } else {
        eprintln!("error: {msg}");
    }
}

pub fn warning(msg: &str) {
    if json_logs() {
        tracing::warn!("{msg}");
    } else {
        eprintln!("warning: {msg}");
    }
}

pub fn print_json<T: Serialize>(value: &T) -> Result<(), crate::exit::Failure> {
    let text =
        serde_json::to_string_pretty(value).map_err(|e| crate::exit::Failure::Other(e.into()))?;
    println!("{text}");
    Ok(())
}

/// A progress bar on a terminal; one log line per repository otherwise (cron, CI, containers).
pub struct Progress {
    bar: Option<ProgressBar>,
    running: Mutex<Vec<String>>,
}

impl Progress {
    /// The bar's length is set once the sources are listed ([`Observer::repos_planned`]).
    pub fn new() -> Self {
        let bar = (std::io::stderr().is_terminal() && !json_logs()).then(|| {
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {wide_msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar
        });
        Self {
            bar,
            running: Mutex::new(Vec::new()),
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    fn show_running(&self, running: &[String]) {
        if let Some(bar) = &self.bar {
            bar.set_message(running.join(", "));
        }
    }
}

impl Observer for Progress {
    fn repos_planned(&self, total: usize) {
        if let Some(bar) = &self.bar {
            bar.set_length(total as u64);
        }
    }

    fn repo_started(&self, job: &RepoJob) {
        let mut running = self
            .running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        running.push(job.name.to_string());
        self.show_running(&running);
    }

    fn repo_finished(&self, r: &RepoReport) {
        let mut running = self
            .running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        running.retain(|n| *n != r.repo);
        self.show_running(&running);
        let line = match (&r.status, &r.error) {
            (RepoStatus::Failed, Some(e)) => {
                format!("FAILED {} ({}): {}", r.repo, e.kind, e.message)
            }
            _ => format!(
                "ok     {} {} refs, {} new objects, +{} stored{}{}",
                r.repo,
                r.refs,
                r.new_objects,
                human_bytes(r.bytes_added),
                if r.cache_rebuilt {
                    " (cache rebuilt from store)"
                } else {
                    ""
                },
                r.new_base
                    .as_ref()
                    .map(|b| format!(" (new base: {})", b.reason))
                    .unwrap_or_default()
            ),
        };
        match &self.bar {
            Some(bar) => {
                bar.inc(1);
                bar.println(line);
            }
            None if json_logs() => match &r.error {
                Some(e) => {
                    tracing::warn!(source = %r.source, repo = %r.repo, kind = %e.kind, "backup failed: {}", e.message)
                }
                None => {
                    tracing::info!(source = %r.source, repo = %r.repo, refs = r.refs, new_objects = r.new_objects, bytes_added = r.bytes_added, "backed up")
                }
            },
            None => eprintln!("{line}"),
        }
    }
}
