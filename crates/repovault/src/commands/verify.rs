//! `repovault verify`, and the daemon's verify jobs.

use repovault_core::config::JobKind;
use repovault_core::verify::{
    verify, RepoVerification, VerifyError, VerifyObserver, VerifyReport, VerifyRequest,
};
use repovault_core::{Cancel, RepoName};
use repovault_daemon::{JobOutcome, Outcome};
use repovault_store::SnapshotInfo;

use crate::cli::VerifyArgs;
use crate::exit::{Failure, UsageError, OK, SOME_FAILED};
use crate::output::print_json;
use crate::settings::Settings;

/// One line per repository on stderr, problems under it.
struct Lines;

impl VerifyObserver for Lines {
    fn started(&self, repo: &str, snapshot: &SnapshotInfo) {
        tracing::info!("verifying {repo} (snapshot {})", snapshot.short_id());
    }

    fn finished(&self, r: &RepoVerification) {
        let id = r.snapshot.get(..8).unwrap_or(&r.snapshot);
        if r.ok {
            let refs: usize = r.git.iter().map(|g| g.refs).sum();
            eprintln!(
                "ok     {} {id} ({} git part(s), {refs} refs, {} metadata file(s), {} LFS object(s))",
                r.repo,
                r.git.len(),
                r.meta_files,
                r.lfs_objects
            );
        } else {
            eprintln!("FAILED {} {id}: {} problem(s)", r.repo, r.problems.len());
            for p in &r.problems {
                eprintln!("         {p}");
            }
        }
    }
}

/// Verifies what `req` selects; the daemon's verify jobs and the command share it.
pub fn verify_store(
    settings: &Settings,
    req: &VerifyRequest,
    observer: &dyn VerifyObserver,
) -> Result<VerifyReport, Failure> {
    let store = super::open_indexed(settings)?;
    verify(&store, req, observer).map_err(|e| match e {
        VerifyError::Store(s) => Failure::from(s),
        VerifyError::TempDir { .. } => Failure::Other(e.into()),
        other => UsageError(other.to_string()).into(),
    })
}

/// How a verify run went, for the daemon's state, metrics and notifications.
pub fn outcome_of(result: &Result<VerifyReport, Failure>) -> JobOutcome {
    let report = match result {
        Ok(r) => r,
        Err(f) => return JobOutcome::failed(f.message()),
    };
    let mut summary = format!(
        "verified {} of {} repositories: {} ok, {} failed",
        report.repos.len(),
        report.candidates,
        report.ok,
        report.failed
    );
    if report.cancelled {
        summary.push_str(&format!(
            "; stopped early, {} not started",
            report.not_started
        ));
    }
    let failed: Vec<String> = report
        .repos
        .iter()
        .filter(|r| !r.ok)
        .take(10)
        .map(|r| match r.problems.first() {
            Some(p) => format!("{}: {p}", r.repo),
            None => r.repo.clone(),
        })
        .collect();
    JobOutcome {
        outcome: if report.all_ok() {
            Outcome::Success
        } else {
            Outcome::Failure
        },
        summary,
        error: (!failed.is_empty()).then(|| failed.join("; ")),
        backup: None,
    }
}

pub fn run(settings: &Settings, args: &VerifyArgs) -> Result<u8, Failure> {
    let repo = args
        .repo
        .as_deref()
        .map(RepoName::parse)
        .transpose()
        .map_err(|e| UsageError(e.to_string()))?;
    if args.sample == Some(0) {
        return Err(UsageError("--sample must be at least 1".into()).into());
    }
    let cancel = Cancel::new();
    crate::signals::cancel_on_signal(cancel.clone());
    let req = VerifyRequest {
        repo,
        host: args.host.clone(),
        snapshot: args.snapshot.clone(),
        sample: args.sample,
        seed: args.seed,
        tmp_dir: crate::settings::verify_tmp_dir(args.tmp_dir.as_deref()),
        cancel,
    };
    let started = jiff::Timestamp::now();
    let result = verify_store(settings, &req, &Lines);
    super::after::notify(settings, JobKind::Verify, started, &outcome_of(&result))?;
    let report = result?;
    if args.json {
        print_json(&report)?;
    } else {
        for r in report.repos.iter().filter(|r| !r.ok) {
            for p in &r.problems {
                println!(
                    "{} (snapshot {}): {p}",
                    r.repo,
                    r.snapshot.get(..8).unwrap_or(&r.snapshot)
                );
            }
        }
        let sampled = match report.seed {
            Some(seed) => format!(
                " (a sample of {} of {}, seed {seed})",
                report.repos.len(),
                report.candidates
            ),
            None => String::new(),
        };
        if report.cancelled {
            println!(
                "stopped on request: {} repositories were not verified",
                report.not_started
            );
        }
        println!(
            "verified {} {}{sampled}: {} ok, {} failed, {} problem(s)",
            report.repos.len(),
            if report.repos.len() == 1 {
                "repository"
            } else {
                "repositories"
            },
            report.ok,
            report.failed,
            report.problems
        );
    }
    Ok(if report.all_ok() { OK } else { SOME_FAILED })
}
