//! The store is a restic repository: restic can list and check it, and the documented disaster
//! recovery steps (restic + git only) bring a repository back.

use repovault_testkit::{upstream, TestEnv};

use crate::support::*;

#[test]
fn restic_reads_and_checks_the_store() {
    let env = TestEnv::new();
    let (bare, rv) = backed_up_standard(&env);
    upstream::commit(
        &env,
        &bare,
        "main",
        "x.bin",
        &[0u8, 159, 146, 150, 1, 2, 3],
        "bin",
    );
    rv.backup_url(&bare);

    let listed = restic(&rv, &["snapshots", "--json"]);
    let snaps: serde_json::Value = serde_json::from_str(&listed).expect("restic json");
    assert_eq!(snaps.as_array().map(Vec::len), Some(2));
    assert!(snaps[0]["tags"]
        .as_array()
        .expect("tags")
        .iter()
        .any(|t| t == "repo:acme/app"));
    restic(&rv, &["check", "--read-data"]);
}

/// Extracts the shell block marked `dr-steps` from docs/DISASTER-RECOVERY.md and runs exactly
/// that, with only restic and git.
#[test]
fn disaster_recovery_steps_from_the_docs_work() {
    let env = TestEnv::new();
    let (bare, rv) = backed_up_standard(&env);
    upstream::commit(&env, &bare, "feature", "more.txt", b"more", "more");
    upstream::delete_ref(&env, &bare, "refs/tags/v0.1");
    rv.backup_url(&bare);

    let target = env.root().join("recovered");
    crate::common::run_dr_steps(&env, &rv, "acme/app", None, &target);
    assert_restored(&env, &target, &refs_of(&env, &bare), "refs/heads/main");
}

#[test]
fn example_configs_parse() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples");
    let mut n = 0;
    for entry in std::fs::read_dir(dir).expect("examples/") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "toml") {
            let text = std::fs::read_to_string(&path).expect("read");
            repovault_core::config::Config::parse(&text, &path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            n += 1;
        }
    }
    assert!(n >= 1, "no example configs found");
}

#[test]
fn store_and_cache_are_private_to_their_owner() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::new();
    let (_bare, rv) = backed_up_standard(&env);
    let mode =
        |p: &std::path::Path| std::fs::metadata(p).expect("exists").permissions().mode() & 0o777;
    assert_eq!(mode(&rv.store), 0o700);
    let per_store = std::fs::read_dir(&rv.cache)
        .expect("cache exists")
        .next()
        .expect("one cache per store")
        .expect("entry")
        .path();
    assert_eq!(mode(&per_store), 0o700);
}
