//! `repovault check [--read-data[=SUBSET]]`: exit 1 when anything is wrong, saying what.

use jiff::Timestamp;
use repovault_core::config::JobKind;
use repovault_daemon::{JobOutcome, Outcome};
use repovault_store::{CheckReport, Finding, LeaseInfo, ReadSubset};
use serde::Serialize;

use crate::cli::CheckArgs;
use crate::exit::{Failure, UsageError, OK, SOME_FAILED};
use crate::output::print_json;
use crate::settings::Settings;

#[derive(Serialize)]
struct Report<'a> {
    ok: bool,
    #[serde(flatten)]
    check: &'a CheckReport,
    /// A forget/prune holds the lease: missing packs may be its deletions in progress.
    maintenance_running: Option<&'a LeaseInfo>,
}

/// Checks the store, reading `subset` of the data (`5%`, `1/10`, `500MiB`, `all`) when given;
/// the daemon's check jobs and the command share it. Also returns a live maintenance lease, if
/// any: a pack it deletes right now may show up as missing.
pub fn check_store(
    settings: &Settings,
    subset: Option<&str>,
) -> Result<(CheckReport, Option<LeaseInfo>), Failure> {
    let subset = subset
        .map(|s| s.parse::<ReadSubset>())
        .transpose()
        .map_err(|e| UsageError(format!("--read-data: {e}")))?;
    let store = super::open_store(settings)?;
    let lease = repovault_store::current_lease(store.location())
        .ok()
        .flatten()
        .filter(|l| !l.is_expired(Timestamp::now()));
    let report = store.check(subset.as_ref())?;
    Ok((report, lease))
}

/// How a check went, for the daemon's state, metrics and notifications.
pub fn outcome_of(result: &Result<(CheckReport, Option<LeaseInfo>), Failure>) -> JobOutcome {
    let (report, _) = match result {
        Ok(r) => r,
        Err(f) => return JobOutcome::failed(f.message()),
    };
    let summary = format!(
        "checked {} snapshot(s){}: {} error(s), {} warning(s)",
        report.snapshots,
        report
            .read_data
            .as_deref()
            .map(|s| format!(" and {s} of the data"))
            .unwrap_or_default(),
        report.errors.len(),
        report.warnings.len()
    );
    if report.is_ok() {
        return JobOutcome::succeeded(summary);
    }
    let errors: Vec<&str> = report
        .errors
        .iter()
        .take(10)
        .map(|f| f.message.as_str())
        .collect();
    JobOutcome {
        outcome: Outcome::Failure,
        summary,
        error: Some(errors.join("; ")),
        backup: None,
    }
}

pub fn run(settings: &Settings, args: &CheckArgs) -> Result<u8, Failure> {
    let subset = args
        .read_data
        .as_deref()
        .or(args.read_data_subset.as_deref());
    let started = Timestamp::now();
    let result = check_store(settings, subset);
    super::after::notify(settings, JobKind::Check, started, &outcome_of(&result))?;
    let (report, lease) = result?;
    let code = if report.is_ok() { OK } else { SOME_FAILED };
    if args.json {
        print_json(&Report {
            ok: report.is_ok(),
            check: &report,
            maintenance_running: lease.as_ref(),
        })?;
        return Ok(code);
    }
    if let Some(l) = &lease {
        println!(
            "note: {} holds the maintenance lease; a pack it deletes right now may show up as missing",
            l.holder()
        );
    }
    for f in &report.errors {
        print_finding("error", f);
    }
    for f in &report.warnings {
        print_finding("warning", f);
    }
    let data = match &report.read_data {
        Some(s) if s == "all" => "and all data".to_owned(),
        Some(s) => format!("and a {s} subset of the data"),
        None => "(structure only; --read-data also reads the data)".to_owned(),
    };
    println!(
        "checked {} snapshot(s), the index and the pack files {data}: {} error(s), {} warning(s)",
        report.snapshots,
        report.errors.len(),
        report.warnings.len()
    );
    Ok(code)
}

fn print_finding(level: &str, f: &Finding) {
    println!("{level}: {}", f.message);
    if let Some(p) = &f.pack {
        println!("  pack file: data/{}/{p}", &p[..2.min(p.len())]);
    }
    for a in &f.affected {
        println!(
            "  affects {} snapshot {} ({}): {}",
            a.repo.as_deref().unwrap_or("-"),
            &a.snapshot[..a.snapshot.len().min(8)],
            a.host,
            a.path
        );
    }
    if f.affected_total > f.affected.len() {
        println!(
            "  … and {} more file(s)",
            f.affected_total - f.affected.len()
        );
    }
}
