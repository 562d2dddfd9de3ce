//! Typed forge errors. Each says whether trying again later can help, so the pipeline can tell
//! a transient outage from a repository that is gone.

use serde::Serialize;

/// What went wrong, coarsely; shown in run reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// Bad or expired credentials (401), or an App key/installation that does not work.
    Auth,
    /// 403 without a rate-limit reason: the token lacks a scope or permission.
    Forbidden,
    /// 404 or 410: gone, renamed, or invisible to this token.
    NotFound,
    /// 451: blocked for legal reasons.
    Blocked,
    /// Rate limits still exhausted after the bounded waits.
    RateLimited,
    /// 5xx that kept failing after the bounded retries.
    Server,
    /// Connection, TLS or time-out errors that kept failing.
    Network,
    /// The forge sent something we refuse: malformed JSON, a link to another host, a bad name.
    Invalid,
    /// Local problems: configuration, key files, writing exported files.
    Local,
}

#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ForgeError {
    kind: ErrorKind,
    message: String,
}

impl ForgeError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether a later run (or a later attempt) may succeed without anyone changing anything.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::RateLimited | ErrorKind::Server | ErrorKind::Network
        )
    }

    /// Adds what was being done to the message (`"listing org acme: …"`).
    pub fn context(self, what: impl std::fmt::Display) -> Self {
        Self {
            kind: self.kind,
            message: format!("{what}: {}", self.message),
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Invalid, message)
    }

    pub(crate) fn local(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Local, message)
    }

    /// Maps a final HTTP status to an error.
    pub(crate) fn from_status(status: u16, what: &str, detail: &str) -> Self {
        let kind = match status {
            401 => ErrorKind::Auth,
            403 => ErrorKind::Forbidden,
            404 | 410 => ErrorKind::NotFound,
            451 => ErrorKind::Blocked,
            429 => ErrorKind::RateLimited,
            500..=599 => ErrorKind::Server,
            _ => ErrorKind::Invalid,
        };
        let detail = if detail.is_empty() {
            String::new()
        } else {
            format!(": {detail}")
        };
        Self::new(kind, format!("{what}: HTTP {status}{detail}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_kinds() {
        assert_eq!(
            ForgeError::from_status(404, "x", "").kind(),
            ErrorKind::NotFound
        );
        assert_eq!(
            ForgeError::from_status(451, "x", "").kind(),
            ErrorKind::Blocked
        );
        assert!(ForgeError::from_status(503, "x", "").is_retryable());
        assert!(!ForgeError::from_status(401, "x", "").is_retryable());
    }
}
