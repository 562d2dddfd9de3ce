//! `repovault backup`, and the backup the daemon runs: the same steps, one implementation.

use std::time::Duration;

use jiff::Timestamp;
use repovault_core::backup::{backup, BackupSettings, Observer};
use repovault_core::config::JobKind;
use repovault_core::plan::{plan, RepoJob};
use repovault_core::report::{RepoStatus, RunReport};
use repovault_core::Cancel;
use repovault_daemon::{JobOutcome, Outcome, Task};

use crate::cli::BackupArgs;
use crate::exit::{Failure, UsageError, OK, SOME_FAILED};
use crate::output::{human_bytes, print_json, Progress};
use crate::settings::Settings;

/// The repositories a backup of `source` (or of every source) covers.
pub fn plan_jobs(settings: &Settings, source: Option<&str>) -> Result<Vec<RepoJob>, Failure> {
    let jobs = plan(&settings.config, source).map_err(|e| UsageError(e.to_string()))?;
    if jobs.is_empty() {
        return Err(UsageError(
            "nothing to back up: add a [[source]] to the config or pass --url".into(),
        )
        .into());
    }
    Ok(jobs)
}

/// Backs up `jobs`; stops between repositories once `cancel` is set. `new_base` starts every
/// chain over.
pub fn run_jobs(
    settings: &Settings,
    jobs: &[RepoJob],
    concurrency: Option<usize>,
    new_base: bool,
    cancel: Cancel,
    observer: &dyn Observer,
) -> Result<RunReport, Failure> {
    let concurrency = concurrency.unwrap_or(settings.config.backup.concurrency);
    if concurrency == 0 {
        return Err(UsageError("--concurrency must be at least 1".into()).into());
    }
    let store = super::open_store_for_writing(settings)?;
    // One cache per store: the cache mirrors what this store holds.
    let cache_dir = settings.cache_dir.join(store.id());
    let store = store.indexed()?;
    let backup_settings = BackupSettings {
        cache_dir,
        concurrency,
        git_timeout: Duration::from_secs(settings.config.backup.git_timeout_secs),
        chain: settings.config.backup.chain_policy(),
        force_new_base: new_base,
        min_free_bytes: settings.min_free_bytes,
        cancel,
    };
    Ok(backup(&store, jobs, &backup_settings, observer)?)
}

/// How a backup went, for the daemon's state, metrics and notifications.
pub fn outcome_of(result: &Result<RunReport, Failure>) -> JobOutcome {
    let report = match result {
        Ok(r) => r,
        Err(f) => return JobOutcome::failed(f.message()),
    };
    let t = &report.totals;
    let mut summary = format!(
        "backed up {}/{} repositories ({} changed, {} failed), +{}",
        t.ok,
        t.repos + t.not_started,
        t.changed,
        t.failed,
        human_bytes(t.bytes_added)
    );
    if report.cancelled {
        summary.push_str(&format!("; stopped early, {} not started", t.not_started));
    }
    let failed: Vec<String> = report
        .repos
        .iter()
        .filter(|r| r.status == RepoStatus::Failed)
        .map(|r| {
            let kind = r.error.as_ref().map_or("other", |e| e.kind.as_str());
            format!("{} ({kind})", r.repo)
        })
        .collect();
    let error = match (failed.is_empty(), report.cancelled) {
        (true, false) => None,
        (true, true) => Some(format!(
            "stopped before {} repositories were backed up",
            t.not_started
        )),
        (false, _) => Some(format!(
            "{} repositories failed: {}{}",
            failed.len(),
            failed
                .iter()
                .take(10)
                .cloned()
                .collect::<Vec<_>>()
                .join(", "),
            if failed.len() > 10 { ", ..." } else { "" }
        )),
    };
    JobOutcome {
        outcome: if report.all_ok() {
            Outcome::Success
        } else {
            Outcome::Failure
        },
        summary,
        error,
        backup: Some(report.clone()),
    }
}

pub fn run(mut settings: Settings, args: &BackupArgs) -> Result<u8, Failure> {
    settings.add_cli_urls(&args.urls)?;
    let after = super::after::AfterRun::new(
        &settings,
        args.metrics_file.clone(),
        args.pushgateway.clone(),
    )?;
    let cancel = Cancel::new();
    crate::signals::cancel_on_signal(cancel.clone());
    let task = Task::new(JobKind::Backup, args.source.clone());
    let started = Timestamp::now();
    let result = plan_jobs(&settings, args.source.as_deref()).and_then(|mut jobs| {
        if let Some(shard) = args.shard {
            let all = jobs.len();
            jobs.retain(|j| shard.contains(j));
            tracing::info!("shard {shard}: {} of {all} repositories", jobs.len());
        }
        let progress = Progress::new(jobs.len());
        let report = run_jobs(
            &settings,
            &jobs,
            args.concurrency,
            args.new_base,
            cancel,
            &progress,
        );
        progress.finish();
        report
    });
    let outcome = outcome_of(&result);
    let after_ok = after.finish(&task, started, Timestamp::now(), &outcome);
    let report = result?;
    if args.json {
        print_json(&report)?;
    } else {
        for r in report
            .repos
            .iter()
            .filter(|r| r.status == RepoStatus::Failed)
        {
            if let Some(e) = &r.error {
                println!("failed: {} ({}): {}", r.repo, e.kind, e.message);
            }
        }
        for r in &report.repos {
            if let Some(b) = &r.new_base {
                println!("new base: {} ({}): {}", r.repo, b.reason, b.message);
            }
        }
        let t = &report.totals;
        println!(
            "backed up {}/{} repositories ({} changed, {} failed, {} new bases), {} new objects, {} added to the store, in {:.1}s",
            t.ok,
            t.repos,
            t.changed,
            t.failed,
            t.new_bases,
            t.new_objects,
            human_bytes(t.bytes_added),
            report.duration_ms as f64 / 1000.0
        );
        if report.cancelled {
            println!(
                "stopped on request: {} repositories were not started; the next run backs them up",
                t.not_started
            );
        }
    }
    Ok(if report.all_ok() && after_ok {
        OK
    } else {
        SOME_FAILED
    })
}
