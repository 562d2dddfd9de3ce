//! `repovault verify`: restore tests that prove repositories (git fsck, refs equal `refs.txt`,
//! metadata JSON, LFS objects) and say exactly what is wrong, where.

use std::path::{Path, PathBuf};

use repovault_testkit::{fixtures, TestEnv};
use sha2::{Digest, Sha256};

use crate::support::*;

fn verify(rv: &Rv<'_>, args: &[&str]) -> Run {
    let mut all = vec!["verify"];
    all.extend_from_slice(args);
    rv.run(&all)
}

/// The staging tree of `repo` in the cache: what the next snapshot of it stores.
fn staging(rv: &Rv<'_>, repo: &str) -> PathBuf {
    let per_store = std::fs::read_dir(&rv.cache)
        .expect("cache")
        .next()
        .expect("one store")
        .expect("entry")
        .path();
    per_store.join("local").join(repo).join("snap")
}

fn urls(repos: &[PathBuf]) -> Vec<&str> {
    repos
        .iter()
        .flat_map(|r| ["--url", r.to_str().expect("utf-8")])
        .collect()
}

fn backup_all(rv: &Rv<'_>, repos: &[PathBuf]) {
    let mut args = vec!["backup"];
    args.extend(urls(repos));
    rv.run(&args).ok();
}

#[test]
fn good_repositories_verify_and_can_be_sampled() {
    let env = TestEnv::new();
    let root = env.root().join("repos");
    let repos = [
        fixtures::standard(&env, &root, "acme/app"),
        fixtures::standard(&env, &root, "acme/lib"),
        fixtures::empty(&env, &root, "acme/empty"),
    ];
    let rv = Rv::new(&env);
    backup_all(&rv, &repos);

    let report = verify(&rv, &["--all", "--json"]).ok().json();
    assert_eq!(report["ok"], 3, "{report:#}");
    assert_eq!(report["problems"], 0);
    let app = &report["repos"][0];
    assert_eq!(app["repo"], "acme/app", "{report:#}");
    assert_eq!(app["git"][0]["path"], "git");
    assert_eq!(app["git"][0]["refs"], 5, "{app:#}");

    let sampled = verify(&rv, &["--sample", "2", "--seed", "5", "--json"])
        .ok()
        .json();
    assert_eq!(sampled["repos"].as_array().map(Vec::len), Some(2));
    assert_eq!(
        (sampled["candidates"].as_u64(), sampled["seed"].as_u64()),
        (Some(3), Some(5))
    );
    let again = verify(&rv, &["--sample", "2", "--seed", "5", "--json"])
        .ok()
        .json();
    assert_eq!(sampled["repos"][0]["repo"], again["repos"][0]["repo"]);
    assert_eq!(sampled["repos"][1]["repo"], again["repos"][1]["repo"]);

    let human = verify(&rv, &["--repo", "acme/lib"]).ok();
    assert!(
        human
            .stdout
            .contains("verified 1 repository: 1 ok, 0 failed"),
        "{}",
        human.stdout
    );
    assert!(human.stderr.contains("ok     acme/lib"), "{}", human.stderr);
    let none = verify(&rv, &["--repo", "acme/nothing"]);
    assert_eq!(none.code, 2, "{}", none.stderr);
    assert!(none.stderr.contains("acme/nothing"), "{}", none.stderr);
    // Nothing is left in the temp dir.
    let tmp = env.fresh_dir("verify-tmp");
    verify(&rv, &["--tmp-dir", tmp.to_str().expect("utf-8")]).ok();
    assert_eq!(std::fs::read_dir(&tmp).expect("tmp").count(), 0);
}

fn flip_byte(path: &Path, at: u64) {
    use std::io::{Read, Seek, SeekFrom, Write};
    let mut f = std::fs::File::options()
        .read(true)
        .write(true)
        .open(path)
        .expect("open");
    let len = f.metadata().expect("meta").len();
    let at = at.min(len.saturating_sub(1));
    let mut b = [0u8; 1];
    f.seek(SeekFrom::Start(at)).expect("seek");
    f.read_exact(&mut b).expect("read");
    f.seek(SeekFrom::Start(at)).expect("seek");
    f.write_all(&[b[0] ^ 0x5a]).expect("write");
}

/// Snapshots made by hand (the cache's staging tree changed before a backup stores it): every
/// kind of damage is reported with its repository, snapshot and path, and undamaged snapshots of
/// the same repositories still verify.
#[test]
fn every_problem_is_reported_with_repository_snapshot_and_path() {
    let env = TestEnv::new();
    let root = env.root().join("repos");
    let repos = [
        fixtures::standard(&env, &root, "acme/app"),
        fixtures::standard(&env, &root, "acme/other"),
    ];
    let rv = Rv::new(&env);
    backup_all(&rv, &repos);
    let first: Vec<String> = ["acme/app", "acme/other"]
        .iter()
        .map(|r| rv.snapshots(r)[0]["id"].as_str().expect("id").to_owned())
        .collect();

    let app = staging(&rv, "acme/app");
    std::fs::create_dir_all(app.join("meta/issues")).expect("mkdir");
    std::fs::write(app.join("meta/repository.json"), br#"{"name": "app"}"#).expect("w");
    std::fs::write(app.join("meta/issues/1.json"), br#"{"title": "cut off"#).expect("w");
    let objects = app.join("lfs/objects");
    std::fs::create_dir_all(&objects).expect("mkdir");
    let content = b"a large file, stored once";
    let oid = hex::encode(Sha256::digest(content));
    std::fs::write(objects.join(&oid), content).expect("w");
    let claimed = hex::encode(Sha256::digest(b"something else"));
    std::fs::write(objects.join(&claimed), content).expect("w");
    // A wiki whose refs.txt names an object its chain does not have.
    std::fs::create_dir_all(app.join("wiki/chain")).expect("mkdir");
    for link in std::fs::read_dir(app.join("git/chain"))
        .expect("chain")
        .flatten()
    {
        std::fs::copy(link.path(), app.join("wiki/chain").join(link.file_name())).expect("copy");
    }
    let bogus = "0123456789abcdef0123456789abcdef01234567";
    std::fs::write(
        app.join("wiki/refs.txt"),
        format!("ref: refs/heads/main HEAD\n{bogus} refs/heads/main\n"),
    )
    .expect("w");
    // A bundle damaged in the middle.
    let other = staging(&rv, "acme/other");
    let link = std::fs::read_dir(other.join("git/chain"))
        .expect("chain")
        .flatten()
        .next()
        .expect("a link")
        .path();
    let len = std::fs::metadata(&link).expect("meta").len();
    flip_byte(&link, len / 2);
    backup_all(&rv, &repos);

    let run = verify(&rv, &["--json"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let report = run.json();
    assert_eq!(
        (report["ok"].as_u64(), report["failed"].as_u64()),
        (Some(0), Some(2)),
        "{report:#}"
    );
    let problems = |repo: &str| -> Vec<String> {
        let r = report["repos"]
            .as_array()
            .expect("repos")
            .iter()
            .find(|r| r["repo"] == repo)
            .expect(repo);
        r["problems"]
            .as_array()
            .expect("problems")
            .iter()
            .map(|p| {
                format!(
                    "{} {} {}",
                    p["area"].as_str().unwrap_or(""),
                    p["path"].as_str().unwrap_or("-"),
                    p["message"].as_str().unwrap_or("")
                )
            })
            .collect()
    };
    let app_problems = problems("acme/app");
    assert_eq!(app_problems.len(), 3, "{app_problems:#?}");
    assert!(
        app_problems
            .iter()
            .any(|p| p.starts_with("meta meta/issues/1.json not valid JSON")),
        "{app_problems:#?}"
    );
    assert!(
        app_problems.iter().any(|p| p.starts_with(&format!(
            "lfs lfs/objects/{claimed} content hashes to {oid}"
        ))),
        "{app_problems:#?}"
    );
    assert!(
        app_problems
            .iter()
            .any(|p| p.starts_with("git wiki ") && p.contains(bogus)),
        "{app_problems:#?}"
    );
    let other_problems = problems("acme/other");
    assert_eq!(other_problems.len(), 1, "{other_problems:#?}");
    assert!(
        other_problems[0].starts_with("git git "),
        "{other_problems:#?}"
    );
    let app_report = report["repos"]
        .as_array()
        .expect("repos")
        .iter()
        .find(|r| r["repo"] == "acme/app")
        .expect("app");
    assert_eq!(app_report["meta_files"], 2);
    assert_eq!(app_report["lfs_objects"], 2);

    // The human form names repository, snapshot and path on one line each.
    let human = verify(&rv, &[]);
    assert_eq!(human.code, 1);
    let latest = rv.snapshots("acme/app")[1]["id"].as_str().expect("id")[..8].to_owned();
    assert!(
        human.stdout.contains(&format!(
            "acme/app (snapshot {latest}): meta meta/issues/1.json: not valid JSON"
        )),
        "{}",
        human.stdout
    );
    assert!(
        human.stdout.contains("2 failed, 4 problem(s)"),
        "{}",
        human.stdout
    );

    // The first snapshots were not damaged.
    for id in &first {
        verify(&rv, &["--snapshot", id]).ok();
    }
}

/// Damage in the store itself (every pack file hit) is a problem of each repository it touches.
#[test]
fn damaged_store_data_fails_verification() {
    let env = TestEnv::new();
    let root = env.root().join("repos");
    let repos = [fixtures::standard(&env, &root, "acme/app")];
    let rv = Rv::new(&env);
    backup_all(&rv, &repos);
    verify(&rv, &[]).ok();
    for dir in std::fs::read_dir(rv.store.join("data"))
        .expect("data")
        .flatten()
    {
        for pack in std::fs::read_dir(dir.path()).expect("dir").flatten() {
            flip_byte(&pack.path(), 40);
        }
    }
    let run = verify(&rv, &["--json"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let report = run.json();
    let p = &report["repos"][0]["problems"][0];
    assert!(p["area"] == "store" || p["area"] == "git", "{report:#}");
    assert!(!p["message"].as_str().unwrap_or("").is_empty());
}

/// The daemon runs `verify` schedules with the same code: a good store verifies, a damaged one
/// fails the job and names the problem.
#[test]
fn the_daemon_runs_verify_jobs() {
    let env = TestEnv::new();
    let root = env.root().join("repos");
    let repos = [fixtures::standard(&env, &root, "acme/app")];
    let rv = Rv::new(&env);
    backup_all(&rv, &repos);
    let port = repovault_testkit::free_port();
    let config = rv.config(&format!(
        "[daemon]\nlisten = \"127.0.0.1:{port}\"\n[[schedule]]\njob = \"verify\"\ncron = \"*/2 * * * * *\"\n"
    ));
    let mut daemon = crate::daemon::Daemon::start(&rv, &config, port);
    let run = crate::receiver::eventually(60, "a finished verify run", || {
        let s = daemon.status();
        let last = crate::daemon::task(&s, "verify")["last_run"].clone();
        last["outcome"]
            .as_str()
            .is_some_and(|o| o != "running")
            .then_some(last)
    });
    assert_eq!(run["outcome"], "success", "{run:#}");
    assert!(
        run["summary"]
            .as_str()
            .is_some_and(|s| s.contains("1 ok, 0 failed")),
        "{run:#}"
    );
    assert_eq!(daemon.stop(), 0, "{}", daemon.logs());
}
