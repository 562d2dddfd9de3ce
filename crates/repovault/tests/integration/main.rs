//! repovault's integration tests: the real binary against real git servers on loopback.

mod common;
mod receiver;
mod support;

mod backup_restore;
mod browser;
mod chain;
mod check;
mod crash;
mod daemon;
mod disk;
mod failures;
mod github;
mod github_config;
mod history;
mod immutability;
mod interop;
mod keys;
mod lease;
mod notify;
mod prune;
mod retention;
mod s3;
mod shard;
mod verify;
