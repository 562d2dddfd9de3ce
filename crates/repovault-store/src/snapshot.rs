//! Writing, listing and restoring snapshots, in our own types.

use std::path::{Path, PathBuf};

use jiff::Timestamp;
use rustic_core::repofile::{DeleteOption, SnapshotFile};
use rustic_core::{
    BackupOptions, IndexedFull, IndexedIds, LocalDestination, LsOptions, Open, ParentOptions,
    PathList, Repository, RestoreOptions, SnapshotOptions,
};
use serde::Serialize;

use crate::StoreError;

/// What to store as a new snapshot.
#[derive(Debug, Clone)]
pub struct NewSnapshot {
    /// A local directory whose contents become the snapshot's tree.
    pub source_dir: PathBuf,
    /// The path the contents appear under inside the snapshot, e.g. `/acme/app`.
    pub as_path: String,
    pub host: String,
    /// Tags; each must be free of commas (restic joins tag lists with them).
    pub tags: Vec<String>,
    /// The snapshot whose files are compared by size and mtime to skip re-reading unchanged
    /// files. `None` reads everything.
    pub parent: Option<String>,
}

/// A snapshot as repovault shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SnapshotInfo {
    pub id: String,
    pub time: Timestamp,
    pub host: String,
    pub tags: Vec<String>,
    pub paths: Vec<String>,
    pub parent: Option<String>,
    pub summary: Option<SnapshotSummary>,
    /// Kept regardless of retention: forever, or until a time (after which it is deleted by
    /// the next `forget`). Stored in the snapshot file as rustic's `delete` field.
    pub protection: Option<Protection>,
    /// The id this snapshot had before its protection was changed (restic's `original`).
    pub original: Option<String>,
}

/// A snapshot's protection against retention.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Protection {
    /// Never deleted by `forget`.
    Forever,
    /// Kept until this time, deleted by the first `forget` after it.
    Until(Timestamp),
}

impl Protection {
    pub(crate) fn from_delete(d: &DeleteOption) -> Option<Self> {
        match d {
            DeleteOption::NotSet => None,
            DeleteOption::Never => Some(Self::Forever),
            DeleteOption::After(t) => Some(Self::Until(t.timestamp())),
        }
    }

    pub(crate) fn to_delete(p: Option<Self>) -> DeleteOption {
        match p {
            None => DeleteOption::NotSet,
            Some(Self::Forever) => DeleteOption::Never,
            Some(Self::Until(t)) => DeleteOption::After(t.to_zoned(jiff::tz::TimeZone::UTC)),
        }
    }
}

impl SnapshotInfo {
    pub fn short_id(&self) -> &str {
        self.id.get(..8).unwrap_or(&self.id)
    }

    /// The value of the first tag `key:value`.
    pub fn tag_value(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find_map(|t| t.strip_prefix(key).and_then(|r| r.strip_prefix(':')))
    }
}

/// What writing a snapshot cost.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, Default)]
pub struct SnapshotSummary {
    pub files: u64,
    pub files_new: u64,
    pub files_changed: u64,
    pub bytes_processed: u64,
    /// Bytes of new data blobs and trees before compression.
    pub data_added: u64,
    /// Bytes actually added to the store (compressed, encrypted).
    pub data_added_packed: u64,
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, Default)]
pub struct RestoreStats {
    pub files: u64,
    pub bytes: u64,
}

pub(crate) fn info(snap: &SnapshotFile) -> SnapshotInfo {
    SnapshotInfo {
        id: snap.id.to_hex().as_str().to_owned(),
        time: snap.time.timestamp(),
        host: snap.hostname.clone(),
        tags: snap.tags.iter().map(ToString::to_string).collect(),
        paths: snap.paths.iter().map(ToString::to_string).collect(),
        parent: snap.parent.map(|p| p.to_hex().as_str().to_owned()),
        summary: snap.summary.as_ref().map(|s| SnapshotSummary {
            files: s.total_files_processed,
            files_new: s.files_new,
            files_changed: s.files_changed,
            bytes_processed: s.total_bytes_processed,
            data_added: s.data_added,
            data_added_packed: s.data_added_packed,
        }),
        protection: Protection::from_delete(&snap.delete),
        original: snap.original.map(|o| o.to_hex().as_str().to_owned()),
    }
}

pub(crate) fn list<S: Open>(repo: &Repository<S>) -> Result<Vec<SnapshotInfo>, StoreError> {
    let mut snaps = repo
        .get_all_snapshots()
        .map_err(|e| StoreError::rustic("listing snapshots", &e))?;
    snaps.sort_by(|a, b| a.time.cmp(&b.time).then_with(|| a.id.cmp(&b.id)));
    Ok(snaps.iter().map(info).collect())
}

pub(crate) fn backup_dir<S: IndexedIds>(
    repo: &Repository<S>,
    new: &NewSnapshot,
) -> Result<SnapshotInfo, StoreError> {
    let mut snap_opts = SnapshotOptions::default().host(new.host.clone());
    for tag in &new.tags {
        if tag.contains(',') {
            return Err(StoreError::rustic_input(format!(
                "tag {tag:?} contains a comma"
            )));
        }
        snap_opts = snap_opts
            .add_tags(tag)
            .map_err(|e| StoreError::rustic("tagging the snapshot", &e))?;
    }
    let snap = SnapshotFile::from_options(&snap_opts)
        .map_err(|e| StoreError::rustic("preparing the snapshot", &e))?;
    // An explicit parent (the repository's previous snapshot) instead of rustic's guess by
    // host+paths; ctime and inode are ignored because a rebuilt cache has new ones for files
    // whose content is unchanged.
    let parent_opts = match &new.parent {
        Some(id) => ParentOptions::default()
            .parents(vec![id.clone()])
            .ignore_ctime(true)
            .ignore_inode(true),
        None => ParentOptions::default().force(true),
    };
    let opts = BackupOptions::default()
        .as_path(PathBuf::from(&new.as_path))
        .parent_opts(parent_opts);
    let source: PathList = std::iter::once(new.source_dir.clone()).collect();
    let snap = repo
        .backup(&opts, &source, snap)
        .map_err(|e| StoreError::rustic("writing the snapshot", &e))?;
    Ok(info(&snap))
}

pub(crate) fn restore_dir<S: IndexedFull>(
    repo: &Repository<S>,
    snapshot_id: &str,
    path: &str,
    dest: &Path,
) -> Result<RestoreStats, StoreError> {
    let snap = find(repo, snapshot_id)?;
    let node = repo.node_from_snapshot_and_path(&snap, path).map_err(|_| {
        StoreError::PathNotInSnapshot {
            snapshot: snapshot_id.to_owned(),
            path: path.to_owned(),
        }
    })?;
    std::fs::create_dir_all(dest)
        .map_err(|e| StoreError::io(format!("creating {}", dest.display()), e))?;
    let dest_str = format!("{}/", dest.display());
    let dest = LocalDestination::new(&dest_str, true, false)
        .map_err(|e| StoreError::rustic("preparing the restore target", &e))?;
    let ls = repo
        .ls(&node, &LsOptions::default())
        .map_err(|e| StoreError::rustic("listing the snapshot", &e))?;
    let opts = RestoreOptions::default().no_ownership(true);
    let plan = repo
        .prepare_restore(&opts, ls.clone(), &dest, false)
        .map_err(|e| StoreError::rustic("planning the restore", &e))?;
    let stats = RestoreStats {
        files: plan.stats.files.restore,
        bytes: plan.restore_size,
    };
    repo.restore(plan, &opts, ls, &dest)
        .map_err(|e| StoreError::rustic("restoring", &e))?;
    Ok(stats)
}

pub(crate) fn find<S: Open>(repo: &Repository<S>, id: &str) -> Result<SnapshotFile, StoreError> {
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(StoreError::SnapshotNotFound(id.to_owned()));
    }
    let all = repo
        .get_all_snapshots()
        .map_err(|e| StoreError::rustic("listing snapshots", &e))?;
    let mut matching = all
        .into_iter()
        .filter(|s| s.id.to_hex().as_str().starts_with(id));
    match (matching.next(), matching.next()) {
        (Some(s), None) => Ok(s),
        (Some(_), Some(_)) => Err(StoreError::SnapshotAmbiguous(id.to_owned())),
        (None, _) => Err(StoreError::SnapshotNotFound(id.to_owned())),
    }
}
