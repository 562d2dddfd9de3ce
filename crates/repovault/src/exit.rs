//! Exit codes and how errors map onto them: 0 all ok, 1 some repositories failed, 2 usage or
//! config error, 3 store error.

use std::process::ExitCode;

pub const OK: u8 = 0;
pub const SOME_FAILED: u8 = 1;
pub const USAGE: u8 = 2;
pub const STORE: u8 = 3;

/// A mistake in the command line, the config or the environment.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Why a command stopped.
#[derive(Debug)]
pub enum Failure {
    Usage(UsageError),
    Store(anyhow::Error),
    Other(anyhow::Error),
}

impl From<UsageError> for Failure {
    fn from(e: UsageError) -> Self {
        Self::Usage(e)
    }
}

impl From<repovault_store::StoreError> for Failure {
    fn from(e: repovault_store::StoreError) -> Self {
        match e {
            repovault_store::StoreError::PasswordMissing
            | repovault_store::StoreError::InvalidUrl { .. } => {
                Self::Usage(UsageError(e.to_string()))
            }
            other => Self::Store(other.into()),
        }
    }
}

impl Failure {
    /// The message alone, as notifications and the daemon's status page show it.
    pub fn message(&self) -> String {
        match self {
            Self::Usage(e) => e.to_string(),
            Self::Store(e) | Self::Other(e) => format!("{e:#}"),
        }
    }

    pub fn report(&self) -> ExitCode {
        let (code, err): (u8, String) = match self {
            Self::Usage(e) => (USAGE, e.to_string()),
            Self::Store(e) => (STORE, format!("{e:#}")),
            Self::Other(e) => (SOME_FAILED, format!("{e:#}")),
        };
        crate::output::error(&err);
        ExitCode::from(code)
    }
}
