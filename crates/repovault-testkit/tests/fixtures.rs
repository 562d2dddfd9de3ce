//! Fixture shapes, their determinism, and the upstream mutation helpers.

use std::path::Path;
use std::time::Instant;

use repovault_testkit::{fixtures, upstream, TestEnv};

fn ref_names(env: &TestEnv, bare: &Path) -> Vec<String> {
    upstream::refs(env, bare)
        .into_iter()
        .map(|(name, _)| name)
        .collect()
}

#[test]
fn git_env_isolates_config_and_identity() {
    let env = TestEnv::new();
    let vars = env.git_env();
    let get = |name: &str| {
        vars.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("{name} missing from git_env"))
    };
    let global = get("GIT_CONFIG_GLOBAL");
    assert!(Path::new(&global).starts_with(env.root()));
    assert!(Path::new(&get("HOME")).starts_with(env.root()));
    assert_eq!(get("GIT_CONFIG_NOSYSTEM"), "1");
    assert_eq!(get("GIT_TERMINAL_PROMPT"), "0");
    assert_eq!(
        env.git(env.root(), &["config", "--global", "init.defaultBranch"]),
        "main"
    );
    assert_eq!(
        env.git(env.root(), &["config", "user.email"]),
        repovault_testkit::TEST_EMAIL
    );
    let listed = env.git(env.root(), &["config", "--list", "--show-origin"]);
    for line in listed.lines() {
        assert!(
            line.contains(&global),
            "config from outside the test: {line}"
        );
    }
}

#[test]
fn standard_fixture_has_the_documented_shape() {
    let env = TestEnv::new();
    let root = env.root().join("repos");
    let started = Instant::now();
    let bare = fixtures::standard(&env, &root, "owner/std");
    eprintln!("standard fixture built in {:?}", started.elapsed());
    assert_eq!(bare, root.join("owner/std.git"));
    assert_eq!(
        env.git(&bare, &["rev-parse", "--is-bare-repository"]),
        "true"
    );
    assert_eq!(env.git(&bare, &["symbolic-ref", "HEAD"]), "refs/heads/main");
    assert_eq!(env.git(&bare, &["config", "http.receivepack"]), "true");
    assert_eq!(
        ref_names(&env, &bare),
        [
            "refs/heads/dev",
            "refs/heads/feature",
            "refs/heads/main",
            "refs/tags/v0.1",
            "refs/tags/v1.0"
        ]
    );
    assert_eq!(env.git(&bare, &["cat-file", "-t", "refs/tags/v1.0"]), "tag");
    assert_eq!(
        env.git(&bare, &["cat-file", "-t", "refs/tags/v0.1"]),
        "commit"
    );
    assert_eq!(env.git(&bare, &["rev-list", "--count", "main"]), "7");

    let merges = env.git(&bare, &["rev-list", "--merges", "main"]);
    assert_eq!(merges.lines().count(), 1);
    assert_eq!(env.git(&bare, &["rev-parse", "v1.0^{commit}"]), merges);
    assert_eq!(
        env.git(&bare, &["merge-base", "--is-ancestor", "dev", "main"]),
        ""
    );
    let feature_merged = env
        .git_command(&bare)
        .args(["merge-base", "--is-ancestor", "feature", "main"])
        .status()
        .expect("running merge-base");
    assert!(!feature_merged.success(), "feature must not be merged");

    let blob = env
        .git_command(&bare)
        .args(["cat-file", "blob", "main:assets/blob.bin"])
        .output()
        .expect("reading the binary blob")
        .stdout;
    assert_eq!(blob, fixtures::standard_binary());
    assert!(blob.len() >= 4096);
    assert!(std::str::from_utf8(&blob).is_err());
    assert_eq!(
        env.git(&bare, &["cat-file", "-p", "main:src/nested/deep.txt"]),
        "deeply nested file"
    );
    let tree = env.git(&bare, &["ls-tree", "-r", "main"]);
    assert!(tree.contains("100755 blob") && tree.contains("tools/build.sh"));
    assert!(tree.contains("120000 blob") && tree.contains("README.link"));
}

#[test]
fn fixtures_are_deterministic() {
    let (a, b) = (TestEnv::new(), TestEnv::new());
    let bare_a = fixtures::standard(&a, &a.root().join("r"), "o/x");
    let bare_b = fixtures::standard(&b, &b.root().join("other"), "p/y");
    assert_eq!(upstream::refs(&a, &bare_a), upstream::refs(&b, &bare_b));
    let many_a = fixtures::many_commits(&a, &a.root().join("r"), "o/many", 50);
    let many_b = fixtures::many_commits(&b, &b.root().join("r"), "o/many", 50);
    assert_eq!(upstream::refs(&a, &many_a), upstream::refs(&b, &many_b));
}

#[test]
fn empty_fixture_has_no_commits() {
    let env = TestEnv::new();
    let bare = fixtures::empty(&env, &env.root().join("repos"), "owner/empty");
    assert!(upstream::refs(&env, &bare).is_empty());
    assert_eq!(env.git(&bare, &["symbolic-ref", "HEAD"]), "refs/heads/main");
}

#[test]
fn many_commits_builds_5000_commits_quickly() {
    let env = TestEnv::new();
    let started = Instant::now();
    let bare = fixtures::many_commits(&env, &env.root().join("repos"), "owner/many", 5000);
    let took = started.elapsed();
    eprintln!("5000-commit fixture built in {took:?}");
    assert_eq!(env.git(&bare, &["rev-list", "--count", "main"]), "5000");
    assert_eq!(
        env.git(&bare, &["log", "-1", "--format=%s", "main"]),
        "Commit 5000"
    );
    assert_eq!(
        env.git(&bare, &["cat-file", "-p", "main:counter.txt"]),
        "5000"
    );
    assert_eq!(env.git(&bare, &["symbolic-ref", "HEAD"]), "refs/heads/main");
    env.git(&bare, &["fsck", "--no-progress"]);
    assert!(took.as_secs() < 30, "took {took:?}");
}

#[test]
fn upstream_helpers_change_the_bare_repo() {
    let env = TestEnv::new();
    let bare = fixtures::standard(&env, &env.root().join("repos"), "owner/up");
    let before = upstream::refs(&env, &bare);
    let mut sorted = before.clone();
    sorted.sort();
    assert_eq!(before, sorted);

    // commit on an existing branch, into a subdirectory, with binary content
    let old_main = env.git(&bare, &["rev-parse", "main"]);
    let id = upstream::commit(
        &env,
        &bare,
        "main",
        "new/dir/file.bin",
        b"\xff\x00x",
        "Add file",
    );
    assert_eq!(env.git(&bare, &["rev-parse", "main"]), id);
    assert_eq!(env.git(&bare, &["rev-parse", "main^"]), old_main);
    assert_eq!(
        env.git(&bare, &["log", "-1", "--format=%s", "main"]),
        "Add file"
    );
    let blob = env
        .git_command(&bare)
        .args(["cat-file", "blob", "main:new/dir/file.bin"])
        .output()
        .expect("reading the committed blob")
        .stdout;
    assert_eq!(blob, b"\xff\x00x");
    // earlier files are kept
    env.git(&bare, &["cat-file", "-e", "main:assets/blob.bin"]);
    // committed one minute after its parent
    let times = env.git(&bare, &["log", "-2", "--format=%ct", "main"]);
    let times: Vec<i64> = times
        .lines()
        .map(|t| t.parse().expect("a commit time"))
        .collect();
    assert_eq!(times[0] - times[1], 60);

    // commit creating a new branch
    let root = upstream::commit(&env, &bare, "orphan", "only.txt", b"only\n", "Root");
    assert_eq!(env.git(&bare, &["rev-list", "--count", "orphan"]), "1");
    assert_eq!(env.git(&bare, &["rev-parse", "orphan"]), root);

    // force-push rewrite: same parent, old tip unreachable
    let old_tip = env.git(&bare, &["rev-parse", "feature"]);
    let old_parent = env.git(&bare, &["rev-parse", "feature^"]);
    let new_tip = upstream::force_push_rewrite(&env, &bare, "feature");
    assert_ne!(new_tip, old_tip);
    assert_eq!(env.git(&bare, &["rev-parse", "feature"]), new_tip);
    assert_eq!(env.git(&bare, &["rev-parse", "feature^"]), old_parent);
    let reachable = env.git(&bare, &["rev-list", "--all"]);
    assert!(!reachable.lines().any(|id| id == old_tip));
    assert_eq!(
        env.git(&bare, &["log", "-1", "--format=%s", "feature"]),
        "Feature: continue (rewritten)"
    );

    // delete a tag and a branch
    upstream::delete_ref(&env, &bare, "refs/tags/v0.1");
    upstream::delete_ref(&env, &bare, "refs/heads/dev");
    assert_eq!(
        ref_names(&env, &bare),
        [
            "refs/heads/feature",
            "refs/heads/main",
            "refs/heads/orphan",
            "refs/tags/v1.0"
        ]
    );
}
