//! The maintenance lease: at most one forget/prune/protect at a time per store.
//!
//! The lease is one object, `repovault/lease.json` under the store root, created with a
//! conditional write (S3 `If-None-Match: *`; locally `create_new` under a file lock), naming
//! its holder and an expiry. The holder refreshes it every third of its lifetime with a write
//! conditional on the version it last wrote (S3 `If-Match: <etag>`), so a holder that lost it
//! (taken over after expiry, or freed by `repovault unlock`) notices at once and stops deleting.
//! A lease whose holder crashed is taken over once it has expired. Backups take no lease.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::remote::Remote;
use crate::{StoreError, StoreLocation};

/// The lease object's path below the store root (restic and rustic ignore it).
pub const LEASE_PATH: &str = "repovault/lease.json";

/// Who holds the lease and until when.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LeaseInfo {
    pub host: String,
    pub pid: u32,
    /// The command holding it: `forget`, `prune`, `protect`.
    pub operation: String,
    pub acquired: Timestamp,
    pub refreshed: Timestamp,
    pub expires: Timestamp,
    /// Unique per write, so that every version of the object differs.
    token: String,
}

impl LeaseInfo {
    fn new(operation: &str, ttl: Duration) -> Self {
        let now = Timestamp::now();
        Self {
            host: gethostname::gethostname().to_string_lossy().into_owned(),
            pid: std::process::id(),
            operation: operation.to_owned(),
            acquired: now,
            refreshed: now,
            expires: now + signed(ttl),
            token: new_token(),
        }
    }

    pub fn is_expired(&self, now: Timestamp) -> bool {
        self.expires <= now
    }

    /// `host pid N (operation)`, for messages.
    pub fn holder(&self) -> String {
        format!("{} pid {} ({})", self.host, self.pid, self.operation)
    }
}

fn signed(d: Duration) -> SignedDuration {
    SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX)
}

fn new_token() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        "{:x}-{:x}-{n:x}",
        std::process::id(),
        Timestamp::now().as_nanosecond()
    )
}

/// A version of the lease object: the S3 ETag, or the token locally.
type Tag = String;

/// Where the lease object lives, with the conditional operations it needs. `Ok(None)` from
/// `create`/`replace` means the condition did not hold (someone else got there first).
trait Slot: Send + Sync {
    fn read(&self) -> Result<Option<(LeaseInfo, Tag)>, StoreError>;
    fn create(&self, info: &LeaseInfo) -> Result<Option<Tag>, StoreError>;
    fn replace(&self, info: &LeaseInfo, expected: &Tag) -> Result<Option<Tag>, StoreError>;
    fn remove(&self) -> Result<(), StoreError>;
}

fn encode(info: &LeaseInfo) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec_pretty(info).map_err(|e| StoreError::Backend {
        operation: "writing the lease".into(),
        message: e.to_string(),
        retryable: false,
    })
}

fn decode(bytes: &[u8]) -> Result<LeaseInfo, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Backend {
        operation: format!("reading the lease {LEASE_PATH}"),
        message: format!(
            "it is not a repovault lease ({e}); remove it with `repovault unlock --force`"
        ),
        retryable: false,
    })
}

/// A local store: the lease file is changed only under an exclusive lock on a sibling file,
/// which makes read-compare-write atomic between processes.
struct LocalSlot {
    dir: PathBuf,
}

impl LocalSlot {
    fn file(&self) -> PathBuf {
        self.dir.join("lease.json")
    }

    fn locked<T>(&self, f: impl FnOnce(&Path) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let io = |what: &str, e| StoreError::io(format!("{what} {}", self.dir.display()), e);
        std::fs::create_dir_all(&self.dir).map_err(|e| io("creating", e))?;
        let guard = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.dir.join("lease.lock"))
            .map_err(|e| io("opening the lease lock in", e))?;
        guard.lock().map_err(|e| io("locking the lease in", e))?;
        let result = f(&self.file());
        drop(guard);
        result
    }

    fn read_unlocked(path: &Path) -> Result<Option<(LeaseInfo, Tag)>, StoreError> {
        match std::fs::read(path) {
            Ok(bytes) => {
                let info = decode(&bytes)?;
                let tag = info.token.clone();
                Ok(Some((info, tag)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::io(format!("reading {}", path.display()), e)),
        }
    }

    fn write_unlocked(path: &Path, info: &LeaseInfo) -> Result<Tag, StoreError> {
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, encode(info)?)
            .map_err(|e| StoreError::io(format!("writing {}", tmp.display()), e))?;
        std::fs::rename(&tmp, path)
            .map_err(|e| StoreError::io(format!("writing {}", path.display()), e))?;
        Ok(info.token.clone())
    }
}

impl Slot for LocalSlot {
    fn read(&self) -> Result<Option<(LeaseInfo, Tag)>, StoreError> {
        self.locked(Self::read_unlocked)
    }

    fn create(&self, info: &LeaseInfo) -> Result<Option<Tag>, StoreError> {
        self.locked(|path| {
            if path.exists() {
                return Ok(None);
            }
            Self::write_unlocked(path, info).map(Some)
        })
    }

    fn replace(&self, info: &LeaseInfo, expected: &Tag) -> Result<Option<Tag>, StoreError> {
        self.locked(|path| match Self::read_unlocked(path)? {
            Some((_, tag)) if tag == *expected => Self::write_unlocked(path, info).map(Some),
            _ => Ok(None),
        })
    }

    fn remove(&self) -> Result<(), StoreError> {
        self.locked(|path| match std::fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StoreError::io(format!("removing {}", path.display()), e)),
        })
    }
}

/// An object store: conditional writes on the lease object.
struct RemoteSlot {
    remote: Arc<Remote>,
}

fn conflict(e: &opendal::Error) -> bool {
    e.kind() == opendal::ErrorKind::ConditionNotMatch
}

impl RemoteSlot {
    fn new(remote: Arc<Remote>) -> Result<Self, StoreError> {
        let cap = remote.op().info().capability();
        if !cap.write_with_if_not_exists || !cap.write_with_if_match {
            return Err(StoreError::LeaseUnsupported {
                service: remote.service().to_owned(),
            });
        }
        Ok(Self { remote })
    }

    fn etag_after_write(&self, meta: opendal::Metadata) -> Result<Tag, StoreError> {
        if let Some(tag) = meta.etag() {
            return Ok(tag.to_owned());
        }
        let op = self.remote.op().clone();
        let meta = self
            .remote
            .block_on(async move { op.stat(LEASE_PATH).await })?
            .map_err(|e| StoreError::backend("reading the lease", &e))?;
        meta.etag()
            .map(str::to_owned)
            .ok_or_else(|| StoreError::LeaseUnsupported {
                service: self.remote.service().to_owned(),
            })
    }
}

impl Slot for RemoteSlot {
    fn read(&self) -> Result<Option<(LeaseInfo, Tag)>, StoreError> {
        // The body read must be the version whose ETag we report; if it was replaced between
        // the two requests, read again (whoever wrote it holds it now).
        for _ in 0..5 {
            let op = self.remote.op().clone();
            let result = self.remote.block_on(async move {
                let meta = op.stat(LEASE_PATH).await?;
                let etag = meta.etag().map(str::to_owned).ok_or_else(|| {
                    opendal::Error::new(opendal::ErrorKind::Unsupported, "no ETag on the lease")
                })?;
                let body = op.read_with(LEASE_PATH).if_match(&etag).await?;
                Ok::<_, opendal::Error>((body.to_vec(), etag))
            })?;
            match result {
                Ok((bytes, etag)) => return Ok(Some((decode(&bytes)?, etag))),
                Err(e) if e.kind() == opendal::ErrorKind::NotFound => return Ok(None),
                Err(e) if conflict(&e) => continue,
                Err(e) if e.kind() == opendal::ErrorKind::Unsupported => {
                    return Err(StoreError::LeaseUnsupported {
                        service: self.remote.service().to_owned(),
                    })
                }
                Err(e) => return Err(StoreError::backend("reading the lease", &e)),
            }
        }
        Err(StoreError::Backend {
            operation: "reading the lease".into(),
            message: "it kept changing while being read".into(),
            retryable: true,
        })
    }

    fn create(&self, info: &LeaseInfo) -> Result<Option<Tag>, StoreError> {
        let op = self.remote.op().clone();
        let body = encode(info)?;
        let result = self
            .remote
            .block_on(async move { op.write_with(LEASE_PATH, body).if_not_exists(true).await })?;
        match result {
            Ok(meta) => self.etag_after_write(meta).map(Some),
            Err(e) if conflict(&e) => Ok(None),
            Err(e) => Err(StoreError::backend("creating the lease", &e)),
        }
    }

    fn replace(&self, info: &LeaseInfo, expected: &Tag) -> Result<Option<Tag>, StoreError> {
        let op = self.remote.op().clone();
        let body = encode(info)?;
        let expected = expected.clone();
        let result = self
            .remote
            .block_on(async move { op.write_with(LEASE_PATH, body).if_match(&expected).await })?;
        match result {
            Ok(meta) => self.etag_after_write(meta).map(Some),
            Err(e) if conflict(&e) || e.kind() == opendal::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(StoreError::backend("refreshing the lease", &e)),
        }
    }

    fn remove(&self) -> Result<(), StoreError> {
        let op = self.remote.op().clone();
        self.remote
            .block_on(async move { op.delete(LEASE_PATH).await })?
            .map_err(|e| StoreError::backend("removing the lease", &e))
    }
}

fn slot_for(location: &StoreLocation) -> Result<Arc<dyn Slot>, StoreError> {
    match Remote::connect(location)? {
        Some(remote) => Ok(Arc::new(RemoteSlot::new(remote)?)),
        None => {
            let root = location.local_path().unwrap_or(Path::new("."));
            Ok(Arc::new(LocalSlot {
                dir: root.join("repovault"),
            }))
        }
    }
}

/// Shared between the lease holder, its refresh thread and the guarded backend.
pub(crate) struct LeaseState {
    held: AtomicBool,
    expires: Mutex<Timestamp>,
    lost: Mutex<Option<String>>,
}

impl LeaseState {
    /// Whether deleting is still safe: the lease is ours and has not run out.
    pub(crate) fn ensure_held(&self) -> Result<(), String> {
        let lost = || {
            self.lost
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone()
                .unwrap_or_else(|| "the maintenance lease was lost".to_owned())
        };
        if !self.held.load(Ordering::SeqCst) {
            return Err(lost());
        }
        let expires = *self
            .expires
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if expires <= Timestamp::now() {
            return Err(format!(
                "the maintenance lease expired at {expires} before it could be refreshed"
            ));
        }
        Ok(())
    }

    fn lose(&self, why: String) {
        self.held.store(false, Ordering::SeqCst);
        *self
            .lost
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(why);
    }
}

/// A held lease. Refreshed in the background; released on [`Lease::release`] or drop.
pub struct Lease {
    state: Arc<LeaseState>,
    slot: Arc<dyn Slot>,
    info: Arc<Mutex<(LeaseInfo, Tag)>>,
    stop: Option<mpsc::Sender<()>>,
    refresher: Option<std::thread::JoinHandle<()>>,
    taken_over: Option<LeaseInfo>,
}

impl Lease {
    /// Takes the lease for `operation`, or fails with [`StoreError::Leased`] naming the
    /// current holder. An expired lease is taken over (see [`Lease::taken_over`]).
    pub fn acquire(
        location: &StoreLocation,
        operation: &str,
        ttl: Duration,
    ) -> Result<Self, StoreError> {
        let slot = slot_for(location)?;
        let ttl = ttl.max(Duration::from_secs(3));
        // A few rounds: the holder may release, or another taker win, between our requests.
        for _ in 0..5 {
            let me = LeaseInfo::new(operation, ttl);
            if let Some(tag) = slot.create(&me)? {
                return Ok(Self::start(slot, me, tag, ttl, None));
            }
            let Some((current, tag)) = slot.read()? else {
                continue;
            };
            if !current.is_expired(Timestamp::now()) {
                return Err(StoreError::Leased {
                    holder: current.holder(),
                    expires: current.expires,
                });
            }
            if let Some(new_tag) = slot.replace(&me, &tag)? {
                return Ok(Self::start(slot, me, new_tag, ttl, Some(current)));
            }
        }
        Err(StoreError::Backend {
            operation: "taking the maintenance lease".into(),
            message: "other processes kept changing it; try again".into(),
            retryable: true,
        })
    }

    fn start(
        slot: Arc<dyn Slot>,
        me: LeaseInfo,
        tag: Tag,
        ttl: Duration,
        taken_over: Option<LeaseInfo>,
    ) -> Self {
        let state = Arc::new(LeaseState {
            held: AtomicBool::new(true),
            expires: Mutex::new(me.expires),
            lost: Mutex::new(None),
        });
        let info = Arc::new(Mutex::new((me, tag)));
        let (stop, stopped) = mpsc::channel::<()>();
        let refresher = {
            let (slot, state, info) = (slot.clone(), state.clone(), info.clone());
            std::thread::Builder::new()
                .name("repovault-lease".into())
                .spawn(move || refresh_loop(&*slot, &state, &info, ttl, &stopped))
                .ok()
        };
        if refresher.is_none() {
            state.lose("the lease refresh thread could not be started".into());
        }
        Self {
            state,
            slot,
            info,
            stop: Some(stop),
            refresher,
            taken_over,
        }
    }

    /// The stale lease this one replaced, if any.
    pub fn taken_over(&self) -> Option<&LeaseInfo> {
        self.taken_over.as_ref()
    }

    pub fn info(&self) -> LeaseInfo {
        self.info
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .0
            .clone()
    }

    pub(crate) fn state(&self) -> Arc<LeaseState> {
        self.state.clone()
    }

    /// Stops refreshing and removes the lease object if it is still ours.
    pub fn release(mut self) -> Result<(), StoreError> {
        self.release_inner()
    }

    fn release_inner(&mut self) -> Result<(), StoreError> {
        drop(self.stop.take());
        if let Some(t) = self.refresher.take() {
            let _ = t.join();
        }
        if !self.state.held.swap(false, Ordering::SeqCst) {
            return Ok(());
        }
        let ours = self
            .info
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .0
            .token
            .clone();
        match self.slot.read()? {
            Some((current, _)) if current.token == ours => self.slot.remove(),
            _ => Ok(()),
        }
    }
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease").field("info", &self.info()).finish()
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Err(e) = self.release_inner() {
            tracing::warn!("could not release the maintenance lease: {e}");
        }
    }
}

fn refresh_loop(
    slot: &dyn Slot,
    state: &LeaseState,
    info: &Mutex<(LeaseInfo, Tag)>,
    ttl: Duration,
    stopped: &mpsc::Receiver<()>,
) {
    let every = ttl / 3;
    loop {
        match stopped.recv_timeout(every) {
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            // Released (or the holder is gone): stop.
            _ => return,
        }
        let (mut next, tag) = info
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let now = Timestamp::now();
        next.refreshed = now;
        next.expires = now + signed(ttl);
        next.token = new_token();
        match slot.replace(&next, &tag) {
            Ok(Some(new_tag)) => {
                *state
                    .expires
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = next.expires;
                *info
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = (next, new_tag);
            }
            Ok(None) => {
                let who = slot
                    .read()
                    .ok()
                    .flatten()
                    .map(|(i, _)| format!(" (now held by {})", i.holder()))
                    .unwrap_or_default();
                state.lose(format!(
                    "the maintenance lease was taken over or removed{who}; stopping"
                ));
                return;
            }
            // A failed refresh is retried next round; `ensure_held` stops deletes once the
            // last successful expiry has passed.
            Err(e) => tracing::warn!("refreshing the maintenance lease failed: {e}"),
        }
    }
}

/// What `unlock` found and did.
#[derive(Debug, Clone, Serialize)]
pub struct Unlocked {
    pub lease: Option<LeaseInfo>,
    /// The lease had not expired yet (only removed with `force`).
    pub was_live: bool,
    pub removed: bool,
}

/// The current lease, if any.
pub fn current_lease(location: &StoreLocation) -> Result<Option<LeaseInfo>, StoreError> {
    Ok(slot_for(location)?.read()?.map(|(i, _)| i))
}

/// Removes the lease. A live (unexpired) one only with `force`.
pub fn unlock(location: &StoreLocation, force: bool) -> Result<Unlocked, StoreError> {
    let slot = slot_for(location)?;
    let Some((current, _)) = slot.read()? else {
        return Ok(Unlocked {
            lease: None,
            was_live: false,
            removed: false,
        });
    };
    let live = !current.is_expired(Timestamp::now());
    if live && !force {
        return Err(StoreError::LeaseLive {
            holder: current.holder(),
            expires: current.expires,
        });
    }
    slot.remove()?;
    Ok(Unlocked {
        lease: Some(current),
        was_live: live,
        removed: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn local(dir: &Path) -> StoreLocation {
        StoreLocation::parse(dir.to_str().expect("utf-8"), BTreeMap::new()).expect("valid")
    }

    #[test]
    fn one_holder_at_a_time_and_release_frees_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let loc = local(dir.path());
        let first = Lease::acquire(&loc, "prune", Duration::from_secs(600)).expect("free");
        let err = Lease::acquire(&loc, "forget", Duration::from_secs(600)).expect_err("held");
        assert!(matches!(err, StoreError::Leased { .. }), "{err}");
        assert!(err.to_string().contains("(prune)"), "{err}");
        first.release().expect("release");
        assert_eq!(current_lease(&loc).expect("read"), None);
        let second = Lease::acquire(&loc, "forget", Duration::from_secs(600)).expect("free again");
        assert!(second.taken_over().is_none());
    }

    #[test]
    fn an_expired_lease_is_taken_over_and_the_old_holder_notices() {
        let dir = tempfile::tempdir().expect("tempdir");
        let loc = local(dir.path());
        let slot = slot_for(&loc).expect("slot");
        // A crashed holder: expired, never refreshed.
        let mut stale = LeaseInfo::new("prune", Duration::from_secs(60));
        stale.expires = Timestamp::now() - SignedDuration::from_secs(1);
        slot.create(&stale).expect("io").expect("created");
        let lease = Lease::acquire(&loc, "forget", Duration::from_secs(600)).expect("taken over");
        assert_eq!(lease.taken_over().map(|i| i.pid), Some(stale.pid));
        assert!(lease.state().ensure_held().is_ok());
        // Someone frees it by hand: our next refresh fails, deleting stops.
        unlock(&loc, true).expect("unlock");
        let tag = lease.info.lock().expect("lock").1.clone();
        let mut next = lease.info();
        next.token = new_token();
        assert_eq!(slot.replace(&next, &tag).expect("io"), None);
    }

    #[test]
    fn a_living_holder_keeps_refreshing_past_its_first_expiry() {
        let dir = tempfile::tempdir().expect("tempdir");
        let loc = local(dir.path());
        // 3 s lifetime, refreshed every second.
        let lease = Lease::acquire(&loc, "prune", Duration::from_secs(3)).expect("free");
        let first_expiry = lease.info().expires;
        // Bounded wait for a refresh well past the first expiry.
        for _ in 0..100 {
            if Timestamp::now() > first_expiry + SignedDuration::from_secs(1) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let on_store = current_lease(&loc).expect("read").expect("still there");
        assert!(on_store.expires > first_expiry, "never refreshed");
        assert!(lease.state().ensure_held().is_ok());
        assert!(matches!(
            Lease::acquire(&loc, "forget", Duration::from_secs(60)),
            Err(StoreError::Leased { .. })
        ));
        // Freed by hand: the next refresh notices and deleting stops.
        unlock(&loc, true).expect("unlock");
        let mut lost = None;
        for _ in 0..100 {
            if let Err(why) = lease.state().ensure_held() {
                lost = Some(why);
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let why = lost.expect("the holder never noticed");
        assert!(why.contains("taken over or removed"), "{why}");
        // It does not remove a lease that is no longer its own.
        let other = Lease::acquire(&loc, "forget", Duration::from_secs(60)).expect("free");
        drop(lease);
        assert_eq!(
            current_lease(&loc).expect("read").map(|i| i.operation),
            Some("forget".to_owned())
        );
        drop(other);
    }

    #[test]
    fn unlock_refuses_a_live_lease_without_force() {
        let dir = tempfile::tempdir().expect("tempdir");
        let loc = local(dir.path());
        let lease = Lease::acquire(&loc, "prune", Duration::from_secs(600)).expect("free");
        let err = unlock(&loc, false).expect_err("live");
        assert!(matches!(err, StoreError::LeaseLive { .. }));
        let done = unlock(&loc, true).expect("forced");
        assert!(done.was_live && done.removed);
        assert!(lease.state().ensure_held().is_ok(), "refresh not due yet");
        drop(lease);
        assert_eq!(current_lease(&loc).expect("read"), None);
    }
}
