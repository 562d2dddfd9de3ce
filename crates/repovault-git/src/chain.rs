//! Bundle chains: a repository's history as a list of git bundles. The first link (the base)
//! holds every object reachable from the refs at the time; each later link holds exactly the
//! objects that were new since the previous snapshot.
//!
//! Links are named `NNNN-<sha256 prefix>.bundle` and applied in number order. A link is never
//! rewritten, so a store sees an old link with the same name, size and mtime in every later
//! snapshot and stores it once.
//!
//! A chain starts over with a new base (a full bundle, numbered 0001 again) when it gets long,
//! when its increments add up to a large share of the base, or when much of it has become
//! unreachable from the current refs (history rewritten, branches deleted): see
//! [`ChainPolicy`]. The old chain then lives on only in older snapshots, and the store drops it
//! once no kept snapshot uses it.

use std::collections::BTreeSet;
use std::io::{BufRead, Read};
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

/// A bundle just added to a chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLink {
    pub link: ChainLink,
    /// Objects in the bundle's pack.
    pub objects: u64,
    pub bytes: u64,
    /// Set when this link is a new base that replaced the whole previous chain.
    pub new_base: Option<NewBaseReason>,
    /// The new base is the old chain's packs put together (see `consolidate`), not a fresh
    /// pack of the refs.
    pub consolidated: bool,
}

/// When a chain starts over with a new base.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainPolicy {
    /// A chain never has more links than this.
    pub max_links: usize,
    /// A new base once the increments (links 2..) would exceed this share of the base, in
    /// percent of the base's size.
    pub max_increments_percent: u64,
    /// A new base once the objects of the chain that the current refs no longer reach (history
    /// rewritten, unmerged branches deleted) exceed this share of the base, in percent; 0 means
    /// on any rewrite.
    pub max_unreachable_percent: u64,
}

impl Default for ChainPolicy {
    fn default() -> Self {
        Self {
            max_links: 50,
            max_increments_percent: 100,
            max_unreachable_percent: 10,
        }
    }
}

/// Why a chain was started over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewBaseReason {
    /// The next link would have made the chain longer than the limit.
    ChainLength { links: usize, limit: usize },
    /// The increments, the next one included, would have exceeded the limit.
    Increments {
        increments_bytes: u64,
        base_bytes: u64,
        limit_percent: u64,
    },
    /// This much of the chain (bytes on disk in the mirror) is no longer reachable from the refs.
    Rewritten {
        unreachable_bytes: u64,
        base_bytes: u64,
        limit_percent: u64,
    },
    /// Asked for on the command line.
    Requested,
}

impl NewBaseReason {
    /// A short stable name for reports: `chain-length`, `increments`, `rewritten`, `requested`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::ChainLength { .. } => "chain-length",
            Self::Increments { .. } => "increments",
            Self::Rewritten { .. } => "rewritten",
            Self::Requested => "requested",
        }
    }
}

impl std::fmt::Display for NewBaseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ChainLength { links, limit } => write!(
                f,
                "the chain has {links} links and the next would pass the limit of {limit}"
            ),
            Self::Increments {
                increments_bytes,
                base_bytes,
                limit_percent,
            } => write!(
                f,
                "the increments would reach {increments_bytes} bytes, {}% of the {base_bytes}-byte base (limit {limit_percent}%)",
                percent(*increments_bytes, *base_bytes)
            ),
            Self::Rewritten {
                unreachable_bytes,
                base_bytes,
                limit_percent,
            } => write!(
                f,
                "history was rewritten: {unreachable_bytes} bytes of the chain are no longer reachable from the refs, {}% of the {base_bytes}-byte base (limit {limit_percent}%)",
                percent(*unreachable_bytes, *base_bytes)
            ),
            Self::Requested => f.write_str("a new base was requested"),
        }
    }
}

fn percent(part: u64, whole: u64) -> u64 {
    part.saturating_mul(100).checked_div(whole).unwrap_or(100)
}

/// `part` is more than `limit_percent` of `whole`.
fn exceeds(part: u64, whole: u64, limit_percent: u64) -> bool {
    u128::from(part) * 100 > u128::from(whole) * u128::from(limit_percent)
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

/// A bundle written to a scratch file, not yet part of the chain.
#[derive(Debug)]
pub struct PendingLink {
    tmp: PathBuf,
    hash: String,
    objects: u64,
    bytes: u64,
    new_base: Option<NewBaseReason>,
    consolidated: bool,
}

impl PendingLink {
    /// Whether adding it replaces the whole chain.
    pub fn new_base(&self) -> Option<&NewBaseReason> {
        self.new_base.as_ref()
    }

    /// Adds the bundle to the chain in `chain_dir`: as the next link, or, for a new base, as link
    /// 0001 after removing every old link. Not atomic: callers mark their staging tree as being
    /// changed first (an interrupted commit leaves a chain that must not be stored).
    pub fn commit(self, chain_dir: &Path) -> Result<NewLink, GitError> {
        std::fs::create_dir_all(chain_dir)
            .map_err(|e| GitError::io(format!("creating {}", chain_dir.display()), e))?;
        let links = list_chain(chain_dir)?;
        let number = if self.new_base.is_some() {
            for link in &links {
                std::fs::remove_file(&link.path).map_err(|e| {
                    GitError::io(format!("removing old link {}", link.path.display()), e)
                })?;
            }
            1
        } else {
            u32::try_from(links.len() + 1).unwrap_or(u32::MAX)
        };
        let path = chain_dir.join(format!("{number:04}-{}.bundle", &self.hash[..16]));
        std::fs::rename(&self.tmp, &path)
            .map_err(|e| GitError::io(format!("renaming bundle to {}", path.display()), e))?;
        Ok(NewLink {
            link: ChainLink { number, path },
            objects: self.objects,
            bytes: self.bytes,
            new_base: self.new_base,
            consolidated: self.consolidated,
        })
    }

    /// Drops the scratch file without touching the chain.
    pub fn discard(self) {
        let _ = std::fs::remove_file(&self.tmp);
    }
}

impl Mirror {
    /// Works out the next link of the chain in `chain_dir` for the refs `current`, given the
    /// refs of the previous snapshot, and writes it to a scratch file in `work_dir` (emptied
    /// first; it must be on the same file system as `chain_dir`). Returns `None` when there is nothing to add
    /// (git refuses empty bundles, and an empty link would be noise).
    ///
    /// The next link is a new base when `force_base` is set or `policy` says the chain should
    /// start over; otherwise it holds the objects reachable from `current` but not from
    /// `previous`'s tips. Tips of `previous` that the mirror no longer has (history rewritten
    /// upstream and the cache rebuilt since) are left out of the exclusions rather than failing
    /// the bundle.
    pub fn prepare_link(
        &self,
        chain_dir: &Path,
        work_dir: &Path,
        previous: Option<&RefsFile>,
        current: &RefsFile,
        policy: &ChainPolicy,
        force_base: bool,
    ) -> Result<Option<PendingLink>, GitError> {
        if current.refs.is_empty() {
            return Ok(None);
        }
        // Scratch space only: whatever an interrupted run left there (a half-written bundle, the
        // `.lock` git keeps beside it) would make `git bundle create` refuse to run.
        match std::fs::remove_dir_all(work_dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(GitError::io(format!("clearing {}", work_dir.display()), e)),
        }
        std::fs::create_dir_all(work_dir)
            .map_err(|e| GitError::io(format!("creating {}", work_dir.display()), e))?;
        let tmp = work_dir.join("next.bundle");
        let links = list_chain(chain_dir)?;
        let Some(base) = links.first() else {
            // The first link of a chain is a base by nature, not a new one.
            return self.write_bundle(&tmp, current, &BTreeSet::new(), None);
        };
        let base_bytes = file_size(&base.path)?;
        let increments_bytes = links[1..]
            .iter()
            .map(|l| file_size(&l.path))
            .sum::<Result<u64, GitError>>()?;

        let old_tips = previous.map(RefsFile::tips).unwrap_or_default();
        let current_tips = current.tips();
        let mut reason = force_base.then_some(NewBaseReason::Requested);
        if reason.is_none() && old_tips.iter().any(|t| !current_tips.contains(t)) {
            let unreachable_bytes = self.unreachable_bytes(&links, current)?;
            if unreachable_bytes > 0
                && exceeds(
                    unreachable_bytes,
                    base_bytes,
                    policy.max_unreachable_percent,
                )
            {
                reason = Some(NewBaseReason::Rewritten {
                    unreachable_bytes,
                    base_bytes,
                    limit_percent: policy.max_unreachable_percent,
                });
            }
        }
        let excluded = self.existing_objects(old_tips.iter().copied())?;
        if let Some(reason) = reason {
            return self.fresh_base(work_dir, current, &links, reason);
        }
        if current_tips.iter().all(|t| excluded.contains(*t)) {
            return Ok(None);
        }
        let Some(next) = self.write_bundle(&tmp, current, &excluded, None)? else {
            return Ok(None);
        };
        let total = increments_bytes.saturating_add(next.bytes);
        let reason = if links.len() >= policy.max_links {
            NewBaseReason::ChainLength {
                links: links.len(),
                limit: policy.max_links,
            }
        } else if exceeds(total, base_bytes, policy.max_increments_percent) {
            NewBaseReason::Increments {
                increments_bytes: total,
                base_bytes,
                limit_percent: policy.max_increments_percent,
            }
        } else {
            return Ok(Some(next));
        };
        // The chain and the new link put together: the store already has almost all of it.
        let mut parts: Vec<PathBuf> = links.iter().map(|l| l.path.clone()).collect();
        parts.push(next.tmp.clone());
        let base_tmp = work_dir.join("base.bundle");
        let consolidated = self.unreachable_heads(&parts, current).and_then(|history| {
            crate::consolidate::consolidate(
                &self.path().join("objects"),
                &parts,
                current,
                &history,
                &work_dir.join("consolidate"),
                &base_tmp,
            )
        });
        next.discard();
        match consolidated {
            Ok(()) => {
                let (hash, bytes, objects) = inspect_bundle(&base_tmp)?;
                Ok(Some(PendingLink {
                    tmp: base_tmp,
                    hash,
                    objects,
                    bytes,
                    new_base: Some(reason),
                    consolidated: true,
                }))
            }
            Err(e) => {
                tracing::warn!(
                    "could not put the chain of {} together ({e}); writing a fresh base",
                    self.path().display()
                );
                let _ = std::fs::remove_file(&base_tmp);
                self.fresh_base(work_dir, current, &links, reason)
            }
        }
    }

    /// A new base packed afresh from the refs: only what they reach, nothing the chain carried
    /// for refs that are gone.
    fn fresh_base(
        &self,
        work_dir: &Path,
        current: &RefsFile,
        links: &[ChainLink],
        reason: NewBaseReason,
    ) -> Result<Option<PendingLink>, GitError> {
        let tmp = work_dir.join("base.bundle");
        let pending = self.write_bundle(&tmp, current, &BTreeSet::new(), Some(reason))?;
        // A requested base identical to a chain of one link would change nothing.
        if let (Some(p), [only]) = (&pending, links) {
            if only_link_hash(only).is_some_and(|h| p.hash.starts_with(h)) {
                if let Some(p) = pending {
                    p.discard();
                }
                return Ok(None);
            }
        }
        Ok(pending)
    }

    /// `git bundle create` of every ref of `refs` minus the objects reachable from `excluded`,
    /// into `tmp`.
    fn write_bundle(
        &self,
        tmp: &Path,
        refs: &RefsFile,
        excluded: &BTreeSet<String>,
        new_base: Option<NewBaseReason>,
    ) -> Result<Option<PendingLink>, GitError> {
        let mut input = String::new();
        for name in refs.refs.keys() {
            input.push_str(name);
            input.push('\n');
        }
        for oid in excluded {
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
            let _ = std::fs::remove_file(tmp);
            if out.stderr.contains("Refusing to create empty bundle") {
                return Ok(None);
            }
            return Err(GitError::Command {
                operation: "bundle create".into(),
                kind: crate::error::classify(&out.stderr),
                message: out.stderr.trim().to_owned(),
            });
        }
        let (hash, bytes, objects) = inspect_bundle(tmp)?;
        Ok(Some(PendingLink {
            tmp: tmp.to_owned(),
            hash,
            objects,
            bytes,
            new_base,
            consolidated: false,
        }))
    }

    /// The heads recorded in `links` that the refs of `current` no longer reach. A consolidated
    /// base names them (as `refs/repovault-history/<oid>`), so that what the chain carries for
    /// them is still counted as unreachable later.
    fn unreachable_heads(
        &self,
        links: &[PathBuf],
        current: &RefsFile,
    ) -> Result<Vec<String>, GitError> {
        let current_tips = current.tips();
        let mut heads = BTreeSet::new();
        for link in links {
            heads.extend(bundle_heads(link)?);
        }
        heads.retain(|h| !current_tips.contains(h.as_str()));
        if heads.is_empty() {
            return Ok(Vec::new());
        }
        let input: String = heads.iter().map(|h| format!("{h}\n")).collect();
        let out = self
            .git("cat-file")
            .args(["cat-file", "--batch-check=%(objectname) %(objecttype)"])
            .stdin(input.into_bytes())
            .run()?;
        let mut commits = Vec::new();
        let mut others = Vec::new();
        for line in out.stdout_str().lines() {
            match line.split_once(' ') {
                Some((oid, "commit")) => commits.push(oid.to_owned()),
                Some((_, "missing")) | None => {}
                // A tag (or tree, blob) that is not a current tip is reachable from nothing.
                Some((oid, _)) => others.push(oid.to_owned()),
            }
        }
        if !commits.is_empty() {
            let mut input: String = commits.iter().map(|c| format!("{c}\n")).collect();
            for t in self.existing_objects(current_tips.iter().copied())? {
                input.push_str(&format!("^{t}\n"));
            }
            let out = self
                .git("rev-list")
                .args(["rev-list", "--stdin"])
                .stdin(input.into_bytes())
                .run()?;
            let walked: BTreeSet<String> = out.stdout_str().lines().map(str::to_owned).collect();
            others.extend(commits.into_iter().filter(|c| walked.contains(c)));
        }
        others.sort();
        Ok(others)
    }

    /// Bytes (on disk in the mirror) of the objects the chain's links carry that `current`'s
    /// refs no longer reach: what a new base would leave behind.
    fn unreachable_bytes(&self, links: &[ChainLink], current: &RefsFile) -> Result<u64, GitError> {
        let mut heads = BTreeSet::new();
        for link in links {
            heads.extend(bundle_heads(&link.path)?);
        }
        let current_tips = current.tips();
        heads.retain(|h| !current_tips.contains(h.as_str()));
        let heads = self.existing_objects(heads.iter().map(String::as_str))?;
        if heads.is_empty() {
            return Ok(0);
        }
        let mut input = String::new();
        for h in &heads {
            input.push_str(h);
            input.push('\n');
        }
        for t in self.existing_objects(current_tips.iter().copied())? {
            input.push('^');
            input.push_str(&t);
            input.push('\n');
        }
        // Plain `--objects` only excludes what the walk's edge commits reach, so the tree of an
        // excluded sibling (a force-pushed branch's new tip) would count as unreachable; the
        // aggressive edge marking excludes the trees of every excluded commit. It prints the
        // edges as `-<oid>` lines before the total.
        let out = self
            .git("rev-list")
            .args([
                "rev-list",
                "--objects-edge-aggressive",
                "--disk-usage",
                "--stdin",
            ])
            .stdin(input.into_bytes())
            .run()?;
        let text = out.stdout_str();
        let total = text
            .lines()
            .rev()
            .find(|l| !l.starts_with('-'))
            .unwrap_or("");
        total.trim().parse::<u64>().map_err(|_| GitError::Command {
            operation: "rev-list --disk-usage".into(),
            kind: crate::FailureKind::Tooling,
            message: format!(
                "unexpected output {:?} (git 2.31 or newer is needed)",
                total.trim()
            ),
        })
    }
}

fn file_size(path: &Path) -> Result<u64, GitError> {
    std::fs::metadata(path)
        .map(|m| m.len())
        .map_err(|e| GitError::io(format!("reading {}", path.display()), e))
}

/// The hash prefix in a link's file name.
fn only_link_hash(link: &ChainLink) -> Option<&str> {
    link.path
        .file_name()?
        .to_str()?
        .strip_suffix(".bundle")?
        .split_once('-')
        .map(|(_, h)| h)
}

/// The object ids of the refs a bundle carries, from its header (`<oid> <refname>` lines, after
/// the signature and capability lines and before the blank line that starts the pack).
pub fn bundle_heads(path: &Path) -> Result<BTreeSet<String>, GitError> {
    let io = |e| GitError::io(format!("reading bundle {}", path.display()), e);
    let file = std::fs::File::open(path).map_err(io)?;
    // Bounded: a header lists refs, and even 100k refs stay far below this.
    let mut reader = std::io::BufReader::new(file).take(256 << 20);
    let mut heads = BTreeSet::new();
    let mut line = Vec::new();
    let mut first = true;
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line).map_err(io)?;
        if n == 0 || line == b"\n" {
            break;
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches('\n');
        if first {
            if !text.starts_with("# v") || !text.ends_with(" git bundle") {
                return Err(GitError::Command {
                    operation: format!("reading bundle {}", path.display()),
                    kind: crate::FailureKind::Corrupt,
                    message: "not a git bundle".into(),
                });
            }
            first = false;
            continue;
        }
        if text.starts_with('@') || text.starts_with('-') {
            continue;
        }
        if let Some((oid, _name)) = text.split_once(' ') {
            if crate::refs::check_oid(oid).is_ok() {
                heads.insert(oid.to_owned());
            }
        }
    }
    Ok(heads)
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
