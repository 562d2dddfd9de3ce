//! The backup pipeline: for each repository, bring the mirror cache up to date, write the next
//! bundle of the chain when anything is new, and store one snapshot holding the whole chain and
//! `refs.txt`.
//!
//! Work runs on `concurrency` worker threads, snapshot writes included: rustic's backups share
//! only the index loaded at the start, which they do not change, and the restic format is made
//! for concurrent writers. One repository failing never stops the others.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use repovault_git::{list_chain, rebuild, FailureKind, GitError, Mirror, RefsFile};
use repovault_store::{IndexedStore, NewSnapshot, SnapshotInfo, StoreError};

use crate::plan::RepoJob;
use crate::report::{RepoError, RepoReport, RepoStatus, RunReport};
use crate::snapshots::RepoSnapshots;

#[derive(Debug, Clone)]
pub struct BackupSettings {
    pub cache_dir: PathBuf,
    pub concurrency: usize,
    pub git_timeout: Duration,
}

/// Hooks for progress display; called from worker threads.
pub trait Observer: Sync {
    fn repo_started(&self, _job: &RepoJob) {}
    fn repo_finished(&self, _report: &RepoReport) {}
}

/// An observer that shows nothing.
pub struct Silent;
impl Observer for Silent {}

/// Backs up every job into `store` and reports on each. Only a failure to read the store's
/// snapshot list aborts the whole run.
pub fn backup(
    store: &IndexedStore,
    jobs: &[RepoJob],
    settings: &BackupSettings,
    observer: &dyn Observer,
) -> Result<RunReport, StoreError> {
    let started = Timestamp::now();
    let run_id = run_id(started);
    // The cache holds every repository's source code; keep it from other local users. A cache
    // that cannot be created fails every repository below with a clear message; one that cannot
    // be restricted still works, but someone should know.
    if let Err(e) = private_dir(&settings.cache_dir) {
        tracing::warn!(
            "could not make the cache {} private: {e}",
            settings.cache_dir.display()
        );
    }
    let snapshots = store.snapshots()?;
    let next = AtomicUsize::new(0);
    let reports = Mutex::new(Vec::with_capacity(jobs.len()));
    let workers = settings.concurrency.clamp(1, jobs.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(job) = jobs.get(i) else { break };
                observer.repo_started(job);
                let history = RepoSnapshots::of(&snapshots, &job.host, &job.name);
                let report = backup_one(store, job, &history, settings, &run_id);
                observer.repo_finished(&report);
                reports
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(report);
            });
        }
    });
    let reports = reports
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    Ok(RunReport::new(
        run_id,
        started,
        store.location().to_string(),
        reports,
    ))
}

fn run_id(t: Timestamp) -> String {
    // Seconds are not unique across parallel runs (sharded jobs); the pid and sub-second part are.
    format!(
        "{}-{:x}{:x}",
        t.strftime("%Y%m%dT%H%M%SZ"),
        std::process::id(),
        t.subsec_nanosecond()
    )
}

#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error(transparent)]
    Git(#[from] GitError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cache {path}: {message}")]
    Cache { path: PathBuf, message: String },
}

impl Failure {
    fn to_error(&self) -> RepoError {
        let (kind, retryable) = match self {
            Self::Git(e) => (
                serde_json::to_value(e.kind())
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_else(|| "other".into()),
                e.is_retryable(),
            ),
            Self::Store(e) => ("store".into(), e.is_retryable()),
            Self::Cache { .. } => ("cache".into(), false),
        };
        RepoError {
            kind,
            message: self.to_string(),
            retryable,
        }
    }
}

fn cache_err(path: &Path, e: impl std::fmt::Display) -> Failure {
    Failure::Cache {
        path: path.to_owned(),
        message: e.to_string(),
    }
}

fn backup_one(
    store: &IndexedStore,
    job: &RepoJob,
    history: &RepoSnapshots<'_>,
    settings: &BackupSettings,
    run_id: &str,
) -> RepoReport {
    let t0 = Instant::now();
    let mut report = RepoReport {
        source: job.source.clone(),
        host: job.host.clone(),
        repo: job.name.to_string(),
        url: job.url.to_string(),
        status: RepoStatus::Ok,
        error: None,
        changed: false,
        refs: 0,
        new_objects: 0,
        bundle_bytes: 0,
        bytes_added: 0,
        chain_length: 0,
        cache_rebuilt: false,
        snapshot: None,
        previous_snapshots: history.count(),
        duration_ms: 0,
    };
    if let Err(failure) = run_one(store, job, history, settings, run_id, &mut report) {
        report.status = RepoStatus::Failed;
        let mut err = failure.to_error();
        if matches!(&failure, Failure::Git(g) if g.kind() == FailureKind::NotFound)
            && history.count() > 0
        {
            err.message.push_str(&format!(
                " (the repository may have been deleted upstream; its {} earlier snapshot(s) are kept)",
                history.count()
            ));
        }
        report.error = Some(err);
    }
    report.duration_ms = u64::try_from(t0.elapsed().as_millis()).unwrap_or(u64::MAX);
    report
}

/// Cache paths of one repository.
struct CacheDirs {
    root: PathBuf,
    mirror: PathBuf,
    snap: PathBuf,
    git: PathBuf,
    chain: PathBuf,
    refs: PathBuf,
    marker: PathBuf,
}

impl CacheDirs {
    fn new(cache_dir: &Path, job: &RepoJob) -> Self {
        let root = cache_dir
            .join(path_safe_host(&job.host))
            .join(job.name.owner())
            .join(job.name.name());
        let snap = root.join("snap");
        let git = snap.join("git");
        Self {
            mirror: root.join("mirror.git"),
            chain: git.join("chain"),
            refs: git.join("refs.txt"),
            marker: root.join("snapshot-id"),
            git,
            snap,
            root,
        }
    }
}

/// Hosts carry ports and, from forges, anything at all; keep them to one safe path component.
fn path_safe_host(host: &str) -> String {
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

fn run_one(
    store: &IndexedStore,
    job: &RepoJob,
    history: &RepoSnapshots<'_>,
    settings: &BackupSettings,
    run_id: &str,
    report: &mut RepoReport,
) -> Result<(), Failure> {
    let dirs = CacheDirs::new(&settings.cache_dir, job);
    std::fs::create_dir_all(&dirs.root).map_err(|e| cache_err(&dirs.root, e))?;
    let _lock = lock_cache(&dirs.root)?;
    let previous = history.latest();
    report.cache_rebuilt = ensure_cache(store, job, previous, &dirs)?;

    let prev_refs = match std::fs::read_to_string(&dirs.refs) {
        Ok(text) => Some(RefsFile::parse(&text)?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(cache_err(&dirs.refs, e)),
    };
    let mirror = Mirror::open_or_init(&dirs.mirror)?;
    let timeout = Some(settings.git_timeout);
    let remote = mirror.ls_remote(&job.url, &job.auth, timeout)?;
    let local = mirror.local_refs()?;
    let mut current = if local.same_refs(&remote) {
        local.clone()
    } else {
        mirror.fetch(&job.url, &job.auth, timeout)?;
        mirror.local_refs()?
    };
    current.head = remote.head.clone();
    if current.head.is_some() && current.head != local.head {
        mirror.set_head(current.head.as_ref())?;
    }
    if let Some(link) = mirror.write_next_link(&dirs.chain, prev_refs.as_ref(), &current)? {
        report.new_objects = link.objects;
        report.bundle_bytes = link.bytes;
    }
    report.changed = prev_refs.as_ref() != Some(&current);
    report.refs = current.refs.len();
    if report.changed || !dirs.refs.exists() {
        let old_mtime = std::fs::metadata(&dirs.refs)
            .and_then(|m| m.modified())
            .ok();
        write_atomic(&dirs.refs, current.render().as_bytes())?;
        advance_mtime(&dirs.refs, old_mtime)?;
    }
    report.chain_length = list_chain(&dirs.chain)?.len();

    let new = NewSnapshot {
        source_dir: dirs.snap.clone(),
        as_path: format!("/{}/{}", job.name.owner(), job.name.name()),
        host: job.host.clone(),
        tags: vec![
            format!("repo:{}", job.name),
            format!("forge:{}", job.kind.as_str()),
            format!("source:{}", job.source),
            format!("run:{run_id}"),
        ],
        parent: previous.map(|p| p.id.clone()),
    };
    let snap = store.snapshot_dir(&new)?;
    report.bytes_added = snap.summary.map_or(0, |s| s.data_added_packed);
    write_atomic(&dirs.marker, snap.id.as_bytes())?;
    report.snapshot = Some(snap.id);
    Ok(())
}

/// Makes the cache match the repository's latest snapshot. Returns whether it had to be
/// rebuilt from the store.
///
/// The cache is trusted only when it records that snapshot's id: a crash after writing a bundle
/// but before the snapshot, another machine backing up the same repository, or a deleted cache
/// all make it rebuild the chain directory from the store, and the mirror too when it lacks
/// objects the snapshot refers to.
fn ensure_cache(
    store: &IndexedStore,
    job: &RepoJob,
    previous: Option<&SnapshotInfo>,
    dirs: &CacheDirs,
) -> Result<bool, Failure> {
    let marker = std::fs::read_to_string(&dirs.marker).ok();
    let valid = match previous {
        Some(p) => marker.as_deref() == Some(p.id.as_str()) && dirs.refs.is_file(),
        None => marker.is_none(),
    };
    if valid {
        return Ok(false);
    }
    remove_dir_if_exists(&dirs.snap)?;
    let _ = std::fs::remove_file(&dirs.marker);
    let Some(prev) = previous else {
        // A new store, or a crash before the first snapshot: start the chain afresh.
        return Ok(false);
    };
    let path = format!("/{}/{}/git", job.name.owner(), job.name.name());
    store.restore_dir(&prev.id, &path, &dirs.git)?;
    let refs_text = std::fs::read_to_string(&dirs.refs).map_err(|e| cache_err(&dirs.refs, e))?;
    let refs = RefsFile::parse(&refs_text)?;
    let chain = list_chain(&dirs.chain)?;
    let mirror_complete = dirs.mirror.join("HEAD").is_file() && {
        let m = Mirror::open_or_init(&dirs.mirror)?;
        let have = m.existing_objects(refs.tips())?;
        refs.tips().iter().all(|t| have.contains(*t))
    };
    if !mirror_complete {
        remove_dir_if_exists(&dirs.mirror)?;
        rebuild(&dirs.mirror, &chain, &refs)?;
    }
    write_atomic(&dirs.marker, prev.id.as_bytes())?;
    Ok(true)
}

/// The store skips files whose size and mtime equal the parent snapshot's. A rewritten
/// `refs.txt` of the same size on a file system with coarse timestamps could keep its old mtime
/// and be stored stale, so its mtime is pushed past the old one.
fn advance_mtime(path: &Path, old: Option<std::time::SystemTime>) -> Result<(), Failure> {
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

fn lock_cache(dir: &Path) -> Result<std::fs::File, Failure> {
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

fn private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

fn remove_dir_if_exists(dir: &Path) -> Result<(), Failure> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(cache_err(dir, e)),
    }
}

fn write_atomic(path: &Path, data: &[u8]) -> Result<(), Failure> {
    let parent = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| cache_err(parent, e))?;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, data).map_err(|e| cache_err(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| cache_err(path, e))
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
