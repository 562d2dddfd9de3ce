//! `[[notify]]`: who hears about finished jobs, and how.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

use super::{ConfigError, HumanDuration, JobKind};
use crate::secret::SecretSource;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NotifyKind {
    /// POST a JSON document describing the run.
    Webhook,
    /// POST a short text to an ntfy topic URL.
    Ntfy,
    /// Ping the URL on success and `<url>/fail` on failure (healthchecks.io style).
    Heartbeat,
}

impl NotifyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Webhook => "webhook",
            Self::Ntfy => "ntfy",
            Self::Heartbeat => "heartbeat",
        }
    }
}

/// What happened to a job run, as far as notifications care.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NotifyEvent {
    Success,
    Failure,
    /// A scheduled run did not start because the previous run of the same job was still going.
    Skipped,
}

impl NotifyEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Skipped => "skipped",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    pub kind: NotifyKind,
    /// The endpoint. It often carries a secret (a token in the path or query, `user:password@`):
    /// prefer `url_file`. Logs show only its scheme and host.
    pub url: Option<String>,
    pub url_file: Option<PathBuf>,
    /// Which outcomes are sent; default failures only. A heartbeat also needs `success`.
    #[serde(default = "default_on")]
    pub on: Vec<NotifyEvent>,
    /// Only for these jobs; default all.
    pub jobs: Option<Vec<JobKind>>,
    /// Further attempts after a failed delivery.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Wait before the first retry; doubled for each further one.
    #[serde(default = "default_retry_delay")]
    pub retry_delay: HumanDuration,
    /// Limit for one delivery attempt.
    #[serde(default = "default_timeout")]
    pub timeout: HumanDuration,
}

fn default_on() -> Vec<NotifyEvent> {
    vec![NotifyEvent::Failure]
}

fn default_retries() -> u32 {
    3
}

fn default_retry_delay() -> HumanDuration {
    HumanDuration(Duration::from_secs(2))
}

fn default_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(10))
}

/// The most retries a target may ask for: with doubling delays, more only delays the end of a run.
pub const MAX_RETRIES: u32 = 10;

impl NotifyConfig {
    pub(super) fn validate(&self, index: usize) -> Result<(), ConfigError> {
        let invalid = |m: &str| {
            ConfigError::Invalid(format!(
                "notify #{} ({}): {m}",
                index + 1,
                self.kind.as_str()
            ))
        };
        match (&self.url, &self.url_file) {
            (Some(_), Some(_)) => return Err(invalid("give url or url_file, not both")),
            (None, None) => return Err(invalid("needs url or url_file")),
            (Some(url), None) => check_url(url).map_err(|m| invalid(&m))?,
            (None, Some(_)) => {}
        }
        if self.on.is_empty() {
            return Err(invalid("`on` is empty: nothing would ever be sent"));
        }
        if self.kind == NotifyKind::Heartbeat && !self.on.contains(&NotifyEvent::Success) {
            return Err(invalid(
                "a heartbeat needs `success` in `on` (its monitor alerts when pings stop)",
            ));
        }
        if self.jobs.as_ref().is_some_and(Vec::is_empty) {
            return Err(invalid(
                "`jobs` is empty: leave it out to notify for every job",
            ));
        }
        if self.retries > MAX_RETRIES {
            return Err(invalid(&format!("retries must be at most {MAX_RETRIES}")));
        }
        if self.timeout.get().is_zero() {
            return Err(invalid("timeout must be more than 0"));
        }
        Ok(())
    }

    /// Reads the URL (from `url_file` at call time, so a rotated file is picked up).
    pub fn resolve_url(&self) -> Result<SecretString, ConfigError> {
        let source =
            SecretSource::from_options(self.url.as_deref(), self.url_file.as_deref(), None, None)
                .ok_or_else(|| ConfigError::Invalid("notify: needs url or url_file".into()))?;
        let url = source.resolve()?;
        check_url(secrecy::ExposeSecret::expose_secret(&url)).map_err(|m| {
            ConfigError::Invalid(format!("notify url from {}: {m}", source_name(self)))
        })?;
        Ok(url)
    }

    /// Whether this target wants to hear about `event` of a `job` run.
    pub fn wants(&self, job: JobKind, event: NotifyEvent) -> bool {
        self.on.contains(&event) && self.jobs.as_ref().is_none_or(|j| j.contains(&job))
    }
}

fn source_name(n: &NotifyConfig) -> String {
    match &n.url_file {
        Some(p) => p.display().to_string(),
        None => "the config".into(),
    }
}

/// Only http(s): the message must not say which part was wrong in a way that shows the URL.
fn check_url(url: &str) -> Result<(), String> {
    let lower = url.trim().to_ascii_lowercase();
    if !(lower.starts_with("https://") || lower.starts_with("http://")) {
        return Err("the URL must start with https:// or http://".into());
    }
    if url.chars().any(char::is_whitespace) {
        return Err("the URL contains whitespace".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<NotifyConfig, String> {
        let n: NotifyConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        n.validate(0).map_err(|e| e.to_string())?;
        Ok(n)
    }

    #[test]
    fn shapes_and_refusals() {
        let n = parse("kind = \"webhook\"\nurl = \"https://h/x?token=s3cret\"\n").expect("valid");
        assert!(n.wants(JobKind::Backup, NotifyEvent::Failure));
        assert!(!n.wants(JobKind::Backup, NotifyEvent::Success));
        let n = parse(
            "kind = \"ntfy\"\nurl = \"https://ntfy.example/t\"\non = [\"success\", \"failure\"]\njobs = [\"prune\"]\n",
        )
        .expect("valid");
        assert!(n.wants(JobKind::Prune, NotifyEvent::Success));
        assert!(!n.wants(JobKind::Backup, NotifyEvent::Failure));
        for bad in [
            "kind = \"webhook\"\n",
            "kind = \"webhook\"\nurl = \"ftp://h/x\"\n",
            "kind = \"heartbeat\"\nurl = \"https://hc/x\"\n",
            "kind = \"webhook\"\nurl = \"https://h/x\"\non = []\n",
            "kind = \"webhook\"\nurl = \"https://h/x\"\nretries = 99\n",
            "kind = \"pager\"\nurl = \"https://h/x\"\n",
        ] {
            let err = parse(bad).expect_err(bad);
            assert!(!err.contains("s3cret"), "{err}");
        }
        let err = parse("kind = \"webhook\"\nurl = \"ftp://u:s3cret@h/x\"\n").expect_err("ftp");
        assert!(!err.contains("s3cret"), "{err}");
    }
}
