//! One-shot runs: notifications (with retries, and no secret from a URL in any output), the
//! node-exporter metrics file and the Pushgateway.

use repovault_testkit::{fixtures, TestEnv};

use crate::receiver::Receiver;
use crate::support::*;

#[test]
fn notifications_are_retried_and_their_secrets_stay_out_of_the_output() {
    let env = TestEnv::new();
    let rv = Rv::new(&env);
    let good = fixtures::standard(&env, &env.root().join("repos"), "acme/app");
    let flaky = Receiver::start(&[500, 500, 200]);
    let ntfy = Receiver::start(&[]);
    let heartbeat = Receiver::start(&[]);
    let dead = Receiver::start(&[503]);
    let ntfy_file = env.root().join("ntfy-url");
    std::fs::write(&ntfy_file, format!("{}\n", ntfy.url("/alerts-s3cr3t"))).expect("write");
    let config = rv.config(&format!(
        r#"
[[source]]
name = "local"
kind = "git"
urls = ["{good}"]

[[notify]]
kind = "webhook"
url = "{flaky}"
on = ["success", "failure"]
retries = 3
retry_delay = "50ms"

[[notify]]
kind = "ntfy"
url_file = "{ntfy_file}"
on = ["success", "failure"]

[[notify]]
kind = "heartbeat"
url = "{heartbeat}"
on = ["success", "failure"]

[[notify]]
kind = "webhook"
url = "{dead}"
on = ["success", "failure"]
retries = 1
retry_delay = "50ms"
"#,
        good = good.display(),
        flaky = flaky.url("/hook?token=s3cr3t-tok"),
        ntfy_file = ntfy_file.display(),
        heartbeat = heartbeat.url("/ping/uuid-s3cr3t"),
        dead = dead.url("/u:s3cr3t-path"),
    ));
    let run = rv.backup_config(&config);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        !run.stderr.contains("s3cr3t") && !run.stdout.contains("s3cr3t"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("attempt 1/4 failed: HTTP 500"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("gave up after 2 attempts"),
        "{}",
        run.stderr
    );

    // Twice refused, then delivered: three identical deliveries.
    let got = flaky.requests();
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(got[0].body, got[2].body);
    let event = got[2].json();
    assert_eq!(event["event"], "success", "{event:#}");
    assert_eq!(event["job"], "backup");
    assert_eq!(got[2].path, "/hook?token=s3cr3t-tok");
    assert_eq!(dead.requests().len(), 2);
    let n = ntfy.requests();
    assert_eq!(n.len(), 1);
    assert_eq!(n[0].path, "/alerts-s3cr3t");
    assert!(
        n[0].header("title")
            .is_some_and(|t| t.contains("backup succeeded")),
        "{n:?}"
    );
    assert!(
        n[0].text().contains("backed up 1/1 repositories"),
        "{}",
        n[0].text()
    );
    assert_eq!(heartbeat.requests()[0].path, "/ping/uuid-s3cr3t");

    // A failing run: the heartbeat's /fail, ntfy at high priority with the failed repository.
    let missing = env.root().join("repos/acme/missing.git");
    let run = rv.run(&[
        "backup",
        "--config",
        config.to_str().expect("utf-8"),
        "--url",
        missing.to_str().expect("utf-8"),
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(!run.stderr.contains("s3cr3t"), "{}", run.stderr);
    let pings = heartbeat.requests();
    assert_eq!(pings.len(), 2);
    assert_eq!(pings[1].path, "/ping/uuid-s3cr3t/fail");
    let n = ntfy.requests();
    assert_eq!(n[1].header("priority"), Some("high"));
    assert!(
        n[1].text().contains("acme/missing (not-found)"),
        "{}",
        n[1].text()
    );
    let event = flaky.requests().last().expect("delivered").json();
    assert_eq!(event["event"], "failure");
    assert_eq!(event["failed_repositories"][0]["repo"], "acme/missing");

    // One-shot maintenance commands notify the same way.
    let run = rv.run(&["check", "--config", config.to_str().expect("utf-8")]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let pings = heartbeat.requests();
    assert_eq!(pings.len(), 3, "{pings:?}");
    assert_eq!(pings[2].path, "/ping/uuid-s3cr3t");
    let event = flaky.requests().last().expect("delivered").json();
    assert_eq!(event["job"], "check", "{event:#}");
    assert_eq!(event["event"], "success", "{event:#}");
    let n = ntfy.requests();
    assert!(
        n[2].header("title")
            .is_some_and(|t| t.contains("check succeeded")),
        "{n:?}"
    );
}

#[test]
fn metrics_file_and_pushgateway() {
    let env = TestEnv::new();
    let rv = Rv::new(&env);
    let good = fixtures::standard(&env, &env.root().join("repos"), "acme/app");
    let gateway = Receiver::start(&[]);
    let prom = env.root().join("textfile").join("repovault.prom");
    std::fs::create_dir_all(prom.parent().expect("parent")).expect("mkdir");
    let run = rv
        .run(&[
            "backup",
            "--url",
            good.to_str().expect("utf-8"),
            "--metrics-file",
            prom.to_str().expect("utf-8"),
            "--pushgateway",
            &gateway.url(""),
        ])
        .ok();
    assert!(run.stdout.contains("backed up 1/1"), "{}", run.stdout);
    let text = std::fs::read_to_string(&prom).expect("metrics file");
    for want in [
        "# TYPE repovault_job_last_success_timestamp_seconds gauge",
        "repovault_job_failed{task=\"backup\"} 0",
        "repovault_job_runs_total{task=\"backup\",outcome=\"success\"} 1",
        "repovault_repository_failed{source=\"cli\",host=\"local\",repo=\"acme/app\"} 0",
        "repovault_repository_last_success_timestamp_seconds{source=\"cli\",host=\"local\",repo=\"acme/app\"}",
        "repovault_backup_repositories{source=\"cli\"} 1",
        "repovault_store_size_bytes ",
    ] {
        assert!(text.contains(want), "{want} missing from\n{text}");
    }
    // Prometheus text format 0.0.4 (what the textfile collector parses): no OpenMetrics EOF.
    assert!(!text.contains("# EOF"));
    let pushed = gateway.requests();
    assert_eq!(pushed.len(), 1);
    assert_eq!(pushed[0].method, "PUT");
    assert_eq!(pushed[0].path, "/metrics/job/repovault/task/backup");
    assert!(
        pushed[0]
            .header("content-type")
            .is_some_and(|c| c.starts_with("text/plain; version=0.0.4")),
        "{:?}",
        pushed[0].headers
    );
    assert_eq!(pushed[0].text(), text);

    // A gateway that does not answer fails the run (exit 1) after the backup itself succeeded.
    let closed = repovault_testkit::free_port();
    let run = rv.run(&[
        "backup",
        "--url",
        good.to_str().expect("utf-8"),
        "--pushgateway",
        &format!("http://127.0.0.1:{closed}"),
    ]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("pushgateway http://127.0.0.1"),
        "{}",
        run.stderr
    );
}
