//! `repovault prune`: two-phase deletion of unused data under the maintenance lease.

use repovault_core::config::{HumanDuration, JobKind};
use repovault_daemon::JobOutcome;
use repovault_store::{PruneReport, PruneSettings};

use super::maintenance::{lease, print_prune, warn_short_grace};
use crate::cli::PruneArgs;
use crate::exit::{Failure, OK};
use crate::output::{human_bytes, print_json};
use crate::settings::Settings;

/// Prunes (or plans a prune, on a dry run); the daemon's prune jobs and the command share it.
pub fn prune_store(
    settings: &Settings,
    grace: Option<HumanDuration>,
    dry_run: bool,
) -> Result<PruneReport, Failure> {
    let grace = settings.grace(grace);
    let store = super::open_store(settings)?;
    let prune = PruneSettings {
        grace,
        dry_run,
        assume_forgotten: Vec::new(),
    };
    if dry_run {
        return Ok(store.prune_dry_run(&prune)?);
    }
    warn_short_grace(grace);
    // Prune writes repacked packs and new indexes before it deletes anything.
    store.ensure_free_space(settings.min_free_bytes)?;
    let lease = lease(settings, &store, "prune")?;
    let report = store.maintenance(&lease)?.prune(&prune)?;
    lease.release()?;
    Ok(report)
}

pub fn run(settings: &Settings, args: &PruneArgs) -> Result<u8, Failure> {
    let started = jiff::Timestamp::now();
    let result = prune_store(settings, args.grace, args.dry_run);
    if !args.dry_run {
        super::after::notify(settings, JobKind::Prune, started, &outcome_of(&result))?;
    }
    let report = result?;
    if args.json {
        print_json(&report)?;
    } else {
        print_prune(&report);
    }
    Ok(OK)
}

/// One line on what a prune did.
pub fn summary(r: &PruneReport) -> String {
    let mut s = format!(
        "prune deleted {} pack(s) ({}), marked {} ({}) for after the grace",
        r.deleted.packs,
        human_bytes(r.deleted.bytes),
        r.marked.packs,
        human_bytes(r.marked.bytes)
    );
    if !r.kept_locked.is_empty() {
        s.push_str(&format!(", {} kept by Object Lock", r.kept_locked.len()));
    }
    s
}

/// How a prune went, for the daemon's state, metrics and notifications.
pub fn outcome_of(result: &Result<PruneReport, Failure>) -> JobOutcome {
    match result {
        Ok(r) => JobOutcome::succeeded(summary(r)),
        Err(f) => JobOutcome::failed(f.message()),
    }
}
