use repovault_core::restore::{restore, RestoreError, RestoreRequest};
use repovault_core::RepoName;

use crate::cli::RestoreArgs;
use crate::exit::{Failure, UsageError, OK};
use crate::output::print_json;
use crate::settings::Settings;

pub fn run(settings: &Settings, args: &RestoreArgs) -> Result<u8, Failure> {
    let repo = RepoName::parse(&args.repo).map_err(|e| UsageError(e.to_string()))?;
    let at = args
        .at
        .as_deref()
        .map(|s| {
            s.parse::<jiff::Timestamp>()
                .map_err(|e| UsageError(format!("--at {s:?} is not an RFC 3339 time: {e}")))
        })
        .transpose()?;
    let req = RestoreRequest {
        repo,
        host: args.host.clone(),
        snapshot: args.snapshot.clone(),
        at,
        to: args.to.clone(),
        checkout: args.checkout,
        force: args.force,
        wiki_to: args.wiki_to.clone(),
        meta_to: args.meta_to.clone(),
        skip_lfs: args.no_lfs,
    };
    let store = super::open_indexed(settings)?;
    let report = restore(&store, &req).map_err(|e| match e {
        RestoreError::Store(s) => Failure::from(s),
        RestoreError::TargetNotEmpty(_)
        | RestoreError::AmbiguousHost { .. }
        | RestoreError::NoSnapshots(_)
        | RestoreError::NothingBefore { .. }
        | RestoreError::NotThisRepo { .. }
        | RestoreError::NoPart { .. } => UsageError(e.to_string()).into(),
        other => Failure::Store(other.into()),
    })?;
    if args.json {
        print_json(&report)?;
    } else {
        println!(
            "restored {} from snapshot {} ({}) to {}: {} refs, HEAD {}, fsck ok",
            report.repo,
            &report.snapshot[..8.min(report.snapshot.len())],
            report.snapshot_time,
            report.target.display(),
            report.refs,
            report.head.as_deref().unwrap_or("(none)")
        );
        if report.lfs_objects > 0 {
            println!(
                "placed {} LFS objects in the repository",
                report.lfs_objects
            );
        }
        if let Some(w) = &report.wiki {
            println!(
                "restored the wiki to {}: {} refs, fsck ok",
                w.target.display(),
                w.items
            );
        }
        if let Some(m) = &report.meta {
            println!(
                "restored {} metadata files to {}",
                m.items,
                m.target.display()
            );
        }
    }
    Ok(OK)
}
