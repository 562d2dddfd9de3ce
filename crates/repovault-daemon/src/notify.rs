//! Notifications when a job ends: a JSON webhook, an ntfy topic, or a heartbeat URL (pinged on
//! success, `<url>/fail` on failure). Each delivery is retried a bounded number of times with
//! doubling delays. URLs often carry secrets, so logs and errors only ever show their scheme and
//! host ([`redact_url`]).

use std::time::Duration;

use jiff::Timestamp;
use repovault_core::config::{JobKind, NotifyConfig, NotifyEvent, NotifyKind};
use repovault_core::report::{RepoStatus, RunReport};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use crate::runner::{JobOutcome, Outcome};

/// What happened, as sent to every target that wants it.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub event: NotifyEvent,
    pub task: String,
    pub job: JobKind,
    /// The machine (or pod) that ran it.
    pub host: String,
    pub started: Timestamp,
    pub finished: Timestamp,
    pub summary: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// For backups: the repositories that failed, with why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failed_repositories: Vec<FailedRepo>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FailedRepo {
    pub source: String,
    pub repo: String,
    pub kind: String,
    pub message: String,
}

impl Event {
    pub fn from_outcome(
        task: &crate::runner::Task,
        started: Timestamp,
        finished: Timestamp,
        outcome: &JobOutcome,
    ) -> Self {
        let event = match outcome.outcome {
            Outcome::Success => NotifyEvent::Success,
            Outcome::Skipped => NotifyEvent::Skipped,
            Outcome::Failure | Outcome::Interrupted | Outcome::Running => NotifyEvent::Failure,
        };
        Self {
            event,
            task: task.name.clone(),
            job: task.kind,
            host: hostname(),
            started,
            finished,
            summary: outcome.summary.clone(),
            error: outcome.error.clone(),
            failed_repositories: outcome
                .backup
                .as_ref()
                .map(failed_repos)
                .unwrap_or_default(),
        }
    }

    fn title(&self) -> String {
        let what = match self.event {
            NotifyEvent::Success => "succeeded",
            NotifyEvent::Failure => "FAILED",
            NotifyEvent::Skipped => "skipped (previous run still going)",
        };
        format!("repovault {} {what} on {}", self.task, self.host)
    }

    fn text(&self) -> String {
        let mut t = self.summary.clone();
        if let Some(e) = &self.error {
            if *e != self.summary {
                t.push('\n');
                t.push_str(e);
            }
        }
        for r in self.failed_repositories.iter().take(20) {
            t.push_str(&format!("\n{} ({}): {}", r.repo, r.kind, r.message));
        }
        if self.failed_repositories.len() > 20 {
            t.push_str(&format!(
                "\n... and {} more",
                self.failed_repositories.len() - 20
            ));
        }
        t
    }
}

fn failed_repos(report: &RunReport) -> Vec<FailedRepo> {
    report
        .repos
        .iter()
        .filter(|r| r.status == RepoStatus::Failed)
        .map(|r| FailedRepo {
            source: r.source.clone(),
            repo: r.repo.clone(),
            kind: r
                .error
                .as_ref()
                .map_or_else(|| "other".into(), |e| e.kind.clone()),
            message: r
                .error
                .as_ref()
                .map_or_else(String::new, |e| e.message.clone()),
        })
        .collect()
}

pub fn hostname() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

/// One configured target, its URL read.
struct Target {
    index: usize,
    config: NotifyConfig,
    url: SecretString,
}

/// Delivers events to the configured targets.
pub struct Notifier {
    targets: Vec<Target>,
    client: reqwest::Client,
}

/// One failed delivery, with nothing secret in it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("notify #{index} ({kind} {url}): {message}")]
pub struct DeliveryError {
    pub index: usize,
    pub kind: &'static str,
    /// Redacted.
    pub url: String,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error(transparent)]
    Config(#[from] repovault_core::config::ConfigError),
    #[error("building the HTTP client: {0}")]
    Client(String),
}

impl Notifier {
    /// Reads every target's URL now: a missing `url_file` is a configuration error at start-up,
    /// not a silent failure at 3 a.m.
    pub fn new(configs: &[NotifyConfig]) -> Result<Self, NotifyError> {
        let targets = configs
            .iter()
            .enumerate()
            .map(|(i, c)| {
                Ok(Target {
                    index: i + 1,
                    url: c.resolve_url()?,
                    config: c.clone(),
                })
            })
            .collect::<Result<Vec<_>, NotifyError>>()?;
        let client = reqwest::Client::builder()
            .user_agent(concat!("repovault/", env!("CARGO_PKG_VERSION")))
            // Redirects could carry the secret-bearing request elsewhere; endpoints are exact.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| NotifyError::Client(e.without_url().to_string()))?;
        Ok(Self { targets, client })
    }

    pub fn is_empty(&self) -> bool {
        self.targets.is_empty()
    }

    /// Sends `event` to every target that wants it, each with its retries; targets are tried
    /// one after another. Returns the deliveries that failed for good (already logged).
    pub async fn send(&self, event: &Event) -> Vec<DeliveryError> {
        let mut failed = Vec::new();
        for t in self
            .targets
            .iter()
            .filter(|t| t.config.wants(event.job, event.event))
        {
            if let Err(e) = self.deliver(t, event).await {
                tracing::error!("{e}");
                failed.push(e);
            }
        }
        failed
    }

    async fn deliver(&self, t: &Target, event: &Event) -> Result<(), DeliveryError> {
        let shown = redact_url(t.url.expose_secret());
        let err = |message: String| DeliveryError {
            index: t.index,
            kind: t.config.kind.as_str(),
            url: shown.clone(),
            message,
        };
        let request = self.request(t, event).map_err(err)?;
        let attempts = t.config.retries + 1;
        let mut delay = t.config.retry_delay.get();
        for attempt in 1..=attempts {
            let Some(req) = request.try_clone() else {
                return Err(err("the request cannot be repeated".into()));
            };
            let result = req.timeout(t.config.timeout.get()).send().await;
            let message = match result {
                Ok(resp) if resp.status().is_success() => {
                    tracing::info!(
                        "notify #{} ({} {shown}): {} delivered",
                        t.index,
                        t.config.kind.as_str(),
                        event.event.as_str()
                    );
                    return Ok(());
                }
                Ok(resp) => format!("HTTP {}", resp.status()),
                Err(e) => e.without_url().to_string(),
            };
            if attempt == attempts {
                return Err(err(format!(
                    "{message} (gave up after {attempts} attempts)"
                )));
            }
            tracing::warn!(
                "notify #{} ({} {shown}): attempt {attempt}/{attempts} failed: {message}; retrying in {}",
                t.index,
                t.config.kind.as_str(),
                repovault_core::config::HumanDuration(delay)
            );
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(300));
        }
        Err(err("no attempt was made".into()))
    }

    fn request(&self, t: &Target, event: &Event) -> Result<reqwest::RequestBuilder, String> {
        let mut url = reqwest::Url::parse(t.url.expose_secret())
            .map_err(|_| "the URL does not parse".to_string())?;
        let req = match t.config.kind {
            NotifyKind::Webhook => {
                let body = serde_json::to_vec(event).map_err(|e| e.to_string())?;
                self.client
                    .post(url)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body)
            }
            NotifyKind::Ntfy => {
                let (priority, tags) = match event.event {
                    NotifyEvent::Success => ("default", "white_check_mark"),
                    NotifyEvent::Failure => ("high", "rotating_light"),
                    NotifyEvent::Skipped => ("default", "hourglass"),
                };
                self.client
                    .post(url)
                    .header("Title", header_text(&event.title()))
                    .header("Priority", priority)
                    .header("Tags", tags)
                    .body(event.text())
            }
            NotifyKind::Heartbeat => {
                if event.event != NotifyEvent::Success {
                    url.path_segments_mut()
                        .map_err(|_| "the URL cannot take a path".to_string())?
                        .pop_if_empty()
                        .push("fail");
                }
                let mut text = event.title();
                text.push('\n');
                text.push_str(&event.text());
                self.client.post(url).body(text)
            }
        };
        Ok(req)
    }
}

/// Header values must be visible ASCII; names from forges may be anything.
fn header_text(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .take(200)
        .collect()
}

/// `https://hc-ping.com/…`: scheme, host and port only. Paths, queries and user info of
/// notification URLs are where their secrets live.
pub fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => {
            let host = u.host_str().unwrap_or("");
            let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
            let hidden = u.path() != "/" || u.query().is_some() || !u.username().is_empty();
            format!(
                "{}://{host}{port}/{}",
                u.scheme(),
                if hidden { "…" } else { "" }
            )
        }
        Err(_) => "(a URL that does not parse)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_keeps_only_scheme_and_host() {
        assert_eq!(
            redact_url("https://user:pw@hc.example:8443/ping/0c1d-secret?token=abc"),
            "https://hc.example:8443/…"
        );
        assert_eq!(redact_url("https://ntfy.example/"), "https://ntfy.example/");
        assert_eq!(
            redact_url("not a url s3cret"),
            "(a URL that does not parse)"
        );
        for secret in ["pw", "0c1d-secret", "abc", "user"] {
            assert!(!redact_url("https://user:pw@h/0c1d-secret?token=abc").contains(secret));
        }
    }

    #[test]
    fn header_text_is_ascii() {
        assert_eq!(header_text("repo \u{202e}x\n"), "repo ?x?");
    }
}
