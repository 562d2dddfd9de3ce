//! Finding a repository's snapshots among all snapshots of a store.

use jiff::Timestamp;
use repovault_store::SnapshotInfo;

use crate::RepoName;

/// The snapshots of one repository on one host, oldest first.
#[derive(Debug, Clone)]
pub struct RepoSnapshots<'a> {
    list: Vec<&'a SnapshotInfo>,
}

impl<'a> RepoSnapshots<'a> {
    /// `all` must be sorted oldest first (as the store lists them).
    pub fn of(all: &'a [SnapshotInfo], host: &str, name: &RepoName) -> Self {
        let tag = format!("repo:{name}");
        Self {
            list: all
                .iter()
                .filter(|s| s.host == host && s.tags.contains(&tag))
                .collect(),
        }
    }

    pub fn count(&self) -> usize {
        self.list.len()
    }

    pub fn latest(&self) -> Option<&'a SnapshotInfo> {
        self.list.last().copied()
    }

    /// The newest snapshot taken at or before `at`.
    pub fn at(&self, at: Timestamp) -> Option<&'a SnapshotInfo> {
        self.list.iter().rev().find(|s| s.time <= at).copied()
    }

    pub fn iter(&self) -> impl Iterator<Item = &'a SnapshotInfo> + '_ {
        self.list.iter().copied()
    }
}

/// The repository a snapshot belongs to, from its `repo:` tag.
pub fn repo_of(snap: &SnapshotInfo) -> Option<&str> {
    snap.tag_value("repo")
}
