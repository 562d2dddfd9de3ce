//! Changing what the store keeps: deleting snapshots (forget), changing their protection, and
//! pruning unused data (`prune.rs`). Only reachable with a held lease (see `Store::maintenance`).

use std::sync::Arc;

use rustic_core::repofile::SnapshotId;
use rustic_core::{FileType, OpenStatus, Repository};
use serde::Serialize;

use crate::guard::{Journal, KeptLocked};
use crate::snapshot::{self, Protection};
use crate::{PruneReport, PruneSettings, SnapshotInfo, StoreError, StoreLocation};

/// A store opened for maintenance under a lease.
pub struct MaintenanceStore {
    pub(crate) repo: Repository<OpenStatus>,
    pub(crate) location: StoreLocation,
    pub(crate) journal: Arc<Journal>,
}

/// What `forget` did.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, Default)]
pub struct ForgetOutcome {
    /// Snapshot ids deleted.
    pub removed: Vec<String>,
    /// Snapshots the store would not delete yet (Object Lock).
    pub kept_locked: Vec<KeptLocked>,
}

/// A snapshot whose protection was changed: it is written anew (snapshot files are named by
/// their content), and the old file removed.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Protected {
    pub old_id: String,
    pub snapshot: SnapshotInfo,
    /// The old file could not be removed (Object Lock); both copies exist until it can be.
    pub old_kept_locked: Option<KeptLocked>,
}

impl MaintenanceStore {
    pub(crate) fn new(
        repo: Repository<OpenStatus>,
        location: StoreLocation,
        journal: Arc<Journal>,
    ) -> Self {
        Self {
            repo,
            location,
            journal,
        }
    }

    pub fn location(&self) -> &StoreLocation {
        &self.location
    }

    /// All snapshots, oldest first.
    pub fn snapshots(&self) -> Result<Vec<SnapshotInfo>, StoreError> {
        snapshot::list(&self.repo)
    }

    /// Deletes the snapshots with these (full) ids. Snapshots under Object Lock are kept and
    /// reported; the data they use stays until they can go.
    pub fn forget(&self, ids: &[String]) -> Result<ForgetOutcome, StoreError> {
        if ids.is_empty() {
            return Ok(ForgetOutcome::default());
        }
        let ids = ids
            .iter()
            .map(|id| {
                id.parse::<SnapshotId>()
                    .map_err(|_| StoreError::SnapshotNotFound(id.clone()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.journal.clear();
        self.repo
            .delete_snapshots(&ids)
            .map_err(|e| StoreError::rustic("deleting snapshots", &e))?;
        let mut removed: Vec<String> = self
            .journal
            .removed()
            .into_iter()
            .filter(|r| r.kind == "snapshot")
            .map(|r| r.id)
            .collect();
        removed.sort();
        Ok(ForgetOutcome {
            removed,
            kept_locked: self.journal.kept(),
        })
    }

    /// Sets (or with `None` clears) the protection of snapshot `id` (a unique prefix is
    /// enough). The snapshot gets a new id; `original` keeps the first one.
    pub fn protect(
        &self,
        id: &str,
        protection: Option<Protection>,
    ) -> Result<Protected, StoreError> {
        let mut snap = snapshot::find(&self.repo, id)?;
        let old = snap.id;
        let wanted = Protection::to_delete(protection);
        if snap.delete == wanted {
            return Ok(Protected {
                old_id: old.to_hex().as_str().to_owned(),
                snapshot: snapshot::info(&snap),
                old_kept_locked: None,
            });
        }
        snap.delete = wanted;
        snap.original.get_or_insert(old);
        self.journal.clear();
        self.repo
            .save_snapshots(vec![snap.clone()])
            .map_err(|e| StoreError::rustic("writing the snapshot", &e))?;
        let new_id = self
            .journal
            .written(FileType::Snapshot)
            .first()
            .copied()
            .ok_or_else(|| StoreError::Backend {
                operation: "writing the snapshot".into(),
                message: "no snapshot file was written".into(),
                retryable: false,
            })?;
        // Write first, then remove: a crash in between leaves both copies, never none.
        self.repo
            .delete_snapshots(&[old])
            .map_err(|e| StoreError::rustic("removing the old snapshot file", &e))?;
        snap.id = new_id.into();
        Ok(Protected {
            old_id: old.to_hex().as_str().to_owned(),
            snapshot: snapshot::info(&snap),
            old_kept_locked: self.journal.kept().into_iter().next(),
        })
    }

    /// Two-phase prune; see [`PruneSettings`].
    pub fn prune(&self, settings: &PruneSettings) -> Result<PruneReport, StoreError> {
        crate::prune::prune(self, settings)
    }
}
