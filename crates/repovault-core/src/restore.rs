//! The restore pipeline: pick a snapshot, rebuild the repository from its bundle chain and
//! `refs.txt`, and prove the result (refs equal `refs.txt`, `git fsck --full` passes).
//!
//! Everything is written below the target directory, including the scratch copy of the chain,
//! which is removed before returning.

use std::path::{Path, PathBuf};

use jiff::Timestamp;
use repovault_git::{convert_to_worktree, list_chain, rebuild, GitError, Head, RefsFile};
use repovault_store::{IndexedStore, SnapshotInfo, StoreError};
use serde::Serialize;

use crate::snapshots::RepoSnapshots;
use crate::RepoName;

#[derive(Debug, Clone)]
pub struct RestoreRequest {
    pub repo: RepoName,
    /// Needed only when the same `owner/name` was backed up from several hosts.
    pub host: Option<String>,
    pub snapshot: Option<String>,
    pub at: Option<Timestamp>,
    pub to: PathBuf,
    /// A working clone with HEAD checked out instead of a bare repository.
    pub checkout: bool,
    /// Write into a non-empty directory.
    pub force: bool,
    /// Also restore the wiki (a bare repository) here.
    pub wiki_to: Option<PathBuf>,
    /// Also restore the forge metadata files (`meta/`) here.
    pub meta_to: Option<PathBuf>,
    /// Leave out the LFS objects (by default they are placed in the restored repository's
    /// `lfs/objects/`, where git-lfs finds them).
    pub skip_lfs: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct RestoreReport {
    pub repo: String,
    pub host: String,
    pub snapshot: String,
    pub snapshot_time: Timestamp,
    pub target: PathBuf,
    pub bare: bool,
    pub refs: usize,
    pub head: Option<String>,
    pub chain_length: usize,
    pub fsck: &'static str,
    /// LFS objects placed in the repository (verified by SHA-256).
    pub lfs_objects: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wiki: Option<PartRestore>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<PartRestore>,
}

/// Where an extra part went.
#[derive(Debug, Clone, Serialize)]
pub struct PartRestore {
    pub target: PathBuf,
    /// Refs of the wiki, or files of the metadata.
    pub items: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("no snapshot of {0} in the store")]
    NoSnapshots(String),
    #[error("{repo} was backed up from several hosts ({hosts}); choose one with --host")]
    AmbiguousHost { repo: String, hosts: String },
    #[error("no snapshot of {repo} was taken at or before {at}")]
    NothingBefore { repo: String, at: Timestamp },
    #[error("snapshot {snapshot} is not a snapshot of {repo}")]
    NotThisRepo { snapshot: String, repo: String },
    #[error("{0} is not empty; choose an empty or new directory, or pass --force")]
    TargetNotEmpty(PathBuf),
    #[error("the restored repository does not match the snapshot: {0}")]
    Mismatch(String),
    #[error("snapshot {snapshot} holds no {part} of this repository")]
    NoPart {
        snapshot: String,
        part: &'static str,
    },
    #[error("{operation}: {source}")]
    Io {
        operation: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Git(#[from] GitError),
}

fn io(operation: impl Into<String>) -> impl FnOnce(std::io::Error) -> RestoreError {
    let operation = operation.into();
    move |source| RestoreError::Io { operation, source }
}

/// Chooses the snapshot a request asks for among all snapshots of the store.
pub fn select<'a>(
    all: &'a [SnapshotInfo],
    req: &RestoreRequest,
) -> Result<&'a SnapshotInfo, RestoreError> {
    let repo = req.repo.to_string();
    let tag = format!("repo:{repo}");
    let mut hosts: Vec<&str> = all
        .iter()
        .filter(|s| s.tags.contains(&tag))
        .map(|s| s.host.as_str())
        .collect();
    hosts.sort_unstable();
    hosts.dedup();
    let host = match (&req.host, hosts.as_slice()) {
        (Some(h), _) => h.as_str(),
        (None, []) => return Err(RestoreError::NoSnapshots(repo)),
        (None, [one]) => one,
        (None, many) => {
            return Err(RestoreError::AmbiguousHost {
                repo,
                hosts: many.join(", "),
            })
        }
    };
    let snaps = RepoSnapshots::of(all, host, &req.repo);
    if let Some(id) = &req.snapshot {
        let mut found = all.iter().filter(|s| s.id.starts_with(id.as_str()));
        return match (found.next(), found.next()) {
            (Some(s), None) if snaps.iter().any(|x| x.id == s.id) => Ok(s),
            (Some(_), None) => Err(RestoreError::NotThisRepo {
                snapshot: id.clone(),
                repo,
            }),
            (Some(_), Some(_)) => Err(StoreError::SnapshotAmbiguous(id.clone()).into()),
            (None, _) => Err(StoreError::SnapshotNotFound(id.clone()).into()),
        };
    }
    match req.at {
        Some(at) => snaps.at(at).ok_or(RestoreError::NothingBefore { repo, at }),
        None => snaps.latest().ok_or(RestoreError::NoSnapshots(repo)),
    }
}

pub fn restore(store: &IndexedStore, req: &RestoreRequest) -> Result<RestoreReport, RestoreError> {
    let all = store.snapshots()?;
    let snap = select(&all, req)?.clone();
    prepare_target(&req.to, req.force)?;
    let git_dir = if req.checkout {
        req.to.join(".git")
    } else {
        req.to.clone()
    };
    // Scratch space inside the target, so nothing is written outside it.
    let scratch = req
        .to
        .join(format!(".repovault-restore-{}", std::process::id()));
    let result = restore_into(store, &snap, req, &git_dir, &scratch).and_then(|(r, c)| {
        let lfs = if req.skip_lfs {
            0
        } else {
            place_lfs(store, &snap, req, &git_dir, &scratch)?
        };
        Ok((r, c, lfs))
    });
    let _ = std::fs::remove_dir_all(&scratch);
    let (refs, chain_length, lfs_objects) = result?;
    if req.checkout {
        convert_to_worktree(&req.to)?;
    }
    let mirror = repovault_git::Mirror::open_or_init(&git_dir)?;
    verify_refs(&mirror, &refs)?;
    mirror.fsck()?;
    let wiki = match &req.wiki_to {
        Some(to) => Some(restore_wiki(store, &snap, req, to)?),
        None => None,
    };
    let meta = match &req.meta_to {
        Some(to) => Some(restore_meta(store, &snap, req, to)?),
        None => None,
    };
    Ok(RestoreReport {
        repo: req.repo.to_string(),
        host: snap.host.clone(),
        snapshot: snap.id.clone(),
        snapshot_time: snap.time,
        target: req.to.clone(),
        bare: !req.checkout,
        refs: refs.refs.len(),
        head: refs.head.as_ref().map(|h| match h {
            Head::Symbolic(t) => t.clone(),
            Head::Detached(o) => o.clone(),
        }),
        chain_length,
        fsck: "ok",
        lfs_objects,
        wiki,
        meta,
    })
}

fn part_path(req: &RestoreRequest, part: &str) -> String {
    format!("/{}/{}/{part}", req.repo.owner(), req.repo.name())
}

/// Restores a part's directory, telling "not in this snapshot" apart from other errors.
fn restore_part(
    store: &IndexedStore,
    snap: &SnapshotInfo,
    path: &str,
    dest: &Path,
) -> Result<bool, RestoreError> {
    match store.restore_dir(&snap.id, path, dest) {
        Ok(_) => Ok(true),
        Err(StoreError::PathNotInSnapshot { .. }) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Puts the snapshot's LFS objects where git-lfs looks for them (`<git dir>/lfs/objects/aa/bb/
/// <oid>`), each checked against its SHA-256 name.
fn place_lfs(
    store: &IndexedStore,
    snap: &SnapshotInfo,
    req: &RestoreRequest,
    git_dir: &Path,
    scratch: &Path,
) -> Result<usize, RestoreError> {
    let dir = scratch.join("lfs");
    if !restore_part(store, snap, &part_path(req, "lfs"), &dir)? {
        return Ok(0);
    }
    let mut placed = 0;
    let objects = dir.join("objects");
    let entries = match std::fs::read_dir(&objects) {
        Ok(e) => e,
        Err(_) => return Ok(0),
    };
    for entry in entries.flatten() {
        let oid = entry.file_name().to_string_lossy().into_owned();
        if !repovault_git::is_oid(&oid) {
            continue;
        }
        let src = entry.path();
        if !repovault_git::lfs_verify(&src, &oid)? {
            return Err(RestoreError::Mismatch(format!(
                "LFS object {oid} does not match its SHA-256"
            )));
        }
        let dest_dir = git_dir
            .join("lfs/objects")
            .join(&oid[0..2])
            .join(&oid[2..4]);
        std::fs::create_dir_all(&dest_dir)
            .map_err(io(format!("creating {}", dest_dir.display())))?;
        std::fs::rename(&src, dest_dir.join(&oid))
            .map_err(io(format!("placing LFS object {oid}")))?;
        placed += 1;
    }
    Ok(placed)
}

fn restore_wiki(
    store: &IndexedStore,
    snap: &SnapshotInfo,
    req: &RestoreRequest,
    to: &Path,
) -> Result<PartRestore, RestoreError> {
    prepare_target(to, req.force)?;
    let scratch = to.join(format!(".repovault-restore-{}", std::process::id()));
    let result = (|| {
        if !restore_part(store, snap, &part_path(req, "wiki"), &scratch)? {
            return Err(RestoreError::NoPart {
                snapshot: snap.id.clone(),
                part: "wiki",
            });
        }
        let refs_path = scratch.join("refs.txt");
        let refs = RefsFile::parse(
            &std::fs::read_to_string(&refs_path)
                .map_err(io(format!("reading {}", refs_path.display())))?,
        )?;
        rebuild(to, &list_chain(&scratch.join("chain"))?, &refs)?;
        Ok(refs)
    })();
    let _ = std::fs::remove_dir_all(&scratch);
    let refs = result?;
    let mirror = repovault_git::Mirror::open_or_init(to)?;
    verify_refs(&mirror, &refs)?;
    mirror.fsck()?;
    Ok(PartRestore {
        target: to.to_owned(),
        items: refs.refs.len(),
    })
}

fn restore_meta(
    store: &IndexedStore,
    snap: &SnapshotInfo,
    req: &RestoreRequest,
    to: &Path,
) -> Result<PartRestore, RestoreError> {
    prepare_target(to, req.force)?;
    if !restore_part(store, snap, &part_path(req, "meta"), to)? {
        return Err(RestoreError::NoPart {
            snapshot: snap.id.clone(),
            part: "metadata",
        });
    }
    Ok(PartRestore {
        target: to.to_owned(),
        items: count_files(to),
    })
}

fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| {
            let p = e.path();
            if p.is_dir() {
                count_files(&p)
            } else {
                1
            }
        })
        .sum()
}

fn restore_into(
    store: &IndexedStore,
    snap: &SnapshotInfo,
    req: &RestoreRequest,
    git_dir: &Path,
    scratch: &Path,
) -> Result<(RefsFile, usize), RestoreError> {
    let path = format!("/{}/{}/git", req.repo.owner(), req.repo.name());
    store.restore_dir(&snap.id, &path, scratch)?;
    rebuild_part(scratch, git_dir)
}

/// Makes `git_dir` the repository a restored part directory (`chain/` + `refs.txt`) describes;
/// returns its `refs.txt` and the chain's length.
pub(crate) fn rebuild_part(part: &Path, git_dir: &Path) -> Result<(RefsFile, usize), RestoreError> {
    let refs_path = part.join("refs.txt");
    let refs = RefsFile::parse(
        &std::fs::read_to_string(&refs_path)
            .map_err(io(format!("reading {}", refs_path.display())))?,
    )?;
    let chain = list_chain(&part.join("chain"))?;
    rebuild(git_dir, &chain, &refs)?;
    Ok((refs, chain.len()))
}

fn prepare_target(to: &Path, force: bool) -> Result<(), RestoreError> {
    match std::fs::read_dir(to) {
        Ok(mut entries) => {
            if entries.next().is_some() && !force {
                return Err(RestoreError::TargetNotEmpty(to.to_owned()));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(to).map_err(io(format!("creating {}", to.display())))
        }
        Err(e) => Err(io(format!("reading {}", to.display()))(e)),
    }
}

/// The restored refs and HEAD must be exactly those of `refs.txt`.
pub(crate) fn verify_refs(
    mirror: &repovault_git::Mirror,
    want: &RefsFile,
) -> Result<(), RestoreError> {
    let have = mirror.local_refs()?;
    if have.refs != want.refs {
        let differ: Vec<&str> = want
            .refs
            .keys()
            .filter(|k| have.refs.get(*k) != want.refs.get(*k))
            .map(String::as_str)
            .collect();
        let extra: Vec<&str> = have
            .refs
            .keys()
            .filter(|k| !want.refs.contains_key(*k))
            .map(String::as_str)
            .collect();
        return Err(RestoreError::Mismatch(format!(
            "{} ref(s) missing or different{}, {} unexpected{}",
            differ.len(),
            some_names(&differ),
            extra.len(),
            some_names(&extra)
        )));
    }
    if want.head.is_some() && have.head != want.head {
        return Err(RestoreError::Mismatch(format!(
            "HEAD is {:?}, the snapshot says {:?}",
            have.head, want.head
        )));
    }
    Ok(())
}

/// ` (a, b, c and 2 more)` for messages; empty for no names.
fn some_names(names: &[&str]) -> String {
    const SHOWN: usize = 5;
    match names.len() {
        0 => String::new(),
        n if n <= SHOWN => format!(" ({})", names.join(", ")),
        n => format!(" ({} and {} more)", names[..SHOWN].join(", "), n - SHOWN),
    }
}
