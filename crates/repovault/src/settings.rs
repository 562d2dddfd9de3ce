//! Settings: command-line arguments, environment variables and the config file resolved into
//! one value, in one place. Precedence: command line, then environment, then config file, then
//! defaults.

use std::collections::BTreeMap;
use std::path::PathBuf;

use repovault_core::config::{Config, SourceConfig, SourceKind};
use repovault_core::secret::SecretSource;
use repovault_store::StoreLocation;
use secrecy::SecretString;

use crate::cli::GlobalArgs;
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
