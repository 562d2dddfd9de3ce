//! `repovault prune`: two-phase deletion of unused data under the maintenance lease.

use repovault_store::PruneSettings;

use super::maintenance::{lease, print_prune, warn_short_grace};
use crate::cli::PruneArgs;
use crate::exit::{Failure, OK};
use crate::output::print_json;
use crate::settings::Settings;

pub fn run(settings: &Settings, args: &PruneArgs) -> Result<u8, Failure> {
    let grace = settings.grace(args.grace);
    let store = super::open_store(settings)?;
    let prune = PruneSettings {
        grace,
        dry_run: args.dry_run,
        assume_forgotten: Vec::new(),
    };
    let report = if args.dry_run {
        store.prune_dry_run(&prune)?
    } else {
        warn_short_grace(grace);
        // Prune writes repacked packs and new indexes before it deletes anything.
        store.ensure_free_space(settings.min_free_bytes)?;
        let lease = lease(settings, &store, "prune")?;
        let report = store.maintenance(&lease)?.prune(&prune)?;
        lease.release()?;
        report
    };
    if args.json {
        print_json(&report)?;
    } else {
        print_prune(&report);
    }
    Ok(OK)
}
