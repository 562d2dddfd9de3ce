//! What a metadata export needs from its caller, and what it keeps between runs.
//!
//! The forge adapter decides what to ask the API; the caller decides where files go. Paths given
//! to a [`MetaSink`] are relative, built here only from numbers and sanitised names.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ForgeError;

/// Where exported metadata goes (the snapshot's `meta/` directory).
pub trait MetaSink: Send {
    /// The JSON document at `rel`, if there is one.
    fn read(&self, rel: &str) -> Result<Option<Value>, ForgeError>;
    /// Writes `value` at `rel` (stable, pretty JSON; unchanged bytes are not rewritten).
    /// Returns whether the file changed.
    fn write(&mut self, rel: &str, value: &Value) -> Result<bool, ForgeError>;
    /// Removes the file or directory at `rel`; missing is fine.
    fn remove(&mut self, rel: &str) -> Result<(), ForgeError>;
    /// Names of the entries of directory `rel` (empty when it does not exist).
    fn list(&self, rel: &str) -> Result<Vec<String>, ForgeError>;
    /// The local path of `rel`, for downloads written directly.
    fn path(&self, rel: &str) -> PathBuf;
}

/// Which kinds of metadata to export.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetaCapture {
    pub issues: bool,
    pub pulls: bool,
    pub releases: bool,
    pub labels: bool,
    pub milestones: bool,
    pub hooks: bool,
}

impl MetaCapture {
    pub fn any(&self) -> bool {
        self.issues || self.pulls || self.releases || self.labels || self.milestones || self.hooks
    }
}

#[derive(Debug, Clone)]
pub struct ExportOptions {
    pub capture: MetaCapture,
    /// How often everything is fetched again (conditionally) regardless of `since` cursors, to
    /// catch changes that do not move `updated_at` and deleted items.
    pub full_pass_interval: Duration,
}

/// A stored ETag and the `next` link the page had, so a `304` page can still be followed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedPage {
    pub etag: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// What an export keeps between runs (in `_manifest.json`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetaState {
    /// `since` cursors (`updated_at` of the newest item seen) per list.
    #[serde(default)]
    pub cursors: BTreeMap<String, String>,
    /// ETags by request (path and query below the API base).
    #[serde(default)]
    pub etags: BTreeMap<String, CachedPage>,
    /// When the last full pass finished (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_full_pass: Option<String>,
}

/// What one export did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MetaOutcome {
    /// Items now held, per kind (`issues`, `pulls`, `releases`, `assets`, …).
    pub counts: BTreeMap<String, u64>,
    /// Items written because they were new or changed in this run.
    pub updated: u64,
    pub assets_downloaded: u64,
    pub full_pass: bool,
    /// Things left out and why (e.g. webhooks need admin access).
    pub notes: Vec<String>,
}

/// Listing pages (repositories, gists) kept between runs in the local cache, so an unchanged
/// listing costs only `304`s.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ListCache {
    #[serde(default)]
    pub pages: BTreeMap<String, CachedList>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CachedList {
    pub etag: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    pub items: Vec<Value>,
}
