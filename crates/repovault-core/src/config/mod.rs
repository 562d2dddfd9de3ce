//! The configuration file: its TOML shape, `${ENV}` expansion and validation.
//!
//! Unknown keys are errors (a typo must not silently disable a backup). Secrets may be given
//! inline, as `*_file` (read, trailing newline trimmed) or as `*_command` (run through `sh -c`,
//! its stdout used), so KMS, Vault or Kubernetes Secrets can supply them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

mod duration;
mod github;
mod source;

pub use duration::{parse_duration, HumanDuration};
pub use github::{Capture, GithubSource, RepoFilter, DEFAULT_API_URL, DEFAULT_FULL_PASS};
pub use source::{SourceConfig, SourceKind};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub store: StoreConfig,
    #[serde(default)]
    pub backup: BackupConfig,
    #[serde(default, rename = "source")]
    pub sources: Vec<SourceConfig>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// Local path, `s3:https://host/bucket/prefix` or `opendal:<service>`.
    pub url: Option<String>,
    pub password: Option<String>,
    pub password_file: Option<PathBuf>,
    pub password_command: Option<String>,
    /// Mirror caches; default `$XDG_CACHE_HOME/repovault` or `~/.cache/repovault`.
    pub cache_dir: Option<PathBuf>,
    /// Refuse to write to a local store with less free space than this (bytes).
    pub min_free_bytes: Option<u64>,
    /// Extra backend options passed to the storage backend (e.g. S3 `region`).
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupConfig {
    /// Repositories fetched at the same time.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Longest a single git transfer may run before it is stopped, in seconds.
    #[serde(default = "default_git_timeout")]
    pub git_timeout_secs: u64,
}

impl Default for BackupConfig {
    fn default() -> Self {
        Self {
            concurrency: default_concurrency(),
            git_timeout_secs: default_git_timeout(),
        }
    }
}

fn default_concurrency() -> usize {
    4
}

fn default_git_timeout() -> u64 {
    6 * 3600
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading config {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("config {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config {path}: environment variable {var} (used as ${{{var}}}) is not set")]
    MissingEnv { path: PathBuf, var: String },
    #[error("config: {0}")]
    Invalid(String),
    #[error("{0}")]
    Secret(#[from] crate::secret::SecretError),
}

impl Config {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Parses TOML text; `origin` is only used in messages.
    pub fn parse(text: &str, origin: &Path) -> Result<Self, ConfigError> {
        let parse_err = |message: String| ConfigError::Parse {
            path: origin.to_owned(),
            message,
        };
        let mut value: toml::Value = toml::from_str(text).map_err(|e| parse_err(e.to_string()))?;
        expand_env(&mut value).map_err(|var| ConfigError::MissingEnv {
            path: origin.to_owned(),
            var,
        })?;
        let config: Self = value
            .try_into()
            .map_err(|e: toml::de::Error| parse_err(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks sources added after loading (e.g. from the command line).
    pub fn validate_sources(&self) -> Result<(), ConfigError> {
        self.validate()
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.backup.concurrency == 0 || self.backup.concurrency > 256 {
            return Err(ConfigError::Invalid(
                "backup.concurrency must be between 1 and 256".into(),
            ));
        }
        let mut names = std::collections::BTreeSet::new();
        for s in &self.sources {
            if !names.insert(s.name.as_str()) {
                return Err(ConfigError::Invalid(format!(
                    "two sources are named {:?}",
                    s.name
                )));
            }
            s.validate()?;
        }
        Ok(())
    }
}

/// Replaces `${NAME}` in every string value by the environment variable; `$${` stays a literal
/// `${`. Returns the name of the first missing variable.
fn expand_env(value: &mut toml::Value) -> Result<(), String> {
    match value {
        toml::Value::String(s) => {
            *s = expand_str(s)?;
        }
        toml::Value::Array(items) => {
            for v in items {
                expand_env(v)?;
            }
        }
        toml::Value::Table(t) => {
            for (_, v) in t.iter_mut() {
                expand_env(v)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn expand_str(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos..];
        if let Some(tail) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            let end = tail.find('}').ok_or_else(|| tail.to_owned())?;
            let var = &tail[..end];
            out.push_str(&std::env::var(var).map_err(|_| var.to_owned())?);
            rest = &tail[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISSUE_SHAPE: &str = r#"
[store]
url = "/var/lib/repovault/store"
password_file = "/run/secrets/repovault-password"
cache_dir = "/var/cache/repovault"
[backup]
concurrency = 8
[[source]]
name = "local"
kind = "git"
urls = ["https://git.example.com/org/app.git", "ssh://git@host:22/org/lib.git", "git://host/x/y.git", "/srv/git/z.git"]
"#;

    #[test]
    fn parses_the_documented_shape() {
        let c = Config::parse(ISSUE_SHAPE, Path::new("t.toml")).expect("valid");
        assert_eq!(c.backup.concurrency, 8);
        assert_eq!(c.sources[0].urls.len(), 4);
    }

    #[test]
    fn unknown_keys_are_errors() {
        let text = ISSUE_SHAPE.replace("concurrency = 8", "concurency = 8");
        let err = Config::parse(&text, Path::new("t.toml")).expect_err("typo");
        assert!(err.to_string().contains("concurency"), "{err}");
    }

    #[test]
    fn env_expansion() {
        assert_eq!(expand_str("a$${b}$c").expect("ok"), "a${b}$c");
        assert!(expand_str("${REPOVAULT_SURELY_UNSET_VAR}").is_err());
        let path = std::env::var("PATH").expect("PATH is set in tests");
        assert_eq!(expand_str("x${PATH}").expect("ok"), format!("x{path}"));
    }

    #[test]
    fn clashing_names_and_passwords_in_urls_are_refused() {
        let text = r#"
[[source]]
name = "s"
kind = "git"
urls = ["https://a/x/y.git", "git://b/x/y"]
"#;
        assert!(Config::parse(text, Path::new("t")).is_err());
        let text = r#"
[[source]]
name = "s"
kind = "git"
urls = ["https://u:secret@a/x/y.git"]
"#;
        let err = Config::parse(text, Path::new("t")).expect_err("password in URL");
        assert!(!err.to_string().contains("secret"), "{err}");
    }
}
