//! `repovault daemon` end to end: schedules that fire within seconds (six-field cron
//! expressions, seconds first), the status API and metrics, notifications, a run skipped because
//! the previous one is still going, SIGTERM while a repository is in flight, and a restart that
//! keeps the status.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

use repovault_testkit::{fixtures, free_port, GitHttpServer, TestEnv};

use crate::receiver::{eventually, get, Gate, Receiver};
use crate::support::*;

/// A running daemon, stopped (SIGTERM, then SIGKILL) when dropped.
pub struct Daemon {
    child: Option<Child>,
    pub port: u16,
    log: PathBuf,
}

impl Daemon {
    pub fn start(rv: &Rv<'_>, config: &Path, port: u16) -> Self {
        let log = rv.env.fresh_dir("daemon-log").join("stderr.log");
        let file = std::fs::File::create(&log).expect("log file");
        let child = rv
            .command()
            .args(["--config", config.to_str().expect("utf-8"), "daemon"])
            .env("REPOVAULT_LOG", "info,repovault=debug")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("daemon starts");
        let d = Self {
            child: Some(child),
            port,
            log,
        };
        eventually(30, "the daemon to be ready", || {
            (get(port, "/readyz").map(|(s, _)| s) == Some(200)).then_some(())
        });
        d
    }

    pub fn status(&self) -> serde_json::Value {
        let (code, body) = get(self.port, "/api/status").expect("status answers");
        assert_eq!(code, 200, "{body}");
        serde_json::from_str(&body).expect("status is JSON")
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    pub fn terminate(&self) {
        let ok = std::process::Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill -TERM {}", self.pid());
    }

    /// Waits (bounded) for the exit and returns the exit code.
    pub fn wait(&mut self) -> i32 {
        let mut child = self.child.take().expect("running");
        let status = eventually(120, "the daemon to exit", || {
            child.try_wait().ok().flatten()
        });
        status.code().unwrap_or(-1)
    }

    pub fn stop(&mut self) -> i32 {
        self.terminate();
        self.wait()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

pub fn task<'v>(status: &'v serde_json::Value, name: &str) -> &'v serde_json::Value {
    status["tasks"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["name"] == name))
        .unwrap_or_else(|| panic!("no task {name} in {status:#}"))
}

pub fn repo<'v>(status: &'v serde_json::Value, name: &str) -> &'v serde_json::Value {
    status["repositories"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["repo"] == name))
        .unwrap_or_else(|| panic!("no repository {name} in {status:#}"))
}

/// A good and a missing repository as local paths; the backup of `acme/gone` fails.
pub fn good_and_gone(env: &TestEnv) -> (PathBuf, PathBuf) {
    let repos = env.root().join("repos");
    let good = fixtures::standard(env, &repos, "acme/app");
    (good, repos.join("acme/gone.git"))
}

#[test]
fn schedules_run_and_status_metrics_and_notifications_survive_a_restart() {
    let env = TestEnv::new();
    let rv = Rv::new(&env);
    let (good, gone) = good_and_gone(&env);
    let webhook = Receiver::start(&[]);
    let heartbeat = Receiver::start(&[]);
    let port = free_port();
    let sources = format!(
        "[[source]]\nname = \"local\"\nkind = \"git\"\nurls = [\"{}\", \"{}\"]\n",
        good.display(),
        gone.display()
    );
    let config = rv.config(&format!(
        r#"
[daemon]
listen = "127.0.0.1:{port}"

[[schedule]]
job = "backup"
cron = "*/2 * * * * *"

[[schedule]]
job = "forget"
cron = "*/2 * * * * *"
prune = true

[[schedule]]
job = "check"
cron = "*/2 * * * * *"
read_data = "all"

[retention]
keep_last = 1

[[notify]]
kind = "webhook"
url = "{webhook}"
on = ["success", "failure"]
jobs = ["backup"]

[[notify]]
kind = "heartbeat"
url = "{heartbeat}"
on = ["success", "failure"]
jobs = ["backup"]

{sources}"#,
        webhook = webhook.url("/hook"),
        heartbeat = heartbeat.url("/ping/0f3e"),
    ));
    let mut daemon = Daemon::start(&rv, &config, port);
    let status = eventually(60, "a finished backup, forget and check", || {
        let s = daemon.status();
        let done = |t: &str| {
            task(&s, t)["last_run"]["outcome"]
                .as_str()
                .is_some_and(|o| o != "running")
        };
        (done("backup") && done("forget") && done("check")).then_some(s)
    });
    assert_eq!(
        task(&status, "backup")["last_run"]["outcome"],
        "failure",
        "{status:#}"
    );
    assert_eq!(status["totals"]["failed"], 1, "{status:#}");
    assert_eq!(status["totals"]["ok"], 1, "{status:#}");
    let gone_repo = repo(&status, "acme/gone");
    assert_eq!(gone_repo["status"], "failed");
    assert_eq!(gone_repo["error"]["kind"], "not-found", "{gone_repo:#}");
    let app = repo(&status, "acme/app");
    assert_eq!(app["status"], "ok");
    assert!(app["latest_snapshot"]["id"].is_string(), "{app:#}");
    // forget and check run through the same code as their commands: [retention], one lease.
    let forget = &task(&status, "forget")["last_run"];
    assert_eq!(forget["outcome"], "success", "{forget:#}");
    assert!(
        forget["summary"]
            .as_str()
            .is_some_and(|s| s.contains("keep-last 1") && s.contains("prune deleted")),
        "{forget:#}"
    );
    let check = &task(&status, "check")["last_run"];
    assert_eq!(check["outcome"], "success", "{check:#}");
    assert!(
        check["summary"]
            .as_str()
            .is_some_and(|s| s.contains("all of the data") && s.contains("0 error(s)")),
        "{check:#}"
    );
    assert!(task(&status, "backup")["next_run"].is_string());

    assert_eq!(get(port, "/healthz").map(|r| r.0), Some(200));
    let (code, metrics) = get(port, "/metrics").expect("metrics");
    assert_eq!(code, 200);
    for want in [
        "repovault_repository_failed{source=\"local\",host=\"local\",repo=\"acme/gone\"} 1",
        "repovault_repository_failed{source=\"local\",host=\"local\",repo=\"acme/app\"} 0",
        "repovault_repository_last_success_timestamp_seconds{source=\"local\",host=\"local\",repo=\"acme/app\"}",
        "repovault_backup_repositories_failed{source=\"local\"} 1",
        "repovault_job_runs_total{task=\"forget\",outcome=\"success\"}",
        "repovault_job_runs_total{task=\"check\",outcome=\"success\"}",
        "repovault_store_size_bytes ",
        "# EOF",
    ] {
        assert!(metrics.contains(want), "{want} missing from\n{metrics}");
    }

    let hook = webhook.wait_for(1);
    let first = hook[0].json();
    assert_eq!(first["event"], "failure", "{first:#}");
    assert_eq!(first["task"], "backup");
    assert_eq!(
        first["failed_repositories"][0]["repo"], "acme/gone",
        "{first:#}"
    );
    assert_eq!(hook[0].header("content-type"), Some("application/json"));
    let pings = heartbeat.wait_for(1);
    assert_eq!(pings[0].path, "/ping/0f3e/fail");
    assert_eq!(pings[0].method, "POST");

    assert_eq!(daemon.stop(), 0, "{}", daemon.logs());
    let runs_before = status["runs"].as_array().map_or(0, Vec::len);
    assert!(runs_before >= 2);

    // Restarted with only a prune: everything known before is still shown.
    let config = rv.config(&format!(
        "[daemon]\nlisten = \"127.0.0.1:{port}\"\n[[schedule]]\njob = \"prune\"\ncron = \"*/2 * * * * *\"\n{sources}"
    ));
    let mut again = Daemon::start(&rv, &config, port);
    let after = again.status();
    assert_eq!(repo(&after, "acme/gone")["status"], "failed", "{after:#}");
    assert_eq!(
        repo(&after, "acme/app")["latest_snapshot"],
        repo(&status, "acme/app")["latest_snapshot"]
    );
    let kept = after["runs"].as_array().expect("runs");
    assert!(
        kept.iter()
            .any(|r| r["task"] == "backup" && r["outcome"] == "failure"),
        "{after:#}"
    );
    assert!(
        kept.iter()
            .all(|r| r["task"] == "prune" || r["outcome"] != "running"),
        "{after:#}"
    );
    let (_, metrics) = get(port, "/metrics").expect("metrics");
    assert!(
        metrics.contains(
            "repovault_repository_failed{source=\"local\",host=\"local\",repo=\"acme/gone\"} 1"
        ),
        "{metrics}"
    );
    let pruned = eventually(60, "a finished prune", || {
        let s = again.status();
        let run = task(&s, "prune")["last_run"].clone();
        run["outcome"]
            .as_str()
            .is_some_and(|o| o != "running")
            .then_some(run)
    });
    assert_eq!(pruned["outcome"], "success", "{pruned:#}");
    assert!(
        pruned["summary"]
            .as_str()
            .is_some_and(|s| s.contains("prune deleted")),
        "{pruned:#}"
    );
    assert_eq!(again.stop(), 0, "{}", again.logs());
}

/// Two repositories over HTTP, the first behind a gate that holds its connections until the
/// test opens it: that repository stays in flight as long as the test needs.
pub fn gated_sources(env: &TestEnv) -> (GitHttpServer, Gate, String) {
    let repos = env.root().join("repos");
    fixtures::standard(env, &repos, "acme/slow");
    fixtures::standard(env, &repos, "acme/later");
    let http = GitHttpServer::start(&repos, "u", "tok-9").expect("http");
    let gate = Gate::start(http.port());
    let sources = format!(
        "[backup]\nconcurrency = 1\n[[source]]\nname = \"web\"\nkind = \"git\"\nhost = \"web\"\nusername = \"u\"\ntoken = \"tok-9\"\nurls = [\"http://127.0.0.1:{}/acme/slow.git\", \"{}\"]\n",
        gate.port(),
        http.url("acme/later")
    );
    (http, gate, sources)
}

#[test]
fn a_late_run_is_skipped_and_sigterm_waits_for_the_repository_in_flight() {
    let env = TestEnv::new();
    let rv = Rv::new(&env);
    let (_http, gate, sources) = gated_sources(&env);
    let port = free_port();
    let config = rv.config(&format!(
        "[daemon]\nlisten = \"127.0.0.1:{port}\"\n[[schedule]]\njob = \"backup\"\ncron = \"* * * * * *\"\n{sources}"
    ));
    let mut daemon = Daemon::start(&rv, &config, port);
    gate.wait_for_connection();
    // The run holds acme/slow; the next second's run finds it going and is skipped.
    let status = eventually(30, "a skipped run", || {
        let s = daemon.status();
        s["runs"]
            .as_array()
            .is_some_and(|r| r.iter().any(|r| r["outcome"] == "skipped"))
            .then_some(s)
    });
    assert_eq!(task(&status, "backup")["running"], true, "{status:#}");
    let (_, metrics) = get(port, "/metrics").expect("metrics");
    assert!(
        metrics.contains("repovault_job_runs_total{task=\"backup\",outcome=\"skipped\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("repovault_job_running{task=\"backup\"} 1"),
        "{metrics}"
    );

    daemon.terminate();
    // Stopping, not stopped: it waits for the repository in flight and says so.
    eventually(30, "readiness to drop", || {
        (get(port, "/readyz").map(|r| r.0) == Some(503)).then_some(())
    });
    assert!(repovault_testkit::pid_exists(daemon.pid()));
    gate.open();
    assert_eq!(daemon.wait(), 0, "{}", daemon.logs());

    // acme/slow was finished and stored; acme/later was never started.
    assert_eq!(rv.snapshots("acme/slow").len(), 1);
    assert_eq!(rv.snapshots("acme/later").len(), 0);

    let config = rv.config(&format!(
        "[daemon]\nlisten = \"127.0.0.1:{port}\"\n{sources}"
    ));
    let mut again = Daemon::start(&rv, &config, port);
    let after = again.status();
    let runs = after["runs"].as_array().expect("runs");
    let stopped = runs
        .iter()
        .find(|r| r["task"] == "backup" && r["outcome"] == "failure")
        .unwrap_or_else(|| panic!("no failed run in {after:#}"));
    assert!(
        stopped["summary"]
            .as_str()
            .is_some_and(|s| s.contains("stopped early, 1 not started")),
        "{stopped:#}"
    );
    assert!(runs.iter().any(|r| r["outcome"] == "skipped"), "{after:#}");
    assert_eq!(repo(&after, "acme/slow")["status"], "ok");
    assert_eq!(again.stop(), 0);
}

#[test]
fn sigterm_stops_a_one_shot_backup_after_the_repository_in_flight() {
    let env = TestEnv::new();
    let rv = Rv::new(&env);
    let (_http, gate, sources) = gated_sources(&env);
    let config = rv.config(&sources);
    let child = rv.spawn_backup(&config);
    gate.wait_for_connection();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(killed);
    gate.open();
    let out = child.wait_with_output().expect("backup ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("stop requested"), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(report["cancelled"], true, "{report:#}");
    assert_eq!(report["totals"]["not_started"], 1, "{report:#}");
    assert_eq!(repo_report(&report, "acme/slow")["status"], "ok");
    assert_eq!(rv.snapshots("acme/slow").len(), 1);
    assert_eq!(rv.snapshots("acme/later").len(), 0);
    // The next run picks up what was left.
    let next = rv.backup_config(&config).ok().json();
    assert_eq!(next["totals"]["ok"], 2, "{next:#}");
}

#[test]
fn config_validate_and_json_logs() {
    let env = TestEnv::new();
    let rv = Rv::new(&env);
    let (good, gone) = good_and_gone(&env);
    let ok = rv.config(&format!(
        "[[schedule]]\njob = \"check\"\ncron = \"0 4 * * 0\"\n[[source]]\nname = \"s\"\nkind = \"git\"\nurls = [\"{}\"]\n",
        good.display()
    ));
    let run = rv
        .run(&[
            "--config",
            ok.to_str().expect("utf-8"),
            "config",
            "validate",
            "--json",
        ])
        .ok();
    assert_eq!(run.json()["schedules"][0], "check");
    for (bad, needle) in [
        (
            "[[schedule]]\njob = \"backup\"\ncron = \"0 3 * *\"\n",
            "cron expression",
        ),
        (
            "[[schedule]]\njob = \"backup\"\ncron = \"@daily\"\nsource = \"nope\"\n",
            "no source named",
        ),
        (
            "[[schedule]]\njob = \"defrag\"\ncron = \"@daily\"\n",
            "defrag",
        ),
        ("[daemon]\nlisten = \"nowhere\"\n", "listen"),
        (
            "[[schedule]]\njob = \"forget\"\ncron = \"@daily\"\n",
            "does not set",
        ),
        (
            "[[schedule]]\njob = \"check\"\ncron = \"@daily\"\nprune = true\n",
            "applies to forget jobs only",
        ),
        (
            "[[notify]]\nkind = \"webhook\"\nurl = \"https://h/x?t=s3cr3t\"\non = []\n",
            "`on` is empty",
        ),
    ] {
        let path = rv.config(bad);
        let run = rv.run(&[
            "--config",
            path.to_str().expect("utf-8"),
            "config",
            "validate",
        ]);
        assert_eq!(run.code, 2, "{bad}: {}", run.stderr);
        assert!(run.stderr.contains(needle), "{bad}: {}", run.stderr);
        assert!(!run.stderr.contains("s3cr3t"), "{}", run.stderr);
    }

    // Machine-readable logs: every stderr line is one JSON object, failures with their fields.
    let run = rv.run(&[
        "--log-format",
        "json",
        "backup",
        "--url",
        good.to_str().expect("utf-8"),
        "--url",
        gone.to_str().expect("utf-8"),
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let lines: Vec<serde_json::Value> = run
        .stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["level"] == "WARN" && l["repo"] == "acme/gone" && l["kind"] == "not-found"),
        "{}",
        run.stderr
    );
}
