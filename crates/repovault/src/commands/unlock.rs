//! `repovault unlock`: free the maintenance lease of a run that died.

use jiff::Timestamp;

use crate::cli::UnlockArgs;
use crate::exit::{Failure, UsageError, OK};
use crate::output::print_json;
use crate::settings::Settings;

pub fn run(settings: &Settings, args: &UnlockArgs) -> Result<u8, Failure> {
    // Opening first makes sure there is a store (and the password is right) before anything is
    // written or removed at that location.
    let store = super::open_store(settings)?;
    let done = repovault_store::unlock(store.location(), args.force).map_err(|e| match e {
        repovault_store::StoreError::LeaseLive { .. } => Failure::Usage(UsageError(e.to_string())),
        other => other.into(),
    })?;
    if let Some(l) = &done.lease {
        if done.was_live {
            eprintln!(
                "warning: removed a lease that had not expired, held by {} until {}. If that run is still going it stops deleting at its next refresh, but until then another forget or prune could run alongside it.",
                l.holder(),
                l.expires
            );
        } else {
            eprintln!(
                "warning: removed the expired lease of {} (expired {}, {} ago); make sure no forget or prune is running",
                l.holder(),
                l.expires,
                Timestamp::now().duration_since(l.expires).round(jiff::Unit::Second).unwrap_or_default()
            );
        }
    }
    if args.json {
        print_json(&done)?;
    } else if done.lease.is_none() {
        println!("no maintenance lease is held");
    } else {
        println!("lease removed");
    }
    Ok(OK)
}
