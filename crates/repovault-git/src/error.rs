//! Errors of git operations. Every message that reaches this type has gone through
//! [`crate::redact`], so it can be logged and shown as is.

/// What kind of failure a git operation hit; it decides whether a retry can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureKind {
    /// The server refused our credentials (or asked for some we do not have).
    Auth,
    /// The repository does not exist (any more) on the server.
    NotFound,
    /// The server could not be reached or the connection broke.
    Network,
    /// The command ran too long and was stopped.
    Timeout,
    /// Local data is broken: a bundle, the cache or a restored repository.
    Corrupt,
    /// The git (or git-lfs) program is missing or too old.
    Tooling,
    /// Anything else git reported.
    Other,
}

#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("git {operation} failed ({kind:?}): {message}")]
    Command {
        operation: String,
        kind: FailureKind,
        message: String,
    },
    #[error("invalid git URL {url}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("invalid refs file: {0}")]
    InvalidRefs(String),
    #[error("{operation}: {source}")]
    Io {
        operation: String,
        #[source]
        source: std::io::Error,
    },
}

impl GitError {
    pub fn kind(&self) -> FailureKind {
        match self {
            Self::Command { kind, .. } => *kind,
            Self::InvalidUrl { .. } => FailureKind::Other,
            Self::InvalidRefs(_) => FailureKind::Corrupt,
            Self::Io { .. } => FailureKind::Other,
        }
    }

    /// Whether trying again later can help: network trouble and time-outs can pass; a refused
    /// token or a missing repository will not fix itself.
    pub fn is_retryable(&self) -> bool {
        matches!(self.kind(), FailureKind::Network | FailureKind::Timeout)
    }

    pub(crate) fn io(operation: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            operation: operation.into(),
            source,
        }
    }
}

/// Sorts git's stderr into a [`FailureKind`] by the messages git and its transports print.
pub(crate) fn classify(stderr: &str) -> FailureKind {
    let s = stderr.to_ascii_lowercase();
    let any = |needles: &[&str]| needles.iter().any(|n| s.contains(n));
    if any(&[
        "authentication failed",
        "could not read username",
        "could not read password",
        "permission denied (publickey",
        "host key verification failed",
        "the requested url returned error: 401",
        "the requested url returned error: 403",
        "invalid username or password",
    ]) {
        FailureKind::Auth
    } else if any(&[
        "repository not found",
        "does not appear to be a git repository",
        "the requested url returned error: 404",
        "not found",
        "no such file or directory",
        "could not read from remote repository",
    ]) && !any(&["could not resolve", "connection refused", "timed out"])
    {
        FailureKind::NotFound
    } else if any(&[
        "could not resolve host",
        "connection refused",
        "couldn't connect",
        "failed to connect",
        "unable to connect",
        "connection reset",
        "connection timed out",
        "operation timed out",
        "early eof",
        "the remote end hung up",
        "network is unreachable",
        "the requested url returned error: 5",
        "rpc failed",
    ]) {
        FailureKind::Network
    } else if any(&[
        "bad object",
        "corrupt",
        "missing",
        "is not a bundle",
        "lacks these prerequisite",
        "fatal: invalid",
    ]) {
        FailureKind::Corrupt
    } else {
        FailureKind::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_typical_transport_messages() {
        assert_eq!(
            classify("fatal: Authentication failed for 'http://h/x.git/'"),
            FailureKind::Auth
        );
        assert_eq!(
            classify("fatal: unable to access 'http://127.0.0.1:1/x.git/': Failed to connect to 127.0.0.1 port 1: Connection refused"),
            FailureKind::Network
        );
        assert_eq!(
            classify("fatal: '/srv/x.git' does not appear to be a git repository"),
            FailureKind::NotFound
        );
        assert_eq!(
            classify("git@h: Permission denied (publickey)."),
            FailureKind::Auth
        );
    }
}
