//! The primary budget and its reset, secondary limits, and the fault knobs.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use repovault_testkit::forge::{FaultScope, Fixture, RepoFault, SecondaryLimit};
use serde_json::Value;

use crate::support::{header, Api};

fn epoch_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

#[test]
fn the_budget_runs_out_and_resets() {
    let api = Api::start(Fixture::Small);
    api.sim.set_remaining(2);
    let first = api.get("/repos/acme/widgets");
    assert_eq!(first.status(), 200);
    assert_eq!(header(&first, "x-ratelimit-remaining"), "1");
    assert_eq!(header(&first, "x-ratelimit-limit"), "5000");
    assert_eq!(header(&first, "x-ratelimit-used"), "4999");
    assert_eq!(header(&first, "x-ratelimit-resource"), "core");
    assert_eq!(api.get("/repos/acme/widgets").status(), 200);
    // /rate_limit is free.
    let rl: Value = api.get("/rate_limit").json().expect("JSON");
    assert_eq!(rl["resources"]["core"]["remaining"], 0);
    assert_eq!(rl["resources"]["core"]["used"], 5000);
    let mark = api.sim.mark();
    let refused = api.get("/repos/acme/widgets");
    assert_eq!(refused.status(), 403);
    assert_eq!(header(&refused, "x-ratelimit-remaining"), "0");
    let body: Value = refused.json().expect("JSON");
    let message = body["message"].as_str().expect("message");
    assert!(
        message.starts_with("API rate limit exceeded for user ID"),
        "{message}"
    );
    assert!(!api.sim.requests_since(mark)[0].counted);
    assert_eq!(api.sim.remaining(&api.token), Some(0));

    // A one-second window ends the running one within a second; wait (bounded) for the
    // reset the headers announce.
    api.sim.set_rate_window(Duration::from_secs(1));
    let refused = api.get("/repos/acme/widgets");
    assert_eq!(refused.status(), 403);
    let reset: u64 = header(&refused, "x-ratelimit-reset")
        .parse()
        .expect("reset");
    assert!(reset <= epoch_now() + 1);
    let deadline = Instant::now() + Duration::from_secs(30);
    while epoch_now() < reset && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let after = api.get("/repos/acme/widgets");
    assert_eq!(after.status(), 200, "budget is back after the reset");
    assert_eq!(header(&after, "x-ratelimit-remaining"), "4999");

    // 429 instead of 403 on request.
    api.sim.set_rate_window(Duration::from_secs(3600));
    api.sim.set_primary_limit_status(429);
    api.sim.set_remaining(0);
    assert_eq!(api.get("/repos/acme/widgets").status(), 429);
}

#[test]
fn secondary_limits_answer_with_retry_after() {
    let api = Api::start(Fixture::Small);
    api.sim.secondary_limit(SecondaryLimit {
        requests: 2,
        retry_after: Some(3),
        status: 403,
    });
    for _ in 0..2 {
        let resp = api.get("/orgs/acme/repos");
        assert_eq!(resp.status(), 403);
        assert_eq!(header(&resp, "retry-after"), "3");
        assert_ne!(header(&resp, "x-ratelimit-remaining"), "0");
        let body: Value = resp.json().expect("JSON");
        assert!(body["message"]
            .as_str()
            .is_some_and(|m| m.contains("exceeded a secondary rate limit")));
    }
    assert_eq!(api.get("/orgs/acme/repos").status(), 200);
    api.sim.secondary_limit(SecondaryLimit {
        requests: 1,
        retry_after: None,
        status: 429,
    });
    let resp = api.get("/orgs/acme/repos");
    assert_eq!(resp.status(), 429);
    assert_eq!(header(&resp, "retry-after"), "");
}

#[test]
fn fault_knobs() {
    let api = Api::start(Fixture::Small);
    api.sim.fail_every_nth(Some(3));
    let statuses: Vec<u16> = (0..6)
        .map(|_| api.get("/repos/acme/widgets").status().as_u16())
        .collect();
    assert_eq!(statuses, [200, 200, 500, 200, 200, 500]);
    api.sim.fail_every_nth(None);

    api.sim
        .fail_repo("acme/assets", RepoFault::Blocked, FaultScope::Both);
    let blocked = api.get("/repos/acme/assets/issues");
    assert_eq!(blocked.status(), 451);
    let body: Value = blocked.json().expect("JSON");
    assert_eq!(body["message"], "Repository access blocked");
    assert!(body["block"]["html_url"].is_string());
    api.sim
        .fail_repo("acme/assets", RepoFault::ServerError, FaultScope::Api);
    assert_eq!(api.get("/repos/acme/assets/pulls").status(), 500);
    api.sim
        .fail_repo("acme/assets", RepoFault::NotFound, FaultScope::Api);
    assert_eq!(api.get("/repos/acme/assets").status(), 404);
    // Other repositories are untouched, and listings still show the faulty one.
    assert_eq!(api.get("/repos/acme/widgets").status(), 200);
    let names: Vec<String> = api
        .all_pages("/orgs/acme/repos?per_page=100")
        .iter()
        .filter_map(|r| r["name"].as_str().map(str::to_owned))
        .collect();
    assert!(names.contains(&"assets".to_owned()));
    api.sim.clear_repo_fault("acme/assets");
    assert_eq!(api.get("/repos/acme/assets").status(), 200);

    // Slow responses: a lower bound only (the delay is a sleep).
    api.sim.set_slow(Some(Duration::from_millis(300)));
    let started = Instant::now();
    assert_eq!(api.get("/rate_limit").status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
    api.sim.clear_faults();
}

#[test]
fn the_admin_api_drives_the_same_knobs() {
    let api = Api::start(Fixture::Small);
    let admin = |path: &str, body: Value| {
        let resp = api
            .client
            .post(format!("{}/_sim{path}", api.sim.base_url()))
            .json(&body)
            .send()
            .expect("POST");
        let status = resp.status();
        let v: Value = resp.json().expect("JSON");
        assert_eq!(status, 200, "{path}: {v}");
        v
    };
    let info: Value = api
        .client
        .get(format!("{}/_sim/info", api.sim.base_url()))
        .send()
        .expect("GET")
        .json()
        .expect("JSON");
    assert_eq!(info["token"], api.token);
    assert_eq!(info["enterprise_api_url"], api.sim.enterprise_api_url());
    admin("/rate-limit", serde_json::json!({"remaining": 0}));
    assert_eq!(api.get("/user").status(), 403);
    admin("/rate-limit", serde_json::json!({"remaining": 100}));
    assert_eq!(api.get("/user").status(), 200);
    admin(
        "/secondary-limit",
        serde_json::json!({"requests": 1, "retry_after": 1}),
    );
    assert_eq!(api.get("/user").status(), 403);
    admin(
        "/faults/repo",
        serde_json::json!({"repo": "acme/widgets", "fault": "server_error", "scope": "api"}),
    );
    assert_eq!(api.get("/repos/acme/widgets").status(), 500);
    admin("/faults/clear", serde_json::json!({}));
    assert_eq!(api.get("/repos/acme/widgets").status(), 200);
    let mark = admin("/requests/mark", serde_json::json!({}))["mark"]
        .as_u64()
        .expect("mark");
    let id = admin(
        "/mutate/comment",
        serde_json::json!({"repo": "acme/widgets", "number": 2, "body": "via admin"}),
    )["id"]
        .clone();
    let comments = api.json("/repos/acme/widgets/issues/2/comments");
    assert!(comments
        .as_array()
        .expect("list")
        .iter()
        .any(|c| c["id"] == id));
    let summary: Value = api
        .client
        .get(format!(
            "{}/_sim/requests/summary?since={mark}",
            api.sim.base_url()
        ))
        .send()
        .expect("GET")
        .json()
        .expect("JSON");
    assert_eq!(
        summary["api"], 1,
        "admin requests are not logged: {summary}"
    );
    let dump: Value = api
        .client
        .get(format!("{}/_sim/dump", api.sim.base_url()))
        .send()
        .expect("GET")
        .json()
        .expect("JSON");
    assert_eq!(dump["api_url"], api.sim.enterprise_api_url());
}
