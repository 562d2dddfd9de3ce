//! `[[source]]`: where repositories come from and how to reach them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use secrecy::SecretString;
use serde::Deserialize;

use super::github::{GithubSource, GithubToml};
use super::ConfigError;
use crate::secret::SecretSource;
use crate::RepoName;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// Plain git remotes listed by URL.
    Git,
    /// GitHub or GitHub Enterprise Server, discovered through its API.
    Github,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Git => "git",
            Self::Github => "github",
        }
    }
}

/// One `[[source]]`. The keys allowed depend on `kind`; unknown keys are errors for each kind.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "toml::Table")]
pub struct SourceConfig {
    pub name: String,
    pub kind: SourceKind,
    #[serde(default)]
    pub urls: Vec<String>,
    /// Snapshot host; default: the URLs' host (`local` for paths).
    pub host: Option<String>,
    /// HTTP user name sent with the token; default `git`.
    pub username: Option<String>,
    pub token: Option<String>,
    pub token_file: Option<PathBuf>,
    pub token_command: Option<String>,
    pub token_env: Option<String>,
    pub ssh_key_file: Option<PathBuf>,
    pub known_hosts_file: Option<PathBuf>,
    /// The GitHub keys, for `kind = "github"`.
    pub github: Option<GithubSource>,
}

/// The TOML shape of a plain git source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct GitToml {
    name: String,
    kind: SourceKind,
    #[serde(default)]
    urls: Vec<String>,
    host: Option<String>,
    username: Option<String>,
    token: Option<String>,
    token_file: Option<PathBuf>,
    token_command: Option<String>,
    token_env: Option<String>,
    ssh_key_file: Option<PathBuf>,
    known_hosts_file: Option<PathBuf>,
}

impl TryFrom<toml::Table> for SourceConfig {
    type Error = String;

    fn try_from(table: toml::Table) -> Result<Self, String> {
        let name = table
            .get("name")
            .and_then(|v| v.as_str())
            .unwrap_or("?")
            .to_owned();
        let ctx = |e: toml::de::Error| format!("source {name:?}: {}", e.message());
        match table.get("kind").and_then(|v| v.as_str()) {
            Some("github") => {
                let g: GithubToml = toml::Value::Table(table).try_into().map_err(ctx)?;
                Ok(Self {
                    name: g.name.clone(),
                    kind: SourceKind::Github,
                    urls: Vec::new(),
                    host: g.host.clone(),
                    username: None,
                    token: g.token.clone(),
                    token_file: g.token_file.clone(),
                    token_command: g.token_command.clone(),
                    token_env: g.token_env.clone(),
                    ssh_key_file: None,
                    known_hosts_file: None,
                    github: Some(g.options()),
                })
            }
            _ => {
                let g: GitToml = toml::Value::Table(table).try_into().map_err(ctx)?;
                Ok(Self {
                    name: g.name,
                    kind: g.kind,
                    urls: g.urls,
                    host: g.host,
                    username: g.username,
                    token: g.token,
                    token_file: g.token_file,
                    token_command: g.token_command,
                    token_env: g.token_env,
                    ssh_key_file: g.ssh_key_file,
                    known_hosts_file: g.known_hosts_file,
                    github: None,
                })
            }
        }
    }
}

impl SourceConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: String| ConfigError::Invalid(format!("source {:?}: {m}", self.name));
        if self.name.is_empty() || self.name.chars().any(|c| c.is_control() || c == ',') {
            return Err(invalid(
                "the name must be non-empty, without commas or control characters".into(),
            ));
        }
        let token_sources = [
            self.token.is_some(),
            self.token_file.is_some(),
            self.token_command.is_some(),
            self.token_env.is_some(),
        ];
        if token_sources.iter().filter(|b| **b).count() > 1 {
            return Err(invalid(
                "give only one of token, token_file, token_command, token_env".into(),
            ));
        }
        if self.ssh_key_file.is_some() != self.known_hosts_file.is_some() {
            return Err(invalid(
                "ssh_key_file and known_hosts_file go together (host keys are always verified)"
                    .into(),
            ));
        }
        if self.kind == SourceKind::Github {
            let g = self
                .github
                .as_ref()
                .ok_or_else(|| invalid("the GitHub keys are missing".into()))?;
            return g
                .validate(token_sources.iter().any(|b| *b))
                .map_err(invalid);
        }
        if self.kind == SourceKind::Git && self.urls.is_empty() {
            return Err(invalid(
                "a git source needs at least one URL in `urls`".into(),
            ));
        }
        let mut seen = BTreeMap::new();
        for url in &self.urls {
            let remote =
                repovault_git::RemoteUrl::parse(url).map_err(|e| invalid(e.to_string()))?;
            let name = RepoName::from_url(&remote).map_err(|e| invalid(e.to_string()))?;
            if let Some(other) = seen.insert(name.clone(), remote.to_string()) {
                return Err(invalid(format!(
                    "{remote} and {other} would both be stored as {name}"
                )));
            }
        }
        Ok(())
    }

    /// Where this source's token comes from, if it has one.
    pub fn token_source(&self) -> Option<SecretSource> {
        SecretSource::from_options(
            self.token.as_deref(),
            self.token_file.as_deref(),
            self.token_command.as_deref(),
            self.token_env.as_deref(),
        )
    }

    pub fn resolve_token(&self) -> Result<Option<SecretString>, ConfigError> {
        Ok(self.token_source().map(|s| s.resolve()).transpose()?)
    }
}
