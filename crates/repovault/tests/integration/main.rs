//! repovault's integration tests: the real binary against real git servers on loopback.

mod support;

mod backup_restore;
mod failures;
mod github;
mod github_config;
mod history;
mod interop;
mod s3;
