//! `[[source]] kind = "github"`: GitHub and GitHub Enterprise Server.

use std::path::PathBuf;

use serde::Deserialize;

use super::{ConfigError, HumanDuration};

/// What a GitHub source captures per repository (`capture = [...]`, default: everything).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Capture {
    Git,
    Wiki,
    Lfs,
    Issues,
    Pulls,
    Releases,
    Labels,
    Milestones,
    Hooks,
    Gists,
}

impl Capture {
    pub const ALL: [Capture; 10] = [
        Self::Git,
        Self::Wiki,
        Self::Lfs,
        Self::Issues,
        Self::Pulls,
        Self::Releases,
        Self::Labels,
        Self::Milestones,
        Self::Hooks,
        Self::Gists,
    ];
}

/// The GitHub-only keys of a source (the token keys, `name`, `kind` and `host` are shared).
#[derive(Debug, Clone)]
pub struct GithubSource {
    /// `https://api.github.com` or `https://<host>/api/v3`.
    pub api_url: String,
    pub ca_bundle: Option<PathBuf>,
    pub app_id: Option<String>,
    pub private_key_file: Option<PathBuf>,
    pub installation_id: Option<u64>,
    pub orgs: Vec<String>,
    pub users: Vec<String>,
    pub starred_by: Vec<String>,
    pub repos: Vec<String>,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub skip_forks: bool,
    pub skip_archived: bool,
    pub capture: Vec<Capture>,
    pub full_pass_interval: HumanDuration,
}

pub const DEFAULT_API_URL: &str = "https://api.github.com";
/// A week: issues, comments and reviews are walked completely (conditionally) this often.
pub const DEFAULT_FULL_PASS: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

/// The TOML shape of a GitHub source.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct GithubToml {
    pub name: String,
    #[allow(dead_code)]
    pub kind: String,
    pub host: Option<String>,
    pub api_url: Option<String>,
    pub ca_bundle: Option<PathBuf>,
    pub token: Option<String>,
    pub token_file: Option<PathBuf>,
    pub token_command: Option<String>,
    pub token_env: Option<String>,
    pub app_id: Option<AppId>,
    pub private_key_file: Option<PathBuf>,
    pub installation_id: Option<u64>,
    #[serde(default)]
    pub orgs: Vec<String>,
    #[serde(default)]
    pub users: Vec<String>,
    #[serde(default)]
    pub starred_by: Vec<String>,
    #[serde(default)]
    pub repos: Vec<String>,
    #[serde(default)]
    pub include: Vec<String>,
    #[serde(default)]
    pub exclude: Vec<String>,
    #[serde(default)]
    pub skip_forks: bool,
    #[serde(default)]
    pub skip_archived: bool,
    pub capture: Option<Vec<Capture>>,
    pub full_pass_interval: Option<HumanDuration>,
}

/// An App id as a number (`123`) or a string (a client id such as `"Iv1.abc"`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(super) enum AppId {
    Number(u64),
    Text(String),
}

impl GithubToml {
    pub fn options(&self) -> GithubSource {
        GithubSource {
            api_url: self
                .api_url
                .clone()
                .unwrap_or_else(|| DEFAULT_API_URL.into()),
            ca_bundle: self.ca_bundle.clone(),
            app_id: self.app_id.as_ref().map(|a| match a {
                AppId::Number(n) => n.to_string(),
                AppId::Text(s) => s.clone(),
            }),
            private_key_file: self.private_key_file.clone(),
            installation_id: self.installation_id,
            orgs: self.orgs.clone(),
            users: self.users.clone(),
            starred_by: self.starred_by.clone(),
            repos: self.repos.clone(),
            include: self.include.clone(),
            exclude: self.exclude.clone(),
            skip_forks: self.skip_forks,
            skip_archived: self.skip_archived,
            capture: self
                .capture
                .clone()
                .unwrap_or_else(|| Capture::ALL.to_vec()),
            full_pass_interval: self
                .full_pass_interval
                .unwrap_or(HumanDuration(DEFAULT_FULL_PASS)),
        }
    }
}

impl GithubSource {
    pub fn captures(&self, c: Capture) -> bool {
        self.capture.contains(&c)
    }

    /// Checks what can be checked without network; `has_token` says whether a token key is set.
    pub(super) fn validate(&self, has_token: bool) -> Result<(), String> {
        let url = url_parts(&self.api_url).ok_or_else(|| {
            format!(
                "api_url {:?} is not an http(s) URL with a host",
                self.api_url
            )
        })?;
        if url {
            return Err(
                "api_url must not contain credentials; use token_file, token_command or token_env"
                    .into(),
            );
        }
        match (&self.app_id, &self.private_key_file) {
            (Some(_), None) | (None, Some(_)) => {
                return Err("app_id and private_key_file go together".into())
            }
            (Some(_), Some(_)) if has_token => {
                return Err(
                    "give either a token or App credentials (app_id, private_key_file), not both"
                        .into(),
                )
            }
            _ => {}
        }
        if self.installation_id.is_some() && self.app_id.is_none() {
            return Err("installation_id needs app_id and private_key_file".into());
        }
        let selects = !(self.orgs.is_empty()
            && self.users.is_empty()
            && self.starred_by.is_empty()
            && self.repos.is_empty());
        if !selects && self.app_id.is_none() {
            return Err("name what to back up: orgs, users, starred_by or repos (an App with none of them backs up every repository its installations can see)".into());
        }
        for name in self.orgs.iter().chain(&self.users).chain(&self.starred_by) {
            if !plain_name(name) {
                return Err(format!("{name:?} is not a GitHub account name"));
            }
        }
        for full in &self.repos {
            match full.split_once('/') {
                Some((o, n)) if plain_name(o) && plain_name(n) => {}
                _ => return Err(format!("repos: {full:?} is not owner/name")),
            }
        }
        for pattern in self.include.iter().chain(&self.exclude) {
            globset::Glob::new(pattern).map_err(|e| format!("glob {pattern:?}: {e}"))?;
        }
        if self.capture.is_empty() {
            return Err("capture is empty; leave it out to capture everything".into());
        }
        if self.full_pass_interval.get().is_zero() {
            return Err("full_pass_interval must be longer than zero".into());
        }
        Ok(())
    }

    /// `include`/`exclude` as one matcher on `owner/name`, case-insensitive like GitHub.
    pub fn filter(&self) -> Result<RepoFilter, ConfigError> {
        let build = |patterns: &[String]| {
            let mut b = globset::GlobSetBuilder::new();
            for p in patterns {
                let g = globset::GlobBuilder::new(p)
                    .case_insensitive(true)
                    .build()
                    .map_err(|e| ConfigError::Invalid(format!("glob {p:?}: {e}")))?;
                b.add(g);
            }
            b.build()
                .map_err(|e| ConfigError::Invalid(format!("globs: {e}")))
        };
        Ok(RepoFilter {
            include: if self.include.is_empty() {
                None
            } else {
                Some(build(&self.include)?)
            },
            exclude: build(&self.exclude)?,
            skip_forks: self.skip_forks,
            skip_archived: self.skip_archived,
        })
    }
}

/// Which listed repositories a source keeps.
#[derive(Debug, Clone)]
pub struct RepoFilter {
    include: Option<globset::GlobSet>,
    exclude: globset::GlobSet,
    skip_forks: bool,
    skip_archived: bool,
}

impl RepoFilter {
    pub fn keeps(&self, full_name: &str, fork: bool, archived: bool) -> bool {
        let skipped = (self.skip_forks && fork) || (self.skip_archived && archived);
        let included = self.include.as_ref().is_none_or(|i| i.is_match(full_name));
        !skipped && included && !self.exclude.is_match(full_name)
    }
}

/// Whether `s` parses as an http(s) URL with a host; `Some(true)` when it carries credentials.
fn url_parts(s: &str) -> Option<bool> {
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() {
        return None;
    }
    Some(authority.contains('@'))
}

fn plain_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 200
        && s != "."
        && s != ".."
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source() -> GithubSource {
        GithubToml {
            name: "s".into(),
            kind: "github".into(),
            host: None,
            api_url: None,
            ca_bundle: None,
            token: None,
            token_file: None,
            token_command: None,
            token_env: None,
            app_id: None,
            private_key_file: None,
            installation_id: None,
            orgs: vec!["acme".into()],
            users: vec![],
            starred_by: vec![],
            repos: vec![],
            include: vec![],
            exclude: vec!["acme/tmp-*".into()],
            skip_forks: true,
            skip_archived: false,
            capture: None,
            full_pass_interval: None,
        }
        .options()
    }

    #[test]
    fn filters_by_glob_fork_and_archive() {
        let s = source();
        assert!(s.validate(true).is_ok());
        let f = s.filter().expect("valid");
        assert!(f.keeps("acme/app", false, false));
        assert!(!f.keeps("acme/tmp-1", false, false));
        assert!(!f.keeps("ACME/TMP-x", false, false));
        assert!(!f.keeps("acme/app", true, false));
        assert!(f.keeps("acme/app", false, true));
        assert_eq!(s.capture.len(), 10);
        assert_eq!(s.full_pass_interval.get(), DEFAULT_FULL_PASS);
    }

    #[test]
    fn refuses_bad_combinations() {
        let mut s = source();
        s.api_url = "https://user:pw@ghe.example.com/api/v3".into();
        assert!(s.validate(true).is_err());
        let mut s = source();
        s.app_id = Some("1".into());
        assert!(s.validate(false).is_err(), "app_id without key");
        s.private_key_file = Some("k.pem".into());
        assert!(s.validate(false).is_ok());
        assert!(s.validate(true).is_err(), "token and App");
        let mut s = source();
        s.orgs.clear();
        assert!(s.validate(true).is_err(), "nothing selected");
        let mut s = source();
        s.repos = vec!["no-slash".into()];
        assert!(s.validate(true).is_err());
        let mut s = source();
        s.include = vec!["a/[".into()];
        assert!(s.validate(true).is_err());
    }
}
