//! The bare mirror cache of one remote repository, and the git plumbing around it.
//!
//! The cache only saves work: everything in it can be rebuilt from a snapshot's bundle chain
//! (see [`crate::rebuild`]). It never runs `gc` so that objects from before a force-push stay
//! available as bundle prerequisites.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cmd::Git;
use crate::refs::{check_oid, check_refname};
use crate::{GitAuth, GitError, Head, RefsFile, RemoteUrl};

/// A bare repository used as the local copy of a remote.
#[derive(Debug, Clone)]
pub struct Mirror {
    path: PathBuf,
}

impl Mirror {
    /// Opens the bare repository at `path`, creating it when it does not exist.
    pub fn open_or_init(path: &Path) -> Result<Self, GitError> {
        let m = Self {
            path: path.to_owned(),
        };
        if !path.join("HEAD").is_file() {
            std::fs::create_dir_all(path)
                .map_err(|e| GitError::io(format!("creating {}", path.display()), e))?;
            Git::new("init")
                .args(["init", "--bare", "--quiet"])
                .arg(path.display().to_string())
                .run()?;
            // Never drop unreachable objects: they may be prerequisites of the next bundle.
            // Appended in one write rather than one `git config` process per key: a run with
            // many repositories pays for every process.
            let settings = "[gc]\n\tauto = 0\n[core]\n\tlogAllRefUpdates = false\n[fetch]\n\twriteCommitGraph = false\n[receive]\n\tautogc = false\n";
            let config = path.join("config");
            let mut file = std::fs::OpenOptions::new()
                .append(true)
                .open(&config)
                .map_err(|e| GitError::io(format!("opening {}", config.display()), e))?;
            std::io::Write::write_all(&mut file, settings.as_bytes())
                .map_err(|e| GitError::io(format!("writing {}", config.display()), e))?;
        }
        Ok(m)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Removes what an interrupted git process leaves behind: `*.lock` files (which would make
    /// every later ref update fail with "File exists") and temporary packs. Only for a caller
    /// that has the mirror to itself (the backup holds the cache lock), since a running git's
    /// locks look the same. Returns how many files were removed.
    pub fn remove_stale_locks(&self) -> Result<usize, GitError> {
        let objects = self.path.join("objects");
        let walk = walkdir::WalkDir::new(&self.path)
            .into_iter()
            .filter_entry(|e| {
                // Loose-object directories hold only objects; there can be very many of them.
                let loose = e.depth() == 2
                    && e.path().parent() == Some(objects.as_path())
                    && e.file_name().len() == 2;
                !loose
            });
        let mut removed = 0;
        for entry in walk {
            let entry = entry.map_err(|e| {
                GitError::io(
                    format!("reading {}", self.path.display()),
                    std::io::Error::other(e.to_string()),
                )
            })?;
            if !entry.file_type().is_file() {
                continue;
            }
            let name = entry.file_name().to_string_lossy();
            let in_pack_dir = entry.path().parent() == Some(objects.join("pack").as_path());
            if name.ends_with(".lock") || (in_pack_dir && name.starts_with("tmp_")) {
                std::fs::remove_file(entry.path())
                    .map_err(|e| GitError::io(format!("removing {}", entry.path().display()), e))?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    pub(crate) fn git<'a>(&'a self, operation: &'a str) -> Git<'a> {
        Git::new(operation).git_dir(&self.path)
    }

    /// The remote's refs and HEAD, without downloading objects. Peeled tag entries (`^{}`) are
    /// dropped: they are not refs.
    pub fn ls_remote(
        &self,
        url: &RemoteUrl,
        auth: &GitAuth,
        timeout: Option<Duration>,
    ) -> Result<RefsFile, GitError> {
        let out = self
            .git("ls-remote")
            .args(["ls-remote", "--symref", "--", url.as_str()])
            .envs(auth.env_for(url))
            .timeout(timeout)
            .run()?;
        parse_ls_remote(&out.stdout_str())
    }

    /// Makes the mirror's refs equal the remote's: `+refs/*:refs/*` with prune.
    pub fn fetch(
        &self,
        url: &RemoteUrl,
        auth: &GitAuth,
        timeout: Option<Duration>,
    ) -> Result<(), GitError> {
        self.git("fetch")
            .args([
                "fetch",
                "--prune",
                "--no-tags",
                "--no-write-fetch-head",
                "--quiet",
                "--no-auto-gc",
                "--",
                url.as_str(),
                "+refs/*:refs/*",
            ])
            .envs(auth.env_for(url))
            .timeout(timeout)
            .run()?;
        Ok(())
    }

    /// The mirror's own refs and HEAD.
    pub fn local_refs(&self) -> Result<RefsFile, GitError> {
        let out = self
            .git("for-each-ref")
            .args(["for-each-ref", "--format=%(objectname) %(refname)"])
            .run()?;
        let mut refs = RefsFile::default();
        for line in out.stdout_str().lines() {
            if let Some((oid, name)) = line.split_once(' ') {
                refs.refs.insert(name.to_owned(), oid.to_owned());
            }
        }
        refs.head = self.head()?;
        Ok(refs)
    }

    /// HEAD, read from the file a files-backend repository keeps it in; other ref backends are
    /// asked through git.
    fn head(&self) -> Result<Option<Head>, GitError> {
        if let Ok(text) = std::fs::read_to_string(self.path.join("HEAD")) {
            let text = text.trim();
            if let Some(target) = text.strip_prefix("ref: ") {
                if target != "refs/heads/.invalid" {
                    return Ok(Some(Head::Symbolic(target.to_owned())));
                }
            } else if check_oid(text).is_ok() {
                return Ok(Some(Head::Detached(text.to_owned())));
            }
        }
        let (sym, out) = self
            .git("symbolic-ref")
            .args(["symbolic-ref", "-q", "HEAD"])
            .run_status()?;
        Ok(if sym {
            Some(Head::Symbolic(out.stdout_str().trim().to_owned()))
        } else {
            let (ok, out) = self
                .git("rev-parse")
                .args(["rev-parse", "-q", "--verify", "HEAD"])
                .run_status()?;
            ok.then(|| Head::Detached(out.stdout_str().trim().to_owned()))
        })
    }

    /// Sets refs and HEAD to exactly `want`: refs not in it are deleted.
    pub fn set_refs(&self, want: &RefsFile) -> Result<(), GitError> {
        let have = self.local_refs()?;
        let mut script = String::from("start\n");
        for name in have.refs.keys() {
            if !want.refs.contains_key(name) {
                script.push_str(&format!("delete {name}\n"));
            }
        }
        for (name, oid) in &want.refs {
            check_refname(name)?;
            check_oid(oid)?;
            if have.refs.get(name) != Some(oid) {
                script.push_str(&format!("update {name} {oid}\n"));
            }
        }
        script.push_str("prepare\ncommit\n");
        self.git("update-ref")
            .args(["update-ref", "--stdin"])
            .stdin(script.into_bytes())
            .run()?;
        self.set_head(want.head.as_ref())
    }

    /// Points HEAD where `head` says; a remote without HEAD leaves git's default in place.
    pub fn set_head(&self, head: Option<&Head>) -> Result<(), GitError> {
        match head {
            Some(Head::Symbolic(target)) => {
                check_refname(target)?;
                self.git("symbolic-ref")
                    .args(["symbolic-ref", "HEAD", target])
                    .run()?;
            }
            Some(Head::Detached(oid)) => {
                check_oid(oid)?;
                self.git("update-ref")
                    .args(["update-ref", "--no-deref", "HEAD", oid])
                    .run()?;
            }
            None => {}
        }
        Ok(())
    }

    /// Which of `oids` exist in the mirror.
    pub fn existing_objects<'a>(
        &self,
        oids: impl IntoIterator<Item = &'a str>,
    ) -> Result<BTreeSet<String>, GitError> {
        let input: String = oids.into_iter().map(|o| format!("{o}\n")).collect();
        if input.is_empty() {
            return Ok(BTreeSet::new());
        }
        let out = self
            .git("cat-file")
            .args(["cat-file", "--batch-check=%(objectname) %(objecttype)"])
            .stdin(input.into_bytes())
            .run()?;
        Ok(out
            .stdout_str()
            .lines()
            .filter(|l| !l.ends_with(" missing"))
            .filter_map(|l| l.split_once(' ').map(|(o, _)| o.to_owned()))
            .collect())
    }

    /// `git fsck --full`; the error carries what fsck reported.
    pub fn fsck(&self) -> Result<(), GitError> {
        let (ok, out) = self
            .git("fsck")
            .args(["fsck", "--full", "--no-progress", "--no-dangling"])
            .run_status()?;
        if ok {
            Ok(())
        } else {
            Err(GitError::Command {
                operation: "fsck".into(),
                kind: crate::FailureKind::Corrupt,
                message: format!("{}{}", out.stdout_str(), out.stderr)
                    .trim()
                    .to_owned(),
            })
        }
    }
}

fn parse_ls_remote(text: &str) -> Result<RefsFile, GitError> {
    let mut refs = RefsFile::default();
    let mut head_oid = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("ref: ") {
            if let Some((target, "HEAD")) = rest.split_once('\t') {
                check_refname(target)?;
                refs.head = Some(Head::Symbolic(target.to_owned()));
            }
            continue;
        }
        let Some((oid, name)) = line.split_once('\t') else {
            continue;
        };
        check_oid(oid)?;
        if name == "HEAD" {
            head_oid = Some(oid.to_owned());
        } else if name.ends_with("^{}") {
            continue;
        } else {
            check_refname(name)?;
            refs.refs.insert(name.to_owned(), oid.to_owned());
        }
    }
    if refs.head.is_none() {
        refs.head = head_oid.map(Head::Detached);
    }
    Ok(refs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ls_remote_with_symref_and_peeled_tags() {
        let a = "a".repeat(40);
        let b = "b".repeat(40);
        let text = format!(
            "ref: refs/heads/main\tHEAD\n{a}\tHEAD\n{a}\trefs/heads/main\n{b}\trefs/tags/v1\n{a}\trefs/tags/v1^{{}}\n"
        );
        let r = parse_ls_remote(&text).expect("valid");
        assert_eq!(r.head, Some(Head::Symbolic("refs/heads/main".into())));
        assert_eq!(r.refs.len(), 2);
    }
}
