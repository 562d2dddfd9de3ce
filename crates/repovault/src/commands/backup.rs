//! `repovault backup`, and the backup the daemon runs: the same steps, one implementation.

use std::time::Duration;

use jiff::Timestamp;
use repovault_core::backup::{backup, BackupSettings, Observer};
use repovault_core::config::JobKind;
use repovault_core::plan::{plan_run, ForgeSettings, Shard};
use repovault_core::report::{RepoStatus, RunReport};
use repovault_core::Cancel;
use repovault_daemon::{JobOutcome, Outcome, Task};

use crate::cli::BackupArgs;
use crate::exit::{Failure, UsageError, OK, SOME_FAILED};
use crate::output::{human_bytes, print_json, Progress};
use crate::settings::Settings;

/// What one backup run covers and how.
pub struct BackupRequest<'a> {
    /// Only this source.
    pub source: Option<&'a str>,
    /// Only the repositories of this shard.
    pub shard: Option<Shard>,
    /// Default: the config's `backup.concurrency`.
    pub concurrency: Option<usize>,
    /// Start every chain over.
    pub new_base: bool,
    /// Checked between repositories.
    pub cancel: Cancel,
}

/// Lists the sources (forges through their APIs) and backs up what they hold; stops between
/// repositories once `req.cancel` is set. A source that cannot be listed is reported and the
/// others are backed up.
pub fn backup_run(
    settings: &Settings,
    req: BackupRequest<'_>,
    observer: &dyn Observer,
) -> Result<RunReport, Failure> {
    if settings.config.sources.is_empty() {
        return Err(UsageError(
            "nothing to back up: add a [[source]] to the config or pass --url".into(),
        )
        .into());
    }
    let concurrency = req
        .concurrency
        .unwrap_or(settings.config.backup.concurrency);
    if concurrency == 0 {
        return Err(UsageError("--concurrency must be at least 1".into()).into());
    }
    let store = super::open_store_for_writing(settings)?;
    // One cache per store: the cache mirrors what this store holds.
    let cache_dir = settings.cache_dir.join(store.id());
    let store = store.indexed()?;
    // Forge clients are async; worker threads drive them through this runtime's handle.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("repovault-forge")
        .enable_all()
        .build()
        .map_err(|e| Failure::Other(e.into()))?;
    let forge_settings = ForgeSettings {
        list_cache_dir: Some(cache_dir.join("sources")),
        policy: repovault_forge::RetryPolicy::default(),
    };
    let run_plan = plan_run(
        &settings.config,
        req.source,
        runtime.handle(),
        &forge_settings,
    )
    .map_err(|e| UsageError(e.to_string()))?;
    for s in &run_plan.sources {
        for f in &s.failures {
            crate::output::error(&format!(
                "source {}: could not list {}: {}",
                s.name, f.target, f.message
            ));
        }
    }
    let mut jobs = run_plan.jobs;
    if let Some(shard) = req.shard {
        let all = jobs.len();
        jobs.retain(|j| shard.contains(j));
        tracing::info!("shard {shard}: {} of {all} repositories", jobs.len());
    }
    observer.repos_planned(jobs.len());
    let backup_settings = BackupSettings {
        cache_dir,
        concurrency,
        git_timeout: Duration::from_secs(settings.config.backup.git_timeout_secs),
        chain: settings.config.backup.chain_policy(),
        force_new_base: req.new_base,
        min_free_bytes: settings.min_free_bytes,
        cancel: req.cancel,
    };
    let mut report = backup(&store, &jobs, &backup_settings, observer)?;
    report.add_sources(&run_plan.sources);
    drop(jobs);
    runtime.shutdown_background();
    Ok(report)
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
    let unlisted: Vec<String> = report
        .sources
        .iter()
        .flat_map(|s| {
            s.failures
                .iter()
                .map(move |f| format!("source {}: could not list {}", s.name, f.target))
        })
        .collect();
    let error = match (failed.is_empty(), report.cancelled) {
        (true, false) if unlisted.is_empty() => None,
        (true, false) => Some(unlisted.join("; ")),
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
    let progress = Progress::new();
    let result = backup_run(
        &settings,
        BackupRequest {
            source: args.source.as_deref(),
            shard: args.shard,
            concurrency: args.concurrency,
            new_base: args.new_base,
            cancel,
        },
        &progress,
    );
    progress.finish();
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
        for s in &report.sources {
            if let Some(api) = &s.api {
                println!(
                    "source {}: {} API requests ({} not modified, {} retries), {} rate-limit waits ({:.1}s){}",
                    s.name,
                    api.requests,
                    api.not_modified,
                    api.retries,
                    api.rate_limit_waits,
                    api.rate_limit_wait_ms as f64 / 1000.0,
                    api.remaining
                        .map(|r| format!(", {r} requests of budget left"))
                        .unwrap_or_default()
                );
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
        if t.listing_failures > 0 {
            println!(
                "{} source target(s) could not be listed (see above)",
                t.listing_failures
            );
        }
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
