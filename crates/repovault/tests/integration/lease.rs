//! The maintenance lease from the command line: a live lease keeps other forget/prune/protect
//! runs out (backups and dry runs need none), an expired one is taken over, `unlock` frees one
//! by hand; locally and on S3.

use std::path::Path;

use repovault_testkit::{S3Kind, S3Server, TestEnv};

use crate::support::*;

/// A lease as another host's prune would leave it, ending `minutes` from now (negative: ended).
fn lease_json(minutes: i64) -> String {
    let now = jiff::Timestamp::now();
    let expires = now + jiff::SignedDuration::from_mins(minutes);
    serde_json::json!({
        "host": "other-host",
        "pid": 4242,
        "operation": "prune",
        "acquired": now - jiff::SignedDuration::from_hours(2),
        "refreshed": now - jiff::SignedDuration::from_mins(1),
        "expires": expires,
        "token": format!("elsewhere-{minutes}"),
    })
    .to_string()
}

fn put_lease(path: &Path, minutes: i64) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, lease_json(minutes)).expect("write lease");
}

/// The maintenance commands all refuse while `lease` is live, and name its holder.
fn refused_while_leased(rv: &Rv<'_>, snapshot: &str) {
    for args in [
        vec!["forget", "--keep-last", "1"],
        vec!["prune"],
        vec!["protect", snapshot, "--keep-forever"],
    ] {
        let run = rv.run(&args);
        assert_eq!(run.code, 3, "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.contains("other-host pid 4242 (prune)"),
            "{args:?}: {}",
            run.stderr
        );
        assert!(run.stderr.contains("repovault unlock"), "{}", run.stderr);
    }
    // Dry runs and checks take no lease.
    rv.run(&["forget", "--keep-last", "1", "--dry-run"]).ok();
    rv.run(&["prune", "--dry-run"]).ok();
    let check = rv.run(&["check"]).ok();
    assert!(
        check.stdout.contains("holds the maintenance lease"),
        "{}",
        check.stdout
    );
}

fn lease_cycle(rv: &Rv<'_>, lease: &Path, bare: &Path) {
    let snaps = rv.snapshots("acme/app");
    let first = snaps[0]["id"].as_str().expect("id").to_owned();

    // Nothing held.
    let none = rv.run(&["unlock"]).ok();
    assert!(
        none.stdout.contains("no maintenance lease"),
        "{}",
        none.stdout
    );

    // Live: refused; backups go on; unlock needs --force.
    put_lease(lease, 30);
    refused_while_leased(rv, &first);
    rv.backup_url(bare);
    let unforced = rv.run(&["unlock"]);
    assert_eq!(unforced.code, 2, "{}", unforced.stderr);
    assert!(unforced.stderr.contains("--force"), "{}", unforced.stderr);
    let forced = rv.run(&["unlock", "--force", "--json"]).ok();
    assert!(
        forced.stderr.contains("had not expired"),
        "{}",
        forced.stderr
    );
    assert_eq!(forced.json()["was_live"], true);
    rv.run(&["forget", "--keep-last", "1"]).ok();

    // Expired (its holder died): taken over, and released at the end.
    put_lease(lease, -5);
    let taken = rv.run(&["prune", "--grace", "1h"]).ok();
    assert!(
        taken
            .stderr
            .contains("took over the expired maintenance lease of other-host pid 4242"),
        "{}",
        taken.stderr
    );
    let left = rv.run(&["unlock", "--json"]).ok();
    assert!(
        left.json()["lease"].is_null(),
        "the lease was not released: {}",
        left.stdout
    );

    // An expired lease is removed by a plain unlock, with a warning.
    put_lease(lease, -5);
    let plain = rv.run(&["unlock"]).ok();
    assert!(
        plain.stderr.contains("removed the expired lease"),
        "{}",
        plain.stderr
    );
}

#[test]
fn lease_on_a_local_store() {
    let env = TestEnv::new();
    let (bare, rv) = backed_up_standard(&env);
    lease_cycle(&rv, &rv.store.join("repovault/lease.json"), &bare);
}

#[test]
fn lease_on_s3() {
    let env = TestEnv::new();
    let s3 = S3Server::start(S3Kind::S3sFs).expect("S3 server");
    s3.create_bucket("backups").expect("bucket");
    let bare = repovault_testkit::fixtures::standard(&env, &env.root().join("repos"), "acme/app");
    let mut rv = Rv::uninitialised(&env);
    rv.store = s3.store_url("backups", "team/store").into();
    rv.extra_env = s3.client_env();
    rv.run(&["init"]).ok();
    rv.backup_url(&bare);
    // s3s-fs keeps objects as plain files: the lease object is one.
    let data = s3.data_dir().expect("s3s-fs data dir");
    lease_cycle(
        &rv,
        &data.join("backups/team/store/repovault/lease.json"),
        &bare,
    );
}
