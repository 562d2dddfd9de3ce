//! `repovault daemon`: the config's schedules, the HTTP endpoints and the status page
//! (crates/repovault-daemon), with jobs run through [`CliRunner`] — the same code the one-shot
//! commands use.

use std::sync::Arc;

use repovault_core::backup::Observer;
use repovault_core::config::JobKind;
use repovault_core::plan::RepoJob;
use repovault_core::report::{RepoReport, RepoStatus};
use repovault_core::Cancel;
use repovault_daemon::{JobOutcome, JobRunner, Options, Task};

use crate::cli::{DaemonArgs, ForgetArgs, KeepArgs};
use crate::exit::{Failure, UsageError, OK};
use crate::settings::Settings;

/// Runs the daemon's tasks with the binary's commands.
struct CliRunner {
    settings: Settings,
}

impl JobRunner for CliRunner {
    fn run(&self, task: &Task, cancel: &Cancel) -> JobOutcome {
        let schedule = self
            .settings
            .config
            .schedules
            .iter()
            .find(|s| s.task_name() == task.name);
        match task.kind {
            JobKind::Backup => {
                let req = super::backup::BackupRequest {
                    source: task.source.as_deref(),
                    shard: None,
                    concurrency: None,
                    new_base: false,
                    cancel: cancel.clone(),
                };
                let result = super::backup::backup_run(&self.settings, req, &LogObserver);
                super::backup::outcome_of(&result)
            }
            JobKind::Verify => {
                let req = repovault_core::verify::VerifyRequest {
                    tmp_dir: crate::settings::verify_tmp_dir(None),
                    cancel: cancel.clone(),
                    sample: schedule.and_then(|s| s.sample),
                    ..Default::default()
                };
                let result = super::verify::verify_store(&self.settings, &req, &LogObserver);
                super::verify::outcome_of(&result)
            }
            // The config's [retention], like `repovault forget` without --keep-* flags.
            JobKind::Forget => {
                let args = ForgetArgs {
                    keep: KeepArgs::default(),
                    repo: None,
                    host: None,
                    dry_run: false,
                    prune: schedule.is_some_and(|s| s.prune),
                    grace: None,
                    json: false,
                };
                super::forget::outcome_of(&super::forget::forget_store(&self.settings, &args))
            }
            JobKind::Prune => {
                super::prune::outcome_of(&super::prune::prune_store(&self.settings, None, false))
            }
            JobKind::Check => {
                let read_data = schedule.and_then(|s| s.read_data.as_deref());
                super::check::outcome_of(&super::check::check_store(&self.settings, read_data))
            }
        }
    }
}

/// One log line per repository, with fields a log collector can index.
struct LogObserver;

impl repovault_core::verify::VerifyObserver for LogObserver {
    fn finished(&self, r: &repovault_core::verify::RepoVerification) {
        if r.ok {
            tracing::info!(host = %r.host, repo = %r.repo, snapshot = %r.snapshot, "verified");
        } else {
            for p in &r.problems {
                tracing::warn!(host = %r.host, repo = %r.repo, snapshot = %r.snapshot, "verify: {p}");
            }
        }
    }
}

impl Observer for LogObserver {
    fn repo_started(&self, job: &RepoJob) {
        tracing::debug!(source = %job.source, repo = %job.name, "backup started");
    }

    fn repo_finished(&self, r: &RepoReport) {
        match (&r.status, &r.error) {
            (RepoStatus::Failed, Some(e)) => tracing::warn!(
                source = %r.source,
                repo = %r.repo,
                kind = %e.kind,
                "backup failed: {}",
                e.message
            ),
            _ => tracing::info!(
                source = %r.source,
                repo = %r.repo,
                refs = r.refs,
                new_objects = r.new_objects,
                bytes_added = r.bytes_added,
                "backed up"
            ),
        }
    }
}

pub fn run(settings: Settings, args: &DaemonArgs) -> Result<u8, Failure> {
    let listen = settings.daemon_listen(args.listen);
    let location = settings.store_location()?;
    // The password is read for every run; reading it once now makes a missing one a start-up
    // error rather than a failure at the first scheduled run.
    settings.password()?;
    let time_zone = settings
        .config
        .daemon
        .time_zone()
        .map_err(|e| UsageError(e.to_string()))?;
    let notifier = super::after::notifier(&settings)?;
    if settings.config.schedules.is_empty() {
        tracing::warn!(
            "no [[schedule]] in the config: the daemon serves its status page but runs nothing"
        );
    }
    let options = Options {
        listen,
        state_path: settings.daemon_state_path(),
        store: location.to_string(),
        schedules: settings.config.schedules.clone(),
        history: settings.config.daemon.history.get(),
        time_zone,
    };
    let runner = Arc::new(CliRunner { settings });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failure::Other(anyhow::anyhow!("starting the runtime: {e}")))?;
    rt.block_on(async move {
        let signals = crate::signals::Signals::install()
            .map_err(|e| Failure::Other(anyhow::anyhow!("installing signal handlers: {e}")))?;
        repovault_daemon::run(options, runner, notifier, signals.stop_requested())
            .await
            .map_err(|e| match e {
                repovault_daemon::DaemonError::Bind { .. } => UsageError(e.to_string()).into(),
                other => Failure::Other(other.into()),
            })
    })?;
    Ok(OK)
}
