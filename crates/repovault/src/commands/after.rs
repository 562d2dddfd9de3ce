//! What a one-shot command does once its work is done: write the metrics file, push to the
//! Pushgateway, send the configured notifications. Failures here are reported on stderr and
//! turn the exit code to 1 (monitoring that silently stops working is worse than a red run),
//! except notifications, whose failures are only logged: the job itself did what it did.

use std::path::PathBuf;
use std::sync::Arc;

use jiff::Timestamp;
use repovault_daemon::metrics::{repo_states, write_textfile, Metrics};
use repovault_daemon::notify::{Event, Notifier};
use repovault_daemon::{JobOutcome, RunRecord, Task};

use crate::exit::{Failure, UsageError};
use crate::settings::Settings;

pub struct AfterRun {
    metrics_file: Option<PathBuf>,
    pushgateway: Option<String>,
    notifier: Arc<Notifier>,
}

/// The configured notification targets; an unreadable `url_file` is a config error.
pub fn notifier(settings: &Settings) -> Result<Arc<Notifier>, Failure> {
    Notifier::new(&settings.config.notify)
        .map(Arc::new)
        .map_err(|e| UsageError(e.to_string()).into())
}

/// Sends the configured notifications for a one-shot maintenance command (forget, prune, check,
/// verify); they have no metrics file of their own.
pub fn notify(
    settings: &Settings,
    kind: repovault_core::config::JobKind,
    started: Timestamp,
    outcome: &JobOutcome,
) -> Result<(), Failure> {
    let after = AfterRun::new(settings, None, None)?;
    after.finish(&Task::new(kind, None), started, Timestamp::now(), outcome);
    Ok(())
}

impl AfterRun {
    pub fn new(
        settings: &Settings,
        metrics_file: Option<PathBuf>,
        pushgateway: Option<String>,
    ) -> Result<Self, Failure> {
        if let Some(url) = &pushgateway {
            repovault_daemon::push::push_url(url, "backup").map_err(|m| {
                UsageError(format!(
                    "--pushgateway {}: {m}",
                    repovault_daemon::notify::redact_url(url)
                ))
            })?;
        }
        Ok(Self {
            metrics_file,
            pushgateway,
            notifier: notifier(settings)?,
        })
    }

    /// Returns false when the metrics could not be written or pushed.
    pub fn finish(
        &self,
        task: &Task,
        started: Timestamp,
        finished: Timestamp,
        outcome: &JobOutcome,
    ) -> bool {
        let mut ok = true;
        let metrics = Metrics::new();
        metrics.observe_run(
            &RunRecord {
                id: 0,
                task: task.name.clone(),
                kind: task.kind,
                scheduled: started,
                started,
                finished: Some(finished),
                outcome: outcome.outcome,
                summary: outcome.summary.clone(),
                error: outcome.error.clone(),
            },
            true,
        );
        if let Some(report) = &outcome.backup {
            metrics.observe_backup(report);
            metrics.set_repositories(&repo_states(report));
        }
        let text = metrics.prometheus_text();
        if let Some(path) = &self.metrics_file {
            if let Err(e) = write_textfile(path, &text) {
                crate::output::error(&format!("writing metrics to {}: {e}", path.display()));
                ok = false;
            }
        }
        let wants_network = self.pushgateway.is_some() || !self.notifier.is_empty();
        if !wants_network {
            return ok;
        }
        let rt = match tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                crate::output::error(&format!("cannot start the HTTP client runtime: {e}"));
                return false;
            }
        };
        rt.block_on(async {
            if let Some(url) = &self.pushgateway {
                if let Err(e) = repovault_daemon::push::push(url, &task.name, text).await {
                    crate::output::error(&e.to_string());
                    ok = false;
                }
            }
            let event = Event::from_outcome(task, started, finished, outcome);
            for failed in self.notifier.send(&event).await {
                crate::output::warning(&failed.to_string());
            }
        });
        ok
    }
}
