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
