//! Bundle chains: a repository's history as a list of git bundles, each holding exactly the
//! objects that were new since the previous snapshot.
//!
//! Links are named `NNNN-<sha256 prefix>.bundle` and applied in number order. A link is never
//! rewritten, so a store sees an old link with the same name, size and mtime in every later
//! snapshot and stores it once.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::cmd::Git;
use crate::{GitError, Mirror, RefsFile};

/// One bundle of a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainLink {
    pub number: u32,
    pub path: PathBuf,
}

/// A bundle just written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLink {
    pub link: ChainLink,
    /// Objects in the bundle's pack.
    pub objects: u64,
    pub bytes: u64,
}

/// Lists the links of the chain in `dir`, in application order. Files that are not links are
/// ignored; a missing directory is an empty chain.
pub fn list_chain(dir: &Path) -> Result<Vec<ChainLink>, GitError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(GitError::io(format!("reading {}", dir.display()), e)),
    };
    let mut links = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| GitError::io(format!("reading {}", dir.display()), e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(stem) = name.strip_suffix(".bundle") else {
            continue;
        };
        let Some((num, _hash)) = stem.split_once('-') else {
            continue;
        };
        if let Ok(number) = num.parse::<u32>() {
            links.push(ChainLink {
                number,
                path: entry.path(),
            });
        }
    }
    links.sort_by_key(|l| l.number);
    for (i, l) in links.iter().enumerate() {
        if l.number as usize != i + 1 {
            return Err(GitError::InvalidRefs(format!(
                "bundle chain in {} has a gap or duplicate at link {}",
                dir.display(),
                l.number
            )));
        }
    }
    Ok(links)
}

impl Mirror {
    /// Writes the next link of the chain in `chain_dir`: the objects reachable from `current`'s
    /// refs but not from `previous`'s tips. Returns `None` when there is nothing new (git refuses
    /// empty bundles, and an empty link would be noise).
    ///
    /// Tips of `previous` that the mirror no longer has (history rewritten upstream and the cache
    /// rebuilt since) are left out of the exclusions rather than failing the bundle.
    pub fn write_next_link(
        &self,
        chain_dir: &Path,
        previous: Option<&RefsFile>,
        current: &RefsFile,
    ) -> Result<Option<NewLink>, GitError> {
        if current.refs.is_empty() {
            return Ok(None);
        }
        let old_tips = previous.map(RefsFile::tips).unwrap_or_default();
        let excluded = self.existing_objects(old_tips.iter().copied())?;
        if current.tips().iter().all(|t| excluded.contains(*t)) {
            return Ok(None);
        }
        std::fs::create_dir_all(chain_dir)
            .map_err(|e| GitError::io(format!("creating {}", chain_dir.display()), e))?;
        let links = list_chain(chain_dir)?;
        let number = u32::try_from(links.len() + 1).unwrap_or(u32::MAX);
        let tmp = chain_dir.join(format!(".{number:04}.bundle.tmp"));
        let mut input = String::new();
        for name in current.refs.keys() {
            input.push_str(name);
            input.push('\n');
        }
        for oid in &excluded {
            input.push('^');
            input.push_str(oid);
            input.push('\n');
        }
        let (ok, out) = self
            .git("bundle create")
            .args(["bundle", "create", "--quiet"])
            .arg(tmp.display().to_string())
            .arg("--stdin")
            .stdin(input.into_bytes())
            .run_status()?;
        if !ok {
            let _ = std::fs::remove_file(&tmp);
            if out.stderr.contains("Refusing to create empty bundle") {
                return Ok(None);
            }
            return Err(GitError::Command {
                operation: "bundle create".into(),
                kind: crate::error::classify(&out.stderr),
                message: out.stderr.trim().to_owned(),
            });
        }
        let (hash, bytes, objects) = inspect_bundle(&tmp)?;
        let path = chain_dir.join(format!("{number:04}-{}.bundle", &hash[..16]));
        std::fs::rename(&tmp, &path)
            .map_err(|e| GitError::io(format!("renaming bundle to {}", path.display()), e))?;
        Ok(Some(NewLink {
            link: ChainLink { number, path },
            objects,
            bytes,
        }))
    }
}

/// SHA-256 of the file, its size, and the object count from the pack header after the bundle's
/// ref list.
fn inspect_bundle(path: &Path) -> Result<(String, u64, u64), GitError> {
    let io = |e| GitError::io(format!("reading bundle {}", path.display()), e);
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut head: Vec<u8> = Vec::new();
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        if head.len() < (1 << 20) {
            head.extend_from_slice(&buf[..n]);
        }
        bytes += n as u64;
    }
    let objects = head
        .windows(2)
        .position(|w| w == b"\n\n")
        .and_then(|p| head.get(p + 2..p + 14))
        .filter(|h| &h[..4] == b"PACK")
        .map(|h| u64::from(u32::from_be_bytes([h[8], h[9], h[10], h[11]])))
        .unwrap_or(0);
    Ok((hex::encode(hasher.finalize()), bytes, objects))
}

/// Makes `repo_dir` (a bare repository, created when missing) hold exactly the history of
/// `chain` with the refs and HEAD of `refs`.
///
/// Each link is fetched into its own scratch namespace so the next link's prerequisites are
/// reachable from refs (git checks that), then all refs are replaced by those of `refs`.
pub fn rebuild(repo_dir: &Path, chain: &[ChainLink], refs: &RefsFile) -> Result<Mirror, GitError> {
    let mirror = Mirror::open_or_init(repo_dir)?;
    for link in chain {
        let refspec = format!("+refs/*:refs/repovault-chain/{:04}/*", link.number);
        Git::new("fetch bundle")
            .git_dir(repo_dir)
            .args([
                "fetch",
                "--no-tags",
                "--no-write-fetch-head",
                "--quiet",
                "--no-auto-gc",
                "--",
            ])
            .arg(link.path.display().to_string())
            .arg(refspec)
            .run()
            .map_err(|e| match e {
                GitError::Command {
                    operation, message, ..
                } => GitError::Command {
                    operation: format!("{operation} {}", link.path.display()),
                    kind: crate::FailureKind::Corrupt,
                    message,
                },
                other => other,
            })?;
    }
    mirror.set_refs(refs)?;
    Ok(mirror)
}
