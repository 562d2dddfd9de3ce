//! `repovault protect`: keep snapshots regardless of retention, until a time or forever.

use jiff::{SignedDuration, Timestamp};
use repovault_core::config::parse_duration;
use repovault_store::{Protected, Protection};

use super::maintenance::lease;
use crate::cli::ProtectArgs;
use crate::exit::{Failure, UsageError, OK};
use crate::output::print_json;
use crate::settings::Settings;

/// `2027-01-01T00:00:00Z`, or a duration from now such as `90d`.
fn until(s: &str) -> Result<Timestamp, UsageError> {
    if let Ok(t) = s.parse::<Timestamp>() {
        return Ok(t);
    }
    let d = parse_duration(s).map_err(|_| {
        UsageError(format!(
            "--delete-after {s:?}: give an RFC 3339 time (2027-01-01T00:00:00Z) or a duration from now (90d)"
        ))
    })?;
    let d = SignedDuration::try_from(d).map_err(|e| UsageError(format!("--delete-after: {e}")))?;
    Timestamp::now()
        .checked_add(d)
        .map_err(|e| UsageError(format!("--delete-after: {e}")))
}

pub fn run(settings: &Settings, args: &ProtectArgs) -> Result<u8, Failure> {
    let protection = match (&args.delete_after, args.keep_forever) {
        (Some(t), _) => Some(Protection::Until(until(t)?)),
        (None, true) => Some(Protection::Forever),
        (None, false) => None,
    };
    let store = super::open_store_for_writing(settings)?;
    let lease = lease(settings, &store, "protect")?;
    let m = store.maintenance(&lease)?;
    let mut done: Vec<Protected> = Vec::new();
    for id in &args.snapshots {
        done.push(m.protect(id, protection)?);
    }
    lease.release()?;
    if args.json {
        print_json(&done)?;
        return Ok(OK);
    }
    for p in &done {
        let s = &p.snapshot;
        let what = match s.protection {
            Some(Protection::Forever) => "protected forever".to_owned(),
            Some(Protection::Until(t)) => format!("protected until {t}"),
            None => "no longer protected".to_owned(),
        };
        println!(
            "{} {} ({}): {what}; now snapshot {}",
            s.tag_value("repo").unwrap_or("-"),
            &p.old_id[..p.old_id.len().min(8)],
            s.time.strftime("%Y-%m-%d %H:%M:%S"),
            s.short_id()
        );
        if let Some(k) = &p.old_kept_locked {
            println!("  the old snapshot file stays for now: {}", k.reason);
        }
    }
    Ok(OK)
}
