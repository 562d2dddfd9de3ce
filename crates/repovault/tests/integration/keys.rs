//! `repovault key`: several passwords for one store, changing and removing them; new passwords
//! never come from argv.

use repovault_testkit::TestEnv;

use crate::support::*;

const SECOND: &str = "second password for the same store";
const THIRD: &str = "a third one, from a command";

fn ids(rv: &Rv<'_>, password: &str) -> Vec<(String, bool)> {
    let run = rv
        .run_with(&["key", "list", "--json"], |c| {
            c.env("REPOVAULT_PASSWORD", password);
        })
        .ok();
    run.json()
        .as_array()
        .expect("list")
        .iter()
        .map(|k| {
            (
                k["id"].as_str().expect("id").to_owned(),
                k["current"] == true,
            )
        })
        .collect()
}

#[test]
fn add_list_passwd_remove_and_wrong_keys() {
    let env = TestEnv::new();
    let (_bare, rv) = backed_up_standard(&env);
    let first = ids(&rv, PASSWORD);
    assert_eq!(first.len(), 1);
    assert!(first[0].1, "the key in use is marked");

    // No new password given: a usage error, and argv is not a way to give one.
    let none = rv.run(&["key", "add"]);
    assert_eq!(none.code, 2, "{}", none.stderr);
    assert!(
        none.stderr.contains("REPOVAULT_NEW_PASSWORD"),
        "{}",
        none.stderr
    );
    assert_eq!(rv.run(&["key", "add", "--new-password", "x"]).code, 2);

    let added = rv
        .run_with(&["key", "add", "--user", "ops", "--json"], |c| {
            c.env("REPOVAULT_NEW_PASSWORD", SECOND);
        })
        .ok();
    let second_id = added.json()["added"].as_str().expect("id").to_owned();
    assert!(!added.stdout.contains(SECOND));
    let both = ids(&rv, SECOND);
    assert_eq!(both.len(), 2);
    assert!(both
        .iter()
        .any(|(id, current)| *id == second_id && *current));

    // Both passwords open the store.
    rv.run_with(&["snapshots"], |c| {
        c.env("REPOVAULT_PASSWORD", SECOND);
    })
    .ok();

    // The key in use cannot be removed; another can.
    let own = rv.run(&["key", "remove", &first[0].0[..8]]);
    assert_eq!(own.code, 3, "{}", own.stderr);
    assert!(
        own.stderr.contains("is the one this command opened"),
        "{}",
        own.stderr
    );
    rv.run_with(&["key", "remove", &first[0].0[..8]], |c| {
        c.env("REPOVAULT_PASSWORD", SECOND);
    })
    .ok();

    // The removed key's password is now a clear error.
    let wrong = rv.run(&["snapshots"]);
    assert_eq!(wrong.code, 3);
    assert!(wrong.stderr.contains("wrong password"), "{}", wrong.stderr);
    assert!(!wrong.stderr.contains(PASSWORD));

    // passwd: new key from a command, the one in use removed.
    let dir = env.fresh_dir("pw");
    let file = dir.join("third");
    std::fs::write(&file, format!("{THIRD}\n")).expect("write");
    let changed = rv
        .run_with(
            &[
                "key",
                "passwd",
                "--new-password-command",
                &format!("cat {}", file.display()),
                "--json",
            ],
            |c| {
                c.env("REPOVAULT_PASSWORD", SECOND);
            },
        )
        .ok();
    assert_eq!(changed.json()["removed"], second_id);
    let now = ids(&rv, THIRD);
    assert_eq!(now.len(), 1);
    assert_eq!(
        rv.run_with(&["snapshots"], |c| {
            c.env("REPOVAULT_PASSWORD", SECOND);
        })
        .code,
        3
    );
    // The data is still there under the new password.
    let restored = env.root().join("restored");
    rv.run_with(
        &[
            "restore",
            "acme/app",
            "--to",
            restored.to_str().expect("utf-8"),
        ],
        |c| {
            c.env("REPOVAULT_PASSWORD", THIRD);
        },
    )
    .ok();
}
