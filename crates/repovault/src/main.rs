//! The repovault command: argument parsing, settings, output and exit codes. The work itself
//! lives in the library crates.

mod cli;
mod commands;
mod exit;
mod output;
mod settings;

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
    init_logging(cli.global.verbose);
    match commands::run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(failure) => failure.report(),
    }
}

fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    // opendal logs expected misses (a store's `config` before init) as warnings and failures,
    // with backtraces, that our own error message already reports; rustic's check logs every
    // problem that `repovault check` then reports in its own words.
    let default = match verbose {
        0 => "warn,opendal=off,rustic_core::commands::check=off",
        1 => "info,opendal=warn,rustic_core::commands::check=off",
        _ => "debug",
    };
    let filter =
        EnvFilter::try_from_env(settings::env::LOG).unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
