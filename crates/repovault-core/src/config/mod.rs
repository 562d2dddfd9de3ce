//! The configuration file: its TOML shape, `${ENV}` expansion and validation.
//!
//! Unknown keys are errors (a typo must not silently disable a backup). Secrets may be given
//! inline, as `*_file` (read, trailing newline trimmed) or as `*_command` (run through `sh -c`,
//! its stdout used), so KMS, Vault or Kubernetes Secrets can supply them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

mod daemon;
mod duration;
mod github;
mod notify;
mod retention;
mod source;

pub use daemon::{CronSchedule, DaemonConfig, JobKind, ScheduleConfig, DEFAULT_LISTEN};
pub use duration::{parse_duration, HumanDuration};
pub use github::{Capture, GithubSource, RepoFilter, DEFAULT_API_URL, DEFAULT_FULL_PASS};
pub use notify::{NotifyConfig, NotifyEvent, NotifyKind, MAX_RETRIES};
pub use retention::{PruneConfig, RetentionConfig, SHORT_GRACE};
pub use source::{SourceConfig, SourceKind};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub store: StoreConfig,
    #[serde(default)]
    pub backup: BackupConfig,
    #[serde(default)]
    pub retention: RetentionConfig,
    #[serde(default)]
    pub prune: PruneConfig,
    #[serde(default, rename = "source")]
    pub sources: Vec<SourceConfig>,
    #[serde(default)]
    pub daemon: DaemonConfig,
    #[serde(default, rename = "schedule")]
    pub schedules: Vec<ScheduleConfig>,
    #[serde(default, rename = "notify")]
    pub notify: Vec<NotifyConfig>,
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
    /// A bundle chain never has more links; the next snapshot starts a new base.
    #[serde(default = "default_chain_max_links")]
    pub chain_max_links: usize,
    /// A new base once the increments would pass this share of the base (percent).
    #[serde(default = "default_chain_max_increments_percent")]
    pub chain_max_increments_percent: u64,
    /// A new base once the part of the chain unreachable from the current refs passes this share
    /// of the base (percent; 0: on any rewrite).
    #[serde(default = "default_chain_max_unreachable_percent")]
    pub chain_max_unreachable_percent: u64,
}

impl Default for BackupConfig {
    fn default() -> Self {
        Self {
            concurrency: default_concurrency(),
            git_timeout_secs: default_git_timeout(),
            chain_max_links: default_chain_max_links(),
            chain_max_increments_percent: default_chain_max_increments_percent(),
            chain_max_unreachable_percent: default_chain_max_unreachable_percent(),
        }
    }
}

impl BackupConfig {
    /// The chain thresholds as the git side takes them.
    pub fn chain_policy(&self) -> repovault_git::ChainPolicy {
        repovault_git::ChainPolicy {
            max_links: self.chain_max_links,
            max_increments_percent: self.chain_max_increments_percent,
            max_unreachable_percent: self.chain_max_unreachable_percent,
        }
    }
}

fn default_chain_max_links() -> usize {
    repovault_git::ChainPolicy::default().max_links
}

fn default_chain_max_increments_percent() -> u64 {
    repovault_git::ChainPolicy::default().max_increments_percent
}

fn default_chain_max_unreachable_percent() -> u64 {
    repovault_git::ChainPolicy::default().max_unreachable_percent
}

/// The longest chain a config may ask for.
pub const MAX_CHAIN_LINKS: usize = 1000;

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
        // Link numbers have four digits so that `ls | sort` applies them in order by hand.
        if !(1..=MAX_CHAIN_LINKS).contains(&self.backup.chain_max_links) {
            return Err(ConfigError::Invalid(format!(
                "backup.chain_max_links must be between 1 and {MAX_CHAIN_LINKS}"
            )));
        }
        self.retention.validate()?;
        self.prune.validate()?;
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
        self.validate_schedules()?;
        for (i, n) in self.notify.iter().enumerate() {
            n.validate(i)?;
        }
        Ok(())
    }

    fn validate_schedules(&self) -> Result<(), ConfigError> {
        self.daemon.time_zone()?;
        let mut tasks = std::collections::BTreeSet::new();
        for s in &self.schedules {
            let task = s.task_name();
            if let Some(source) = &s.source {
                if s.job != JobKind::Backup {
                    return Err(ConfigError::Invalid(format!(
                        "schedule {task:?}: `source` applies to backup jobs only"
                    )));
                }
                if !self.sources.iter().any(|c| &c.name == source) {
                    return Err(ConfigError::Invalid(format!(
                        "schedule {task:?}: no source named {source:?}"
                    )));
                }
            }
            let only = |set: bool, key: &str, kind: JobKind| {
                if set && s.job != kind {
                    Err(ConfigError::Invalid(format!(
                        "schedule {task:?}: `{key}` applies to {kind} jobs only"
                    )))
                } else {
                    Ok(())
                }
            };
            only(s.prune, "prune", JobKind::Forget)?;
            if s.job == JobKind::Forget && !self.retention.is_set() {
                return Err(ConfigError::Invalid(format!(
                    "schedule {task:?}: a forget job applies [retention], which the config does not set"
                )));
            }
            only(s.read_data.is_some(), "read_data", JobKind::Check)?;
            only(s.sample.is_some(), "sample", JobKind::Verify)?;
            if s.sample == Some(0) {
                return Err(ConfigError::Invalid(format!(
                    "schedule {task:?}: `sample` must be at least 1"
                )));
            }
            if !tasks.insert(task.clone()) {
                return Err(ConfigError::Invalid(format!(
                    "two schedules run {task:?}; put both times into one cron expression or give them different sources"
                )));
            }
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
    fn retention_and_prune_as_the_deployment_writes_them() {
        let text = r#"
[retention]
keep_last = 1
keep_daily = 7
keep_weekly = 4
keep_monthly = 12
[prune]
grace = "24h"
"#;
        let c = Config::parse(text, Path::new("t.toml")).expect("valid");
        let p = c.retention.policy();
        assert_eq!((p.last, p.daily, p.weekly, p.monthly), (1, 7, 4, 12));
        assert_eq!(c.prune.grace.get().as_secs(), 86_400);
        assert_eq!(Config::default().prune.grace.get().as_secs(), 86_400);
        let keeps_nothing = "[retention]\nkeep_daily = 0\n";
        let err = Config::parse(keeps_nothing, Path::new("t.toml")).expect_err("keeps nothing");
        assert!(err.to_string().contains("keeps nothing"), "{err}");
        assert!(Config::parse("[retention]\nkeep_dayly = 3\n", Path::new("t")).is_err());
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
