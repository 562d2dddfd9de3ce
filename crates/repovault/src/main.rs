//! The repovault command: argument parsing, settings, output and exit codes. The work itself
//! lives in the library crates.

mod cli;
mod commands;
mod exit;
mod output;
mod settings;
mod signals;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let daemon = matches!(cli.command, cli::Command::Daemon(_));
    output::set_json_logs(cli.global.log_format == cli::LogFormat::Json);
    init_logging(cli.global.verbose, cli.global.log_format, daemon);
    match commands::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(failure) => failure.report(),
    }
}

/// Logs go to stderr: text (coloured on a terminal) or JSON lines. `REPOVAULT_LOG` takes a full
/// filter; otherwise `-v` raises the level. The daemon logs each run, so it starts at info.
fn init_logging(verbose: u8, format: cli::LogFormat, daemon: bool) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    // opendal logs expected misses (a store's `config` before init) as warnings and failures,
    // with backtraces, that our own error message already reports; rustic_core's info lines are
    // its progress chatter, and its check logs every problem that `repovault check` then reports
    // in its own words. They stay quiet unless the filter names them.
    let default = match (verbose, daemon) {
        (0, false) => "warn",
        (0, true) | (1, _) => "info",
        _ => "debug",
    };
    let wanted = std::env::var(settings::env::LOG).unwrap_or_else(|_| default.to_owned());
    let mut directives = wanted.clone();
    if verbose < 2 || std::env::var_os(settings::env::LOG).is_some() {
        for (target, level) in [
            ("opendal", "off"),
            ("rustic_core::commands::check", "off"),
            ("rustic_core", "warn"),
        ] {
            if !wanted.contains(target) {
                directives.push_str(&format!(",{target}={level}"));
            }
        }
    }
    let filter = EnvFilter::try_new(&directives).unwrap_or_else(|e| {
        eprintln!(
            "warning: {} {wanted:?} is not a log filter ({e}); using {default:?}",
            settings::env::LOG
        );
        EnvFilter::new(default)
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        cli::LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
        cli::LogFormat::Text => builder.with_ansi(false).try_init(),
        cli::LogFormat::Auto => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
    };
}
