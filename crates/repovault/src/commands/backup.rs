use std::time::Duration;

use repovault_core::backup::{backup, BackupSettings};
use repovault_core::plan::{plan_run, ForgeSettings};
use repovault_core::report::RepoStatus;

use crate::cli::BackupArgs;
use crate::exit::{Failure, UsageError, OK, SOME_FAILED};
use crate::output::{human_bytes, print_json, Progress};
use crate::settings::Settings;

pub fn run(mut settings: Settings, args: &BackupArgs) -> Result<u8, Failure> {
    settings.add_cli_urls(&args.urls)?;
    if settings.config.sources.is_empty() {
        return Err(UsageError(
            "nothing to back up: add a [[source]] to the config or pass --url".into(),
        )
        .into());
    }
    let concurrency = args
        .concurrency
        .unwrap_or(settings.config.backup.concurrency);
    if concurrency == 0 {
        return Err(UsageError("--concurrency must be at least 1".into()).into());
    }
    let store = super::open_store(&settings)?;
    store.ensure_free_space(settings.min_free_bytes)?;
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
        args.source.as_deref(),
        runtime.handle(),
        &forge_settings,
    )
    .map_err(|e| UsageError(e.to_string()))?;
    for s in &run_plan.sources {
        for f in &s.failures {
            eprintln!(
                "source {}: could not list {}: {}",
                s.name, f.target, f.message
            );
        }
    }
    let jobs = run_plan.jobs;
    let backup_settings = BackupSettings {
        cache_dir,
        concurrency,
        git_timeout: Duration::from_secs(settings.config.backup.git_timeout_secs),
    };
    let progress = Progress::new(jobs.len());
    let mut report = backup(&store, &jobs, &backup_settings, &progress)?;
    progress.finish();
    report.add_sources(&run_plan.sources);
    drop(jobs);
    runtime.shutdown_background();
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
            "backed up {}/{} repositories ({} changed, {} failed), {} new objects, {} added to the store, in {:.1}s",
            t.ok,
            t.repos,
            t.changed,
            t.failed,
            t.new_objects,
            human_bytes(t.bytes_added),
            report.duration_ms as f64 / 1000.0
        );
    }
    Ok(if report.all_ok() { OK } else { SOME_FAILED })
}
