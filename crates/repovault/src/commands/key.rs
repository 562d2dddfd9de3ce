//! `repovault key list|add|remove|passwd`.

use crate::cli::KeyCommand;
use crate::exit::{Failure, OK};
use crate::output::print_json;
use crate::settings::Settings;

pub fn run(settings: &Settings, cmd: &KeyCommand) -> Result<u8, Failure> {
    let keys = super::open_store(settings)?.keys()?;
    match cmd {
        KeyCommand::List { json } => {
            let list = keys.list()?;
            if *json {
                print_json(&list)?;
                return Ok(OK);
            }
            println!(
                "{:<2}{:<10}  {:<20}  {:<24}  USER",
                "", "ID", "CREATED", "HOST"
            );
            for k in &list {
                println!(
                    "{:<2}{:<10}  {:<20}  {:<24}  {}",
                    if k.current { "*" } else { "" },
                    &k.id[..k.id.len().min(8)],
                    k.created
                        .map(|t| t.strftime("%Y-%m-%d %H:%M:%S").to_string())
                        .unwrap_or_else(|| "-".into()),
                    k.host.as_deref().unwrap_or("-"),
                    k.user.as_deref().unwrap_or("-")
                );
            }
            println!("{} key(s); * = the key this password opened", list.len());
        }
        KeyCommand::Add {
            password,
            host,
            user,
            json,
        } => {
            let new = settings.new_password(password)?;
            let id = keys.add(&new, host.clone(), user.clone())?;
            if *json {
                print_json(&serde_json::json!({ "added": id }))?;
            } else {
                println!("added key {}", &id[..id.len().min(8)]);
            }
        }
        KeyCommand::Remove { id, json } => {
            let removed = keys.remove(id)?;
            if *json {
                print_json(&serde_json::json!({ "removed": removed }))?;
            } else {
                println!("removed key {}", &removed[..removed.len().min(8)]);
            }
        }
        KeyCommand::Passwd { password, json } => {
            let new = settings.new_password(password)?;
            let (added, removed) = keys.change_password(&new)?;
            if *json {
                print_json(&serde_json::json!({ "added": added, "removed": removed }))?;
            } else {
                println!(
                    "changed the password: added key {}, removed key {}; update every REPOVAULT_PASSWORD* source and store.password* setting that held the old one",
                    &added[..added.len().min(8)],
                    &removed[..removed.len().min(8)]
                );
            }
        }
    }
    Ok(OK)
}
