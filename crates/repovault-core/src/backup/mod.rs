//! The backup pipeline: for each repository, bring the mirror cache up to date, write the next
//! bundle of the chain when anything is new, and store one snapshot holding the whole chain and
//! `refs.txt`.
//!
//! Work runs on `concurrency` worker threads, snapshot writes included: rustic's backups share
//! only the index loaded at the start, which they do not change, and the restic format is made
//! for concurrent writers. One repository failing never stops the others. A stop request
//! ([`Cancel`]) is honoured between repositories: those in flight finish, the rest are not
//! started.

mod cache;
mod forge;
mod git;
mod meta;

pub(crate) use cache::path_safe_host as path_safe;
pub use meta::{Manifest, META_SCHEMA_VERSION};

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use repovault_git::{ChainPolicy, FailureKind, GitError};
use repovault_store::{IndexedStore, NewSnapshot, StoreError};

use cache::{cache_err, ensure_cache, lock_cache, private_dir, CacheDirs};
use git::ChainOptions;

use crate::plan::RepoJob;
use crate::report::{NewBase, RepoError, RepoReport, RepoStatus, RunReport, SnapshotRef};
use crate::snapshots::RepoSnapshots;
use crate::Cancel;

#[derive(Debug, Clone)]
pub struct BackupSettings {
    pub cache_dir: PathBuf,
    pub concurrency: usize,
    pub git_timeout: Duration,
    /// When bundle chains start over with a new base.
    pub chain: ChainPolicy,
    /// Start a new base for every repository of this run.
    pub force_new_base: bool,
    /// A local store with less free space is not written to (checked before every snapshot).
    pub min_free_bytes: u64,
    /// Checked before each repository starts.
    pub cancel: Cancel,
}

/// Hooks for progress display; called from worker threads.
pub trait Observer: Sync {
    /// How many repositories the run covers, once the sources are listed.
    fn repos_planned(&self, _total: usize) {}
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
    tracing::info!(
        "backing up {} repositories with {workers} workers (run {run_id})",
        jobs.len()
    );
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                if settings.cancel.is_cancelled() {
                    break;
                }
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
    let not_started = jobs.len() - reports.len();
    let mut report = RunReport::new(run_id, started, store.location().to_string(), reports);
    match store.size_bytes() {
        Ok(n) => report.store_size_bytes = Some(n),
        Err(e) => tracing::warn!("could not measure the store: {e}"),
    }
    if not_started > 0 {
        report.cancelled = true;
        report.totals.not_started = not_started;
    }
    Ok(report)
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
pub(crate) enum Failure {
    #[error(transparent)]
    Git(#[from] GitError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cache {path}: {message}")]
    Cache { path: PathBuf, message: String },
    #[error("{}", .0.message)]
    Forge(RepoError),
}

impl Failure {
    pub(crate) fn to_error(&self) -> RepoError {
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
            Self::Forge(e) => return e.clone(),
        };
        RepoError {
            kind,
            message: self.to_string(),
            retryable,
        }
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
        new_base: None,
        cache_rebuilt: false,
        snapshot: None,
        previous_snapshots: history.count(),
        latest_snapshot: history.latest().map(|s| SnapshotRef {
            id: s.id.clone(),
            time: s.time,
        }),
        duration_ms: 0,
        parts: Vec::new(),
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

/// The git parts: the code, and for forge repositories the wiki (fetched at the same time, on
/// its own mirror) and LFS objects.
fn sync_code(
    job: &RepoJob,
    dirs: &CacheDirs,
    settings: &BackupSettings,
    chain: &ChainOptions,
    auth: &repovault_git::GitAuth,
    with_git: bool,
    report: &mut RepoReport,
) -> Result<(), Failure> {
    // Asked again before each part: a long fetch can outlast an App token.
    let fresh = |fj: &crate::plan::ForgeJob| forge::git_auth(fj).unwrap_or_else(|_| auth.clone());
    let timeout = settings.git_timeout;
    std::thread::scope(|scope| {
        let wiki = job.forge.as_ref().map(|fj| {
            let wiki_auth = fresh(fj);
            scope.spawn(move || forge::wiki(dirs, fj, &wiki_auth, timeout, chain))
        });
        let code = (|| {
            if with_git {
                let git = dirs
                    .git
                    .sync(&job.url, auth, Some(timeout), chain, &|| dirs.mark_dirty())?;
                report.changed = git.changed;
                report.refs = git.refs;
                report.new_objects = git.new_objects;
                report.bundle_bytes = git.bundle_bytes;
                report.chain_length = git.chain_length;
                report.new_base = git
                    .new_base
                    .as_ref()
                    .map(|r| NewBase::new(r, git.consolidated));
            } else {
                cache::remove_dir_if_exists(&dirs.git.dir)?;
            }
            Ok::<(), Failure>(())
        })();
        if let Some(handle) = wiki {
            match handle.join() {
                Ok(part) => report.parts.extend(part),
                Err(_) => report.parts.push(crate::report::PartReport::failed(
                    "wiki",
                    RepoError {
                        kind: "other".into(),
                        message: "the wiki sync stopped unexpectedly".into(),
                        retryable: true,
                    },
                )),
            }
        }
        code?;
        if let (Some(fj), true) = (&job.forge, with_git) {
            report
                .parts
                .extend(forge::lfs(dirs, fj, &job.url, &fresh(fj), timeout));
        }
        Ok(())
    })
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

    let chain = ChainOptions {
        policy: settings.chain,
        force_base: settings.force_new_base,
    };
    // Forge jobs get the current token now: App installation tokens change during a run.
    let auth = match &job.forge {
        Some(fj) => match forge::git_auth(fj) {
            Ok(a) => a,
            Err(e) => return Err(Failure::Forge(e)),
        },
        None => job.auth.clone(),
    };
    if job.forge.is_some() {
        // The wiki, LFS and metadata parts change `snap` from several threads; one mark before
        // any of them makes a crash anywhere in them restore `snap` from the store next time.
        dirs.mark_dirty()?;
    }
    let with_git = job.forge.as_ref().is_none_or(|fj| fj.parts.git);
    let meta = job.forge.as_ref().map(|fj| forge::start_meta(&dirs, fj));
    let code = sync_code(job, &dirs, settings, &chain, &auth, with_git, report);
    // Always waited for, so nothing writes into the cache after its lock is released.
    let meta = match (&job.forge, meta) {
        (Some(fj), Some(task)) => forge::finish_meta(&dirs, fj, task),
        _ => None,
    };
    code?;
    report.parts.extend(meta);
    if report.parts.iter().any(|p| {
        p.details.get("changed").is_some_and(|c| *c > 0)
            || p.details.get("updated").is_some_and(|c| *c > 0)
            || p.details.get("added").is_some_and(|c| *c > 0)
    }) {
        report.changed = true;
    }

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
    // Checked again before every snapshot: a long run can fill the disk on its own.
    store.ensure_free_space(settings.min_free_bytes)?;
    let snap = store.snapshot_dir(&new)?;
    report.bytes_added = snap.summary.map_or(0, |s| s.data_added_packed);
    dirs.mark_stored(&snap.id)?;
    report.latest_snapshot = Some(SnapshotRef {
        id: snap.id.clone(),
        time: snap.time,
    });
    report.snapshot = Some(snap.id);
    if let Some(failed) = report.parts.iter().find(|p| p.status == RepoStatus::Failed) {
        // The snapshot holds what worked; the repository still counts as failed.
        report.status = RepoStatus::Failed;
        if let Some(e) = &failed.error {
            let mut e = e.clone();
            e.message = format!("{}: {}", failed.part, e.message);
            report.error = Some(e);
        }
    }
    Ok(())
}
