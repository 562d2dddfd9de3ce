//! The store's error policy: every rustic error is mapped once, here, into a variant that tells the
//! caller what went wrong and whether trying again can help. Messages never carry the password.

use std::path::PathBuf;

/// Errors of the store crate.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no store password given: set REPOVAULT_PASSWORD, REPOVAULT_PASSWORD_FILE or REPOVAULT_PASSWORD_COMMAND (or store.password_file in the config)")]
    PasswordMissing,
    #[error("wrong password for the store at {location} (no key in the store matches it)")]
    WrongPassword { location: String },
    #[error("there is no store at {location}: run `repovault init` first")]
    NotInitialized { location: String },
    #[error("a store already exists at {location}")]
    AlreadyInitialized { location: String },
    #[error("invalid store URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("not enough free space for the store at {path}: {available} bytes free, {required} required (store.min_free_bytes); free some space and run again")]
    DiskFull {
        path: PathBuf,
        available: u64,
        required: u64,
    },
    #[error("the store's disk ran full while {operation} ({message}); what was cut off is not part of any snapshot: free some space and run again")]
    OutOfSpace {
        operation: &'static str,
        message: String,
    },
    #[error("snapshot {0} not found")]
    SnapshotNotFound(String),
    #[error("snapshot id {0:?} matches more than one snapshot")]
    SnapshotAmbiguous(String),
    #[error("path {path:?} does not exist in snapshot {snapshot}")]
    PathNotInSnapshot { snapshot: String, path: String },
    #[error("store {operation} failed: {message}")]
    Rustic {
        operation: &'static str,
        message: String,
        retryable: bool,
    },
    #[error("store {operation} failed: {message}")]
    Backend {
        operation: String,
        message: String,
        retryable: bool,
    },
    #[error("another maintenance run holds the store's lease: {holder}, until {expires} (it is refreshed while that run lives; if it crashed, the lease is taken over once it expires, or free it now with `repovault unlock --force`)")]
    Leased {
        holder: String,
        expires: jiff::Timestamp,
    },
    #[error("the lease is held by {holder} and has not expired (until {expires}); if that run is really gone, use `repovault unlock --force`")]
    LeaseLive {
        holder: String,
        expires: jiff::Timestamp,
    },
    #[error("the store's backend ({service}) cannot do the conditional writes a maintenance lease needs, so forget, prune and protect are refused on it")]
    LeaseUnsupported { service: String },
    #[error("key {0} not found")]
    KeyNotFound(String),
    #[error("key id {0:?} matches more than one key")]
    KeyAmbiguous(String),
    #[error("key {0} is the one this command opened the store with; open the store with another key's password to remove it")]
    KeyInUse(String),
    #[error("{operation}: {source}")]
    Io {
        operation: String,
        #[source]
        source: std::io::Error,
    },
}

impl StoreError {
    /// Whether repeating the same operation later could succeed (a transient backend failure),
    /// as opposed to a problem that needs a person (wrong password, missing store, bad URL).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Rustic { retryable, .. } | Self::Backend { retryable, .. } => *retryable,
            Self::Io { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::Interrupted
                    | std::io::ErrorKind::TimedOut
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionRefused
            ),
            _ => false,
        }
    }

    pub(crate) fn rustic(operation: &'static str, err: &rustic_core::RusticError) -> Self {
        use rustic_core::ErrorKind as K;
        // display_log() is rustic's one-line form; the multi-line Display adds report links that
        // mean nothing to our users. rustic exposes the kind only through that text.
        let message = err.display_log();
        if message.contains("No space left on device") {
            return Self::OutOfSpace {
                operation,
                message: "No space left on device".into(),
            };
        }
        let retryable = [K::Backend, K::InputOutput]
            .iter()
            .any(|k| message.contains(&format!("related to {k}")));
        Self::Rustic {
            operation,
            message: message.trim_start_matches("Error: ").to_owned(),
            retryable,
        }
    }

    pub(crate) fn backend(operation: &str, err: &opendal::Error) -> Self {
        Self::Backend {
            operation: operation.to_owned(),
            message: err.to_string(),
            retryable: err.is_temporary(),
        }
    }

    pub(crate) fn rustic_input(message: String) -> Self {
        Self::Rustic {
            operation: "checking input",
            message,
            retryable: false,
        }
    }

    pub(crate) fn io(operation: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            operation: operation.into(),
            source,
        }
    }
}
