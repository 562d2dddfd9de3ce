//! repovault's integration tests: the real binary against real git servers on loopback.

mod receiver;
mod support;

mod backup_restore;
mod browser;
mod daemon;
mod failures;
mod history;
mod interop;
mod notify;
mod s3;
