use repovault_core::snapshots::repo_of;
use repovault_core::RepoName;
use repovault_store::{Protection, SnapshotInfo};
use serde::Serialize;

use crate::cli::SnapshotsArgs;
use crate::exit::{Failure, UsageError, OK};
use crate::output::{human_bytes, print_json};
use crate::settings::Settings;

#[derive(Serialize)]
struct Row<'a> {
    repo: Option<&'a str>,
    #[serde(flatten)]
    snapshot: &'a SnapshotInfo,
}

pub fn run(settings: &Settings, args: &SnapshotsArgs) -> Result<u8, Failure> {
    let repo = args
        .repo
        .as_deref()
        .map(RepoName::parse)
        .transpose()
        .map_err(|e| UsageError(e.to_string()))?
        .map(|r| r.to_string());
    let store = super::open_store(settings)?;
    let all = store.snapshots()?;
    let rows: Vec<Row<'_>> = all
        .iter()
        .filter(|s| repo.as_deref().is_none_or(|r| repo_of(s) == Some(r)))
        .filter(|s| args.host.as_deref().is_none_or(|h| s.host == h))
        .map(|s| Row {
            repo: repo_of(s),
            snapshot: s,
        })
        .collect();
    if args.json {
        print_json(&rows)?;
        return Ok(OK);
    }
    println!(
        "{:<8}  {:<20}  {:<24}  {:<40}  {:>10}  PROTECTED",
        "ID", "TIME", "HOST", "REPO", "ADDED"
    );
    for r in &rows {
        let s = r.snapshot;
        let protected = match s.protection {
            None => String::new(),
            Some(Protection::Forever) => "forever".to_owned(),
            Some(Protection::Until(t)) => format!("until {}", t.strftime("%Y-%m-%d %H:%M")),
        };
        println!(
            "{:<8}  {:<20}  {:<24}  {:<40}  {:>10}  {protected}",
            s.short_id(),
            s.time.strftime("%Y-%m-%d %H:%M:%S"),
            s.host,
            r.repo.unwrap_or("-"),
            human_bytes(s.summary.map_or(0, |x| x.data_added_packed))
        );
    }
    println!("{} snapshot(s)", rows.len());
    Ok(OK)
}
