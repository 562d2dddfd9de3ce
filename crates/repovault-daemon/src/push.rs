//! Pushing a one-shot run's metrics to a Prometheus Pushgateway.

use std::time::Duration;

use crate::notify::redact_url;

const ATTEMPTS: u32 = 3;

#[derive(Debug, thiserror::Error)]
#[error("pushgateway {url}: {message}")]
pub struct PushError {
    /// Redacted.
    pub url: String,
    pub message: String,
}

/// The URL the metrics go to. A URL naming its own grouping key (`…/metrics/job/<job>/…`) is
/// used as it is; otherwise `/metrics/job/repovault/task/<task>` is appended, so each task (and
/// each source of a per-source backup) keeps its own group: a PUT replaces the whole group.
pub fn push_url(base: &str, task: &str) -> Result<reqwest::Url, String> {
    let mut url = reqwest::Url::parse(base).map_err(|_| "the URL does not parse".to_string())?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err("the URL must start with http:// or https://".into());
    }
    if !url.path().contains("/metrics/job/") {
        url.path_segments_mut()
            .map_err(|_| "the URL cannot take a path".to_string())?
            .pop_if_empty()
            .extend(["metrics", "job", "repovault", "task", task]);
    }
    Ok(url)
}

/// PUTs `body` (Prometheus text format) to the gateway, retrying twice on failure.
pub async fn push(base: &str, task: &str, body: String) -> Result<(), PushError> {
    let err = |message: String| PushError {
        url: redact_url(base),
        message,
    };
    let url = push_url(base, task).map_err(err)?;
    let client = reqwest::Client::builder()
        .user_agent(concat!("repovault/", env!("CARGO_PKG_VERSION")))
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| err(e.without_url().to_string()))?;
    let mut delay = Duration::from_secs(1);
    for attempt in 1..=ATTEMPTS {
        let result = client
            .put(url.clone())
            .header(
                reqwest::header::CONTENT_TYPE,
                crate::metrics::PROMETHEUS_TEXT_CONTENT_TYPE,
            )
            .body(body.clone())
            .send()
            .await;
        let message = match result {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) => format!("HTTP {}", r.status()),
            Err(e) => e.without_url().to_string(),
        };
        if attempt == ATTEMPTS {
            return Err(err(format!(
                "{message} (gave up after {ATTEMPTS} attempts)"
            )));
        }
        tracing::warn!(
            "pushgateway {}: attempt {attempt}/{ATTEMPTS} failed: {message}",
            redact_url(base)
        );
        tokio::time::sleep(delay).await;
        delay *= 2;
    }
    Err(err("no attempt was made".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouping_key() {
        assert_eq!(
            push_url("http://pgw:9091", "backup").expect("ok").as_str(),
            "http://pgw:9091/metrics/job/repovault/task/backup"
        );
        assert_eq!(
            push_url("http://pgw:9091/", "backup:a b")
                .expect("ok")
                .as_str(),
            "http://pgw:9091/metrics/job/repovault/task/backup:a%20b"
        );
        assert_eq!(
            push_url("http://pgw:9091/metrics/job/nightly/shard/3", "backup")
                .expect("ok")
                .as_str(),
            "http://pgw:9091/metrics/job/nightly/shard/3"
        );
        assert!(push_url("ftp://x", "backup").is_err());
    }
}
