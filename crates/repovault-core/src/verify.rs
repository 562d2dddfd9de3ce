//! Restore tests: bring repositories back from their snapshots into temporary directories and
//! prove the result, so a store is known to be good before it is needed.
//!
//! For each chosen snapshot the whole `<owner>/<name>/` tree is restored, then:
//! - every git part (`git/`, and any other directory with a `refs.txt`, such as `wiki/`) is
//!   rebuilt from its bundle chain, its refs and HEAD must equal `refs.txt`, and
//!   `git fsck --full` must pass;
//! - every `*.json` file under `meta/` must parse;
//! - every file under `lfs/objects/` must be named by its SHA-256 (the LFS oid) and hash to it.
//!
//! Every problem is reported with its repository, snapshot and path; nothing stops at the first.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Instant;

use jiff::Timestamp;
use rand::{Rng, SeedableRng};
use repovault_git::Mirror;
use repovault_store::{IndexedStore, SnapshotInfo, StoreError};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::restore::{rebuild_part, verify_refs};
use crate::snapshots::repo_of;
use crate::{Cancel, RepoName};

/// Which snapshots to verify.
#[derive(Debug, Clone, Default)]
pub struct VerifyRequest {
    /// Only this repository.
    pub repo: Option<RepoName>,
    /// Only snapshots from this host.
    pub host: Option<String>,
    /// This snapshot (id or unique prefix) instead of the latest of each repository.
    pub snapshot: Option<String>,
    /// At most this many repositories, chosen at random; `None` verifies all.
    pub sample: Option<usize>,
    /// Seed for the sample; a random one is drawn (and reported) when not given.
    pub seed: Option<u64>,
    /// Where the temporary restores go; they are removed afterwards.
    pub tmp_dir: PathBuf,
    /// Checked before each repository: a stop request leaves the rest unverified.
    pub cancel: Cancel,
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("no snapshot matches: {0}")]
    NothingToVerify(String),
    #[error("snapshot id {0:?} matches more than one snapshot")]
    Ambiguous(String),
    #[error("snapshot {0} has no repo: tag; it was not written by repovault")]
    NotARepoSnapshot(String),
    #[error("creating a temporary directory in {path}: {source}")]
    TempDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One thing found wrong.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Problem {
    /// `store` (the snapshot could not be read), `git` (a git part: its directory is `path`),
    /// `meta` or `lfs`.
    pub area: &'static str,
    /// The file or directory inside the snapshot's repository tree, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.path {
            Some(p) => write!(f, "{} {p}: {}", self.area, self.message),
            None => write!(f, "{}: {}", self.area, self.message),
        }
    }
}

/// A git part that was rebuilt and checked.
#[derive(Debug, Clone, Serialize)]
pub struct GitPartCheck {
    pub path: String,
    pub refs: usize,
    pub chain_length: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct RepoVerification {
    pub repo: String,
    pub host: String,
    pub snapshot: String,
    pub snapshot_time: Timestamp,
    pub ok: bool,
    pub problems: Vec<Problem>,
    pub git: Vec<GitPartCheck>,
    pub meta_files: usize,
    pub lfs_objects: usize,
    pub duration_ms: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// Repositories in the store that matched the request.
    pub candidates: usize,
    /// The seed the sample was drawn with, to repeat it (`--seed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    pub repos: Vec<RepoVerification>,
    pub ok: usize,
    pub failed: usize,
    pub problems: usize,
    /// The run was asked to stop; `not_started` repositories were left unverified.
    pub cancelled: bool,
    pub not_started: usize,
}

impl VerifyReport {
    pub fn all_ok(&self) -> bool {
        self.failed == 0 && !self.cancelled
    }
}

/// Progress hooks.
pub trait VerifyObserver {
    fn started(&self, _repo: &str, _snapshot: &SnapshotInfo) {}
    fn finished(&self, _result: &RepoVerification) {}
}

/// What [`select`] chose.
#[derive(Debug, Clone)]
pub struct Selection<'a> {
    /// Repositories that matched before sampling.
    pub candidates: usize,
    /// The seed a sample was drawn with.
    pub seed: Option<u64>,
    pub chosen: Vec<(RepoName, &'a SnapshotInfo)>,
}

/// Chooses the snapshots `req` asks for: the latest of each repository (host + owner/name), or
/// the one named, filtered by repository and host, optionally sampled. Sorted by host and name.
pub fn select<'a>(
    all: &'a [SnapshotInfo],
    req: &VerifyRequest,
) -> Result<Selection<'a>, VerifyError> {
    if let Some(id) = &req.snapshot {
        let mut found = all.iter().filter(|s| s.id.starts_with(id.as_str()));
        let snap = match (found.next(), found.next()) {
            (Some(s), None) => s,
            (Some(_), Some(_)) => return Err(VerifyError::Ambiguous(id.clone())),
            (None, _) => return Err(VerifyError::NothingToVerify(format!("snapshot {id}"))),
        };
        let name = repo_of(snap)
            .and_then(|r| RepoName::parse(r).ok())
            .ok_or_else(|| VerifyError::NotARepoSnapshot(snap.short_id().to_owned()))?;
        return Ok(Selection {
            candidates: 1,
            seed: None,
            chosen: vec![(name, snap)],
        });
    }
    let mut latest: BTreeMap<(String, RepoName), &SnapshotInfo> = BTreeMap::new();
    for snap in all {
        // Names come from the store; one that does not validate is not ours to restore.
        let Some(name) = repo_of(snap).and_then(|r| RepoName::parse(r).ok()) else {
            continue;
        };
        if req.repo.as_ref().is_some_and(|r| *r != name)
            || req.host.as_deref().is_some_and(|h| h != snap.host)
        {
            continue;
        }
        // `all` is oldest first, so the last one seen is the latest.
        latest.insert((snap.host.clone(), name), snap);
    }
    if latest.is_empty() {
        let what = match (&req.repo, &req.host) {
            (Some(r), Some(h)) => format!("repository {r} on host {h}"),
            (Some(r), None) => format!("repository {r}"),
            (None, Some(h)) => format!("host {h}"),
            (None, None) => "the store has no repository snapshots".to_owned(),
        };
        return Err(VerifyError::NothingToVerify(what));
    }
    let candidates = latest.len();
    let mut chosen: Vec<(RepoName, &SnapshotInfo)> =
        latest.into_iter().map(|((_, n), s)| (n, s)).collect();
    let mut seed_used = None;
    if let Some(n) = req.sample {
        if n < chosen.len() {
            let seed = req.seed.unwrap_or_else(|| rand::rng().random());
            seed_used = Some(seed);
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            let mut picked = rand::seq::index::sample(&mut rng, chosen.len(), n).into_vec();
            picked.sort_unstable();
            chosen = picked.into_iter().map(|i| chosen[i].clone()).collect();
        }
    }
    Ok(Selection {
        candidates,
        seed: seed_used,
        chosen,
    })
}

/// Verifies the snapshots `req` selects. Problems are in the report; only failing to list the
/// store or to find what was asked for is an error.
pub fn verify(
    store: &IndexedStore,
    req: &VerifyRequest,
    observer: &dyn VerifyObserver,
) -> Result<VerifyReport, VerifyError> {
    let all = store.snapshots()?;
    let Selection {
        candidates,
        seed,
        chosen,
    } = select(&all, req)?;
    std::fs::create_dir_all(&req.tmp_dir).map_err(|source| VerifyError::TempDir {
        path: req.tmp_dir.clone(),
        source,
    })?;
    let mut repos = Vec::with_capacity(chosen.len());
    let total = chosen.len();
    for (name, snap) in chosen {
        if req.cancel.is_cancelled() {
            break;
        }
        observer.started(&name.to_string(), snap);
        let tmp = tempfile::Builder::new()
            .prefix("repovault-verify-")
            .tempdir_in(&req.tmp_dir)
            .map_err(|source| VerifyError::TempDir {
                path: req.tmp_dir.clone(),
                source,
            })?;
        let result = verify_one(store, &name, snap, tmp.path());
        observer.finished(&result);
        repos.push(result);
    }
    let failed = repos.iter().filter(|r| !r.ok).count();
    let not_started = total - repos.len();
    Ok(VerifyReport {
        candidates,
        seed,
        cancelled: not_started > 0,
        not_started,
        ok: repos.len() - failed,
        failed,
        problems: repos.iter().map(|r| r.problems.len()).sum(),
        repos,
    })
}

fn verify_one(
    store: &IndexedStore,
    name: &RepoName,
    snap: &SnapshotInfo,
    tmp: &Path,
) -> RepoVerification {
    let t0 = Instant::now();
    let mut out = RepoVerification {
        repo: name.to_string(),
        host: snap.host.clone(),
        snapshot: snap.id.clone(),
        snapshot_time: snap.time,
        ok: false,
        problems: Vec::new(),
        git: Vec::new(),
        meta_files: 0,
        lfs_objects: 0,
        duration_ms: 0,
    };
    let tree = tmp.join("tree");
    let path = format!("/{}/{}", name.owner(), name.name());
    match store.restore_dir(&snap.id, &path, &tree) {
        Ok(_) => check_tree(&tree, &tmp.join("repos"), &mut out),
        Err(e) => out.problems.push(Problem {
            area: "store",
            path: None,
            message: e.to_string(),
        }),
    }
    out.ok = out.problems.is_empty();
    out.duration_ms = u64::try_from(t0.elapsed().as_millis()).unwrap_or(u64::MAX);
    out
}

/// Checks a restored `<owner>/<name>/` tree; rebuilt repositories go below `scratch`.
fn check_tree(tree: &Path, scratch: &Path, out: &mut RepoVerification) {
    let mut parts = git_parts(tree, out);
    parts.sort();
    if !parts.iter().any(|p| p == Path::new("git")) {
        out.problems.push(Problem {
            area: "git",
            path: Some("git".into()),
            message: "the snapshot has no git/ directory (chain/ and refs.txt)".into(),
        });
    }
    for (i, rel) in parts.iter().enumerate() {
        let shown = rel.display().to_string();
        let git_dir = scratch.join(format!("{i}.git"));
        match check_git_part(&tree.join(rel), &git_dir) {
            Ok((refs, chain_length)) => out.git.push(GitPartCheck {
                path: shown,
                refs,
                chain_length,
            }),
            Err(message) => out.problems.push(Problem {
                area: "git",
                path: Some(shown),
                message,
            }),
        }
        let _ = std::fs::remove_dir_all(&git_dir);
    }
    check_meta(tree, out);
    check_lfs(tree, out);
}

/// Directories (relative to `tree`) that hold a git part: a `refs.txt` or a `chain/`, outside
/// `meta/` and `lfs/`.
fn git_parts(tree: &Path, out: &mut RepoVerification) -> Vec<PathBuf> {
    let mut parts = Vec::new();
    let walk = walkdir::WalkDir::new(tree)
        .min_depth(1)
        .into_iter()
        .filter_entry(|e| {
            !(e.depth() == 1 && (e.file_name() == "meta" || e.file_name() == "lfs"))
                && e.file_name() != "chain"
        });
    for entry in walk {
        match entry {
            Ok(e) if e.file_type().is_dir() => {
                let p = e.path();
                if p.join("refs.txt").is_file() || p.join("chain").is_dir() {
                    if let Ok(rel) = p.strip_prefix(tree) {
                        parts.push(rel.to_owned());
                    }
                }
            }
            Ok(_) => {}
            Err(e) => out.problems.push(walk_problem("git", tree, &e)),
        }
    }
    parts
}

fn check_git_part(part: &Path, git_dir: &Path) -> Result<(usize, usize), String> {
    if !part.join("refs.txt").is_file() {
        return Err("refs.txt is missing".into());
    }
    let (refs, chain_length) = rebuild_part(part, git_dir).map_err(|e| e.to_string())?;
    let mirror = Mirror::open_or_init(git_dir).map_err(|e| e.to_string())?;
    verify_refs(&mirror, &refs).map_err(|e| e.to_string())?;
    mirror.fsck().map_err(|e| e.to_string())?;
    Ok((refs.refs.len(), chain_length))
}

fn check_meta(tree: &Path, out: &mut RepoVerification) {
    let meta = tree.join("meta");
    if !meta.is_dir() {
        return;
    }
    for entry in walkdir::WalkDir::new(&meta).sort_by_file_name() {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                out.problems.push(walk_problem("meta", tree, &e));
                continue;
            }
        };
        let is_json = entry.path().extension().is_some_and(|x| x == "json");
        if !entry.file_type().is_file() || !is_json {
            continue;
        }
        out.meta_files += 1;
        let parsed = std::fs::File::open(entry.path())
            .map_err(|e| e.to_string())
            .and_then(|f| {
                serde_json::from_reader::<_, serde::de::IgnoredAny>(std::io::BufReader::new(f))
                    .map(|_| ())
                    .map_err(|e| format!("not valid JSON: {e}"))
            });
        if let Err(message) = parsed {
            out.problems.push(Problem {
                area: "meta",
                path: Some(rel(tree, entry.path())),
                message,
            });
        }
    }
}

fn check_lfs(tree: &Path, out: &mut RepoVerification) {
    let objects = tree.join("lfs").join("objects");
    if !objects.is_dir() {
        return;
    }
    for entry in walkdir::WalkDir::new(&objects).sort_by_file_name() {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                out.problems.push(walk_problem("lfs", tree, &e));
                continue;
            }
        };
        if !entry.file_type().is_file() {
            continue;
        }
        out.lfs_objects += 1;
        let name = entry.file_name().to_string_lossy();
        let problem = if name.len() != 64 || !name.bytes().all(|b| b.is_ascii_hexdigit()) {
            Some("not named by a SHA-256 object id".to_owned())
        } else {
            match sha256_file(entry.path()) {
                Ok(hash) if hash.eq_ignore_ascii_case(&name) => None,
                Ok(hash) => Some(format!("content hashes to {hash}, not to its oid")),
                Err(e) => Some(format!("unreadable: {e}")),
            }
        };
        if let Some(message) = problem {
            out.problems.push(Problem {
                area: "lfs",
                path: Some(rel(tree, entry.path())),
                message,
            });
        }
    }
}

fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

fn rel(tree: &Path, p: &Path) -> String {
    p.strip_prefix(tree).unwrap_or(p).display().to_string()
}

fn walk_problem(area: &'static str, tree: &Path, e: &walkdir::Error) -> Problem {
    Problem {
        area,
        path: e.path().map(|p| rel(tree, p)),
        message: format!("cannot be read: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn empty_result() -> RepoVerification {
        RepoVerification {
            repo: "a/b".into(),
            host: "h".into(),
            snapshot: "s".into(),
            snapshot_time: Timestamp::UNIX_EPOCH,
            ok: false,
            problems: Vec::new(),
            git: Vec::new(),
            meta_files: 0,
            lfs_objects: 0,
            duration_ms: 0,
        }
    }

    #[test]
    fn bad_json_and_bad_lfs_objects_are_named() {
        let dir = tempfile::tempdir().expect("tmp");
        let tree = dir.path().join("tree");
        std::fs::create_dir_all(tree.join("meta/issues")).expect("mkdir");
        std::fs::write(tree.join("meta/repository.json"), b"{\"a\": 1}\n").expect("w");
        std::fs::write(tree.join("meta/issues/1.json"), b"{\"a\": ").expect("w");
        std::fs::write(tree.join("meta/notes.txt"), b"not json, not checked").expect("w");
        let lfs = tree.join("lfs/objects");
        std::fs::create_dir_all(&lfs).expect("mkdir");
        let good = b"large file content";
        let oid = hex::encode(Sha256::digest(good));
        std::fs::write(lfs.join(&oid), good).expect("w");
        let wrong = hex::encode(Sha256::digest(b"other"));
        std::fs::write(lfs.join(&wrong), good).expect("w");
        std::fs::write(lfs.join("README"), good).expect("w");
        let mut out = empty_result();
        check_meta(&tree, &mut out);
        check_lfs(&tree, &mut out);
        assert_eq!(out.meta_files, 2);
        assert_eq!(out.lfs_objects, 3);
        let shown: Vec<String> = out.problems.iter().map(ToString::to_string).collect();
        assert_eq!(shown.len(), 3, "{shown:#?}");
        assert!(
            shown[0].starts_with("meta meta/issues/1.json: not valid JSON"),
            "{shown:#?}"
        );
        assert!(
            shown.iter().any(
                |p| p.starts_with(&format!("lfs lfs/objects/{wrong}: content hashes to {oid}"))
            ),
            "{shown:#?}"
        );
        assert!(
            shown
                .iter()
                .any(|p| p == "lfs lfs/objects/README: not named by a SHA-256 object id"),
            "{shown:#?}"
        );
    }

    fn snap(id: &str, host: &str, repo: &str, t: i64) -> SnapshotInfo {
        SnapshotInfo {
            id: id.into(),
            time: Timestamp::from_second(t).expect("valid"),
            host: host.into(),
            tags: vec![format!("repo:{repo}")],
            paths: Vec::new(),
            parent: None,
            summary: None,
            protection: None,
            original: None,
        }
    }

    #[test]
    fn selects_the_latest_per_repository_and_samples_reproducibly() {
        let all = vec![
            snap("a1", "h", "o/a", 1),
            snap("b1", "h", "o/b", 2),
            snap("a2", "h", "o/a", 3),
            snap("c1", "g", "o/a", 4),
            snap("d1", "h", "o/d", 5),
            snap("e1", "h", "../x", 6),
        ];
        let req = VerifyRequest::default();
        let sel = select(&all, &req).expect("some");
        assert_eq!((sel.candidates, sel.seed), (4, None));
        let ids: Vec<&str> = sel.chosen.iter().map(|(_, s)| s.id.as_str()).collect();
        assert_eq!(ids, ["c1", "a2", "b1", "d1"]);

        let only = VerifyRequest {
            repo: Some(RepoName::parse("o/a").expect("valid")),
            host: Some("h".into()),
            ..VerifyRequest::default()
        };
        let chosen = select(&all, &only).expect("some").chosen;
        assert_eq!(chosen.len(), 1);
        assert_eq!(chosen[0].1.id, "a2");

        let sample = VerifyRequest {
            sample: Some(2),
            seed: Some(7),
            ..VerifyRequest::default()
        };
        let sel = select(&all, &sample).expect("some");
        assert_eq!(sel.seed, Some(7));
        let first = sel.chosen;
        assert_eq!(first.len(), 2);
        let again = select(&all, &sample).expect("some").chosen;
        assert_eq!(
            first.iter().map(|(_, s)| &s.id).collect::<Vec<_>>(),
            again.iter().map(|(_, s)| &s.id).collect::<Vec<_>>()
        );

        let chosen_snapshot = VerifyRequest {
            snapshot: Some("b".into()),
            ..VerifyRequest::default()
        };
        let one = select(&all, &chosen_snapshot).expect("one").chosen;
        assert_eq!(one[0].1.id, "b1");
        let nothing = VerifyRequest {
            repo: Some(RepoName::parse("o/zzz").expect("valid")),
            ..VerifyRequest::default()
        };
        assert!(matches!(
            select(&all, &nothing),
            Err(VerifyError::NothingToVerify(_))
        ));
    }
}
