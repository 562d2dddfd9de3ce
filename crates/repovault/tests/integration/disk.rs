//! A local store on a full disk: the free-space guard stops writing commands with a clear
//! error, a write that runs out of space leaves a store that passes check, and the next run with
//! space completes. The store is on a small tmpfs, the cache on the normal disk.

use repovault_testkit::{fixtures, upstream, TestEnv, Tmpfs};

use crate::common::*;
use crate::support::*;

const MIB: u64 = 1 << 20;

fn files(dir: &std::path::Path) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = walk(dir)
        .into_iter()
        .map(|p| {
            let len = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
            (p.display().to_string(), len)
        })
        .collect();
    out.sort();
    out
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.path().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

#[test]
fn a_full_disk_never_breaks_the_store_and_the_next_run_completes() {
    let env = TestEnv::new();
    let disk = Tmpfs::mount(&env.root().join("disk"), 4 * MIB)
        .expect("a tmpfs for the store (the tests run as root)");
    let root = env.root().join("repos");
    let small = fixtures::standard(&env, &root, "acme/small");
    let big = fixtures::standard(&env, &root, "acme/big");
    upstream::commit(&env, &big, "main", "big.bin", &noise(11, 6_000_000), "big");

    let mut rv = Rv::uninitialised(&env);
    rv.store = disk.path().join("store");
    let roomy = rv.config("[store]\nmin_free_bytes = 1048576\n");
    let cfg = roomy.to_str().expect("utf-8").to_owned();
    let strict = env.root().join("strict.toml");
    std::fs::write(&strict, "[store]\nmin_free_bytes = 67108864\n").expect("config");
    let strict = strict.to_str().expect("utf-8").to_owned();

    // init refuses a disk with less than min_free_bytes free, and creates nothing.
    let refused = rv.run_with(&["init", "--config", &strict], |c| {
        c.env("REPOVAULT_STORE", disk.path().join("other"));
    });
    assert_eq!(refused.code, 3, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("not enough free space"),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("min_free_bytes"),
        "{}",
        refused.stderr
    );
    assert!(!disk.path().join("other").exists());
    rv.run(&["init", "--config", &cfg]).ok();

    // 4 MiB free passes the 1 MiB guard; the 6 MB repository then does not fit.
    let url = |p: &std::path::Path| p.to_str().expect("utf-8").to_owned();
    let (small_url, big_url) = (url(&small), url(&big));
    let backup = |config: &str| {
        rv.run(&[
            "backup",
            "--config",
            config,
            "--url",
            &small_url,
            "--url",
            &big_url,
            "--concurrency",
            "1",
            "--json",
        ])
    };
    let full = backup(&cfg);
    assert_eq!(full.code, 1, "{}\n{}", full.stdout, full.stderr);
    let report = full.json();
    assert_eq!(
        repo_report(&report, "acme/small")["status"],
        "ok",
        "{report:#}"
    );
    let failed = repo_report(&report, "acme/big");
    assert_eq!(failed["error"]["kind"], "store", "{failed:#}");
    let message = failed["error"]["message"].as_str().expect("message");
    assert!(message.contains("disk ran full"), "{message}");
    assert_store_intact(&rv);
    assert_eq!(rv.snapshots("acme/small").len(), 1);
    assert!(rv.snapshots("acme/big").is_empty());

    // Below the guard, a backup writes nothing at all.
    let before = files(&rv.store);
    let refused = backup(&strict);
    assert_eq!(refused.code, 3, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("not enough free space"),
        "{}",
        refused.stderr
    );
    assert_eq!(files(&rv.store), before);
    // So do forget and prune (their dry runs only read).
    for args in [["forget", "--keep-last", "1"], ["prune", "--grace", "0s"]] {
        let mut all = args.to_vec();
        all.extend(["--config", strict.as_str()]);
        let run = rv.run(&all);
        assert_eq!(run.code, 3, "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.contains("not enough free space"),
            "{}",
            run.stderr
        );
    }
    rv.run(&["prune", "--dry-run", "--config", &strict]).ok();
    assert_eq!(files(&rv.store), before);

    // With space, the next run completes and everything restores.
    disk.resize(64 * MIB).expect("grow the tmpfs");
    let report = backup(&cfg).ok().json();
    assert_eq!(
        repo_report(&report, "acme/big")["status"],
        "ok",
        "{report:#}"
    );
    assert_store_intact(&rv);
    for (name, upstream) in [("acme/small", &small), ("acme/big", &big)] {
        let to = env.root().join("restored").join(name);
        rv.restore(name, None, &to).ok();
        assert_restored(&env, &to, &refs_of(&env, upstream), "refs/heads/main");
    }
}
