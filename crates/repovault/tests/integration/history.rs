//! History over several runs: upstream changes never take anything away from earlier snapshots,
//! the cache is only a cache, and the store grows by about what git itself would need.

use repovault_testkit::{fixtures, upstream, GitHttpServer, TestEnv};

use crate::support::*;

#[test]
fn three_runs_with_new_commits_force_push_and_deleted_tag() {
    let env = TestEnv::new();
    let repos = env.root().join("repos");
    let bare = fixtures::standard(&env, &repos, "acme/app");
    let http = GitHttpServer::start(&repos, "u", "p4ss").expect("http");
    let rv = Rv::new(&env);
    let config = rv.config(&format!(
        "[[source]]\nname = \"h\"\nkind = \"git\"\nurls = [\"{}\"]\nusername = \"u\"\ntoken = \"p4ss\"\n",
        http.url("acme/app")
    ));

    let mut expected = Vec::new();
    // Run 1: the fixture as it is.
    let r1 = rv.backup_config(&config).ok().json();
    expected.push(refs_of(&env, &bare));
    // Run 2: new commits on two branches.
    upstream::commit(&env, &bare, "main", "new.txt", b"one", "one");
    upstream::commit(&env, &bare, "feature", "feat.txt", b"two", "two");
    let r2 = rv.backup_config(&config).ok().json();
    expected.push(refs_of(&env, &bare));
    // Run 3: force-push rewrites main, a tag is deleted.
    let before_rewrite = refs_of(&env, &bare);
    upstream::force_push_rewrite(&env, &bare, "main");
    upstream::delete_ref(&env, &bare, "refs/tags/v0.1");
    let r3 = rv.backup_config(&config).ok().json();
    expected.push(refs_of(&env, &bare));
    assert_ne!(expected[2], before_rewrite);
    assert!(!expected[2].iter().any(|(r, _)| r == "refs/tags/v0.1"));

    for r in [&r1, &r2, &r3] {
        assert_eq!(r["totals"]["ok"], 1, "{r:#}");
    }
    let r3_repo = repo_report(&r3, "acme/app");
    assert_eq!(r3_repo["chain_length"], 3, "{r3_repo:#}");

    let snaps = rv.snapshots("acme/app");
    assert_eq!(snaps.len(), 3);
    for (i, snap) in snaps.iter().enumerate() {
        let id = snap["id"].as_str().expect("id");
        let to = env.root().join(format!("restore-{i}"));
        rv.restore("acme/app", Some(id), &to).ok();
        assert_restored(&env, &to, &expected[i], "refs/heads/main");
    }
    // The snapshot before the rewrite still has the old main and the deleted tag.
    let old = env.root().join("restore-1");
    assert!(refs_of(&env, &old)
        .iter()
        .any(|(r, _)| r == "refs/tags/v0.1"));

    // --at picks the newest snapshot at or before the time.
    let t2 = snaps[1]["time"].as_str().expect("time");
    let to = env.root().join("restore-at");
    rv.run(&[
        "restore",
        "acme/app",
        "--to",
        to.to_str().expect("utf-8"),
        "--at",
        t2,
    ])
    .ok();
    assert_eq!(refs_of(&env, &to), expected[1]);
}

#[test]
fn a_lost_cache_is_rebuilt_from_the_store_without_storing_history_again() {
    let env = TestEnv::new();
    let repos = env.root().join("repos");
    let bare = fixtures::many_commits(&env, &repos, "acme/big", 600);
    let rv = Rv::new(&env);
    let url = bare.to_str().expect("utf-8");
    let first = rv.run(&["backup", "--url", url, "--json"]).ok().json();
    let first_bytes = repo_report(&first, "acme/big")["bytes_added"]
        .as_u64()
        .expect("bytes");

    std::fs::remove_dir_all(&rv.cache).expect("delete cache");
    upstream::commit(
        &env,
        &bare,
        "main",
        "after.txt",
        b"after the cache was lost",
        "after",
    );
    let second = rv.run(&["backup", "--url", url, "--json"]).ok().json();
    let r = repo_report(&second, "acme/big");
    assert_eq!(r["cache_rebuilt"], true, "{r:#}");
    assert_eq!(r["chain_length"], 2, "{r:#}");
    assert!(r["new_objects"].as_u64().expect("n") <= 3, "{r:#}");
    let added = r["bytes_added"].as_u64().expect("bytes");
    assert!(
        added * 10 < first_bytes,
        "history stored again: {added} vs {first_bytes}"
    );

    let to = env.root().join("restored");
    rv.restore("acme/big", None, &to).ok();
    assert_restored(&env, &to, &refs_of(&env, &bare), "refs/heads/main");
}

#[test]
fn store_grows_by_about_the_new_objects_and_not_at_all_without_changes() {
    let env = TestEnv::new();
    let repos = env.root().join("repos");
    let bare = fixtures::many_commits(&env, &repos, "acme/big", 2_000);
    let rv = Rv::new(&env);
    let url = bare.to_str().expect("utf-8");
    rv.run(&["backup", "--url", url]).ok();

    let unchanged = rv.run(&["backup", "--url", url, "--json"]).ok().json();
    let r = repo_report(&unchanged, "acme/big");
    assert_eq!(r["changed"], false);
    assert_eq!(r["new_objects"], 0);
    assert_eq!(
        r["bytes_added"], 0,
        "a no-change run must add no data: {r:#}"
    );

    // ~1% new commits with new content.
    for i in 0..20 {
        let content = format!("change {i}\n").repeat(50);
        upstream::commit(
            &env,
            &bare,
            "main",
            &format!("c/{i}.txt"),
            content.as_bytes(),
            "c",
        );
    }
    let grown = rv.run(&["backup", "--url", url, "--json"]).ok().json();
    let r = repo_report(&grown, "acme/big");
    let bundle = r["bundle_bytes"].as_u64().expect("bundle bytes");
    let added = r["bytes_added"].as_u64().expect("bytes added");
    // git's own count and pack of exactly these objects, for comparison.
    let prev_tip = env.git(&bare, &["rev-parse", "main~20"]);
    let count = env.git(
        &bare,
        &[
            "rev-list",
            "--objects",
            "--count",
            "main",
            &format!("^{prev_tip}"),
        ],
    );
    assert_eq!(r["new_objects"].to_string(), count, "{r:#}");
    let pack = git_bytes(
        &env,
        &bare,
        &["pack-objects", "--stdout", "--revs", "-q"],
        format!("main\n^{prev_tip}\n").as_bytes(),
    );
    // The snapshot also stores new tree blobs and refs.txt: a small fixed overhead.
    let limit = (pack.len() as f64 * 1.2) as u64 + 4096;
    assert!(
        added <= limit,
        "added {added} B, git pack {} B, bundle {bundle} B",
        pack.len()
    );
}
