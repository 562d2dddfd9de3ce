//! repovault's integration tests: the real binary against real git servers on loopback.

mod support;

mod backup_restore;
mod check;
mod failures;
mod history;
mod immutability;
mod interop;
mod keys;
mod lease;
mod prune;
mod retention;
mod s3;
