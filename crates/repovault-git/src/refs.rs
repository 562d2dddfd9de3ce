//! `refs.txt`: every ref of a repository and its HEAD, as one snapshot records them.
//!
//! The format is plain text so that a person with only git can use it (see
//! docs/DISASTER-RECOVERY.md):
//!
//! ```text
//! ref: refs/heads/main HEAD
//! 5f1c…e2 refs/heads/main
//! 9a0b…11 refs/tags/v1.0
//! ```
//!
//! The first line is HEAD: `ref: <target> HEAD` when symbolic, `<oid> HEAD` when detached, absent
//! when the remote has none. The other lines are `git for-each-ref --format='%(objectname)
//! %(refname)'` output, sorted by ref name.

use std::collections::BTreeMap;

use crate::GitError;

/// Where HEAD points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Head {
    Symbolic(String),
    Detached(String),
}

/// All refs of a repository with their object ids, and HEAD.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RefsFile {
    pub head: Option<Head>,
    pub refs: BTreeMap<String, String>,
}

impl RefsFile {
    pub fn parse(text: &str) -> Result<Self, GitError> {
        let mut out = Self::default();
        for (n, line) in text.lines().enumerate() {
            if line.is_empty() {
                continue;
            }
            if let Some(target) = line
                .strip_prefix("ref: ")
                .and_then(|r| r.strip_suffix(" HEAD"))
            {
                check_refname(target)?;
                out.head = Some(Head::Symbolic(target.to_owned()));
                continue;
            }
            let (oid, name) = line
                .split_once(' ')
                .ok_or_else(|| GitError::InvalidRefs(format!("line {}: {line:?}", n + 1)))?;
            check_oid(oid)?;
            if name == "HEAD" {
                out.head = Some(Head::Detached(oid.to_owned()));
            } else {
                check_refname(name)?;
                out.refs.insert(name.to_owned(), oid.to_owned());
            }
        }
        Ok(out)
    }

    pub fn render(&self) -> String {
        let mut s = String::new();
        match &self.head {
            Some(Head::Symbolic(t)) => s.push_str(&format!("ref: {t} HEAD\n")),
            Some(Head::Detached(oid)) => s.push_str(&format!("{oid} HEAD\n")),
            None => {}
        }
        for (name, oid) in &self.refs {
            s.push_str(&format!("{oid} {name}\n"));
        }
        s
    }

    /// The distinct object ids the refs point at.
    pub fn tips(&self) -> std::collections::BTreeSet<&str> {
        self.refs.values().map(String::as_str).collect()
    }

    /// Whether the refs (not HEAD) are the same.
    pub fn same_refs(&self, other: &Self) -> bool {
        self.refs == other.refs
    }
}

pub(crate) fn check_oid(oid: &str) -> Result<(), GitError> {
    if (oid.len() == 40 || oid.len() == 64) && oid.chars().all(|c| c.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(GitError::InvalidRefs(format!("bad object id {oid:?}")))
    }
}

/// Ref names come from remote servers, which we do not trust: they must be what git itself would
/// accept, so they can neither inject options nor escape a directory.
pub(crate) fn check_refname(name: &str) -> Result<(), GitError> {
    let bad = !name.starts_with("refs/")
        || name.contains("..")
        || name.contains("//")
        || name.ends_with('/')
        || name.ends_with(".lock")
        || name
            .chars()
            .any(|c| c.is_control() || c == ' ' || "~^:?*[\\".contains(c));
    if bad {
        Err(GitError::InvalidRefs(format!("bad ref name {name:?}")))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let text = "ref: refs/heads/main HEAD\n1111111111111111111111111111111111111111 refs/heads/main\n2222222222222222222222222222222222222222 refs/tags/v1\n";
        let r = RefsFile::parse(text).expect("valid");
        assert_eq!(r.head, Some(Head::Symbolic("refs/heads/main".into())));
        assert_eq!(r.render(), text);
    }

    #[test]
    fn refuses_hostile_names() {
        for bad in [
            "1111111111111111111111111111111111111111 refs/../../etc",
            "1111111111111111111111111111111111111111 --upload-pack",
            "zz HEAD",
        ] {
            assert!(RefsFile::parse(bad).is_err(), "{bad}");
        }
    }
}
