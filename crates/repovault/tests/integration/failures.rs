//! Bad input and broken remotes: clear errors, the right exit codes, no secret in any output,
//! and one failing repository never stops the others.

use repovault_testkit::{fixtures, free_port, GitHttpServer, TestEnv};

use crate::support::*;

#[test]
fn wrong_or_missing_password_and_missing_store() {
    let env = TestEnv::new();
    let rv = Rv::new(&env);
    let run = rv.run_with(&["snapshots"], |c| {
        c.env("REPOVAULT_PASSWORD", "not the password");
    });
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains("wrong password"), "{}", run.stderr);
    assert!(!run.stderr.contains("not the password"));

    let run = rv.run_with(&["snapshots"], |c| {
        c.env_remove("REPOVAULT_PASSWORD");
    });
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("REPOVAULT_PASSWORD"), "{}", run.stderr);

    let pw_file = env.root().join("pw");
    std::fs::write(&pw_file, format!("{PASSWORD}\n")).expect("write");
    rv.run_with(&["snapshots"], |c| {
        c.env_remove("REPOVAULT_PASSWORD")
            .env("REPOVAULT_PASSWORD_FILE", &pw_file);
    })
    .ok();
    rv.run_with(&["snapshots"], |c| {
        c.env_remove("REPOVAULT_PASSWORD").env(
            "REPOVAULT_PASSWORD_COMMAND",
            format!("cat '{}'", pw_file.display()),
        );
    })
    .ok();

    let run = rv.run_with(&["snapshots"], |c| {
        c.env("REPOVAULT_STORE", env.root().join("nowhere"));
    });
    assert_eq!(run.code, 3);
    assert!(run.stderr.contains("repovault init"), "{}", run.stderr);

    let again = rv.run(&["init"]);
    assert_eq!(again.code, 3);
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);
}

#[test]
fn config_errors_exit_2() {
    let env = TestEnv::new();
    let rv = Rv::new(&env);
    let cases = [
        ("[backup]\nconcurency = 2\n", "concurency"),
        ("[[source]]\nname = \"a\"\nkind = \"git\"\nurls = [\"https://u:hunter2@h/a/b.git\"]\n", "password"),
        ("[[source]]\nname = \"a\"\nkind = \"git\"\nurls = [\"https://h/${REPOVAULT_TEST_UNSET}/b.git\"]\n", "REPOVAULT_TEST_UNSET"),
        ("[[source]]\nname = \"a\"\nkind = \"svn\"\nurls = [\"x\"]\n", "svn"),
    ];
    for (text, needle) in cases {
        let config = rv.config(text);
        let run = rv.run(&["backup", "--config", config.to_str().expect("utf-8")]);
        assert_eq!(run.code, 2, "{text}: {}", run.stderr);
        assert!(run.stderr.contains(needle), "{text}: {}", run.stderr);
        assert!(!run.stderr.contains("hunter2"));
    }
}

#[test]
fn failing_repositories_are_reported_and_the_rest_backed_up() {
    let env = TestEnv::new();
    let repos = env.root().join("repos");
    fixtures::standard(&env, &repos, "acme/good");
    let doomed = fixtures::standard(&env, &repos, "acme/doomed");
    let token = "right-token-8c1d";
    let http = GitHttpServer::start(&repos, "u", token).expect("http");
    let wrong_token = "WRONG-token-zz9";
    let dead_port = free_port();
    let rv = Rv::new(&env);
    let config = rv.config(&format!(
        r#"
[[source]]
name = "good"
kind = "git"
urls = ["{good}", "{doomed}"]
username = "u"
token = "{token}"

[[source]]
name = "badtoken"
kind = "git"
urls = ["{good_wrong}"]
username = "u"
token = "{wrong_token}"
host = "other"

[[source]]
name = "unreachable"
kind = "git"
urls = ["http://127.0.0.1:{dead_port}/acme/nothing.git"]
"#,
        good = http.url("acme/good"),
        doomed = http.url("acme/doomed"),
        good_wrong = http.url("acme/good"),
    ));
    let first = rv.backup_config(&config);
    assert_eq!(first.code, 1, "{}", first.stderr);
    for secret in [token, wrong_token] {
        assert!(
            !first.stdout.contains(secret) && !first.stderr.contains(secret),
            "{secret} leaked"
        );
    }
    let report = first.json();
    assert_eq!(report["totals"]["ok"], 2, "{report:#}");
    assert_eq!(report["totals"]["failed"], 2, "{report:#}");
    let bad = by_source(&report, "badtoken", "acme/good");
    assert_eq!(bad["error"]["kind"], "auth", "{bad:#}");
    assert_eq!(bad["error"]["retryable"], false);
    let dead = repo_report(&report, "acme/nothing");
    assert_eq!(dead["error"]["kind"], "network", "{dead:#}");
    assert_eq!(dead["error"]["retryable"], true);

    // The repository disappears upstream: reported, and its history is still restorable.
    let doomed_refs = refs_of(&env, &doomed);
    std::fs::remove_dir_all(&doomed).expect("delete upstream");
    let second = rv.backup_config(&config);
    assert_eq!(second.code, 1);
    let report = second.json();
    let gone = repo_report(&report, "acme/doomed");
    assert_eq!(gone["status"], "failed");
    assert_eq!(gone["error"]["kind"], "not-found", "{gone:#}");
    assert!(gone["error"]["message"]
        .as_str()
        .expect("message")
        .contains("earlier snapshot"));
    assert_eq!(by_source(&report, "good", "acme/good")["status"], "ok");
    let to = env.root().join("doomed-restored");
    rv.restore("acme/doomed", None, &to).ok();
    assert_restored(&env, &to, &doomed_refs, "refs/heads/main");
}

fn by_source<'v>(report: &'v serde_json::Value, source: &str, repo: &str) -> &'v serde_json::Value {
    report["repos"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|r| r["source"] == source && r["repo"] == repo)
        })
        .unwrap_or_else(|| panic!("no report for {source}/{repo} in {report:#}"))
}

/// A server that accepts connections and never answers: the git time limit stops the transfer,
/// the repository is reported as `timeout`, and the run finishes.
#[test]
fn a_hanging_server_is_cut_off_by_the_git_time_limit() {
    use std::net::TcpListener;
    use std::time::{Duration, Instant};

    let env = TestEnv::new();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    listener.set_nonblocking(true).expect("nonblocking");
    let silent = std::thread::spawn(move || {
        // Bounded: holds accepted connections open, silently, for at most 30 s.
        let mut held = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline && held.len() < 16 {
            match listener.accept() {
                Ok((sock, _)) => held.push(sock),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    });
    let rv = Rv::new(&env);
    let config = rv.config(&format!(
        "[backup]\ngit_timeout_secs = 2\n[[source]]\nname = \"s\"\nkind = \"git\"\nurls = [\"http://127.0.0.1:{port}/acme/slow.git\"]\n"
    ));
    let started = Instant::now();
    let run = rv.backup_config(&config);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let report = run.json();
    let r = repo_report(&report, "acme/slow");
    assert_eq!(r["error"]["kind"], "timeout", "{r:#}");
    assert_eq!(r["error"]["retryable"], true);
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "the time limit did not stop git"
    );
    drop(silent);
}
