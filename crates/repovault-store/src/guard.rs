//! The backend rustic works through, wrapped so that repovault decides what it may do:
//!
//! - a backup (and every other command that only adds) can never delete anything;
//! - maintenance (forget, prune, protect) deletes only while its lease is held, never an object
//!   the bucket's Object Lock still protects (those are kept and reported), and records every
//!   deletion for the report;
//! - listings are made by repovault and fail on any error. rustic_backend logs and skips entries
//!   it cannot list, and prune would then take the data of an unlisted snapshot for unused.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use rustic_core::{
    BytesList, ErrorKind, FileType, Id, ReadBackend, RusticError, RusticResult, WriteBackend,
};
use serde::Serialize;

use crate::lease::LeaseState;
use crate::objectlock::{LockProbe, ObjectLock};
use crate::remote::Remote;

/// What a command may do to the store.
#[derive(Clone)]
pub(crate) enum Access {
    /// Read and add objects; every delete is refused.
    AppendOnly,
    /// Also delete, without a lease: keys, which no prune touches.
    Keys,
    /// Delete under a lease, skipping locked objects.
    Maintenance(Arc<LeaseState>),
}

/// A deleted object.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Removed {
    pub kind: &'static str,
    pub id: String,
    pub bytes: Option<u64>,
}

/// An object the store would not let go of (Object Lock), or that was kept because a locked
/// index file still lists it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct KeptLocked {
    pub kind: &'static str,
    pub id: String,
    pub bytes: Option<u64>,
    /// Why it stays, e.g. "COMPLIANCE retention until 2026-12-02T11:41:23Z".
    pub reason: String,
}

/// Everything a maintenance run did to the store's objects.
#[derive(Default)]
pub(crate) struct Journal {
    inner: Mutex<JournalState>,
}

#[derive(Default)]
struct JournalState {
    written: Vec<(FileType, Id)>,
    removed: Vec<Removed>,
    kept: Vec<KeptLocked>,
    sizes: BTreeMap<(u8, Id), u32>,
    /// Index id → the packs it lists; set before a prune on stores with Object Lock.
    index_packs: BTreeMap<Id, Vec<Id>>,
    /// Packs that must stay because an index file listing them could not be deleted.
    pinned: BTreeSet<Id>,
}

impl Journal {
    fn lock(&self) -> MutexGuard<'_, JournalState> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn written(&self, tpe: FileType) -> Vec<Id> {
        self.lock()
            .written
            .iter()
            .filter(|(t, _)| *t == tpe)
            .map(|(_, id)| *id)
            .collect()
    }

    pub(crate) fn removed(&self) -> Vec<Removed> {
        self.lock().removed.clone()
    }

    pub(crate) fn kept(&self) -> Vec<KeptLocked> {
        self.lock().kept.clone()
    }

    pub(crate) fn set_index_packs(&self, map: BTreeMap<Id, Vec<Id>>) {
        self.lock().index_packs = map;
    }

    pub(crate) fn clear(&self) {
        let mut s = self.lock();
        s.written.clear();
        s.removed.clear();
        s.kept.clear();
    }
}

pub(crate) fn kind_name(tpe: FileType) -> &'static str {
    match tpe {
        FileType::Config => "config",
        FileType::Index => "index",
        FileType::Key => "key",
        FileType::Snapshot => "snapshot",
        FileType::Pack => "pack",
    }
}

fn type_code(tpe: FileType) -> u8 {
    match tpe {
        FileType::Config => 0,
        FileType::Index => 1,
        FileType::Key => 2,
        FileType::Snapshot => 3,
        FileType::Pack => 4,
    }
}

/// The object key of a file, relative to the store root (restic's layout).
pub(crate) fn object_path(tpe: FileType, id: &Id) -> String {
    let hex = id.to_hex();
    let hex = hex.as_str();
    match tpe {
        FileType::Config => "config".to_owned(),
        FileType::Pack => format!("data/{}/{hex}", &hex[..2]),
        _ => format!("{}/{hex}", tpe.dirname()),
    }
}

/// Where listings come from.
#[derive(Clone)]
pub(crate) enum Lister {
    Local(PathBuf),
    Remote(Arc<Remote>),
}

fn backend_error(message: String, source: impl std::fmt::Display) -> Box<RusticError> {
    // rustic treats `{…}` in guidance as placeholders; keep ours literal.
    let text = format!("{message}: {source}").replace(['{', '}'], "");
    RusticError::new(ErrorKind::Backend, text)
}

impl Lister {
    fn list_with_size(&self, tpe: FileType) -> RusticResult<Vec<(Id, u32)>> {
        match self {
            Self::Local(root) => list_local(&root.join(tpe.dirname()), tpe),
            Self::Remote(remote) => {
                let dir = format!("{}/", tpe.dirname());
                let entries = remote
                    .block_on(remote.op().list_with(&dir).recursive(true))
                    .map_err(|e| backend_error(format!("listing {dir}"), e))?
                    .map_err(|e| backend_error(format!("listing {dir}"), e))?;
                let mut out = Vec::with_capacity(entries.len());
                for entry in entries {
                    let meta = entry.metadata();
                    if !meta.is_file() {
                        continue;
                    }
                    let Ok(id) = entry.name().parse::<Id>() else {
                        continue;
                    };
                    let size = u32::try_from(meta.content_length())
                        .map_err(|e| backend_error(format!("size of {}", entry.path()), e))?;
                    out.push((id, size));
                }
                Ok(out)
            }
        }
    }
}

fn list_local(dir: &Path, tpe: FileType) -> RusticResult<Vec<(Id, u32)>> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        let entries = std::fs::read_dir(&dir)
            .map_err(|e| backend_error(format!("listing {}", dir.display()), e))?;
        for entry in entries {
            let entry =
                entry.map_err(|e| backend_error(format!("listing {}", dir.display()), e))?;
            let path = entry.path();
            let meta = entry
                .metadata()
                .map_err(|e| backend_error(format!("reading {}", path.display()), e))?;
            if meta.is_dir() {
                // Only packs live one level down (data/<2 hex>/<id>).
                if tpe == FileType::Pack {
                    pending.push(path);
                }
                continue;
            }
            let Some(id) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<Id>().ok())
            else {
                continue;
            };
            let size = u32::try_from(meta.len())
                .map_err(|e| backend_error(format!("size of {}", path.display()), e))?;
            out.push((id, size));
        }
    }
    Ok(out)
}

/// rustic's backend with repovault's rules in front of it.
pub(crate) struct Guarded {
    inner: Arc<dyn WriteBackend>,
    lister: Lister,
    access: Access,
    probe: Option<LockProbe>,
    journal: Arc<Journal>,
}

impl Guarded {
    pub(crate) fn new(
        inner: Arc<dyn WriteBackend>,
        lister: Lister,
        access: Access,
        probe: Option<LockProbe>,
        journal: Arc<Journal>,
    ) -> Self {
        Self {
            inner,
            lister,
            access,
            probe,
            journal,
        }
    }

    fn size_of(&self, tpe: FileType, id: &Id) -> Option<u64> {
        self.journal
            .lock()
            .sizes
            .get(&(type_code(tpe), *id))
            .map(|s| u64::from(*s))
    }

    fn keep(&self, tpe: FileType, id: &Id, reason: String) {
        let bytes = self.size_of(tpe, id);
        let mut j = self.journal.lock();
        if tpe == FileType::Index {
            // rustic deletes old index files before packs: the packs a surviving index file
            // lists must survive too, or that index would point at missing packs.
            let packs = j.index_packs.get(id).cloned().unwrap_or_default();
            j.pinned.extend(packs);
        }
        j.kept.push(KeptLocked {
            kind: kind_name(tpe),
            id: id.to_hex().as_str().to_owned(),
            bytes,
            reason,
        });
    }
}

impl ReadBackend for Guarded {
    fn location(&self) -> String {
        self.inner.location()
    }

    fn list_with_size(&self, tpe: FileType) -> RusticResult<Vec<(Id, u32)>> {
        if tpe == FileType::Config {
            return self.inner.list_with_size(tpe);
        }
        let list = self.lister.list_with_size(tpe)?;
        let mut j = self.journal.lock();
        for (id, size) in &list {
            _ = j.sizes.insert((type_code(tpe), *id), *size);
        }
        Ok(list)
    }

    fn read_full(&self, tpe: FileType, id: &Id) -> RusticResult<Bytes> {
        self.inner.read_full(tpe, id)
    }

    fn read_partial(
        &self,
        tpe: FileType,
        id: &Id,
        cacheable: bool,
        offset: u32,
        length: u32,
    ) -> RusticResult<Bytes> {
        self.inner.read_partial(tpe, id, cacheable, offset, length)
    }

    fn warmup_path(&self, tpe: FileType, id: &Id) -> String {
        self.inner.warmup_path(tpe, id)
    }

    fn needs_warm_up(&self) -> bool {
        self.inner.needs_warm_up()
    }

    fn warm_up(&self, tpe: FileType, id: &Id) -> RusticResult<()> {
        self.inner.warm_up(tpe, id)
    }
}

impl WriteBackend for Guarded {
    fn create(&self) -> RusticResult<()> {
        self.inner.create()
    }

    fn write_bytes(
        &self,
        tpe: FileType,
        id: &Id,
        cacheable: bool,
        content: BytesList,
    ) -> RusticResult<()> {
        if let Access::Maintenance(lease) = &self.access {
            lease
                .ensure_held()
                .map_err(|e| backend_error("writing".into(), e))?;
        }
        let size = content.size();
        self.inner.write_bytes(tpe, id, cacheable, content)?;
        let mut j = self.journal.lock();
        j.written.push((tpe, *id));
        if let Ok(size) = u32::try_from(size) {
            _ = j.sizes.insert((type_code(tpe), *id), size);
        }
        Ok(())
    }

    fn remove(&self, tpe: FileType, id: &Id, cacheable: bool) -> RusticResult<()> {
        let what = format!("{} {}", kind_name(tpe), id.to_hex().as_str());
        match &self.access {
            Access::AppendOnly => {
                return Err(RusticError::new(
                    ErrorKind::AppendOnly,
                    format!("refusing to delete {what}: this command only adds to the store"),
                ));
            }
            Access::Keys => {
                if tpe != FileType::Key {
                    return Err(RusticError::new(
                        ErrorKind::AppendOnly,
                        format!("refusing to delete {what}: only keys may be removed here"),
                    ));
                }
            }
            Access::Maintenance(lease) => {
                lease
                    .ensure_held()
                    .map_err(|e| backend_error(format!("not deleting {what}"), e))?;
                if tpe == FileType::Pack && self.journal.lock().pinned.contains(id) {
                    self.keep(
                        tpe,
                        id,
                        "listed in an index file that Object Lock keeps".to_owned(),
                    );
                    return Ok(());
                }
                if let Some(probe) = &self.probe {
                    let lock = probe
                        .lock_of(&object_path(tpe, id))
                        .map_err(|e| backend_error(format!("reading the lock of {what}"), e))?;
                    if let Some(lock) = lock.filter(ObjectLock::is_active) {
                        self.keep(tpe, id, lock.describe());
                        return Ok(());
                    }
                }
            }
        }
        let bytes = self.size_of(tpe, id);
        self.inner.remove(tpe, id, cacheable)?;
        self.journal.lock().removed.push(Removed {
            kind: kind_name(tpe),
            id: id.to_hex().as_str().to_owned(),
            bytes,
        });
        Ok(())
    }
}
