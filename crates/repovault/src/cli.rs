//! Command-line arguments. Values are turned into settings in `settings.rs`, nowhere else.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};
use repovault_core::config::HumanDuration;
use repovault_core::plan::Shard;

use crate::settings::env;

#[derive(Debug, Parser)]
#[command(
    name = "repovault",
    version,
    about = "Back up git hosting into an encrypted, deduplicated snapshot store, and restore it",
    after_help = "The store password comes from REPOVAULT_PASSWORD, REPOVAULT_PASSWORD_FILE or REPOVAULT_PASSWORD_COMMAND, or from store.password_file / store.password_command in the config. It is never taken on the command line.\n\nExit codes: 0 all ok, 1 some repositories failed (check: problems found), 2 usage or config error, 3 store error."
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
    /// Log format on stderr: text for people, json (one object per line) for log collectors;
    /// auto is text, coloured on a terminal.
    #[arg(long, global = true, env = env::LOG_FORMAT, value_enum, default_value_t = LogFormat::Auto)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Auto,
    Text,
    Json,
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
    /// Restore repositories into temporary directories and prove them: git fsck, refs equal to
    /// refs.txt, metadata JSON parses, LFS objects match their ids.
    Verify(VerifyArgs),
    /// Run the config's [[schedule]] jobs and serve /healthz, /readyz, /metrics, /api/status and
    /// a status page, until SIGTERM or SIGINT.
    Daemon(DaemonArgs),
    /// Check a config file without touching the store.
    Config(ConfigArgs),
    /// Apply the retention policy: delete the snapshots it does not keep (per repository).
    Forget(ForgetArgs),
    /// Delete data no snapshot uses, in two phases: mark now, delete after the grace period.
    Prune(PruneArgs),
    /// Protect snapshots from retention, forever or until a time, or clear their protection.
    Protect(ProtectArgs),
    /// Free the maintenance lease of a forget/prune that died (it warns).
    Unlock(UnlockArgs),
    /// List, add, remove or change the store's keys (passwords).
    #[command(subcommand)]
    Key(KeyCommand),
    /// Check the store's structure and, with --read-data, its data.
    Check(CheckArgs),
}

#[derive(Debug, Args)]
pub struct DaemonArgs {
    /// Address of the HTTP server (default: the config's daemon.listen, else 127.0.0.1:9680).
    #[arg(long, value_name = "HOST:PORT")]
    pub listen: Option<SocketAddr>,
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    #[command(subcommand)]
    pub command: ConfigCommand,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Parse and validate the file given with --config (secrets are not read); exit 2 when it is
    /// not valid.
    Validate {
        /// Print a summary as JSON.
        #[arg(long)]
        json: bool,
    },
}

fn duration(s: &str) -> Result<HumanDuration, String> {
    s.parse()
}

/// The retention rules; any of them given replaces the config's `[retention]` as a whole.
#[derive(Debug, Args, Default, Clone)]
pub struct KeepArgs {
    /// Keep the N newest snapshots of each repository.
    #[arg(long, value_name = "N")]
    pub keep_last: Option<u32>,
    /// Keep the newest snapshot of each of the last N hours that have one.
    #[arg(long, value_name = "N")]
    pub keep_hourly: Option<u32>,
    /// Keep the newest snapshot of each of the last N days that have one (UTC days).
    #[arg(long, value_name = "N")]
    pub keep_daily: Option<u32>,
    /// Keep the newest snapshot of each of the last N ISO weeks that have one.
    #[arg(long, value_name = "N")]
    pub keep_weekly: Option<u32>,
    /// Keep the newest snapshot of each of the last N months that have one.
    #[arg(long, value_name = "N")]
    pub keep_monthly: Option<u32>,
    /// Keep the newest snapshot of each of the last N years that have one.
    #[arg(long, value_name = "N")]
    pub keep_yearly: Option<u32>,
    /// Keep every snapshot taken within this long before the repository's newest (e.g. 30d).
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub keep_within: Option<HumanDuration>,
}

#[derive(Debug, Args)]
pub struct ForgetArgs {
    #[command(flatten)]
    pub keep: KeepArgs,
    /// Only this repository (owner/name).
    #[arg(long, value_name = "OWNER/NAME")]
    pub repo: Option<String>,
    /// Only snapshots from this host.
    #[arg(long)]
    pub host: Option<String>,
    /// Show what would stay and go, and why; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Prune afterwards, under the same lease.
    #[arg(long)]
    pub prune: bool,
    /// Grace period for --prune (default: the config's prune.grace, else 24h).
    #[arg(long, value_name = "DURATION", value_parser = duration, requires = "prune")]
    pub grace: Option<HumanDuration>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// How long unused data stays marked before it is deleted; longer than any backup run
    /// (default: the config's prune.grace, else 24h).
    #[arg(long, value_name = "DURATION", value_parser = duration)]
    pub grace: Option<HumanDuration>,
    /// Show what would be marked and deleted; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("protection").required(true).args(["keep_forever", "delete_after", "clear"])))]
pub struct ProtectArgs {
    /// Snapshot ids (or unique prefixes).
    #[arg(value_name = "ID", required = true)]
    pub snapshots: Vec<String>,
    /// Never delete these snapshots by retention.
    #[arg(long)]
    pub keep_forever: bool,
    /// Keep them until this time (RFC 3339, or a duration from now such as 90d), then let the
    /// next forget delete them.
    #[arg(long, value_name = "TIME")]
    pub delete_after: Option<String>,
    /// Remove their protection: retention decides again.
    #[arg(long)]
    pub clear: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct UnlockArgs {
    /// Also remove a lease that has not expired (its run may still be going).
    #[arg(long)]
    pub force: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Where a new password comes from; never the command line itself.
#[derive(Debug, Args, Default)]
pub struct NewPasswordArgs {
    /// Read the new password from this file (trailing newline trimmed).
    #[arg(long, env = env::NEW_PASSWORD_FILE, value_name = "FILE", conflicts_with = "new_password_command")]
    pub new_password_file: Option<PathBuf>,
    /// Take the new password from this command's output (run with sh -c).
    #[arg(long, env = env::NEW_PASSWORD_COMMAND, value_name = "COMMAND")]
    pub new_password_command: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// List the store's keys.
    List {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Add a key for a new password (from REPOVAULT_NEW_PASSWORD, --new-password-file or
    /// --new-password-command).
    Add {
        #[command(flatten)]
        password: NewPasswordArgs,
        /// Host name recorded in the key (default: this host).
        #[arg(long)]
        host: Option<String>,
        /// User name recorded in the key.
        #[arg(long)]
        user: Option<String>,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a key (not the one in use).
    Remove {
        /// Key id or unique prefix.
        #[arg(value_name = "ID")]
        id: String,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Change the password: add a key for the new one, remove the key in use.
    Passwd {
        #[command(flatten)]
        password: NewPasswordArgs,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Also read and verify pack contents: all, or a subset such as 5%, 1/10 (part n of m) or
    /// 500MiB. Without it only the structure is checked.
    #[arg(long, value_name = "SUBSET", num_args = 0..=1, require_equals = true, default_missing_value = "all")]
    pub read_data: Option<String>,
    /// Same as --read-data=SUBSET.
    #[arg(long, value_name = "SUBSET", conflicts_with = "read_data")]
    pub read_data_subset: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
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
    /// Only the repositories of shard I of N (0 <= I < N), by a stable hash of host and
    /// owner/name; N processes with I = 0..N-1 together back up everything into one store.
    #[arg(long, value_name = "I/N", value_parser = parse_shard)]
    pub shard: Option<Shard>,
    /// Start every repository's bundle chain over with a new base (a full bundle), e.g. after
    /// history was purged upstream.
    #[arg(long)]
    pub new_base: bool,
    /// Print the run report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Write the run's metrics to this file (Prometheus text format, replaced atomically), e.g.
    /// for the node exporter's textfile collector.
    #[arg(long, value_name = "FILE")]
    pub metrics_file: Option<PathBuf>,
    /// Push the run's metrics to this Prometheus Pushgateway (http://host:9091, optionally with
    /// its own /metrics/job/... grouping path).
    #[arg(long, value_name = "URL")]
    pub pushgateway: Option<String>,
}

fn parse_shard(s: &str) -> Result<Shard, String> {
    Shard::parse(s)
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

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Verify this many repositories, chosen at random (default: all).
    #[arg(long, value_name = "N", conflicts_with = "all")]
    pub sample: Option<usize>,
    /// Verify every repository (the default).
    #[arg(long)]
    pub all: bool,
    /// Only this repository (owner/name).
    #[arg(long, value_name = "OWNER/NAME")]
    pub repo: Option<String>,
    /// Only repositories backed up from this host.
    #[arg(long)]
    pub host: Option<String>,
    /// Verify this snapshot (id or unique prefix) instead of each repository's latest.
    #[arg(long, value_name = "ID", conflicts_with_all = ["sample", "all"])]
    pub snapshot: Option<String>,
    /// Seed for --sample, to repeat a sample (the report shows the one used).
    #[arg(long, value_name = "N", requires = "sample")]
    pub seed: Option<u64>,
    /// Directory for the temporary restores (default: the system temp dir, $TMPDIR).
    #[arg(long, value_name = "DIR")]
    pub tmp_dir: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}
