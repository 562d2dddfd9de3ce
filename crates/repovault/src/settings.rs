//! Settings: command-line arguments, environment variables and the config file resolved into
//! one value, in one place. Precedence: command line, then environment, then config file, then
//! defaults.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use repovault_core::config::{Config, HumanDuration, SourceConfig, SourceKind};
use repovault_core::retention::Policy;
use repovault_core::secret::SecretSource;
use repovault_store::StoreLocation;
use secrecy::SecretString;

use crate::cli::{GlobalArgs, KeepArgs, NewPasswordArgs};
use crate::exit::{Failure, UsageError};

/// Every environment variable repovault reads, declared once.
pub mod env {
    pub const CONFIG: &str = "REPOVAULT_CONFIG";
    pub const STORE: &str = "REPOVAULT_STORE";
    pub const CACHE_DIR: &str = "REPOVAULT_CACHE_DIR";
    pub const PASSWORD: &str = "REPOVAULT_PASSWORD";
    pub const PASSWORD_FILE: &str = "REPOVAULT_PASSWORD_FILE";
    pub const PASSWORD_COMMAND: &str = "REPOVAULT_PASSWORD_COMMAND";
    pub const LOG: &str = "REPOVAULT_LOG";
    pub const LOG_FORMAT: &str = "REPOVAULT_LOG_FORMAT";
    /// The new password of `key add` / `key passwd`, and where else it may come from.
    pub const NEW_PASSWORD: &str = "REPOVAULT_NEW_PASSWORD";
    pub const NEW_PASSWORD_FILE: &str = "REPOVAULT_NEW_PASSWORD_FILE";
    pub const NEW_PASSWORD_COMMAND: &str = "REPOVAULT_NEW_PASSWORD_COMMAND";
    /// Where `verify` restores into without `--tmp-dir`.
    pub const TMPDIR: &str = "TMPDIR";
}

/// The directory `verify` restores into: `--tmp-dir`, else `$TMPDIR`, else the system's.
pub fn verify_tmp_dir(arg: Option<&std::path::Path>) -> PathBuf {
    arg.map(std::path::Path::to_path_buf)
        .or_else(|| {
            std::env::var_os(env::TMPDIR)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(std::env::temp_dir)
}

pub struct Settings {
    pub config: Config,
    pub store_url: Option<String>,
    pub store_options: BTreeMap<String, String>,
    pub cache_dir: PathBuf,
    pub min_free_bytes: u64,
    password: Option<SecretSource>,
}

impl Settings {
    pub fn resolve(global: &GlobalArgs) -> Result<Self, Failure> {
        let config = match &global.config {
            Some(path) => Config::load(path).map_err(|e| UsageError(e.to_string()))?,
            None => Config::default(),
        };
        let store_url = global.store.clone().or_else(|| config.store.url.clone());
        let cache_dir = global
            .cache_dir
            .clone()
            .or_else(|| config.store.cache_dir.clone())
            .or_else(default_cache_dir)
            .ok_or_else(|| {
                UsageError("no cache directory: set --cache-dir, store.cache_dir or HOME".into())
            })?;
        let password = SecretSource::from_options(
            std::env::var(env::PASSWORD).ok().as_deref(),
            std::env::var_os(env::PASSWORD_FILE)
                .map(PathBuf::from)
                .as_deref(),
            std::env::var(env::PASSWORD_COMMAND).ok().as_deref(),
            None,
        )
        .or_else(|| {
            SecretSource::from_options(
                config.store.password.as_deref(),
                config.store.password_file.as_deref(),
                config.store.password_command.as_deref(),
                None,
            )
        });
        Ok(Self {
            store_url,
            store_options: config.store.options.clone(),
            min_free_bytes: config
                .store
                .min_free_bytes
                .unwrap_or(repovault_store::DEFAULT_MIN_FREE_BYTES),
            cache_dir,
            password,
            config,
        })
    }

    pub fn store_location(&self) -> Result<StoreLocation, Failure> {
        let url = self.store_url.as_deref().ok_or_else(|| {
            UsageError(format!(
                "no store given: pass --store, set {} or store.url in the config",
                env::STORE
            ))
        })?;
        StoreLocation::parse(url, self.store_options.clone())
            .map_err(|e| UsageError(e.to_string()).into())
    }

    pub fn password(&self) -> Result<SecretString, Failure> {
        let source = self
            .password
            .as_ref()
            .ok_or_else(|| UsageError(repovault_store::StoreError::PasswordMissing.to_string()))?;
        source
            .resolve()
            .map_err(|e| UsageError(format!("store password: {e}")).into())
    }

    /// Where the daemon keeps its state (recent runs, each repository's last outcome).
    pub fn daemon_state_path(&self) -> PathBuf {
        self.cache_dir.join("daemon").join("state.json")
    }

    /// `--listen`, else `[daemon] listen`, else the default.
    pub fn daemon_listen(&self, cli: Option<std::net::SocketAddr>) -> std::net::SocketAddr {
        cli.unwrap_or(self.config.daemon.listen)
    }

    /// The retention policy: the command line's `--keep-*` if any is given (they replace the
    /// config's as a whole), else `[retention]`. Also says where it came from.
    pub fn retention(&self, keep: &KeepArgs) -> Result<(Policy, &'static str), Failure> {
        let cli = [
            keep.keep_last,
            keep.keep_hourly,
            keep.keep_daily,
            keep.keep_weekly,
            keep.keep_monthly,
            keep.keep_yearly,
        ]
        .iter()
        .any(Option::is_some)
            || keep.keep_within.is_some();
        let (policy, from) = if cli {
            let p = Policy {
                last: keep.keep_last.unwrap_or(0),
                hourly: keep.keep_hourly.unwrap_or(0),
                daily: keep.keep_daily.unwrap_or(0),
                weekly: keep.keep_weekly.unwrap_or(0),
                monthly: keep.keep_monthly.unwrap_or(0),
                yearly: keep.keep_yearly.unwrap_or(0),
                within: keep.keep_within.map(HumanDuration::get),
            };
            (p, "the command line")
        } else if self.config.retention.is_set() {
            (self.config.retention.policy(), "[retention] in the config")
        } else {
            return Err(UsageError(
                "no retention policy: pass --keep-last/--keep-daily/… or set [retention] in the config".into(),
            )
            .into());
        };
        policy
            .validate()
            .map_err(|e| UsageError(format!("{e} (policy from {from})")))?;
        Ok((policy, from))
    }

    /// The prune grace period: `--grace`, else `[prune] grace`.
    pub fn grace(&self, cli: Option<HumanDuration>) -> Duration {
        cli.unwrap_or(self.config.prune.grace).get()
    }

    pub fn lease_ttl(&self) -> Duration {
        self.config.prune.lease_ttl.get()
    }

    /// The new password of `key add` / `key passwd`: `--new-password-file` /
    /// `--new-password-command` (or their variables), else `REPOVAULT_NEW_PASSWORD`.
    pub fn new_password(&self, args: &NewPasswordArgs) -> Result<SecretString, Failure> {
        let source = SecretSource::from_options(
            None,
            args.new_password_file.as_deref(),
            args.new_password_command.as_deref(),
            None,
        )
        .or_else(|| {
            std::env::var_os(env::NEW_PASSWORD).map(|_| SecretSource::Env(env::NEW_PASSWORD.into()))
        })
        .ok_or_else(|| {
            UsageError(format!(
                "no new password given: set {}, or pass --new-password-file or --new-password-command (never on the command line itself)",
                env::NEW_PASSWORD
            ))
        })?;
        source
            .resolve()
            .map_err(|e| UsageError(format!("new password: {e}")).into())
    }

    /// Adds the `--url` repositories as a source of their own.
    pub fn add_cli_urls(&mut self, urls: &[String]) -> Result<(), Failure> {
        if urls.is_empty() {
            return Ok(());
        }
        let source = SourceConfig {
            name: "cli".into(),
            kind: SourceKind::Git,
            urls: urls.to_vec(),
            host: None,
            username: None,
            token: None,
            token_file: None,
            token_command: None,
            token_env: None,
            ssh_key_file: None,
            known_hosts_file: None,
            github: None,
        };
        let mut config = self.config.clone();
        config.sources.push(source);
        config
            .validate_sources()
            .map_err(|e| UsageError(e.to_string()))?;
        self.config = config;
        Ok(())
    }
}

fn default_cache_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .map(|p| p.join("repovault"))
}
