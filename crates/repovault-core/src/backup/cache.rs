//! The per-repository cache: where its files live, checking it against the store, and the small
//! file helpers the pipeline writes it with.
//!
//! ```text
//! <cache>/<host>/<owner>/<name>/
//!   mirror.git/     bare mirror of the code (and, for forge sources, lfs/objects/)
//!   wiki.git/       bare mirror of the wiki, when it has one
//!   snap/           the staging tree; a snapshot stores exactly this directory
//!     git/chain/ git/refs.txt  wiki/chain/ wiki/refs.txt  lfs/objects/<oid>  meta/…
//!   lfs-fetched     hash of the refs.txt whose LFS objects are all in snap/lfs
//!   snapshot-id     the store snapshot that snap/ equals
//!   dirty           present while snap/ is being changed and not yet stored
//!   work/           scratch files (the next bundle) outside snap/
//!   lock            held while a backup of this repository runs
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use repovault_store::{IndexedStore, SnapshotInfo};

use super::git::GitPart;
use super::Failure;
use crate::plan::RepoJob;

/// Cache paths of one repository.
pub(crate) struct CacheDirs {
    pub root: PathBuf,
    pub snap: PathBuf,
    pub marker: PathBuf,
    /// Exists from the first change to `snap` until the snapshot of it is stored: a run that
    /// finds it was interrupted, and `snap` may hold a half-made change.
    pub dirty: PathBuf,
    /// The repository's code.
    pub git: GitPart,
    /// The wiki, for forge repositories that have one.
    pub wiki: GitPart,
    /// `snap/lfs`: `objects/<oid>`.
    pub lfs: PathBuf,
    /// `snap/meta`: the forge metadata.
    pub meta: PathBuf,
}

impl CacheDirs {
    pub fn new(cache_dir: &Path, job: &RepoJob) -> Self {
        let root = cache_dir
            .join(path_safe_host(&job.host))
            .join(job.name.owner())
            .join(job.name.name());
        let snap = root.join("snap");
        Self {
            git: GitPart::new(
                root.join("mirror.git"),
                snap.join("git"),
                root.join("work").join("git"),
            ),
            wiki: GitPart::new(
                root.join("wiki.git"),
                snap.join("wiki"),
                root.join("work").join("wiki"),
            ),
            lfs: snap.join("lfs"),
            meta: snap.join("meta"),
            marker: root.join("snapshot-id"),
            dirty: root.join("dirty"),
            snap,
            root,
        }
    }

    /// Every git repository this cache mirrors.
    fn git_parts(&self) -> [&GitPart; 2] {
        [&self.git, &self.wiki]
    }

    /// Records that `snap` is about to change.
    pub fn mark_dirty(&self) -> Result<(), Failure> {
        std::fs::File::create(&self.dirty)
            .and_then(|f| f.sync_all())
            .map_err(|e| cache_err(&self.dirty, e))
    }

    /// Records that `snap` equals the stored snapshot `id`.
    pub fn mark_stored(&self, id: &str) -> Result<(), Failure> {
        write_atomic(&self.marker, id.as_bytes())?;
        match std::fs::remove_file(&self.dirty) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(cache_err(&self.dirty, e)),
        }
    }
}

/// Hosts carry ports and, from forges, anything at all; keep them to one safe path component.
pub(crate) fn path_safe_host(host: &str) -> String {
    let s: String = host
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s == "." || s == ".." {
        "_".into()
    } else {
        s
    }
}

/// Makes the cache match the repository's latest snapshot. Returns whether it had to be
/// rebuilt from the store.
///
/// The cache is trusted only when it records that snapshot's id and no interrupted change: a
/// crash after writing a bundle but before the snapshot, another machine backing up the same
/// repository, or a deleted cache all make it restore the staging tree from the store, and
/// rebuild each mirror that lacks objects the snapshot refers to.
pub(crate) fn ensure_cache(
    store: &IndexedStore,
    job: &RepoJob,
    previous: Option<&SnapshotInfo>,
    dirs: &CacheDirs,
) -> Result<bool, Failure> {
    let marker = std::fs::read_to_string(&dirs.marker).ok();
    let valid = !dirs.dirty.exists()
        && match previous {
            // A snapshot whose protection was changed has a new id and the backed-up one as
            // its `original`; its content is the same.
            Some(p) => {
                let recorded = marker.as_deref();
                (recorded == Some(p.id.as_str())
                    || (recorded.is_some() && recorded == p.original.as_deref()))
                    && (dirs.git.refs_path().is_file()
                        || (job.forge.is_some() && dirs.snap.is_dir()))
            }
            None => marker.is_none(),
        };
    if valid {
        return Ok(false);
    }
    remove_dir_if_exists(&dirs.snap)?;
    let _ = std::fs::remove_file(&dirs.marker);
    let _ = std::fs::remove_file(dirs.root.join("lfs-fetched"));
    let Some(prev) = previous else {
        // A new store, or a crash before the first snapshot: start afresh.
        let _ = std::fs::remove_file(&dirs.dirty);
        return Ok(false);
    };
    let path = format!("/{}/{}", job.name.owner(), job.name.name());
    store.restore_dir(&prev.id, &path, &dirs.snap)?;
    for part in dirs.git_parts() {
        part.rebuild_mirror_if_incomplete()?;
    }
    dirs.mark_stored(&prev.id)?;
    Ok(true)
}

/// The store skips files whose size and mtime equal the parent snapshot's. A rewritten file of
/// the same size on a file system with coarse timestamps could keep its old mtime and be stored
/// stale, so its mtime is pushed past the old one.
pub(crate) fn advance_mtime(
    path: &Path,
    old: Option<std::time::SystemTime>,
) -> Result<(), Failure> {
    let Some(old) = old else { return Ok(()) };
    let now = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .map_err(|e| cache_err(path, e))?;
    if now <= old {
        let file = std::fs::File::options()
            .write(true)
            .open(path)
            .map_err(|e| cache_err(path, e))?;
        file.set_modified(old + Duration::from_secs(1))
            .map_err(|e| cache_err(path, e))?;
    }
    Ok(())
}

pub(crate) fn lock_cache(dir: &Path) -> Result<std::fs::File, Failure> {
    let path = dir.join("lock");
    let file = std::fs::File::create(&path).map_err(|e| cache_err(&path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(cache_err(
            dir,
            "another repovault process is backing up this repository with the same cache",
        )),
        Err(std::fs::TryLockError::Error(e)) => Err(cache_err(&path, e)),
    }
}

pub(crate) fn private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

pub(crate) fn remove_dir_if_exists(dir: &Path) -> Result<(), Failure> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(cache_err(dir, e)),
    }
}

pub(crate) fn write_atomic(path: &Path, data: &[u8]) -> Result<(), Failure> {
    let parent = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| cache_err(parent, e))?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, data).map_err(|e| cache_err(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| cache_err(path, e))
}

pub(crate) fn cache_err(path: &Path, e: impl std::fmt::Display) -> Failure {
    Failure::Cache {
        path: path.to_owned(),
        message: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::path_safe_host;

    #[test]
    fn hosts_become_one_path_component() {
        assert_eq!(path_safe_host("127.0.0.1:8080"), "127.0.0.1_8080");
        assert_eq!(path_safe_host(".."), "_");
        assert_eq!(path_safe_host("a/b"), "a_b");
    }
}
