//! One git repository of a snapshot (the code, and later the wiki): its mirror in the cache and
//! its directory in the staging tree (`chain/` + `refs.txt`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use repovault_git::{
    list_chain, rebuild, ChainPolicy, GitAuth, Mirror, NewBaseReason, RefsFile, RemoteUrl,
};

use super::cache::{advance_mtime, cache_err, remove_dir_if_exists, write_atomic};
use super::Failure;

/// A mirror in the cache and the snapshot directory it feeds.
#[derive(Debug, Clone)]
pub(crate) struct GitPart {
    /// The bare mirror, e.g. `<cache>/…/mirror.git`.
    pub mirror: PathBuf,
    /// Its directory in the staging tree, e.g. `snap/git`.
    pub dir: PathBuf,
    /// Scratch space outside the staging tree, on the same file system.
    pub work: PathBuf,
}

/// How a sync maintains the chain.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChainOptions {
    pub policy: ChainPolicy,
    /// Start a new base whatever the policy says.
    pub force_base: bool,
}

/// What one sync of a [`GitPart`] did.
#[derive(Debug, Clone, Default)]
pub(crate) struct GitOutcome {
    /// Whether any ref or HEAD differs from the previous snapshot.
    pub changed: bool,
    pub refs: usize,
    pub new_objects: u64,
    pub bundle_bytes: u64,
    pub chain_length: usize,
    /// Set when the chain was started over.
    pub new_base: Option<NewBaseReason>,
    /// The new base was put together from the old chain.
    pub consolidated: bool,
}

impl GitPart {
    pub fn new(mirror: PathBuf, dir: PathBuf, work: PathBuf) -> Self {
        Self { mirror, dir, work }
    }

    pub fn chain_dir(&self) -> PathBuf {
        self.dir.join("chain")
    }

    pub fn refs_path(&self) -> PathBuf {
        self.dir.join("refs.txt")
    }

    fn previous_refs(&self) -> Result<Option<RefsFile>, Failure> {
        let path = self.refs_path();
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Some(RefsFile::parse(&text)?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(cache_err(&path, e)),
        }
    }

    /// After `dir` was restored from the store: rebuilds the mirror from the chain when it lacks
    /// any tip the restored `refs.txt` names (a lost cache, or another machine wrote newer
    /// snapshots). A part without `refs.txt` in the snapshot has nothing to rebuild.
    pub fn rebuild_mirror_if_incomplete(&self) -> Result<(), Failure> {
        let Some(refs) = self.previous_refs()? else {
            return Ok(());
        };
        let complete = self.mirror.join("HEAD").is_file() && {
            let m = Mirror::open_or_init(&self.mirror)?;
            let have = m.existing_objects(refs.tips())?;
            refs.tips().iter().all(|t| have.contains(*t))
        };
        if !complete {
            remove_dir_if_exists(&self.mirror)?;
            rebuild(&self.mirror, &list_chain(&self.chain_dir())?, &refs)?;
        }
        Ok(())
    }

    /// Brings the mirror up to date with `url`, adds the next bundle to the chain (or starts a
    /// new base) when anything is new, and rewrites `refs.txt` when the refs changed.
    ///
    /// `before_change` runs once before the first change to the staging tree, so an
    /// interrupted sync can be recognised and undone by the next run.
    pub fn sync(
        &self,
        url: &RemoteUrl,
        auth: &GitAuth,
        timeout: Option<Duration>,
        chain: &ChainOptions,
        before_change: &dyn Fn() -> Result<(), Failure>,
    ) -> Result<GitOutcome, Failure> {
        let prev_refs = self.previous_refs()?;
        let mirror = Mirror::open_or_init(&self.mirror)?;
        // The cache lock is ours, so any git lock file is from an interrupted run.
        let stale = mirror.remove_stale_locks()?;
        if stale > 0 {
            tracing::info!(
                "removed {stale} lock or temporary file(s) of an interrupted git run in {}",
                self.mirror.display()
            );
        }
        let remote = mirror.ls_remote(url, auth, timeout)?;
        let local = mirror.local_refs()?;
        let mut current = if local.same_refs(&remote) {
            local.clone()
        } else {
            mirror.fetch(url, auth, timeout)?;
            mirror.local_refs()?
        };
        current.head = remote.head.clone();
        if current.head.is_some() && current.head != local.head {
            mirror.set_head(current.head.as_ref())?;
        }
        let mut outcome = GitOutcome::default();
        let mut announced = false;
        let mut announce = || -> Result<(), Failure> {
            if !announced {
                before_change()?;
                announced = true;
            }
            Ok(())
        };
        if let Some(pending) = mirror.prepare_link(
            &self.chain_dir(),
            &self.work,
            prev_refs.as_ref(),
            &current,
            &chain.policy,
            chain.force_base,
        )? {
            announce()?;
            let link = pending.commit(&self.chain_dir())?;
            outcome.new_objects = link.objects;
            outcome.bundle_bytes = link.bytes;
            outcome.new_base = link.new_base;
            outcome.consolidated = link.consolidated;
        }
        outcome.changed = prev_refs.as_ref() != Some(&current);
        outcome.refs = current.refs.len();
        let refs_path = self.refs_path();
        if outcome.changed || !refs_path.exists() {
            announce()?;
            write_refs(&refs_path, &current)?;
        }
        outcome.chain_length = list_chain(&self.chain_dir())?.len();
        Ok(outcome)
    }
}

fn write_refs(path: &Path, refs: &RefsFile) -> Result<(), Failure> {
    let old_mtime = std::fs::metadata(path).and_then(|m| m.modified()).ok();
    write_atomic(path, refs.render().as_bytes())?;
    advance_mtime(path, old_mtime)
}
