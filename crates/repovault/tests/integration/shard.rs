//! Sharded writers: `backup --shard I/N` takes the repositories whose stable hash falls in shard
//! I, so N processes (a Kubernetes Indexed Job) back up one source list into one store at once.

use std::path::PathBuf;

use repovault_testkit::{fixtures, upstream, S3Kind, S3Server, TestEnv};
use sha2::{Digest, Sha256};

use crate::common::*;
use crate::support::*;

const SHARDS: u64 = 4;

/// The documented assignment: SHA-256 of `<host>/<owner>/<name>`, first 8 bytes big-endian,
/// modulo N.
fn shard_of(host: &str, repo: &str) -> u64 {
    let d = Sha256::digest(format!("{host}/{repo}").as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&d[..8]);
    u64::from_be_bytes(first) % SHARDS
}

fn config(repos: &[(String, PathBuf)]) -> String {
    let urls: Vec<String> = repos
        .iter()
        .map(|(_, p)| format!("\"{}\"", p.display()))
        .collect();
    format!(
        "[backup]\nconcurrency = 2\n[[source]]\nname = \"all\"\nkind = \"git\"\nurls = [{}]\n",
        urls.join(", ")
    )
}

/// Runs the N shards at once, each with its own cache (its own machine); returns their reports.
fn run_shards(rv: &Rv<'_>, config: &std::path::Path) -> Vec<serde_json::Value> {
    let children: Vec<_> = (0..SHARDS)
        .map(|i| {
            let mut cmd = rv.command();
            cmd.env("REPOVAULT_CACHE_DIR", rv.cache.join(format!("shard-{i}")))
                .args(["backup", "--config", config.to_str().expect("utf-8")])
                .args(["--shard", &format!("{i}/{SHARDS}"), "--json"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            cmd.spawn().expect("repovault runs")
        })
        .collect();
    children
        .into_iter()
        .enumerate()
        .map(|(i, child)| {
            let out = child.wait_with_output().expect("shard ends");
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success(),
                "shard {i}: {}\n{stdout}",
                String::from_utf8_lossy(&out.stderr)
            );
            serde_json::from_str(&stdout).expect("JSON report")
        })
        .collect()
}

fn repos_of(report: &serde_json::Value) -> Vec<String> {
    let mut v: Vec<String> = report["repos"]
        .as_array()
        .expect("repos")
        .iter()
        .map(|r| {
            assert_eq!(r["status"], "ok", "{r:#}");
            r["repo"].as_str().expect("repo").to_owned()
        })
        .collect();
    v.sort();
    v
}

#[test]
fn four_shards_at_once_fill_one_s3_store() {
    let env = TestEnv::new();
    let s3 = S3Server::start(S3Kind::Moto).expect("S3 server");
    s3.create_bucket("backups").expect("bucket");
    let root = env.root().join("repos");
    let mut repos: Vec<(String, PathBuf)> = (0..12)
        .map(|i| {
            let name = format!("team{}/svc-{i}", i % 3);
            let path = fixtures::standard(&env, &root, &name);
            upstream::commit(&env, &path, "main", "id.txt", name.as_bytes(), "id");
            (name, path)
        })
        .collect();
    let mut rv = Rv::uninitialised(&env);
    rv.store = s3.store_url("backups", "sharded").into();
    rv.extra_env = s3.client_env();
    rv.run(&["init"]).ok();
    let cfg = rv.config(&config(&repos));

    let reports = run_shards(&rv, &cfg);
    let mut seen = Vec::new();
    for (i, report) in reports.iter().enumerate() {
        let mine = repos_of(report);
        let want: Vec<String> = {
            let mut w: Vec<String> = repos
                .iter()
                .filter(|(n, _)| shard_of("local", n) == i as u64)
                .map(|(n, _)| n.clone())
                .collect();
            w.sort();
            w
        };
        assert_eq!(mine, want, "shard {i}");
        seen.extend(mine);
    }
    seen.sort();
    let mut all: Vec<String> = repos.iter().map(|(n, _)| n.clone()).collect();
    all.sort();
    assert_eq!(seen, all, "every repository in exactly one shard");
    assert!(
        reports.iter().filter(|r| r["totals"]["repos"] != 0).count() >= 3,
        "the repositories spread over the shards"
    );

    assert_store_intact(&rv);
    let snaps = rv.run(&["snapshots", "--json"]).ok().json();
    assert_eq!(
        snaps.as_array().map(Vec::len),
        Some(repos.len()),
        "one snapshot each"
    );
    std::thread::scope(|scope| {
        for chunk in repos.chunks(4) {
            let (rv, env) = (&rv, &env);
            scope.spawn(move || {
                for (name, path) in chunk {
                    let to = env.root().join("restored").join(name);
                    rv.restore(name, None, &to).ok();
                    assert_restored(env, &to, &refs_of(env, path), "refs/heads/main");
                }
            });
        }
    });

    // The assignment does not depend on the order of the config: the same shards again, with
    // the list reversed and one repository changed, keep their repositories (and caches).
    repos.reverse();
    let cfg = rv.config(&config(&repos));
    let changed = &repos[0];
    upstream::commit(&env, &changed.1, "main", "later.txt", b"later", "later");
    for (i, report) in run_shards(&rv, &cfg).iter().enumerate() {
        for r in report["repos"].as_array().expect("repos") {
            let name = r["repo"].as_str().expect("repo");
            assert_eq!(shard_of("local", name), i as u64, "{name}");
            assert_eq!(r["cache_rebuilt"], false, "{r:#}");
            assert_eq!(r["changed"], name == changed.0, "{r:#}");
        }
    }
    assert_store_intact(&rv);
    let to = env.root().join("changed");
    rv.restore(&changed.0, None, &to).ok();
    assert_restored(&env, &to, &refs_of(&env, &changed.1), "refs/heads/main");
}

#[test]
fn shard_arguments_are_checked_and_an_empty_shard_is_fine() {
    let env = TestEnv::new();
    let repo = fixtures::standard(&env, &env.root().join("repos"), "acme/app");
    let rv = Rv::new(&env);
    let url = repo.to_str().expect("utf-8");
    for bad in ["4/4", "1/0", "a/b", "2"] {
        let run = rv.run(&["backup", "--url", url, "--shard", bad]);
        assert_eq!(run.code, 2, "{bad}: {}", run.stderr);
        assert!(run.stderr.contains("shard"), "{bad}: {}", run.stderr);
    }
    let home = shard_of("local", "acme/app");
    let other = (home + 1) % SHARDS;
    let report = rv
        .run(&[
            "backup",
            "--url",
            url,
            "--shard",
            &format!("{other}/{SHARDS}"),
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(report["totals"]["repos"], 0, "{report:#}");
    let report = rv
        .run(&[
            "backup",
            "--url",
            url,
            "--shard",
            &format!("{home}/{SHARDS}"),
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(report["totals"]["ok"], 1, "{report:#}");
}
