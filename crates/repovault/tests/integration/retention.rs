//! `repovault forget` end to end: the same keep set as `restic forget` on a generated calendar,
//! per repository, the dry run, policies from the config, and protection.

use std::collections::BTreeSet;
use std::process::Command;

use repovault_testkit::{upstream, TestEnv};

use crate::support::*;

/// A snapshot of `dir` made by restic with a given time and repovault's tags.
fn restic_snapshot(rv: &Rv<'_>, dir: &std::path::Path, repo: &str, time: &str) {
    let out = Command::new("restic")
        .args([
            "-r",
            rv.store.to_str().expect("utf-8"),
            "--no-cache",
            "backup",
            "--json",
        ])
        .arg(dir)
        .args([
            "--host",
            "git.example.com",
            "--tag",
            &format!("repo:{repo}"),
        ])
        .args(["--time", time])
        .env("RESTIC_PASSWORD", PASSWORD)
        .env("TZ", "UTC")
        .output()
        .expect("restic runs (scripts/test-deps.sh installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn ids(v: &serde_json::Value) -> BTreeSet<String> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|s| s["id"].as_str().expect("id").to_owned())
        .collect()
}

/// Keep sets per repository from `restic forget --dry-run --json`.
fn restic_keeps(rv: &Rv<'_>, policy: &[&str]) -> BTreeSet<String> {
    let mut args = vec!["forget", "--dry-run", "--json", "--group-by", "host,tags"];
    args.extend(policy);
    let out = restic(rv, &args);
    let groups: serde_json::Value = serde_json::from_str(&out).expect("restic JSON");
    groups
        .as_array()
        .expect("groups")
        .iter()
        .flat_map(|g| ids(&g["keep"]))
        .collect()
}

fn repovault_keeps(report: &serde_json::Value) -> BTreeSet<String> {
    report["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .flat_map(|g| g["snapshots"].as_array().expect("snapshots").iter())
        .filter(|d| d["keep"] == true)
        .map(|d| d["id"].as_str().expect("id").to_owned())
        .collect()
}

#[test]
fn keeps_what_restic_keeps_per_repository_and_forgets_the_rest() {
    let env = TestEnv::new();
    let rv = Rv::new(&env);
    let dir = env.fresh_dir("content");
    std::fs::write(dir.join("f"), "x").expect("write");
    // Seven weeks of nightly snapshots across a new year (2025-12-29 starts ISO week 1 of
    // 2026), a second one on some days, and a sparse second repository.
    for day in 0..49 {
        let date = jiff::civil::date(2025, 11, 20) + jiff::Span::new().days(day);
        restic_snapshot(&rv, &dir, "acme/app", &format!("{date} 02:00:00"));
        if day % 6 == 0 {
            restic_snapshot(&rv, &dir, "acme/app", &format!("{date} 14:30:00"));
        }
        if day % 9 == 0 {
            restic_snapshot(&rv, &dir, "acme/lib", &format!("{date} 03:00:00"));
        }
    }
    let policy = [
        "--keep-last",
        "2",
        "--keep-daily",
        "5",
        "--keep-weekly",
        "3",
        "--keep-monthly",
        "2",
    ];
    let mut args = vec!["forget", "--dry-run", "--json"];
    args.extend(policy);
    let dry = rv.run(&args).ok().json();
    assert_eq!(dry["dry_run"], true);
    let want = restic_keeps(&rv, &policy);
    assert_eq!(repovault_keeps(&dry), want);
    assert_eq!(dry["groups"].as_array().expect("groups").len(), 2);
    let before = rv.snapshots("acme/app").len() + rv.snapshots("acme/lib").len();
    assert!(want.len() < before, "the policy must remove something");
    assert_eq!(
        rv.snapshots("acme/app").len() + rv.snapshots("acme/lib").len(),
        before,
        "dry run changed nothing"
    );

    // The dry run in words: what stays, what goes, and why.
    let mut text_args = vec!["forget", "--dry-run"];
    text_args.extend(policy);
    let text = rv.run(&text_args).ok();
    assert!(
        text.stdout.contains("acme/app on git.example.com"),
        "{}",
        text.stdout
    );
    assert!(text.stdout.contains("keep    "), "{}", text.stdout);
    assert!(text.stdout.contains("remove  "), "{}", text.stdout);
    assert!(
        text.stdout.contains("daily, weekly, monthly"),
        "{}",
        text.stdout
    );
    assert!(text.stdout.contains("no rule keeps it"), "{}", text.stdout);
    assert!(
        text.stdout.contains("dry run: would remove"),
        "{}",
        text.stdout
    );

    // Only one repository.
    let mut one = vec!["forget", "--json", "--repo", "acme/lib", "--keep-last", "1"];
    one.extend(["--host", "git.example.com"]);
    let done = rv.run(&one).ok().json();
    assert_eq!(done["groups"].as_array().expect("groups").len(), 1);
    assert_eq!(rv.snapshots("acme/lib").len(), 1);

    // For real, under the lease; restic sees the same result.
    let mut real = vec!["forget", "--json"];
    real.extend(policy);
    let done = rv.run(&real).ok().json();
    let kept = repovault_keeps(&done);
    let listed: BTreeSet<String> =
        ids(&serde_json::from_str(&restic(&rv, &["snapshots", "--json"])).expect("json"));
    assert_eq!(listed, kept);
    assert_eq!(
        done["forgotten"]["removed"]
            .as_array()
            .expect("removed")
            .len(),
        done["groups"]
            .as_array()
            .expect("groups")
            .iter()
            .flat_map(|g| g["snapshots"].as_array().expect("s").iter())
            .filter(|d| d["keep"] == false)
            .count()
    );
    assert!(
        !rv.store.join("repovault/lease.json").exists(),
        "the lease is released"
    );
}

#[test]
fn policies_come_from_the_config_and_bad_ones_are_refused() {
    let env = TestEnv::new();
    let (bare, rv) = backed_up_standard(&env);
    upstream::commit(&env, &bare, "main", "b.txt", b"b", "b");
    rv.backup_url(&bare);
    let none = rv.run(&["forget", "--dry-run"]);
    assert_eq!(none.code, 2, "{}", none.stderr);
    assert!(
        none.stderr.contains("no retention policy"),
        "{}",
        none.stderr
    );
    let nothing = rv.run(&["forget", "--keep-daily", "0"]);
    assert_eq!(nothing.code, 2, "{}", nothing.stderr);
    assert!(
        nothing.stderr.contains("keeps nothing"),
        "{}",
        nothing.stderr
    );

    let config =
        rv.config("[retention]\nkeep_last = 1\nkeep_daily = 7\n[prune]\ngrace = \"24h\"\n");
    let c = config.to_str().expect("utf-8");
    let dry = rv
        .run(&["forget", "--config", c, "--dry-run", "--json"])
        .ok()
        .json();
    assert_eq!(dry["policy_from"], "[retention] in the config");
    assert_eq!(dry["policy"]["daily"], 7);
    // Flags replace the config's policy as a whole.
    let dry = rv
        .run(&[
            "forget",
            "--config",
            c,
            "--dry-run",
            "--json",
            "--keep-within",
            "30d",
        ])
        .ok()
        .json();
    assert_eq!(dry["policy"]["daily"], 0);
    assert_eq!(dry["policy"]["within"], "720h");
    let bad = rv.config("[retention]\nkeep_dayly = 7\n");
    assert_eq!(
        rv.run(&["forget", "--config", bad.to_str().expect("utf-8")])
            .code,
        2
    );
}

#[test]
fn protected_snapshots_outlive_retention_until_their_time() {
    let env = TestEnv::new();
    let (bare, rv) = backed_up_standard(&env);
    for i in 0..3 {
        upstream::commit(&env, &bare, "main", &format!("p{i}.txt"), b"p", "p");
        rv.backup_url(&bare);
    }
    let snaps = rv.snapshots("acme/app");
    assert_eq!(snaps.len(), 4);
    let id = |i: usize| snaps[i]["id"].as_str().expect("id").to_owned();

    let forever = rv
        .run(&["protect", &id(0)[..10], "--keep-forever", "--json"])
        .ok()
        .json();
    let forever_id = forever[0]["snapshot"]["id"]
        .as_str()
        .expect("new id")
        .to_owned();
    assert_ne!(forever_id, id(0), "a changed snapshot file has a new name");
    assert_eq!(forever[0]["snapshot"]["original"], id(0));
    assert_eq!(forever[0]["snapshot"]["protection"], "forever");
    rv.run(&["protect", &id(1), "--delete-after", "90d"]).ok();
    let ended = rv
        .run(&[
            "protect",
            &id(2),
            "--delete-after",
            "2001-01-01T00:00:00Z",
            "--json",
        ])
        .ok()
        .json();
    let ended_id = ended[0]["snapshot"]["id"].as_str().expect("id").to_owned();
    let listing = rv.run(&["snapshots"]).ok();
    assert!(listing.stdout.contains("forever"), "{}", listing.stdout);
    assert!(listing.stdout.contains("until "), "{}", listing.stdout);

    // keep-last 2 would keep the two newest; the ended protection removes #2 anyway, the two
    // protected ones stay, and so does the newest.
    let done = rv
        .run(&["forget", "--keep-last", "2", "--json"])
        .ok()
        .json();
    let removed: Vec<&str> = done["forgotten"]["removed"]
        .as_array()
        .expect("removed")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert_eq!(removed, vec![ended_id.as_str()]);
    assert_eq!(rv.snapshots("acme/app").len(), 3);

    // Clearing protection hands the snapshot back to the policy.
    rv.run(&["protect", &forever_id, "--clear"]).ok();
    rv.run(&["forget", "--keep-last", "2"]).ok();
    let left: Vec<String> = rv
        .snapshots("acme/app")
        .iter()
        .map(|s| s["id"].as_str().expect("id").to_owned())
        .collect();
    assert_eq!(left.len(), 2);
    assert!(!left.iter().any(|i| i == &forever_id));

    // restic still reads the store, and a protected snapshot restores.
    restic(&rv, &["snapshots"]);
    let protected = rv.snapshots("acme/app")[0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let to = env.root().join("restored");
    rv.restore("acme/app", Some(&protected), &to).ok();

    // Protecting the latest snapshot does not make the next backup rebuild its cache.
    let latest = rv.snapshots("acme/app").last().expect("latest")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    rv.run(&["protect", &latest, "--keep-forever"]).ok();
    upstream::commit(&env, &bare, "main", "after.txt", b"a", "a");
    let report = rv.backup_url(&bare).json();
    assert_eq!(
        repo_report(&report, "acme/app")["cache_rebuilt"],
        false,
        "{report:#}"
    );
}
