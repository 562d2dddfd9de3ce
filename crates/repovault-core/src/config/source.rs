//! `[[source]]`: where repositories come from and how to reach them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use secrecy::SecretString;
use serde::Deserialize;

use super::ConfigError;
use crate::secret::SecretSource;
use crate::RepoName;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// Plain git remotes listed by URL.
    Git,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Git => "git",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
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
