use serde::Serialize;

use crate::cli::InitArgs;
use crate::exit::{Failure, OK};
use crate::settings::Settings;

#[derive(Serialize)]
struct Initialized {
    store: String,
    id: String,
}

pub fn run(settings: &Settings, args: &InitArgs) -> Result<u8, Failure> {
    let location = settings.store_location()?;
    let password = settings.password()?;
    repovault_store::ensure_free_space(&location, settings.min_free_bytes)?;
    let id = repovault_store::init(&location, &password)?;
    if args.json {
        crate::output::print_json(&Initialized {
            store: location.to_string(),
            id,
        })?;
    } else {
        println!("created store {id} at {location}");
    }
    Ok(OK)
}
