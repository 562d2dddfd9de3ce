//! Command-line arguments. Values are turned into settings in `settings.rs`, nowhere else.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::settings::env;

#[derive(Debug, Parser)]
#[command(
    name = "repovault",
    version,
    about = "Back up git hosting into an encrypted, deduplicated snapshot store, and restore it",
    after_help = "The store password comes from REPOVAULT_PASSWORD, REPOVAULT_PASSWORD_FILE or REPOVAULT_PASSWORD_COMMAND, or from store.password_file / store.password_command in the config. It is never taken on the command line.\n\nExit codes: 0 all ok, 1 some repositories failed, 2 usage or config error, 3 store error."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Configuration file (TOML).
    #[arg(long, short = 'c', global = true, env = env::CONFIG, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Store URL: a local path, s3:https://host/bucket/prefix or opendal:<service>.
    #[arg(long, global = true, env = env::STORE, value_name = "URL")]
    pub store: Option<String>,
    /// Directory for mirror caches (default: the config's store.cache_dir, else the XDG cache dir).
    #[arg(long, global = true, env = env::CACHE_DIR, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// More log output on stderr (-v info, -vv debug); REPOVAULT_LOG takes a full filter.
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new, empty store.
    Init(InitArgs),
    /// Back up every repository of the configured sources; one snapshot per repository.
    Backup(BackupArgs),
    /// List snapshots.
    Snapshots(SnapshotsArgs),
    /// Restore a repository from a snapshot into a directory.
    Restore(RestoreArgs),
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Only back up the source with this name.
    #[arg(long, value_name = "NAME")]
    pub source: Option<String>,
    /// Back up this git URL or path too (repeatable); for remotes that need no credentials.
    #[arg(long = "url", value_name = "URL")]
    pub urls: Vec<String>,
    /// Repositories fetched at the same time (default: the config's backup.concurrency, else 4).
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,
    /// Print the run report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SnapshotsArgs {
    /// Only snapshots of this repository (owner/name).
    #[arg(long, value_name = "OWNER/NAME")]
    pub repo: Option<String>,
    /// Only snapshots from this host.
    #[arg(long)]
    pub host: Option<String>,
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The repository to restore (owner/name).
    #[arg(value_name = "OWNER/NAME")]
    pub repo: String,
    /// Target directory; it must be empty or missing unless --force.
    #[arg(long, value_name = "DIR")]
    pub to: PathBuf,
    /// Restore this snapshot (id or unique prefix) instead of the latest.
    #[arg(long, value_name = "ID", conflicts_with = "at")]
    pub snapshot: Option<String>,
    /// Restore the newest snapshot taken at or before this time (RFC 3339, e.g. 2026-11-01T00:00:00Z).
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    /// The host the repository was backed up from, when several have the same owner/name.
    #[arg(long)]
    pub host: Option<String>,
    /// Make a working clone with HEAD checked out instead of a bare repository.
    #[arg(long)]
    pub checkout: bool,
    /// Write into a non-empty directory.
    #[arg(long)]
    pub force: bool,
    /// Also restore the repository's wiki, as a bare repository, into this directory.
    #[arg(long, value_name = "DIR")]
    pub wiki_to: Option<PathBuf>,
    /// Also restore the forge metadata (issues, pull requests, releases and their assets,
    /// labels, milestones, hooks) as JSON files into this directory.
    #[arg(long, value_name = "DIR")]
    pub meta_to: Option<PathBuf>,
    /// Do not place the snapshot's Git LFS objects into the restored repository.
    #[arg(long)]
    pub no_lfs: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}
