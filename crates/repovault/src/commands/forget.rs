//! `repovault forget`: apply the retention policy per repository, optionally prune.

use jiff::Timestamp;
use repovault_core::config::JobKind;
use repovault_core::retention::{plan, Plan, Policy};
use repovault_core::RepoName;
use repovault_store::{ForgetOutcome, PruneReport, PruneSettings, SnapshotInfo};
use serde::Serialize;

use repovault_daemon::JobOutcome;

use super::maintenance::{lease, print_prune, warn_short_grace};
use crate::cli::ForgetArgs;
use crate::exit::{Failure, UsageError, OK};
use crate::output::print_json;
use crate::settings::Settings;

#[derive(Serialize)]
struct Report<'a> {
    dry_run: bool,
    policy_from: &'a str,
    #[serde(flatten)]
    plan: &'a Plan,
    #[serde(skip_serializing_if = "Option::is_none")]
    forgotten: Option<&'a ForgetOutcome>,
    #[serde(skip_serializing_if = "Option::is_none")]
    prune: Option<&'a PruneReport>,
}

fn select(all: &[SnapshotInfo], repo: Option<&str>, host: Option<&str>) -> Vec<SnapshotInfo> {
    all.iter()
        .filter(|s| repo.is_none_or(|r| repovault_core::snapshots::repo_of(s) == Some(r)))
        .filter(|s| host.is_none_or(|h| s.host == h))
        .cloned()
        .collect()
}

/// What one forget did (or, on a dry run, would do).
pub struct ForgetRun {
    pub policy_from: &'static str,
    pub plan: Plan,
    /// `None` on a dry run.
    pub outcome: Option<ForgetOutcome>,
    pub prune: Option<PruneReport>,
}

/// Applies the retention policy; the daemon's forget jobs and the command share it.
pub fn forget_store(settings: &Settings, args: &ForgetArgs) -> Result<ForgetRun, Failure> {
    let (policy, from) = settings.retention(&args.keep)?;
    let repo = args
        .repo
        .as_deref()
        .map(RepoName::parse)
        .transpose()
        .map_err(|e| UsageError(e.to_string()))?
        .map(|r| r.to_string());
    let grace = settings.grace(args.grace);
    let store = super::open_store(settings)?;
    let now = Timestamp::now();
    let decide = |all: &[SnapshotInfo]| -> Result<Plan, Failure> {
        let chosen = select(all, repo.as_deref(), args.host.as_deref());
        plan(&policy, &chosen, now).map_err(|e| UsageError(e.to_string()).into())
    };

    if args.dry_run {
        let plan = decide(&store.snapshots()?)?;
        let prune = if args.prune {
            Some(store.prune_dry_run(&PruneSettings {
                grace,
                dry_run: true,
                assume_forgotten: plan.to_remove(),
            })?)
        } else {
            None
        };
        return Ok(ForgetRun {
            policy_from: from,
            plan,
            outcome: None,
            prune,
        });
    }

    store.ensure_free_space(settings.min_free_bytes)?;
    if args.prune {
        warn_short_grace(grace);
    }
    let lease = lease(settings, &store, "forget")?;
    let m = store.maintenance(&lease)?;
    // Decided under the lease, on the snapshots as they are now.
    let plan = decide(&m.snapshots()?)?;
    let outcome = m.forget(&plan.to_remove())?;
    let prune = if args.prune {
        Some(m.prune(&PruneSettings {
            grace,
            dry_run: false,
            assume_forgotten: Vec::new(),
        })?)
    } else {
        None
    };
    lease.release()?;
    Ok(ForgetRun {
        policy_from: from,
        plan,
        outcome: Some(outcome),
        prune,
    })
}

pub fn run(settings: &Settings, args: &ForgetArgs) -> Result<u8, Failure> {
    let started = Timestamp::now();
    let result = forget_store(settings, args);
    if !args.dry_run {
        super::after::notify(settings, JobKind::Forget, started, &outcome_of(&result))?;
    }
    let r = result?;
    show(
        args,
        r.policy_from,
        &r.plan,
        r.outcome.as_ref(),
        r.prune.as_ref(),
    )
}

/// How a forget went, for the daemon's state, metrics and notifications.
pub fn outcome_of(result: &Result<ForgetRun, Failure>) -> JobOutcome {
    match result {
        Err(f) => JobOutcome::failed(f.message()),
        Ok(r) => {
            let removed = r.outcome.as_ref().map_or(0, |o| o.removed.len());
            let locked = r.outcome.as_ref().map_or(0, |o| o.kept_locked.len());
            let mut summary = format!(
                "removed {removed} snapshot(s) of {} repository(ies) by {}",
                r.plan.groups.len(),
                describe(&r.plan.policy)
            );
            if locked > 0 {
                summary.push_str(&format!(", {locked} kept by Object Lock"));
            }
            if let Some(p) = &r.prune {
                summary.push_str(&format!("; {}", super::prune::summary(p)));
            }
            JobOutcome::succeeded(summary)
        }
    }
}

fn describe(p: &Policy) -> String {
    let mut parts = Vec::new();
    for (name, n) in [
        ("last", p.last),
        ("hourly", p.hourly),
        ("daily", p.daily),
        ("weekly", p.weekly),
        ("monthly", p.monthly),
        ("yearly", p.yearly),
    ] {
        if n > 0 {
            parts.push(format!("keep-{name} {n}"));
        }
    }
    if let Some(d) = p.within {
        parts.push(format!(
            "keep-within {}",
            repovault_core::config::HumanDuration(d)
        ));
    }
    parts.join(", ")
}

fn show(
    args: &ForgetArgs,
    from: &str,
    plan: &Plan,
    outcome: Option<&ForgetOutcome>,
    prune: Option<&PruneReport>,
) -> Result<u8, Failure> {
    if args.json {
        print_json(&Report {
            dry_run: args.dry_run,
            policy_from: from,
            plan,
            forgotten: outcome,
            prune,
        })?;
        return Ok(OK);
    }
    println!("policy ({from}): {}", describe(&plan.policy));
    let locked: Vec<&str> = outcome
        .map(|o| o.kept_locked.iter().map(|k| k.id.as_str()).collect())
        .unwrap_or_default();
    for g in &plan.groups {
        let removing = g.removed().count();
        println!(
            "{} on {}: {} snapshot(s), keep {}, {} {}",
            g.repo,
            g.host,
            g.snapshots.len(),
            g.snapshots.len() - removing,
            if args.dry_run {
                "would remove"
            } else {
                "remove"
            },
            removing
        );
        for d in &g.snapshots {
            let reasons: Vec<String> = d.reasons.iter().map(ToString::to_string).collect();
            let verdict = match (d.keep, locked.contains(&d.id.as_str())) {
                (true, _) => "keep  ",
                (false, true) => "locked",
                (false, false) => "remove",
            };
            println!(
                "  {verdict}  {}  {}  {}",
                &d.id[..d.id.len().min(8)],
                d.time.strftime("%Y-%m-%d %H:%M:%S"),
                reasons.join(", ")
            );
        }
    }
    if !plan.foreign.is_empty() {
        println!(
            "{} snapshot(s) without a repo: tag were left alone",
            plan.foreign.len()
        );
    }
    let to_remove = plan.to_remove().len();
    let repos = plan
        .groups
        .iter()
        .filter(|g| g.removed().count() > 0)
        .count();
    match outcome {
        None => println!(
            "dry run: would remove {to_remove} snapshot(s) of {repos} repository(ies); nothing was changed"
        ),
        Some(o) => {
            println!(
                "removed {} snapshot(s) of {repos} repository(ies)",
                o.removed.len()
            );
            for k in &o.kept_locked {
                println!(
                    "kept snapshot {}: {}",
                    &k.id[..k.id.len().min(8)],
                    k.reason
                );
            }
        }
    }
    if let Some(p) = prune {
        print_prune(p);
    }
    Ok(OK)
}
