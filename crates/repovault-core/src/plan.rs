//! Turning configured sources into the list of repositories one run backs up.
//!
//! Plain git sources list their URLs. Forge sources are discovered through the forge's API; a
//! source (or one org or user of it) that cannot be listed is reported and the run goes on with
//! the others. Names and URLs from a forge are untrusted: [`RepoName`] checks every name.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use repovault_forge::{
    AppCredentials, Credentials, Forge, ListCache, MetaCapture, RemoteGist, RemoteRepo,
    RetryPolicy, Selection,
};
use repovault_git::{GitAuth, RemoteUrl};
use secrecy::SecretString;
use serde::Serialize;

use crate::config::{Capture, Config, ConfigError, GithubSource, SourceConfig, SourceKind};
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
    /// Git credentials; for forge jobs the current token is asked for when the job starts.
    pub auth: GitAuth,
    /// Set for repositories and gists found through a forge API.
    pub forge: Option<ForgeJob>,
}

/// The forge side of a job.
#[derive(Debug, Clone)]
pub struct ForgeJob {
    pub forge: Arc<dyn Forge>,
    pub runtime: tokio::runtime::Handle,
    pub item: ForgeItem,
    pub parts: Parts,
    pub ca_bundle: Option<PathBuf>,
    pub full_pass_interval: Duration,
}

#[derive(Debug, Clone)]
pub enum ForgeItem {
    Repo(RemoteRepo),
    Gist(RemoteGist),
}

impl ForgeItem {
    /// The account whose credentials reach this item.
    pub fn owner(&self) -> &str {
        match self {
            Self::Repo(r) => &r.owner,
            Self::Gist(g) => &g.owner,
        }
    }
}

/// What a forge job captures.
#[derive(Debug, Clone, Copy)]
pub struct Parts {
    pub git: bool,
    pub wiki: bool,
    pub lfs: bool,
    pub meta: MetaCapture,
}

/// Everything one run covers, and what listing each source found.
#[derive(Debug)]
pub struct RunPlan {
    pub jobs: Vec<RepoJob>,
    pub sources: Vec<SourcePlan>,
}

/// One source's listing, for the run report.
#[derive(Debug, Clone)]
pub struct SourcePlan {
    pub name: String,
    pub kind: SourceKind,
    /// The forge client, whose request figures go into the report after the run.
    pub forge: Option<Arc<dyn Forge>>,
    /// Repositories the forge listed, before filters.
    pub listed: usize,
    pub failures: Vec<ListingFailure>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ListingFailure {
    /// What could not be listed (`org acme`, `user bob`, `gists of bob`, …).
    pub target: String,
    pub kind: String,
    pub message: String,
    pub retryable: bool,
}

/// Resolves plain git sources (or only `only_source`) into jobs. Forge sources need
/// [`plan_run`], which can reach the network.
pub fn plan(config: &Config, only_source: Option<&str>) -> Result<Vec<RepoJob>, ConfigError> {
    check_only(config, only_source)?;
    let mut jobs = Vec::new();
    for source in selected(config, only_source) {
        match source.kind {
            SourceKind::Git => jobs.extend(plan_git(source)?),
            SourceKind::Github => {
                return Err(ConfigError::Invalid(format!(
                    "source {:?} is a forge source and needs discovery",
                    source.name
                )))
            }
        }
    }
    Ok(jobs)
}

/// Settings of the forge clients a run builds.
#[derive(Debug, Clone, Default)]
pub struct ForgeSettings {
    /// Listing pages are kept here between runs (`<dir>/<source>.json`), for conditional
    /// requests.
    pub list_cache_dir: Option<PathBuf>,
    pub policy: RetryPolicy,
}

/// Resolves every source into jobs, listing forge sources through their APIs on `runtime`.
/// Secrets are read here, once per run. Configuration mistakes are errors; a forge that cannot
/// be listed is recorded in its [`SourcePlan`].
pub fn plan_run(
    config: &Config,
    only_source: Option<&str>,
    runtime: &tokio::runtime::Handle,
    settings: &ForgeSettings,
) -> Result<RunPlan, ConfigError> {
    check_only(config, only_source)?;
    let mut run = RunPlan {
        jobs: Vec::new(),
        sources: Vec::new(),
    };
    for source in selected(config, only_source) {
        match source.kind {
            SourceKind::Git => {
                let jobs = plan_git(source)?;
                run.sources.push(SourcePlan {
                    name: source.name.clone(),
                    kind: source.kind,
                    forge: None,
                    listed: jobs.len(),
                    failures: Vec::new(),
                });
                run.jobs.extend(jobs);
            }
            SourceKind::Github => {
                let (jobs, sp) = plan_github(source, runtime, settings)?;
                run.jobs.extend(jobs);
                run.sources.push(sp);
            }
        }
    }
    Ok(run)
}

fn check_only(config: &Config, only_source: Option<&str>) -> Result<(), ConfigError> {
    if let Some(name) = only_source {
        if !config.sources.iter().any(|s| s.name == name) {
            return Err(ConfigError::Invalid(format!("no source named {name:?}")));
        }
    }
    Ok(())
}

fn selected<'a>(
    config: &'a Config,
    only_source: Option<&'a str>,
) -> impl Iterator<Item = &'a SourceConfig> + 'a {
    config
        .sources
        .iter()
        .filter(move |s| only_source.is_none_or(|n| n == s.name))
}

fn plan_github(
    source: &SourceConfig,
    runtime: &tokio::runtime::Handle,
    settings: &ForgeSettings,
) -> Result<(Vec<RepoJob>, SourcePlan), ConfigError> {
    let invalid = |m: String| ConfigError::Invalid(format!("source {:?}: {m}", source.name));
    let gh = source
        .github
        .as_ref()
        .ok_or_else(|| invalid("the GitHub keys are missing".into()))?;
    let credentials = github_credentials(source, gh)?;
    let client = repovault_forge::http::ClientConfig {
        api_url: gh.api_url.clone(),
        ca_bundle: gh.ca_bundle.clone(),
        credentials,
        policy: settings.policy.clone(),
    };
    let forge: Arc<dyn Forge> =
        Arc::new(repovault_forge::github::GitHub::new(client).map_err(|e| invalid(e.to_string()))?);
    let selection = Selection {
        orgs: gh.orgs.clone(),
        users: gh.users.clone(),
        starred_by: gh.starred_by.clone(),
        repos: gh.repos.clone(),
    };
    let cache_file = settings
        .list_cache_dir
        .as_ref()
        .map(|d| d.join(format!("{}.json", crate::backup::path_safe(&source.name))));
    let mut cache = cache_file
        .as_deref()
        .and_then(load_list_cache)
        .unwrap_or_default();
    let found = runtime.block_on(forge.discover(&selection, &mut cache));
    let mut failures: Vec<ListingFailure> = found
        .failures
        .iter()
        .map(|(target, e)| ListingFailure {
            target: target.clone(),
            kind: kind_name(e),
            message: e.to_string(),
            retryable: e.is_retryable(),
        })
        .collect();
    let filter = gh.filter()?;
    let parts = Parts {
        git: gh.captures(Capture::Git),
        wiki: gh.captures(Capture::Wiki),
        lfs: gh.captures(Capture::Lfs),
        meta: MetaCapture {
            issues: gh.captures(Capture::Issues),
            pulls: gh.captures(Capture::Pulls),
            releases: gh.captures(Capture::Releases),
            labels: gh.captures(Capture::Labels),
            milestones: gh.captures(Capture::Milestones),
            hooks: gh.captures(Capture::Hooks),
        },
    };
    let host = source
        .host
        .clone()
        .unwrap_or_else(|| forge.host().to_owned());
    let job = |name: RepoName, url: RemoteUrl, item: ForgeItem, parts: Parts| RepoJob {
        source: source.name.clone(),
        kind: source.kind,
        host: host.clone(),
        name,
        url,
        auth: GitAuth::None,
        forge: Some(ForgeJob {
            forge: forge.clone(),
            runtime: runtime.clone(),
            item,
            parts,
            ca_bundle: gh.ca_bundle.clone(),
            full_pass_interval: gh.full_pass_interval.get(),
        }),
    };
    let mut jobs = Vec::new();
    let listed = found.repos.len();
    for repo in found.repos {
        let full = repo.full_name();
        if !filter.keeps(&full, repo.fork, repo.archived) {
            continue;
        }
        let checked = RepoName::new(&repo.owner, &repo.name)
            .map_err(|e| e.to_string())
            .and_then(|n| {
                RemoteUrl::parse(&repo.clone_url)
                    .map(|u| (n, u))
                    .map_err(|e| e.to_string())
            });
        match checked {
            Ok((name, url)) => jobs.push(job(name, url, ForgeItem::Repo(repo), parts)),
            Err(message) => failures.push(ListingFailure {
                target: format!("repository {}", full.chars().take(120).collect::<String>()),
                kind: "invalid".into(),
                message,
                retryable: false,
            }),
        }
    }
    if gh.captures(Capture::Gists) {
        let gist_parts = Parts {
            git: true,
            wiki: false,
            lfs: false,
            meta: MetaCapture::default(),
        };
        for user in &gh.users {
            match runtime.block_on(forge.gists(user, &mut cache)) {
                Ok(gists) => {
                    for gist in gists {
                        let checked = RepoName::new(user, &format!("gist:{}", gist.id))
                            .map_err(|e| e.to_string())
                            .and_then(|n| {
                                RemoteUrl::parse(&gist.git_url)
                                    .map(|u| (n, u))
                                    .map_err(|e| e.to_string())
                            });
                        match checked {
                            Ok((name, url)) => {
                                jobs.push(job(name, url, ForgeItem::Gist(gist), gist_parts));
                            }
                            Err(message) => failures.push(ListingFailure {
                                target: format!("gist {} of {user}", gist.id),
                                kind: "invalid".into(),
                                message,
                                retryable: false,
                            }),
                        }
                    }
                }
                Err(e) => failures.push(ListingFailure {
                    target: format!("gists of {user}"),
                    kind: kind_name(&e),
                    message: e.to_string(),
                    retryable: e.is_retryable(),
                }),
            }
        }
    }
    if let Some(path) = &cache_file {
        if let Err(e) = save_list_cache(path, &cache) {
            tracing::warn!("could not keep the listing cache {}: {e}", path.display());
        }
    }
    Ok((
        jobs,
        SourcePlan {
            name: source.name.clone(),
            kind: source.kind,
            forge: Some(forge),
            listed,
            failures,
        },
    ))
}

fn github_credentials(
    source: &SourceConfig,
    gh: &GithubSource,
) -> Result<Credentials, ConfigError> {
    if let (Some(app_id), Some(key_file)) = (&gh.app_id, &gh.private_key_file) {
        let pem = std::fs::read_to_string(key_file).map_err(|e| {
            ConfigError::Invalid(format!(
                "source {:?}: reading private_key_file {}: {e}",
                source.name,
                key_file.display()
            ))
        })?;
        return Ok(Credentials::App(AppCredentials {
            app_id: app_id.clone(),
            private_key_pem: SecretString::from(pem),
            installation_ids: gh.installation_id.into_iter().collect(),
        }));
    }
    Ok(match source.resolve_token()? {
        Some(t) => Credentials::Token(t),
        None => Credentials::Anonymous,
    })
}

pub(crate) fn kind_name(e: &repovault_forge::ForgeError) -> String {
    serde_json::to_value(e.kind())
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| "other".into())
}

fn load_list_cache(path: &Path) -> Option<ListCache> {
    let text = std::fs::read(path).ok()?;
    serde_json::from_slice(&text).ok()
}

fn save_list_cache(path: &Path, cache: &ListCache) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(&serde_json::to_vec(cache).map_err(std::io::Error::other)?)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
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
            forge: None,
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
