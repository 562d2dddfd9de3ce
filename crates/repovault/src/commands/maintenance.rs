//! Shared by forget, prune and protect: taking the lease, and printing prune reports.

use std::time::Duration;

use repovault_core::config::{HumanDuration, SHORT_GRACE};
use repovault_store::{Lease, PruneReport, Store};

use crate::exit::Failure;
use crate::output::human_bytes;
use crate::settings::Settings;

/// Takes the store's maintenance lease for `operation`, saying so when it replaces the expired
/// lease of a run that died.
pub fn lease(settings: &Settings, store: &Store, operation: &str) -> Result<Lease, Failure> {
    let lease = Lease::acquire(store.location(), operation, settings.lease_ttl())?;
    if let Some(stale) = lease.taken_over() {
        eprintln!(
            "note: took over the expired maintenance lease of {} (expired {})",
            stale.holder(),
            stale.expires
        );
    }
    Ok(lease)
}

pub fn warn_short_grace(grace: Duration) {
    if grace < SHORT_GRACE {
        eprintln!(
            "warning: the grace period {} is short; a backup running longer than it while data is marked can lose what it references",
            HumanDuration(grace)
        );
    }
}

fn amount(packs: u64, bytes: u64) -> String {
    format!(
        "{packs} pack{}, {}",
        if packs == 1 { "" } else { "s" },
        human_bytes(bytes)
    )
}

/// The human form of a prune report.
pub fn print_prune(r: &PruneReport) {
    let grace = HumanDuration(Duration::from_secs(r.grace_secs));
    let would = if r.dry_run { "would be " } else { "" };
    println!(
        "prune (grace {grace}): {} used, {} unused",
        human_bytes(r.used_bytes),
        human_bytes(r.unused_bytes)
    );
    println!(
        "  marked for deletion now:    {} ({} unused) — {}deleted by a prune after {}",
        amount(r.marked.packs, r.marked.bytes),
        human_bytes(r.marked_unused_bytes),
        would,
        r.marked_until.strftime("%Y-%m-%d %H:%M UTC")
    );
    if r.repacked.packs > 0 {
        println!(
            "  of which repacked:          {} (the data still used is copied first)",
            amount(r.repacked.packs, r.repacked.bytes)
        );
    }
    println!(
        "  marked earlier, in grace:   {}",
        amount(r.waiting.packs, r.waiting.bytes)
    );
    println!(
        "  marked earlier, used again: {} (kept)",
        amount(r.recovered.packs, r.recovered.bytes)
    );
    if r.dry_run {
        println!(
            "  grace over, would delete:   {}",
            amount(r.to_delete.packs, r.to_delete.bytes)
        );
        println!("dry run: nothing was changed");
    } else {
        println!(
            "  deleted now:                {}",
            amount(r.deleted.packs, r.deleted.bytes)
        );
    }
    for k in &r.kept_locked {
        println!(
            "  kept {} {}: {}",
            k.kind,
            &k.id[..k.id.len().min(8)],
            k.reason
        );
    }
    if !r.kept_locked.is_empty() {
        println!(
            "  {} object(s) kept because the bucket still locks them; a later prune deletes them",
            r.kept_locked.len()
        );
    }
}
