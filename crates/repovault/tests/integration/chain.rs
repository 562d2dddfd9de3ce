//! Bundle-chain maintenance: a chain starts over with a new base when it is long, when its
//! increments pass a share of the base, when much of it became unreachable, or on request; every
//! snapshot, before and after, restores exactly (also by the documented restic + git steps), and
//! the old chain leaves the store once no kept snapshot uses it.

use repovault_testkit::{fixtures, upstream, TestEnv};

use crate::common::*;
use crate::support::*;

const CONFIG: &str = "[backup]\nchain_max_links = 4\nchain_max_increments_percent = 50\nchain_max_unreachable_percent = 10\n";

fn backup(
    rv: &Rv<'_>,
    config: &std::path::Path,
    url: &std::path::Path,
    extra: &[&str],
) -> serde_json::Value {
    let mut args = vec![
        "backup",
        "--config",
        config.to_str().expect("utf-8"),
        "--url",
        url.to_str().expect("utf-8"),
        "--json",
    ];
    args.extend_from_slice(extra);
    let report = rv.run(&args).ok().json();
    repo_report(&report, "acme/app").clone()
}

#[test]
fn new_bases_start_for_each_reason_and_every_snapshot_restores() {
    let env = TestEnv::new();
    let bare = fixtures::standard(&env, &env.root().join("repos"), "acme/app");
    let rv = Rv::new(&env);
    let config = rv.config(CONFIG);
    upstream::commit(&env, &bare, "main", "big.bin", &noise(1, 40_000), "big");

    // (what happens upstream before the run, extra args, the new base the run must report)
    type Step<'a> = (&'a dyn Fn(), &'a [&'a str], Option<(&'a str, bool)>);
    let small = |i: usize| {
        let bare = bare.clone();
        let env = &env;
        move || {
            upstream::commit(
                env,
                &bare,
                "main",
                "notes.txt",
                format!("note {i}\n").as_bytes(),
                "note",
            );
        }
    };
    let (s2, s3, s4, s5) = (small(2), small(3), small(4), small(5));
    let grow = || {
        upstream::commit(&env, &bare, "main", "more.bin", &noise(2, 40_000), "more");
    };
    let branch = || {
        upstream::commit(&env, &bare, "tmp", "tmp.bin", &noise(3, 20_000), "tmp");
    };
    let drop_branch = || upstream::delete_ref(&env, &bare, "refs/heads/tmp");
    let rewrite = || {
        upstream::force_push_rewrite(&env, &bare, "main");
    };
    let again = || {
        upstream::commit(&env, &bare, "main", "last.txt", b"last\n", "last");
    };
    let nothing = || {};
    let steps: [Step<'_>; 10] = [
        (&nothing, &[], None),
        (&s2, &[], None),
        (&s3, &[], None),
        (&s4, &[], None),
        // Chain length and increments put the chain together; a rewrite and a request pack the
        // refs afresh.
        (&s5, &[], Some(("chain-length", true))),
        (&grow, &[], Some(("increments", true))),
        (&branch, &[], None),
        (&drop_branch, &[], Some(("rewritten", false))),
        (&rewrite, &[], None),
        (&again, &["--new-base"], Some(("requested", false))),
    ];
    let mut expected = Vec::new();
    let mut lengths = Vec::new();
    for (i, (change, extra, want)) in steps.iter().enumerate() {
        change();
        let r = backup(&rv, &config, &bare, extra);
        assert_eq!(r["status"], "ok", "run {}: {r:#}", i + 1);
        assert_eq!(
            r["new_base"]["reason"].as_str(),
            want.map(|w| w.0),
            "run {}: {r:#}",
            i + 1
        );
        if let Some((_, consolidated)) = want {
            assert_eq!(
                r["new_base"]["consolidated"],
                *consolidated,
                "run {}: {r:#}",
                i + 1
            );
            assert_eq!(r["chain_length"], 1, "run {}: {r:#}", i + 1);
            assert!(r["new_base"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()));
        }
        lengths.push(r["chain_length"].as_u64().expect("chain_length"));
        expected.push(refs_of(&env, &bare));
    }
    assert_eq!(lengths, [1, 2, 3, 4, 1, 1, 2, 1, 2, 1]);

    let snaps = rv.snapshots("acme/app");
    assert_eq!(snaps.len(), steps.len());
    for (i, snap) in snaps.iter().enumerate() {
        let to = env.root().join(format!("restore-{i}"));
        let run = rv.restore("acme/app", snap["id"].as_str(), &to).ok().json();
        assert_eq!(run["chain_length"].as_u64(), Some(lengths[i]), "{run:#}");
        assert_restored(&env, &to, &expected[i], "refs/heads/main");
    }
    assert_store_intact(&rv);

    // By hand, with restic and git only: the newest chain, and the end of the first one.
    let latest = env.root().join("dr-latest");
    run_dr_steps(&env, &rv, "acme/app", None, &latest);
    assert_restored(&env, &latest, &expected[9], "refs/heads/main");
    let old = env.root().join("dr-old");
    run_dr_steps(&env, &rv, "acme/app", snaps[3]["id"].as_str(), &old);
    assert_restored(&env, &old, &expected[3], "refs/heads/main");
}

#[test]
fn chain_settings_are_checked() {
    let env = TestEnv::new();
    let rv = Rv::new(&env);
    for bad in [
        "chain_max_links = 0",
        "chain_max_links = 100000",
        "chain_max_links = -1",
    ] {
        let config = rv.config(&format!("[backup]\n{bad}\n"));
        let run = rv.run(&[
            "backup",
            "--config",
            config.to_str().expect("utf-8"),
            "--url",
            "/nowhere",
        ]);
        assert_eq!(run.code, 2, "{bad}: {}", run.stderr);
        assert!(
            run.stderr.contains("chain_max_links"),
            "{bad}: {}",
            run.stderr
        );
    }
}

/// After a rewrite drops a large file upstream, the new base no longer carries it; once the
/// snapshots of the old chain are forgotten and the store pruned, its space comes back and the
/// kept snapshots still restore.
#[test]
fn old_chains_leave_the_store_with_their_last_snapshot() {
    const BIG: usize = 3_000_000;
    let env = TestEnv::new();
    let bare = fixtures::standard(&env, &env.root().join("repos"), "acme/app");
    let rv = Rv::new(&env);
    let config = rv.config("[backup]\nchain_max_unreachable_percent = 10\n");
    let before_leak = upstream::refs(&env, &bare);
    upstream::commit(&env, &bare, "main", "leak.bin", &noise(7, BIG), "oops");
    backup(&rv, &config, &bare, &[]);
    upstream::commit(&env, &bare, "feature", "f.txt", b"more\n", "more");
    backup(&rv, &config, &bare, &[]);
    // The large file is removed from history: main goes back to before it, plus a new commit.
    let main_before = before_leak
        .iter()
        .find(|(r, _)| r == "refs/heads/main")
        .map(|(_, o)| o.clone())
        .expect("main");
    env.git(&bare, &["update-ref", "refs/heads/main", &main_before]);
    upstream::commit(&env, &bare, "main", "fixed.txt", b"fixed\n", "fixed");
    let r = backup(&rv, &config, &bare, &[]);
    assert_eq!(r["new_base"]["reason"], "rewritten", "{r:#}");
    upstream::commit(&env, &bare, "main", "after.txt", b"after\n", "after");
    let kept_last = backup(&rv, &config, &bare, &[]);
    assert_eq!(kept_last["chain_length"], 2, "{kept_last:#}");
    let want = refs_of(&env, &bare);

    let snaps = rv.snapshots("acme/app");
    assert_eq!(snaps.len(), 4);
    let size_before = store_bytes(&rv);
    // The two snapshots of the old chain go; prune marks their data, and with no grace the
    // next prune deletes it.
    rv.run(&["forget", "--keep-last", "2", "--prune", "--grace", "0s"])
        .ok();
    rv.run(&["prune", "--grace", "0s"]).ok();
    let size_after = store_bytes(&rv);
    assert!(
        size_after + (BIG as u64) * 9 / 10 < size_before,
        "the old chain stayed: {size_before} B before, {size_after} B after"
    );
    assert_store_intact(&rv);
    let left = rv.snapshots("acme/app");
    assert_eq!(left.len(), 2);
    let to = env.root().join("kept-0");
    rv.restore("acme/app", left[0]["id"].as_str(), &to).ok();
    env.git(&to, &["fsck", "--full"]);
    let to = env.root().join("kept-1");
    rv.restore("acme/app", None, &to).ok();
    assert_restored(&env, &to, &want, "refs/heads/main");
    // And the next backup goes on from the kept chain.
    upstream::commit(&env, &bare, "main", "next.txt", b"next\n", "next");
    let r = backup(&rv, &config, &bare, &[]);
    assert_eq!(r["chain_length"], 3, "{r:#}");
}

/// A consolidated base is the old chain put together, so the store keeps what it has: it costs a
/// fraction of a fresh one, also when two links hold the same object (git sends a squash-merged
/// file again), and every snapshot still restores.
#[test]
fn consolidated_bases_cost_little_and_survive_duplicate_objects() {
    let env = TestEnv::new();
    let bare = fixtures::standard(&env, &env.root().join("repos"), "acme/app");
    // A new base differs from the old chain at its two ends: a header naming today's refs, and
    // the seam to the increments. Each costs one chunk of the store (about 1 MiB, at most
    // 8 MiB, boundaries that differ from store to store), so the base is large against them.
    upstream::commit(
        &env,
        &bare,
        "main",
        "data.bin",
        &noise(21, 40_000_000),
        "data",
    );
    let rv = Rv::new(&env);
    let config = rv.config("[backup]\nchain_max_links = 3\n");
    let first = backup(&rv, &config, &bare, &[]);
    let base = first["bytes_added"].as_u64().expect("bytes");
    let mut expected = vec![refs_of(&env, &bare)];
    // A topic branch with a file, then the same file squash-merged into main and the branch
    // deleted: the next link carries the file's blob a second time.
    let file = noise(22, 60_000);
    upstream::commit(&env, &bare, "topic", "topic.bin", &file, "topic");
    backup(&rv, &config, &bare, &[]);
    expected.push(refs_of(&env, &bare));
    upstream::commit(&env, &bare, "main", "topic.bin", &file, "squashed");
    upstream::delete_ref(&env, &bare, "refs/heads/topic");
    let dup = backup(&rv, &config, &bare, &[]);
    assert!(
        dup["bundle_bytes"].as_u64().expect("bytes") > 60_000,
        "{dup:#}"
    );
    assert!(dup["new_base"].is_null(), "{dup:#}");
    expected.push(refs_of(&env, &bare));
    upstream::commit(&env, &bare, "main", "x.txt", b"x", "x");
    let r = backup(&rv, &config, &bare, &[]);
    expected.push(refs_of(&env, &bare));
    assert_eq!(r["new_base"]["reason"], "chain-length", "{r:#}");
    assert_eq!(r["new_base"]["consolidated"], true, "{r:#}");
    assert_eq!(r["chain_length"], 1, "{r:#}");
    let added = r["bytes_added"].as_u64().expect("bytes");
    assert!(
        added * 2 < base,
        "a consolidated base added {added} B, the first one {base} B"
    );

    let snaps = rv.snapshots("acme/app");
    for (i, snap) in snaps.iter().enumerate() {
        let to = env.root().join(format!("restore-{i}"));
        rv.restore("acme/app", snap["id"].as_str(), &to).ok();
        assert_restored(&env, &to, &expected[i], "refs/heads/main");
    }
    let dr = env.root().join("dr");
    run_dr_steps(&env, &rv, "acme/app", None, &dr);
    assert_restored(&env, &dr, &expected[3], "refs/heads/main");
    rv.run(&["verify", "--all"]).ok();
    assert_store_intact(&rv);
}
