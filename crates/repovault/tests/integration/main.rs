//! repovault's integration tests: the real binary against real git servers on loopback.

mod checks;
mod support;

mod backup_restore;
mod chain;
mod crash;
mod disk;
mod failures;
mod history;
mod interop;
mod s3;
mod shard;
mod verify;
