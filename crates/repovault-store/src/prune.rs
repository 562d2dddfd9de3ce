//! Two-phase prune, through rustic's prune with its delete marks.
//!
//! Phase one marks data no snapshot uses: the packs are listed as "to delete", with the time,
//! in the rewritten index, and stay. Phase two, in a later prune at least `grace` after the
//! mark, deletes marked packs that are still unused, and puts back into use those that a
//! snapshot written since needs again. A backup that started before the mark, and that
//! deduplicated against data in a marked pack, has written its snapshot by then as long as it
//! ran for less than the grace; so no backup loses data. Backups read only unmarked packs, so
//! one that starts after the mark never depends on a marked one.

use std::collections::BTreeMap;
use std::time::Duration;

use rustic_core::repofile::{IndexFile, SnapshotId};
use rustic_core::{Id, Open, PruneOptions, Repository};
use serde::Serialize;

use crate::guard::KeptLocked;
use crate::{MaintenanceStore, StoreError};

/// How to prune.
#[derive(Debug, Clone, Default)]
pub struct PruneSettings {
    /// How long marked data stays before it is deleted.
    pub grace: Duration,
    /// Plan and report only.
    pub dry_run: bool,
    /// Plan as if these snapshots (full ids) were gone: what `forget --dry-run --prune` would
    /// free. Only for dry runs.
    pub assume_forgotten: Vec<String>,
}

/// A number of pack files and their size.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, Default)]
pub struct Amount {
    pub packs: u64,
    pub bytes: u64,
}

/// What a prune found, would do, and did.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, Default)]
pub struct PruneReport {
    pub dry_run: bool,
    pub grace_secs: u64,
    /// Data marked by this run is deleted by the first prune after this time.
    pub marked_until: jiff::Timestamp,
    /// Blob bytes in the store, used by a snapshot or not.
    pub used_bytes: u64,
    pub unused_bytes: u64,
    /// Marked now: unused packs, packs no index lists (an interrupted backup's), and packs
    /// whose still-used part was copied into new packs. Deleted by a prune after the grace.
    pub marked: Amount,
    /// Unused bytes in `marked`: what deleting them will free.
    pub marked_unused_bytes: u64,
    /// Packs whose used part is copied into new packs.
    pub repacked: Amount,
    /// Marked earlier and still within the grace.
    pub waiting: Amount,
    /// Marked earlier but used again by a newer snapshot: back in use.
    pub recovered: Amount,
    /// Marked at least `grace` ago and still unused: deleted by this run (or would be).
    pub to_delete: Amount,
    /// What this run actually deleted (nothing on a dry run).
    pub deleted: Amount,
    pub deleted_index_files: u64,
    /// Index files written anew.
    pub index_files_rewritten: u64,
    /// Objects kept because Object Lock still protects them (deleted by a later prune).
    pub kept_locked: Vec<KeptLocked>,
}

fn span(d: Duration) -> Result<rustic_core::jiff::Span, StoreError> {
    let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
    rustic_core::jiff::Span::new()
        .try_seconds(secs)
        .map_err(|e| StoreError::rustic_input(format!("grace {d:?} is too long: {e}")))
}

/// Plans a prune and reports what it would do; `settings.dry_run` is implied.
pub(crate) fn plan_only<S: Open>(
    repo: &Repository<S>,
    settings: &PruneSettings,
) -> Result<PruneReport, StoreError> {
    let ignore = settings
        .assume_forgotten
        .iter()
        .map(|id| {
            id.parse::<SnapshotId>()
                .map_err(|_| StoreError::SnapshotNotFound(id.clone()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let opts = options(settings)?.ignore_snaps(ignore);
    let plan = repo
        .prune_plan(&opts)
        .map_err(|e| StoreError::rustic("planning the prune", &e))?;
    let mut report = report_of(&plan, settings);
    report.dry_run = true;
    Ok(report)
}

fn options(settings: &PruneSettings) -> Result<PruneOptions, StoreError> {
    Ok(PruneOptions::default()
        .keep_delete(span(settings.grace)?)
        .instant_delete(false))
}

fn report_of(plan: &rustic_core::PrunePlan, settings: &PruneSettings) -> PruneReport {
    let s = &plan.stats;
    let size = s.size_sum();
    let grace = jiff::SignedDuration::try_from(settings.grace).unwrap_or(jiff::SignedDuration::MAX);
    PruneReport {
        dry_run: settings.dry_run,
        grace_secs: settings.grace.as_secs(),
        marked_until: jiff::Timestamp::now()
            .checked_add(grace)
            .unwrap_or(jiff::Timestamp::MAX),
        used_bytes: size.used,
        unused_bytes: size.unused,
        marked: Amount {
            packs: s.packs.unused + s.packs.repack + s.packs_unref,
            bytes: size.remove + size.repack + s.size_unref,
        },
        marked_unused_bytes: size.remove + size.repackrm + s.size_unref,
        repacked: Amount {
            packs: s.packs.repack,
            bytes: size.repack,
        },
        waiting: Amount {
            packs: s.packs_to_delete.keep,
            bytes: s.size_to_delete.keep,
        },
        recovered: Amount {
            packs: s.packs_to_delete.recover,
            bytes: s.size_to_delete.recover,
        },
        to_delete: Amount {
            packs: s.packs_to_delete.remove,
            bytes: s.size_to_delete.remove,
        },
        index_files_rewritten: s.index_files_rebuild,
        ..PruneReport::default()
    }
}

pub(crate) fn prune(
    store: &MaintenanceStore,
    settings: &PruneSettings,
) -> Result<PruneReport, StoreError> {
    if settings.dry_run {
        return plan_only(&store.repo, settings);
    }
    let opts = options(settings)?;
    let plan = store
        .repo
        .prune_plan(&opts)
        .map_err(|e| StoreError::rustic("planning the prune", &e))?;
    let mut report = report_of(&plan, settings);
    store.journal.clear();
    if store.location.is_s3() {
        // Index files under Object Lock may outlive this prune; the packs they list must too.
        store.journal.set_index_packs(index_packs(store)?);
    }
    store
        .repo
        .prune(&opts, plan)
        .map_err(|e| StoreError::rustic("pruning", &e))?;
    for r in store.journal.removed() {
        match r.kind {
            "pack" => {
                report.deleted.packs += 1;
                report.deleted.bytes += r.bytes.unwrap_or(0);
            }
            "index" => report.deleted_index_files += 1,
            _ => {}
        }
    }
    report.kept_locked = store.journal.kept();
    Ok(report)
}

fn index_packs(store: &MaintenanceStore) -> Result<BTreeMap<Id, Vec<Id>>, StoreError> {
    let mut map = BTreeMap::new();
    let files = store
        .repo
        .stream_files::<IndexFile>()
        .map_err(|e| StoreError::rustic("reading the index", &e))?;
    for file in files {
        let (id, index) = file.map_err(|e| StoreError::rustic("reading the index", &e))?;
        let packs = index
            .packs
            .iter()
            .chain(&index.packs_to_delete)
            .map(|p| *p.id)
            .collect();
        _ = map.insert(*id, packs);
    }
    Ok(map)
}
