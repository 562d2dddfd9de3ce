//! The parts of a forge repository besides its code: the wiki (a second git part), LFS objects
//! and the metadata export. Each part that fails is reported on its own; the snapshot still
//! stores everything that worked.

use std::path::Path;
use std::time::{Duration, Instant};

use repovault_forge::{ExportOptions, ForgeError, MetaOutcome, MetaState};
use repovault_git::{lfs_verify, FailureKind, GitAuth, Mirror, RemoteUrl};
use sha2::{Digest, Sha256};

use super::cache::{cache_err, remove_dir_if_exists, write_atomic, CacheDirs};
use super::meta::{stable_json, write_if_changed, FileSink, Manifest};
use super::Failure;
use crate::plan::{ForgeItem, ForgeJob};
use crate::report::{PartReport, RepoError};

/// Git credentials for a forge job, from the forge's current token.
pub(crate) fn git_auth(fj: &ForgeJob) -> Result<GitAuth, RepoError> {
    let token = fj
        .runtime
        .block_on(fj.forge.git_token(fj.item.owner()))
        .map_err(|e| forge_error(&e))?;
    Ok(GitAuth::Forge {
        username: token
            .as_ref()
            .map_or_else(|| "git".to_owned(), |t| t.username.clone()),
        token: token.map(|t| t.token),
        ca_bundle: fj.ca_bundle.clone(),
    })
}

pub(crate) fn forge_error(e: &repovault_forge::ForgeError) -> RepoError {
    RepoError {
        kind: crate::plan::kind_name(e),
        message: e.to_string(),
        retryable: e.is_retryable(),
    }
}

fn failure_error(f: &Failure) -> RepoError {
    f.to_error()
}

/// The wiki: a second mirror into `snap/wiki/`. A wiki without pages has no repository; that
/// is not an error.
pub(crate) fn wiki(
    dirs: &CacheDirs,
    fj: &ForgeJob,
    auth: &GitAuth,
    timeout: Duration,
    chain: &super::git::ChainOptions,
) -> Option<PartReport> {
    let ForgeItem::Repo(repo) = &fj.item else {
        return None;
    };
    if !fj.parts.wiki || !repo.has_wiki {
        return match remove_dir_if_exists(&dirs.wiki.dir) {
            Ok(()) => None,
            Err(e) => Some(PartReport::failed("wiki", failure_error(&e))),
        };
    }
    let url = match RemoteUrl::parse(&repo.wiki_url()) {
        Ok(u) => u,
        Err(e) => {
            return Some(PartReport::failed(
                "wiki",
                RepoError {
                    kind: "invalid".into(),
                    message: e.to_string(),
                    retryable: false,
                },
            ))
        }
    };
    let started = Instant::now();
    // `snap` is already marked dirty for forge jobs (see `run_one`).
    match dirs.wiki.sync(&url, auth, Some(timeout), chain, &|| Ok(())) {
        Ok(out) => Some(
            PartReport::ok("wiki")
                .detail("refs", out.refs as u64)
                .detail("new_objects", out.new_objects)
                .detail("changed", u64::from(out.changed))
                .timed(started),
        ),
        Err(Failure::Git(g)) if g.kind() == FailureKind::NotFound => {
            // No wiki pages (GitHub creates the repository with the first page).
            let _ = remove_dir_if_exists(&dirs.wiki.dir);
            let _ = remove_dir_if_exists(&dirs.wiki.mirror);
            None
        }
        Err(e) => Some(PartReport::failed("wiki", failure_error(&e))),
    }
}

/// LFS objects referenced by any ref, fetched with git-lfs into the mirror, verified by SHA-256
/// and placed in `snap/lfs/objects/<oid>`. Skipped when the refs are those of the last
/// successful LFS fetch.
pub(crate) fn lfs(
    dirs: &CacheDirs,
    fj: &ForgeJob,
    url: &RemoteUrl,
    auth: &GitAuth,
    timeout: Duration,
) -> Option<PartReport> {
    if !fj.parts.lfs || !matches!(fj.item, ForgeItem::Repo(_)) {
        return match remove_dir_if_exists(&dirs.lfs) {
            Ok(()) => None,
            Err(e) => Some(PartReport::failed("lfs", failure_error(&e))),
        };
    }
    let started = Instant::now();
    match lfs_inner(dirs, url, auth, timeout) {
        Ok((objects, added)) => Some(
            PartReport::ok("lfs")
                .detail("objects", objects)
                .detail("added", added)
                .timed(started),
        ),
        Err(e) => Some(PartReport::failed("lfs", e).timed(started)),
    }
}

fn lfs_inner(
    dirs: &CacheDirs,
    url: &RemoteUrl,
    auth: &GitAuth,
    timeout: Duration,
) -> Result<(u64, u64), RepoError> {
    let err = |f: Failure| f.to_error();
    let refs = std::fs::read(dirs.git.refs_path()).unwrap_or_default();
    let refs_hash = hex::encode(Sha256::digest(&refs));
    let marker = dirs.root.join("lfs-fetched");
    let snap_objects = dirs.lfs.join("objects");
    let mirror = Mirror::open_or_init(&dirs.git.mirror).map_err(|e| err(e.into()))?;
    let stored = list_dir(&snap_objects);
    if std::fs::read_to_string(&marker).ok().as_deref() == Some(refs_hash.as_str()) {
        return Ok((stored.len() as u64, 0));
    }
    // A rebuilt cache has no LFS objects: give git-lfs the stored ones so it fetches only
    // what is new.
    for oid in &stored {
        if let Some(dest) = mirror.lfs_object_path(oid) {
            if !dest.exists() {
                if let Some(dir) = dest.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| err(cache_err(dir, e)))?;
                }
                let _ = std::fs::hard_link(snap_objects.join(oid), &dest)
                    .or_else(|_| std::fs::copy(snap_objects.join(oid), &dest).map(|_| ()));
            }
        }
    }
    mirror
        .lfs_fetch_all(url, auth, Some(timeout))
        .map_err(|e| err(e.into()))?;
    let mut added = 0;
    let mut total = 0;
    for (oid, path) in mirror.lfs_objects().map_err(|e| err(e.into()))? {
        total += 1;
        let dest = snap_objects.join(&oid);
        if dest.is_file() {
            continue;
        }
        if !lfs_verify(&path, &oid).map_err(|e| err(e.into()))? {
            let _ = std::fs::remove_file(&path);
            return Err(RepoError {
                kind: "corrupt".into(),
                message: format!("LFS object {oid} does not match its SHA-256; removed it, the next run fetches it again"),
                retryable: true,
            });
        }
        std::fs::create_dir_all(&snap_objects).map_err(|e| err(cache_err(&snap_objects, e)))?;
        std::fs::hard_link(&path, &dest)
            .or_else(|_| std::fs::copy(&path, &dest).map(|_| ()))
            .map_err(|e| err(cache_err(&dest, e)))?;
        added += 1;
    }
    write_atomic(&marker, refs_hash.as_bytes()).map_err(err)?;
    Ok((total.max(stored.len() as u64), added))
}

fn list_dir(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| repovault_git::is_oid(n))
        .collect();
    names.sort();
    names
}

/// The metadata export of one repository, running on the forge runtime while the worker thread
/// does the git parts: network latency of the API overlaps with git and disk work.
pub(crate) enum MetaTask {
    /// Nothing to wait for (a gist, or no metadata captured); carries its result.
    Done(Option<PartReport>),
    Running {
        handle: tokio::task::JoinHandle<(MetaState, Result<MetaOutcome, ForgeError>)>,
        started: Instant,
    },
}

/// Starts the export into `snap/meta/` (or writes `gist.json` for a gist). The manifest
/// (cursors, ETags) is written by [`finish_meta`] only after a complete export, so a failed
/// export is redone next time.
pub(crate) fn start_meta(dirs: &CacheDirs, fj: &ForgeJob) -> MetaTask {
    let started = Instant::now();
    match &fj.item {
        ForgeItem::Gist(g) => {
            let path = dirs.meta.join("gist.json");
            MetaTask::Done(match write_if_changed(&path, &stable_json(&g.raw)) {
                Ok(_) => None,
                Err(e) => Some(PartReport::failed("meta", failure_error(&e))),
            })
        }
        ForgeItem::Repo(repo) => {
            if !fj.parts.meta.any() {
                return MetaTask::Done(match remove_dir_if_exists(&dirs.meta) {
                    Ok(()) => None,
                    Err(e) => Some(PartReport::failed("meta", failure_error(&e))),
                });
            }
            let mut state = Manifest::read(&dirs.meta)
                .map(|m| m.state())
                .unwrap_or_default();
            let mut sink = FileSink::new(dirs.meta.clone());
            let options = ExportOptions {
                capture: fj.parts.meta,
                full_pass_interval: fj.full_pass_interval,
            };
            let forge = fj.forge.clone();
            let repo = repo.clone();
            let handle = fj.runtime.spawn(async move {
                let result = forge.export(&repo, &options, &mut state, &mut sink).await;
                (state, result)
            });
            MetaTask::Running { handle, started }
        }
    }
}

/// Waits for the export and records its manifest.
pub(crate) fn finish_meta(dirs: &CacheDirs, fj: &ForgeJob, task: MetaTask) -> Option<PartReport> {
    let (handle, started) = match task {
        MetaTask::Done(part) => return part,
        MetaTask::Running { handle, started } => (handle, started),
    };
    let (state, result) = match fj.runtime.block_on(handle) {
        Ok(r) => r,
        Err(e) => {
            return Some(PartReport::failed(
                "meta",
                RepoError {
                    kind: "other".into(),
                    message: format!("the metadata export stopped: {e}"),
                    retryable: true,
                },
            ))
        }
    };
    let part = match result {
        Ok(outcome) => {
            if let Err(e) = Manifest::new(state, &outcome).write(&dirs.meta) {
                return Some(PartReport::failed("meta", failure_error(&e)));
            }
            let mut part = PartReport::ok("meta")
                .detail("updated", outcome.updated)
                .detail("assets_downloaded", outcome.assets_downloaded)
                .detail("full_pass", u64::from(outcome.full_pass));
            for (k, v) in &outcome.counts {
                part = part.detail(k, *v);
            }
            part
        }
        Err(e) => PartReport::failed("meta", forge_error(&e)),
    };
    Some(part.timed(started))
}
