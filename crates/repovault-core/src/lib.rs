//! repovault's orchestration: configuration, planning which repositories a run covers, the
//! backup and restore pipelines and the run report. No printing and no command-line parsing
//! here: the binary does both.

pub mod backup;
mod cancel;
pub mod config;
mod name;
pub mod plan;
pub mod report;
pub mod restore;
pub mod retention;
pub mod secret;
pub mod snapshots;
pub mod verify;

pub use cancel::Cancel;
pub use name::{NameError, RepoName};
