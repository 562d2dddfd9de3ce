use std::time::Duration;

use repovault_core::backup::{backup, BackupSettings};
use repovault_core::plan::plan;
use repovault_core::report::RepoStatus;

use crate::cli::BackupArgs;
use crate::exit::{Failure, UsageError, OK, SOME_FAILED};
use crate::output::{human_bytes, print_json, Progress};
use crate::settings::Settings;

pub fn run(mut settings: Settings, args: &BackupArgs) -> Result<u8, Failure> {
    settings.add_cli_urls(&args.urls)?;
    let mut jobs =
        plan(&settings.config, args.source.as_deref()).map_err(|e| UsageError(e.to_string()))?;
    if jobs.is_empty() {
        return Err(UsageError(
            "nothing to back up: add a [[source]] to the config or pass --url".into(),
        )
        .into());
    }
    if let Some(shard) = args.shard {
        let all = jobs.len();
        jobs.retain(|j| shard.contains(j));
        tracing::info!("shard {shard}: {} of {all} repositories", jobs.len());
    }
    let concurrency = args
        .concurrency
        .unwrap_or(settings.config.backup.concurrency);
    if concurrency == 0 {
        return Err(UsageError("--concurrency must be at least 1".into()).into());
    }
    let store = super::open_store_for_writing(&settings)?;
    // One cache per store: the cache mirrors what this store holds.
    let cache_dir = settings.cache_dir.join(store.id());
    let store = store.indexed()?;
    let backup_settings = BackupSettings {
        cache_dir,
        concurrency,
        git_timeout: Duration::from_secs(settings.config.backup.git_timeout_secs),
        chain: settings.config.backup.chain_policy(),
        force_new_base: args.new_base,
        min_free_bytes: settings.min_free_bytes,
    };
    let progress = Progress::new(jobs.len());
    let report = backup(&store, &jobs, &backup_settings, &progress)?;
    progress.finish();
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
    }
    Ok(if report.all_ok() { OK } else { SOME_FAILED })
}
