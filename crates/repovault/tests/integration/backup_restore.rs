//! Backup → restore round trips over every transport.

use repovault_testkit::{fixtures, GitDaemon, GitHttpServer, SshServer, TestEnv};

use crate::support::*;

#[test]
fn http_with_token_ssh_git_daemon_and_local_path_in_one_run() {
    let env = TestEnv::new();
    let repos = env.root().join("repos");
    let http_repo = fixtures::standard(&env, &repos, "org/app");
    let ssh_repo = fixtures::standard(&env, &repos, "org/lib");
    let daemon_repo = fixtures::standard(&env, &repos, "x/y");
    let local_repo = fixtures::standard(&env, &repos, "srv/z");
    let token = "tok-3f9a-very-secret";
    let http = GitHttpServer::start(&repos, "backup", token).expect("http server");
    let daemon = GitDaemon::start(&repos).expect("git daemon");
    let ssh = SshServer::start(&repos).expect("sshd");
    let token_file = env.root().join("token");
    std::fs::write(&token_file, format!("{token}\n")).expect("token file");

    let rv = Rv::new(&env);
    let config = rv.config(&format!(
        r#"
[backup]
concurrency = 3

[[source]]
name = "http"
kind = "git"
urls = ["{http_url}"]
username = "backup"
token_file = "{token_file}"

[[source]]
name = "other"
kind = "git"
urls = ["{ssh_url}", "{daemon_url}", "{local}"]
ssh_key_file = "{key}"
known_hosts_file = "{kh}"
"#,
        http_url = http.url("org/app"),
        token_file = token_file.display(),
        ssh_url = ssh.url("org/lib"),
        daemon_url = daemon.url("x/y"),
        local = local_repo.display(),
        key = ssh.client_key().display(),
        kh = ssh.known_hosts().display(),
    ));
    let run = rv.backup_config(&config).ok();
    assert!(!run.stdout.contains(token) && !run.stderr.contains(token));
    let report = run.json();
    assert_eq!(report["totals"]["ok"], 4, "{report:#}");
    let time = |k: &str| {
        report[k]
            .as_str()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .expect("RFC 3339 time")
    };
    let span_ms = time("finished").as_millisecond() - time("started").as_millisecond();
    assert_eq!(report["duration_ms"].as_i64(), Some(span_ms), "{report:#}");
    // Snapshots were written by concurrent workers: the store must be intact, data included.
    restic(&rv, &["check", "--read-data"]);

    for (name, upstream) in [
        ("org/app", &http_repo),
        ("org/lib", &ssh_repo),
        ("x/y", &daemon_repo),
        ("srv/z", &local_repo),
    ] {
        let r = repo_report(&report, name);
        assert_eq!(r["status"], "ok", "{r:#}");
        assert!(r["new_objects"].as_u64().unwrap_or(0) > 0, "{r:#}");
        let to = env.root().join("restored").join(name);
        rv.restore(name, None, &to).ok();
        assert_restored(&env, &to, &refs_of(&env, upstream), "refs/heads/main");
    }
}

#[test]
fn checkout_restore_gives_a_working_tree() {
    let env = TestEnv::new();
    let repos = env.root().join("repos");
    let upstream = fixtures::standard(&env, &repos, "acme/tool");
    let rv = Rv::new(&env);
    rv.run(&["backup", "--url", upstream.to_str().expect("utf-8")])
        .ok();
    let to = env.root().join("work");
    let run = rv
        .run(&[
            "restore",
            "acme/tool",
            "--to",
            to.to_str().expect("utf-8"),
            "--checkout",
        ])
        .ok();
    assert!(run.stdout.contains("fsck ok"), "{}", run.stdout);
    assert_eq!(refs_of(&env, &to), refs_of(&env, &upstream));
    assert_eq!(env.git(&to, &["status", "--porcelain"]), "");
    let files = env.git(&to, &["ls-files"]);
    for line in files.lines() {
        assert!(to.join(line).exists(), "{line} checked out");
    }
}

#[test]
fn empty_and_large_history_repositories() {
    let env = TestEnv::new();
    let repos = env.root().join("repos");
    let empty = fixtures::empty(&env, &repos, "acme/empty");
    let big = fixtures::many_commits(&env, &repos, "acme/big", 5_000);
    let rv = Rv::new(&env);
    let report = rv
        .run(&[
            "backup",
            "--url",
            empty.to_str().expect("utf-8"),
            "--url",
            big.to_str().expect("utf-8"),
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(repo_report(&report, "acme/empty")["refs"], 0);
    assert!(
        repo_report(&report, "acme/big")["new_objects"]
            .as_u64()
            .unwrap_or(0)
            >= 15_000
    );

    let to = env.root().join("empty-restored");
    rv.restore("acme/empty", None, &to).ok();
    assert!(refs_of(&env, &to).is_empty());
    env.git(&to, &["fsck", "--full"]);

    let to = env.root().join("big-restored");
    rv.restore("acme/big", None, &to).ok();
    assert_restored(&env, &to, &refs_of(&env, &big), "refs/heads/main");
    assert_eq!(env.git(&to, &["rev-list", "--count", "main"]), "5000");
}

#[test]
fn restore_refuses_non_empty_targets_and_bad_names() {
    let env = TestEnv::new();
    let (upstream, rv) = backed_up_standard(&env);

    let to = env.root().join("occupied");
    std::fs::create_dir_all(&to).expect("mkdir");
    std::fs::write(to.join("keep.txt"), "mine").expect("write");
    let run = rv.restore("acme/app", None, &to);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("not empty"), "{}", run.stderr);
    assert_eq!(
        std::fs::read_to_string(to.join("keep.txt")).expect("still there"),
        "mine"
    );

    let forced = rv.run(&[
        "restore",
        "acme/app",
        "--to",
        to.to_str().expect("utf-8"),
        "--force",
    ]);
    assert_eq!(forced.code, 0, "{}", forced.stderr);
    assert_eq!(refs_of(&env, &to), refs_of(&env, &upstream));

    for bad in ["../../etc", "acme/..", "/abs/x", "acme"] {
        let out = env.root().join("never");
        let run = rv.restore(bad, None, &out);
        assert_eq!(run.code, 2, "{bad}: {}", run.stderr);
        assert!(!out.exists(), "{bad} must not create anything");
    }
    let run = rv.run(&[
        "restore",
        "acme/app",
        "--to",
        env.root().join("t").to_str().expect("utf-8"),
        "--at",
        "2000-01-01T00:00:00Z",
    ]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("at or before"), "{}", run.stderr);
    // Nothing was written outside the targets: the scratch directory is gone too.
    let leftovers: Vec<_> = std::fs::read_dir(&to)
        .expect("read")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(".repovault"))
        .collect();
    assert!(leftovers.is_empty());
}
