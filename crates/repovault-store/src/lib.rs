//! repovault's snapshot store.
//!
//! This is the only crate that talks to rustic_core; nothing outside it sees a rustic type. The
//! store is a restic-format repository, so `restic`/`rustic` can read it for disaster recovery.
//!
//! Lifecycle: [`init`] creates a store, [`open`] checks the password and returns a [`Store`]
//! that can list snapshots; [`Store::indexed`] loads the full index needed to write and restore.
//!
//! Every store is opened through repovault's guarded backend (`guard.rs`): a plain [`Store`]
//! can only add to the store. Deleting needs [`Store::maintenance`] with a held [`Lease`]
//! (forget, prune, protect) or [`Store::keys`] (key removal).

mod check;
mod error;
mod guard;
mod keys;
mod lease;
mod location;
mod maintenance;
mod objectlock;
mod prune;
mod remote;
mod snapshot;

use std::path::Path;
use std::sync::Arc;

use rustic_core::{
    ConfigOptions, Credentials, IndexedFullStatus, OpenStatus, Repository, RepositoryBackends,
    RepositoryOptions,
};
use secrecy::{ExposeSecret, SecretString};

pub use check::{Affected, CheckReport, Finding, ReadSubset};
pub use error::StoreError;
pub use guard::{KeptLocked, Removed};
pub use keys::{KeyInfo, KeyStore};
pub use lease::{current_lease, unlock, Lease, LeaseInfo, Unlocked, LEASE_PATH};
pub use location::StoreLocation;
pub use maintenance::{ForgetOutcome, MaintenanceStore, Protected};
pub use prune::{Amount, PruneReport, PruneSettings};
pub use snapshot::{NewSnapshot, Protection, RestoreStats, SnapshotInfo, SnapshotSummary};

use guard::{Access, Guarded, Journal, Lister};

/// Free space below which writes to a local store are refused (rustic issue 1731: a full disk
/// can leave a local store with truncated files).
pub const DEFAULT_MIN_FREE_BYTES: u64 = 256 * 1024 * 1024;

/// Refuses to go on when the disk of a local store (or, before `init`, of the nearest existing
/// directory above it) has less than `min_free` bytes free. Other backends are not checked.
pub fn ensure_free_space(location: &StoreLocation, min_free: u64) -> Result<(), StoreError> {
    let Some(path) = location.local_path() else {
        return Ok(());
    };
    let absolute = std::path::absolute(path)
        .map_err(|e| StoreError::io(format!("resolving {}", path.display()), e))?;
    let existing = absolute
        .ancestors()
        .find(|p| p.exists())
        .unwrap_or(Path::new("/"));
    let available = fs4::available_space(existing)
        .map_err(|e| StoreError::io(format!("reading free space of {}", existing.display()), e))?;
    if available < min_free {
        return Err(StoreError::DiskFull {
            path: path.to_owned(),
            available,
            required: min_free,
        });
    }
    Ok(())
}

/// The store's backend behind repovault's guard, and whether a store exists there (it has a
/// config file).
fn repository(
    location: &StoreLocation,
    access: Access,
) -> Result<(Repository<()>, bool, Arc<Journal>), StoreError> {
    let backends = location
        .backend_options()
        .to_backends()
        .map_err(|e| StoreError::rustic("connecting to the backend", &e))?;
    let remote = remote::Remote::connect(location)?;
    let lister = match (&remote, location.local_path()) {
        (Some(r), _) => Lister::Remote(r.clone()),
        (None, Some(p)) => Lister::Local(p.to_owned()),
        (None, None) => Lister::Local(".".into()),
    };
    let probe = remote
        .filter(|_| location.is_s3())
        .map(objectlock::LockProbe::new);
    let journal = Arc::new(Journal::default());
    let guarded = Guarded::new(
        backends.repository(),
        lister,
        access,
        probe,
        journal.clone(),
    );
    let backends = RepositoryBackends::new(Arc::new(guarded), None);
    // rustic's own cache would live under the user's cache dir and hold decrypted-index copies
    // of every store we ever touched; the store is read rarely enough that it is not worth it.
    let opts = RepositoryOptions::default().no_cache(true);
    let repo = Repository::new(&opts, &backends).map_err(|e| StoreError::rustic("opening", &e))?;
    let exists = repo
        .config_id()
        .map_err(|e| StoreError::rustic("reading the store config", &e))?
        .is_some();
    Ok((repo, exists, journal))
}

/// Creates a new, empty store at `location`. Returns the store's id.
pub fn init(location: &StoreLocation, password: &SecretString) -> Result<String, StoreError> {
    let (repo, exists, _) = repository(location, Access::AppendOnly)?;
    if exists {
        return Err(StoreError::AlreadyInitialized {
            location: location.to_string(),
        });
    }
    if let Some(path) = location.local_path() {
        make_private_dir(path)?;
    }
    let creds = Credentials::password(password.expose_secret());
    let repo = repo
        .init(
            &creds,
            &keys::new_key_options(None, None),
            &ConfigOptions::default(),
        )
        .map_err(|e| StoreError::rustic("init", &e))?;
    Ok(repo.config().id.to_hex().as_str().to_owned())
}

/// Creates `path` if needed and makes it accessible to its owner only: the key files and packs
/// below it are encrypted, but a weak password should not be attackable by every local user.
fn make_private_dir(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(path)
        .map_err(|e| StoreError::io(format!("creating {}", path.display()), e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| StoreError::io(format!("restricting {}", path.display()), e))
}

/// Opens an existing store, checking the password. The store can be read and added to; nothing
/// can be deleted through it.
pub fn open(location: &StoreLocation, password: &SecretString) -> Result<Store, StoreError> {
    let (repo, _) = open_with(location, password, Access::AppendOnly)?;
    Ok(Store {
        repo,
        location: location.clone(),
        password: password.clone(),
    })
}

fn open_with(
    location: &StoreLocation,
    password: &SecretString,
    access: Access,
) -> Result<(Repository<OpenStatus>, Arc<Journal>), StoreError> {
    let (repo, exists, journal) = repository(location, access)?;
    if !exists {
        return Err(StoreError::NotInitialized {
            location: location.to_string(),
        });
    }
    let creds = Credentials::password(password.expose_secret());
    let repo = repo.open(&creds).map_err(|e| {
        if e.is_incorrect_password() {
            StoreError::WrongPassword {
                location: location.to_string(),
            }
        } else {
            StoreError::rustic("open", &e)
        }
    })?;
    Ok((repo, journal))
}

/// An open store: its key is checked, no index is loaded yet.
pub struct Store {
    repo: Repository<OpenStatus>,
    location: StoreLocation,
    password: SecretString,
}

impl Store {
    /// The store's id (restic's repository id).
    pub fn id(&self) -> String {
        self.repo.config().id.to_hex().as_str().to_owned()
    }

    pub fn location(&self) -> &StoreLocation {
        &self.location
    }

    /// All snapshots, oldest first.
    pub fn snapshots(&self) -> Result<Vec<SnapshotInfo>, StoreError> {
        snapshot::list(&self.repo)
    }

    /// Refuses to go on when a local store's disk is nearly full.
    pub fn ensure_free_space(&self, min_free: u64) -> Result<(), StoreError> {
        ensure_free_space(&self.location, min_free)
    }

    /// The same store, able to delete while `lease` is held: forget, prune and protect.
    pub fn maintenance(&self, lease: &Lease) -> Result<MaintenanceStore, StoreError> {
        let (repo, journal) = open_with(
            &self.location,
            &self.password,
            Access::Maintenance(lease.state()),
        )?;
        Ok(MaintenanceStore::new(repo, self.location.clone(), journal))
    }

    /// The same store, able to add and remove keys.
    pub fn keys(&self) -> Result<KeyStore, StoreError> {
        let (repo, _) = open_with(&self.location, &self.password, Access::Keys)?;
        Ok(KeyStore::new(
            repo,
            self.location.clone(),
            self.password.clone(),
        ))
    }

    /// What a prune would do now, without a lease and without changing anything.
    pub fn prune_dry_run(&self, settings: &PruneSettings) -> Result<PruneReport, StoreError> {
        prune::plan_only(&self.repo, settings)
    }

    /// Checks the store's structure, and with `read_data` its data (see [`CheckReport`]).
    pub fn check(&self, read_data: Option<&ReadSubset>) -> Result<CheckReport, StoreError> {
        check::check(&self.repo, &self.location, &self.password, read_data)
    }

    /// Loads the full index, which is what reading file contents needs.
    pub fn indexed(self) -> Result<IndexedStore, StoreError> {
        let repo = self
            .repo
            .to_indexed()
            .map_err(|e| StoreError::rustic("reading the index", &e))?;
        Ok(IndexedStore {
            repo,
            location: self.location,
        })
    }
}

/// A store with its full index loaded: it can write snapshots and restore them.
pub struct IndexedStore {
    repo: Repository<IndexedFullStatus>,
    location: StoreLocation,
}

impl IndexedStore {
    pub fn location(&self) -> &StoreLocation {
        &self.location
    }

    /// Stores the directory tree `new.source_dir` as one snapshot, under the path
    /// `new.as_path` inside the snapshot.
    ///
    /// Files whose size and mtime equal those in `new.parent` are not read again, so callers must
    /// give changed content a new mtime or size (see `NewSnapshot`).
    pub fn snapshot_dir(&self, new: &NewSnapshot) -> Result<SnapshotInfo, StoreError> {
        snapshot::backup_dir(&self.repo, new)
    }

    pub fn snapshots(&self) -> Result<Vec<SnapshotInfo>, StoreError> {
        snapshot::list(&self.repo)
    }

    /// Refuses to go on when a local store's disk is nearly full.
    pub fn ensure_free_space(&self, min_free: u64) -> Result<(), StoreError> {
        ensure_free_space(&self.location, min_free)
    }

    /// Bytes the store occupies in its backend: every file (packs, indexes, snapshots, keys), as
    /// the backend lists them. One listing of the whole store.
    pub fn size_bytes(&self) -> Result<u64, StoreError> {
        let infos = self
            .repo
            .infos_files()
            .map_err(|e| StoreError::rustic("listing the store's files", &e))?;
        Ok(infos.repo.iter().map(|i| i.size).sum())
    }

    /// Restores `path` (a directory inside snapshot `snapshot_id`) into `dest`, which is created.
    /// Entries land below `dest` by their path relative to `path`; rustic refuses names that would
    /// leave `dest`.
    pub fn restore_dir(
        &self,
        snapshot_id: &str,
        path: &str,
        dest: &Path,
    ) -> Result<RestoreStats, StoreError> {
        snapshot::restore_dir(&self.repo, snapshot_id, path, dest)
    }
}
