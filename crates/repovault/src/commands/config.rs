//! `repovault config validate`: parse and check a config file, read no secret, touch no store.

use std::path::Path;

use repovault_core::config::Config;
use serde::Serialize;

use crate::cli::ConfigCommand;
use crate::exit::{Failure, UsageError, OK};

#[derive(Serialize)]
struct Summary<'a> {
    config: &'a Path,
    valid: bool,
    sources: usize,
    schedules: Vec<String>,
    notify: usize,
}

pub fn run(path: Option<&Path>, command: &ConfigCommand) -> Result<u8, Failure> {
    let ConfigCommand::Validate { json } = command;
    let path = path.ok_or_else(|| {
        UsageError("config validate: name the file with --config (or REPOVAULT_CONFIG)".into())
    })?;
    let config = Config::load(path).map_err(|e| UsageError(e.to_string()))?;
    let summary = Summary {
        config: path,
        valid: true,
        sources: config.sources.len(),
        schedules: config.schedules.iter().map(|s| s.task_name()).collect(),
        notify: config.notify.len(),
    };
    if *json {
        crate::output::print_json(&summary)?;
    } else {
        println!(
            "{}: valid ({} source(s), {} schedule(s), {} notification target(s))",
            path.display(),
            summary.sources,
            summary.schedules.len(),
            summary.notify
        );
    }
    Ok(OK)
}
