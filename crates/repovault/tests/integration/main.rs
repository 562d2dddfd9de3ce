//! repovault's integration tests: the real binary against real git servers on loopback.

mod receiver;
mod support;

mod backup_restore;
mod browser;
mod check;
mod daemon;
mod failures;
mod history;
mod immutability;
mod interop;
mod keys;
mod lease;
mod notify;
mod prune;
mod retention;
mod s3;
