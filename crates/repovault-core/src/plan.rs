//! Turning configured sources into the list of repositories one run backs up.

use repovault_git::{GitAuth, RemoteUrl};

use crate::config::{Config, ConfigError, SourceConfig, SourceKind};
use crate::RepoName;

/// One repository to back up, with everything needed to reach it.
#[derive(Debug, Clone)]
pub struct RepoJob {
    pub source: String,
    pub kind: SourceKind,
    /// Snapshot host: the forge or git server the repository lives on.
    pub host: String,
    pub name: RepoName,
    pub url: RemoteUrl,
    pub auth: GitAuth,
}

/// Resolves every source (or only `only_source`) into jobs. Secrets are read here, once per run.
pub fn plan(config: &Config, only_source: Option<&str>) -> Result<Vec<RepoJob>, ConfigError> {
    if let Some(name) = only_source {
        if !config.sources.iter().any(|s| s.name == name) {
            return Err(ConfigError::Invalid(format!("no source named {name:?}")));
        }
    }
    let mut jobs = Vec::new();
    for source in config
        .sources
        .iter()
        .filter(|s| only_source.is_none_or(|n| n == s.name))
    {
        match source.kind {
            SourceKind::Git => jobs.extend(plan_git(source)?),
        }
    }
    Ok(jobs)
}

fn plan_git(source: &SourceConfig) -> Result<Vec<RepoJob>, ConfigError> {
    let invalid = |m: String| ConfigError::Invalid(format!("source {:?}: {m}", source.name));
    let token = source.resolve_token()?;
    let mut jobs = Vec::new();
    for url in &source.urls {
        let url = RemoteUrl::parse(url).map_err(|e| invalid(e.to_string()))?;
        let name = RepoName::from_url(&url).map_err(|e| invalid(e.to_string()))?;
        let auth = match (&token, &source.ssh_key_file, &source.known_hosts_file) {
            (Some(token), _, _) if url.transport() == repovault_git::Transport::Http => {
                GitAuth::HttpToken {
                    username: source.username.clone().unwrap_or_else(|| "git".into()),
                    token: token.clone(),
                }
            }
            (_, Some(key), Some(kh)) if url.transport() == repovault_git::Transport::Ssh => {
                GitAuth::Ssh {
                    key_file: key.clone(),
                    known_hosts: kh.clone(),
                }
            }
            _ => GitAuth::None,
        };
        let host = source
            .host
            .clone()
            .or_else(|| url.host())
            .unwrap_or_else(|| "local".into());
        jobs.push(RepoJob {
            source: source.name.clone(),
            kind: source.kind,
            host,
            name,
            url,
            auth,
        });
    }
    Ok(jobs)
}

/// One of `count` shards of a run: the repositories whose stable hash falls in it. Several
/// processes (a Kubernetes Indexed Job) each take one shard and write the same store.
///
/// The hash is SHA-256 of `<host>/<owner>/<name>` (the snapshot host and the repository name),
/// its first 8 bytes read as a big-endian integer, modulo `count`. It does not depend on the
/// order of sources or URLs in the config, so a repository stays in its shard (and with the
/// cache of that shard) as the config changes around it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// Parses `I/N` with `0 <= I < N`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| format!("shard {s:?} is not of the form I/N (e.g. 0/4)"))?;
        let index: u32 = i
            .trim()
            .parse()
            .map_err(|_| format!("shard index {i:?} is not a number"))?;
        let count: u32 = n
            .trim()
            .parse()
            .map_err(|_| format!("shard count {n:?} is not a number"))?;
        if count == 0 || index >= count {
            return Err(format!(
                "shard {s:?}: the index must be between 0 and the count minus one"
            ));
        }
        Ok(Self { index, count })
    }

    /// The shard (0-based) a repository falls in among `count`.
    pub fn of(host: &str, name: &RepoName, count: u32) -> u32 {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(format!("{host}/{name}").as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        u32::try_from(u64::from_be_bytes(first) % u64::from(count.max(1))).unwrap_or(0)
    }

    pub fn contains(&self, job: &RepoJob) -> bool {
        Self::of(&job.host, &job.name, self.count) == self.index
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_syntax() {
        assert_eq!(Shard::parse("0/4"), Ok(Shard { index: 0, count: 4 }));
        assert_eq!(Shard::parse("3/4").map(|s| s.to_string()), Ok("3/4".into()));
        for bad in ["4/4", "1/0", "x/2", "1", "-1/3", "", "1/2/3"] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn shards_are_stable_disjoint_and_cover_everything() {
        // Fixed values: the assignment is part of the deployment contract and must not drift.
        let name = RepoName::parse("acme/app").expect("valid");
        assert_eq!(Shard::of("github.com", &name, 1), 0);
        let pinned = Shard::of("github.com", &name, 4);
        assert_eq!(pinned, Shard::of("github.com", &name, 4));
        // sha256("github.com/acme/app"), first 8 bytes, mod 4.
        let digest = {
            use sha2::{Digest, Sha256};
            Sha256::digest(b"github.com/acme/app")
        };
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        assert_eq!(u64::from(pinned), u64::from_be_bytes(first) % 4);

        let mut per_shard = [0usize; 4];
        for i in 0..400 {
            let name = RepoName::parse(&format!("org{}/repo{i}", i % 7)).expect("valid");
            let owners: Vec<u32> = (0..4)
                .filter(|&k| {
                    let s = Shard { index: k, count: 4 };
                    Shard::of("h", &name, s.count) == s.index
                })
                .collect();
            assert_eq!(owners.len(), 1, "exactly one shard per repository");
            per_shard[owners[0] as usize] += 1;
        }
        assert!(per_shard.iter().all(|&n| n > 50), "{per_shard:?}");
        // The host is part of the key: the same name elsewhere is another repository.
        let spread: std::collections::BTreeSet<u32> = (0..32)
            .map(|i| Shard::of(&format!("host{i}"), &name, 4))
            .collect();
        assert!(spread.len() > 1);
    }
}
