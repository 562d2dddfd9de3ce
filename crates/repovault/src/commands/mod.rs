//! One module per command; each turns settings into library calls and prints the outcome.

mod after;
mod backup;
mod check;
mod config;
mod daemon;
mod forget;
mod init;
mod key;
mod maintenance;
mod protect;
mod prune;
mod restore;
mod snapshots;
mod unlock;
mod verify;

use repovault_store::{IndexedStore, Store};

use crate::cli::{Cli, Command};
use crate::exit::Failure;
use crate::settings::Settings;

/// Runs the command and returns the exit code for a completed run.
pub fn run(cli: Cli) -> Result<u8, Failure> {
    let settings = || Settings::resolve(&cli.global);
    match &cli.command {
        Command::Init(args) => init::run(&settings()?, args),
        Command::Backup(args) => backup::run(settings()?, args),
        Command::Snapshots(args) => snapshots::run(&settings()?, args),
        Command::Restore(args) => restore::run(&settings()?, args),
        Command::Daemon(args) => daemon::run(settings()?, args),
        // Only the file itself: no store, cache or password.
        Command::Config(args) => config::run(cli.global.config.as_deref(), &args.command),
        Command::Forget(args) => forget::run(&settings()?, args),
        Command::Prune(args) => prune::run(&settings()?, args),
        Command::Protect(args) => protect::run(&settings()?, args),
        Command::Unlock(args) => unlock::run(&settings()?, args),
        Command::Key(cmd) => key::run(&settings()?, cmd),
        Command::Check(args) => check::run(&settings()?, args),
        Command::Verify(args) => verify::run(&settings()?, args),
    }
}

fn open_store(settings: &Settings) -> Result<Store, Failure> {
    let location = settings.store_location()?;
    let password = settings.password()?;
    Ok(repovault_store::open(&location, &password)?)
}

/// Opens the store for a command that writes to it: a local store on a nearly full disk is
/// refused (`store.min_free_bytes`), because a full disk can corrupt it. Backup and protect open
/// it this way; forget and prune check the same before they take the lease (their dry runs only
/// read); `key` and `unlock` write a few hundred bytes and stay usable on a full disk.
fn open_store_for_writing(settings: &Settings) -> Result<Store, Failure> {
    let store = open_store(settings)?;
    store.ensure_free_space(settings.min_free_bytes)?;
    Ok(store)
}

fn open_indexed(settings: &Settings) -> Result<IndexedStore, Failure> {
    Ok(open_store(settings)?.indexed()?)
}
