//! The snapshot's `meta/` directory as a [`MetaSink`], and its `_manifest.json`.
//!
//! JSON is written pretty-printed with sorted keys and a trailing newline, and a file is
//! rewritten only when its bytes change: the store skips files whose size and mtime equal the
//! parent snapshot's, so unchanged items cost nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use repovault_forge::{CachedPage, ForgeError, MetaOutcome, MetaSink, MetaState};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::cache::{advance_mtime, write_atomic};

pub(crate) const MANIFEST: &str = "_manifest.json";
/// Bumped when the layout of `meta/` changes incompatibly.
pub const META_SCHEMA_VERSION: u32 = 1;

pub(crate) struct FileSink {
    root: PathBuf,
}

impl FileSink {
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    /// `rel` as a path below the root, refusing anything that could leave it.
    fn resolve(&self, rel: &str) -> Result<PathBuf, ForgeError> {
        let mut path = self.root.clone();
        for part in rel.split('/') {
            let ok = !part.is_empty()
                && part != "."
                && part != ".."
                && !part.contains('\\')
                && !part.chars().any(char::is_control);
            if !ok {
                return Err(ForgeError::new(
                    repovault_forge::ErrorKind::Invalid,
                    format!("refusing the metadata path {rel:?}"),
                ));
            }
            path.push(part);
        }
        Ok(path)
    }
}

fn local(e: impl std::fmt::Display) -> ForgeError {
    ForgeError::new(repovault_forge::ErrorKind::Local, e.to_string())
}

/// Stable bytes for a JSON value: sorted keys, two-space indent, newline at the end.
pub(crate) fn stable_json(v: &Value) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(&sorted(v)).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let ordered: BTreeMap<&String, Value> = m.iter().map(|(k, v)| (k, sorted(v))).collect();
            Value::Object(ordered.into_iter().map(|(k, v)| (k.clone(), v)).collect())
        }
        Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// Writes `bytes` unless the file already holds exactly them; returns whether it wrote.
pub(crate) fn write_if_changed(path: &Path, bytes: &[u8]) -> Result<bool, super::Failure> {
    if std::fs::read(path).ok().as_deref() == Some(bytes) {
        return Ok(false);
    }
    let old_mtime = std::fs::metadata(path).and_then(|m| m.modified()).ok();
    write_atomic(path, bytes)?;
    advance_mtime(path, old_mtime)?;
    Ok(true)
}

impl MetaSink for FileSink {
    fn read(&self, rel: &str) -> Result<Option<Value>, ForgeError> {
        let path = self.resolve(rel)?;
        match std::fs::read(&path) {
            Ok(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(local(format!("reading {}: {e}", path.display()))),
        }
    }

    fn write(&mut self, rel: &str, value: &Value) -> Result<bool, ForgeError> {
        let path = self.resolve(rel)?;
        write_if_changed(&path, &stable_json(value)).map_err(local)
    }

    fn remove(&mut self, rel: &str) -> Result<(), ForgeError> {
        let path = self.resolve(rel)?;
        let result = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        match result {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(local(format!("removing {}: {e}", path.display()))),
        }
    }

    fn list(&self, rel: &str) -> Result<Vec<String>, ForgeError> {
        let path = self.resolve(rel)?;
        let entries = match std::fs::read_dir(&path) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(local(format!("listing {}: {e}", path.display()))),
        };
        let mut names: Vec<String> = entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.ends_with(".tmp") && !n.ends_with(".part"))
            .collect();
        names.sort();
        Ok(names)
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.resolve(rel)
            .unwrap_or_else(|_| self.root.join("_refused"))
    }
}

/// `meta/_manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default)]
    pub counts: BTreeMap<String, u64>,
    #[serde(default)]
    pub notes: Vec<String>,
    #[serde(default)]
    pub cursors: BTreeMap<String, String>,
    #[serde(default)]
    pub etags: BTreeMap<String, CachedPage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_full_pass: Option<String>,
}

impl Manifest {
    pub fn read(meta_dir: &Path) -> Option<Self> {
        let bytes = std::fs::read(meta_dir.join(MANIFEST)).ok()?;
        let m: Self = serde_json::from_slice(&bytes).ok()?;
        // A manifest of another layout starts the export afresh.
        (m.schema_version == META_SCHEMA_VERSION).then_some(m)
    }

    pub fn state(&self) -> MetaState {
        MetaState {
            cursors: self.cursors.clone(),
            etags: self.etags.clone(),
            last_full_pass: self.last_full_pass.clone(),
        }
    }

    pub fn new(state: MetaState, outcome: &MetaOutcome) -> Self {
        Self {
            schema_version: META_SCHEMA_VERSION,
            counts: outcome.counts.clone(),
            notes: outcome.notes.clone(),
            cursors: state.cursors,
            etags: state.etags,
            last_full_pass: state.last_full_pass,
        }
    }

    pub(crate) fn write(&self, meta_dir: &Path) -> Result<bool, super::Failure> {
        let v = serde_json::to_value(self).unwrap_or(Value::Null);
        write_if_changed(&meta_dir.join(MANIFEST), &stable_json(&v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stable_sorted_and_rewritten_only_on_change() {
        assert_eq!(
            String::from_utf8(stable_json(&json!({"b": 1, "a": {"d": 2, "c": 3}}))).expect("utf8"),
            "{\n  \"a\": {\n    \"c\": 3,\n    \"d\": 2\n  },\n  \"b\": 1\n}\n"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let mut sink = FileSink::new(dir.path().to_owned());
        assert!(sink
            .write("issues/1.json", &json!({"x": 1}))
            .expect("write"));
        assert!(!sink
            .write("issues/1.json", &json!({"x": 1}))
            .expect("write"));
        assert!(sink
            .write("issues/1.json", &json!({"x": 2}))
            .expect("write"));
        assert_eq!(sink.list("issues").expect("list"), vec!["1.json"]);
        assert!(sink.write("../x.json", &json!(1)).is_err());
        assert!(sink.write("a//b", &json!(1)).is_err());
        sink.remove("issues").expect("remove");
        assert!(sink.list("issues").expect("list").is_empty());
    }
}
