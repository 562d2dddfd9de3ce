//! `check`: the store's structure (index against the pack files present, snapshots' trees
//! against the index) and, with `read_data`, the content of all or some packs.
//!
//! rustic reports what it finds as a list of typed problems whose type is not exported; each is
//! turned into a [`Finding`] with a stable `problem` name, the pack it concerns and a message
//! that says what is wrong. For every damaged or missing pack the report also names the files
//! (repository, snapshot, path) whose data is in it, found by walking the snapshots.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::str::FromStr;

use rustic_core::repofile::{Metadata, Node, NodeType, SnapshotFile};
use rustic_core::{CheckOptions, LsOptions, Open, ReadSubsetOption, Repository};
use secrecy::SecretString;
use serde::Serialize;

use crate::{StoreError, StoreLocation};

/// Which packs `--read-data` reads: `all`, `5%`, `1/10` (part n of m, so m runs cover
/// everything) or a size such as `500MiB`.
#[derive(Debug, Clone)]
pub struct ReadSubset {
    option: ReadSubsetOption,
    text: String,
}

impl FromStr for ReadSubset {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // rustic divides by m without checking it (a panic for "1/0").
        if let Some((_, m)) = s.split_once('/') {
            if m.trim().parse::<u64>() == Ok(0) {
                return Err(StoreError::rustic_input(format!(
                    "{s:?}: the m in n/m must be at least 1"
                )));
            }
        }
        let option = s.parse::<ReadSubsetOption>().map_err(|_| {
            StoreError::rustic_input(format!(
                "{s:?} is not a read-data subset: use all, a percentage (5%), n/m (1/10) or a size (500MiB)"
            ))
        })?;
        Ok(Self {
            option,
            text: s.to_owned(),
        })
    }
}

impl std::fmt::Display for ReadSubset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// A file whose data is in a damaged or missing pack.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Affected {
    pub repo: Option<String>,
    pub host: String,
    pub snapshot: String,
    pub path: String,
}

/// One problem `check` found.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Finding {
    /// A stable name, e.g. `pack_missing`, `pack_damaged`, `pack_unreferenced`.
    pub problem: String,
    /// The pack file concerned, if any.
    pub pack: Option<String>,
    pub message: String,
    /// Files whose data is in that pack (at most [`MAX_AFFECTED`]).
    pub affected: Vec<Affected>,
    /// How many files in all.
    pub affected_total: usize,
}

/// Affected files listed per finding; the total is always given.
pub const MAX_AFFECTED: usize = 50;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct CheckReport {
    /// The `--read-data` subset, if data was read.
    pub read_data: Option<String>,
    pub snapshots: usize,
    pub errors: Vec<Finding>,
    pub warnings: Vec<Finding>,
}

impl CheckReport {
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }
}

pub(crate) fn check<S: Open>(
    repo: &Repository<S>,
    location: &StoreLocation,
    password: &SecretString,
    read_data: Option<&ReadSubset>,
) -> Result<CheckReport, StoreError> {
    let snapshots = repo
        .get_all_snapshots()
        .map_err(|e| StoreError::rustic("listing snapshots", &e))?;
    let mut opts = CheckOptions::default();
    if let Some(subset) = read_data {
        opts = opts.read_data(true).read_data_subset(subset.option);
    }
    let trees = snapshots.iter().map(|s| s.tree).collect();
    let results = repo
        .check_with_trees(opts, trees)
        .map_err(|e| StoreError::rustic("checking", &e))?;
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    for (level, problem) in &results.0 {
        let finding = classify(&format!("{problem:?}"), &problem.to_string());
        // The level's type is not exported either; its Debug name is `Warn` or `Error`. A
        // pack that was marked for deletion and is gone already loses nothing.
        if format!("{level:?}") == "Warn" || finding.problem == "marked_pack_gone" {
            warnings.push(finding);
        } else {
            errors.push(finding);
        }
    }
    resolve_tree_errors(repo, &mut errors)?;
    let bad: BTreeSet<String> = errors.iter().filter_map(|f| f.pack.clone()).collect();
    if !bad.is_empty() {
        let found = affected_files(location, password, &snapshots, &bad)?;
        for f in &mut errors {
            let Some(list) = f.pack.as_ref().and_then(|p| found.get(p)) else {
                continue;
            };
            f.affected_total = list.len();
            f.affected = list.iter().take(MAX_AFFECTED).cloned().collect();
        }
    }
    Ok(CheckReport {
        read_data: read_data.map(ToString::to_string),
        snapshots: snapshots.len(),
        errors,
        warnings,
    })
}

/// A tree that cannot be read names its pack only by an 8-digit prefix ("Pack:1a2b3c4d"). Such
/// a finding becomes a finding about that pack, or is dropped when another finding already
/// covers the pack (a missing pack also makes its trees unreadable).
fn resolve_tree_errors<S: Open>(
    repo: &Repository<S>,
    errors: &mut Vec<Finding>,
) -> Result<(), StoreError> {
    if !errors.iter().any(|f| f.problem == "trees_unreadable") {
        return Ok(());
    }
    let packs: Vec<String> = repo
        .list::<rustic_core::repofile::PackId>()
        .map_err(|e| StoreError::rustic("listing packs", &e))?
        .map(|id| id.to_hex().as_str().to_owned())
        .collect();
    let known: BTreeSet<String> = errors.iter().filter_map(|f| f.pack.clone()).collect();
    let mut out = Vec::with_capacity(errors.len());
    for mut f in errors.drain(..) {
        if f.problem == "trees_unreadable" {
            let full = f.pack.clone().or_else(|| {
                let prefix = f.message.split("Pack:").nth(1).map(|rest| {
                    rest.chars()
                        .take_while(char::is_ascii_hexdigit)
                        .collect::<String>()
                })?;
                let mut hits = packs
                    .iter()
                    .filter(|p| !prefix.is_empty() && p.starts_with(&prefix));
                match (hits.next(), hits.next()) {
                    (Some(p), None) => Some(p.clone()),
                    _ => None,
                }
            });
            match full {
                Some(p) if known.contains(&p) => continue,
                Some(p) => {
                    f.message = format!(
                        "pack {p} holds directory trees that cannot be read back: it is damaged ({})",
                        f.message
                    );
                    f.problem = "pack_damaged".to_owned();
                    f.pack = Some(p);
                }
                None => {}
            }
        }
        out.push(f);
    }
    *errors = out;
    Ok(())
}

/// The 64-hex ids in rustic's message, in order.
fn hex_ids(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_ascii_hexdigit())
        .filter(|w| w.len() == 64)
        .map(str::to_owned)
        .collect()
}

/// rustic's message without its repair advice, and of a nested error only its "Message:" line
/// (the rest is a report template with a backtrace).
fn short(display: &str) -> String {
    let text = display
        .replace("To repair: 'rustic repair index'.", "")
        .replace("Can be a parallel backup job.", "");
    let head = text.lines().next().unwrap_or_default().trim();
    let cause = text
        .split("Message:")
        .nth(1)
        .and_then(|rest| rest.lines().map(str::trim).find(|l| !l.is_empty()));
    match cause {
        Some(cause) => {
            let head = head.split(':').next().unwrap_or(head).trim();
            format!("{head}: {cause}")
        }
        None => head.to_owned(),
    }
}

/// Turns one of rustic's problems (its Debug form names the variant, its Display the details)
/// into a finding.
fn classify(debug: &str, display: &str) -> Finding {
    let variant = debug
        .split(|c: char| !c.is_ascii_alphanumeric())
        .next()
        .unwrap_or_default();
    // Display shortens ids to 8 digits; Debug has them whole, the pack's first.
    let first = hex_ids(debug).into_iter().next();
    let detail = short(display);
    let (problem, pack, message) = match variant {
        "NoPack" if debug.contains("to_delete: true") => (
            "marked_pack_gone",
            first.clone(),
            format!(
                "pack {} was marked for deletion and is already gone; nothing uses it, and the next prune drops it from the index",
                first.as_deref().unwrap_or("?")
            ),
        ),
        "NoPack" => (
            "pack_missing",
            first.clone(),
            format!(
                "pack {} is missing from the store: the index lists it, but there is no such file",
                first.as_deref().unwrap_or("?")
            ),
        ),
        "PackSizeMismatchIndex" => (
            "pack_wrong_size",
            first.clone(),
            format!("pack file has the wrong size, it was truncated or replaced ({detail})"),
        ),
        "ErrorCheckingPack" | "ErrorReadingPack" => (
            "pack_damaged",
            first.clone(),
            format!(
                "pack {} cannot be read back: its content is damaged ({detail})",
                first.as_deref().unwrap_or("?")
            ),
        ),
        "PackHashMismatch" | "PackBlobHashMismatch" | "PackBlobLengthMismatch"
        | "PackSizeMismatch" => (
            "pack_damaged",
            first.clone(),
            format!("pack content does not match its checksum: it is damaged ({detail})"),
        ),
        "PackHeaderMismatchIndex" | "PackHeaderLengthMismatch" | "PackBlobOffsetMismatch"
        | "PackBlobTypesMismatch" => (
            "pack_header_mismatch",
            first.clone(),
            format!("pack header and index disagree ({detail})"),
        ),
        "PackNotReferenced" => (
            "pack_unreferenced",
            first.clone(),
            format!(
                "pack {} is in no index: left by an interrupted or still running backup; a prune marks it for deletion",
                first.as_deref().unwrap_or("?")
            ),
        ),
        "PackTimeNotSet" => ("pack_mark_without_time", first.clone(), detail),
        "ErrorCheckingTrees" => (
            "trees_unreadable",
            first.clone(),
            format!("the snapshots' directory trees could not all be read: {detail}"),
        ),
        "FileBlobNotInIndex" | "SubTreeMissingInIndex" => {
            ("data_not_in_index", None, format!("{detail} (no pack holds it)"))
        }
        _ => ("other", first.clone(), detail),
    };
    Finding {
        problem: problem.to_owned(),
        pack,
        message,
        affected: Vec::new(),
        affected_total: 0,
    }
}

/// For each bad pack, the files of every snapshot whose data (or directory listing) is in it.
fn affected_files(
    location: &StoreLocation,
    password: &SecretString,
    snapshots: &[SnapshotFile],
    bad: &BTreeSet<String>,
) -> Result<BTreeMap<String, Vec<Affected>>, StoreError> {
    let repo = crate::open(location, password)?.repo;
    let repo = repo
        .to_indexed()
        .map_err(|e| StoreError::rustic("reading the index", &e))?;
    let mut found: BTreeMap<String, BTreeSet<Affected>> = BTreeMap::new();
    for snap in snapshots {
        let repo_tag = snap
            .tags
            .iter()
            .find_map(|t| t.strip_prefix("repo:").map(str::to_owned));
        let mut note = |pack: String, path: String| {
            if bad.contains(&pack) {
                found.entry(pack).or_default().insert(Affected {
                    repo: repo_tag.clone(),
                    host: snap.hostname.clone(),
                    snapshot: snap.id.to_hex().as_str().to_owned(),
                    path,
                });
            }
        };
        if let Ok(entry) = repo.get_index_entry(&snap.tree) {
            note(entry.pack.to_hex().as_str().to_owned(), "/".to_owned());
        }
        let mut root = Node::new_node(OsStr::new(""), NodeType::Dir, Metadata::default());
        root.subtree = Some(snap.tree);
        let Ok(walk) = repo.ls(&root, &LsOptions::default()) else {
            continue;
        };
        for item in walk {
            // A tree in a damaged pack ends the walk; that pack is reported through the tree
            // that lives in it.
            let Ok((path, node)) = item else { break };
            let path = display_path(&path);
            match node.node_type {
                NodeType::File => {
                    for id in node.content.iter().flatten() {
                        if let Ok(entry) = repo.get_index_entry(id) {
                            note(entry.pack.to_hex().as_str().to_owned(), path.clone());
                        }
                    }
                }
                NodeType::Dir => {
                    if let Some(tree) = node.subtree {
                        if let Ok(entry) = repo.get_index_entry(&tree) {
                            note(entry.pack.to_hex().as_str().to_owned(), format!("{path}/"));
                        }
                    }
                }
                _ => {}
            }
        }
    }
    Ok(found
        .into_iter()
        .map(|(k, v)| (k, v.into_iter().collect()))
        .collect())
}

fn display_path(p: &std::path::Path) -> String {
    let s = p.to_string_lossy();
    s.trim_start_matches('/').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn problems_become_findings_with_their_pack() {
        let id = "ab".repeat(32);
        let f = classify(
            &format!("NoPack {{ id: {id}, to_delete: false, size: 5 }}"),
            &format!("pack {id} marked to-delete: false is referenced by the index with size 5 but not present! To repair: 'rustic repair index'."),
        );
        assert_eq!(f.problem, "pack_missing");
        assert_eq!(f.pack.as_deref(), Some(id.as_str()));
        let f = classify(
            &format!("NoPack {{ id: {id}, to_delete: true, size: 5 }}"),
            "pack abababab marked to-delete: true is referenced by the index with size 5 but not present!",
        );
        assert_eq!(f.problem, "marked_pack_gone");
        assert!(!f.message.contains("rustic"), "{}", f.message);
        let f = classify(&format!("PackNotReferenced {{ id: {id} }}"), "pack abababab not referenced in index. Can be a parallel backup job. To repair: 'rustic repair index'.");
        assert_eq!(f.problem, "pack_unreferenced");
        assert_eq!(f.pack.as_deref(), Some(id.as_str()));
        let nested = "error checking pack d0f007c5 : `rustic_core` experienced an error.\n\nMessage:\nData decryption failed, MAC check failed.\n\nBacktrace:\n 0: new";
        assert_eq!(
            short(nested),
            "error checking pack d0f007c5 : Data decryption failed, MAC check failed."
                .replace(" :", ":")
        );
    }

    #[test]
    fn subsets_parse() {
        for ok in ["all", "5%", "1/10", "500MiB"] {
            assert!(ok.parse::<ReadSubset>().is_ok(), "{ok}");
        }
        for bad in ["five", "1/0", "%"] {
            assert!(bad.parse::<ReadSubset>().is_err(), "{bad}");
        }
    }

    #[test]
    fn paths_are_shown_relative() {
        assert_eq!(
            display_path(&PathBuf::from("/acme/app/git")),
            "acme/app/git"
        );
    }
}
