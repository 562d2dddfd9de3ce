//! Changes made on the simulator show up in the API, in git and in the dump.

use repovault_testkit::forge::{ApiStyle, Fixture, IssueEdit};
use repovault_testkit::{upstream, TestEnv};
use serde_json::Value;

use crate::support::{header, Api};

#[test]
fn edits_bump_updated_at_unless_told_not_to() {
    let api = Api::start(Fixture::Small);
    let before = api.json("/repos/acme/widgets/issues/5");
    api.sim
        .edit_issue(
            "acme/widgets",
            5,
            &IssueEdit {
                title: Some("A new title".into()),
                bump_updated_at: true,
                ..IssueEdit::default()
            },
        )
        .expect("edit");
    let after = api.json("/repos/acme/widgets/issues/5");
    assert_eq!(after["title"], "A new title");
    assert!(after["updated_at"].as_str() > before["updated_at"].as_str());
    let events = api.all_pages("/repos/acme/widgets/issues/5/events");
    assert!(events.iter().any(|e| e["event"] == "renamed"));

    // A silent edit changes the body but not updated_at: `since` does not see it.
    let stamp = after["updated_at"].as_str().expect("updated_at").to_owned();
    api.sim
        .edit_issue(
            "acme/widgets",
            5,
            &IssueEdit {
                body: Some("silently edited".into()),
                bump_updated_at: false,
                ..IssueEdit::default()
            },
        )
        .expect("edit");
    let silent = api.json("/repos/acme/widgets/issues/5");
    assert_eq!(silent["body"], "silently edited");
    assert_eq!(silent["updated_at"], stamp.as_str());

    // Closing through an edit.
    api.sim
        .edit_issue(
            "acme/widgets",
            5,
            &IssueEdit {
                closed: Some(true),
                bump_updated_at: true,
                ..IssueEdit::default()
            },
        )
        .expect("close");
    assert_eq!(api.json("/repos/acme/widgets/issues/5")["state"], "closed");
}

#[test]
fn new_reviews_and_releases_appear() {
    let api = Api::start(Fixture::Small);
    let open = api.json("/repos/acme/widgets/pulls?state=open&per_page=1");
    let n = open[0]["number"].as_u64().expect("an open pull request");
    let id = api
        .sim
        .add_review("acme/widgets", n, Some("bob"), "APPROVED", "LGTM")
        .expect("review");
    let reviews = api.all_pages(&format!("/repos/acme/widgets/pulls/{n}/reviews"));
    let r = reviews.iter().find(|r| r["id"] == id).expect("new review");
    assert_eq!(r["state"], "APPROVED");
    assert_eq!(r["user"]["login"], "bob");
    assert_eq!(r["commit_id"], open[0]["head"]["sha"]);

    let release = api
        .sim
        .add_release("acme/widgets", "v3.0.0", &[("notes.txt", b"three")])
        .expect("release");
    let latest = api.json("/repos/acme/widgets/releases/latest");
    assert_eq!(latest["id"], release);
    assert_eq!(latest["assets"][0]["size"], 5);
    let env = TestEnv::new();
    let refs = upstream::refs(&env, &api.sim.repo_path("acme/widgets"));
    assert!(refs.iter().any(|(r, _)| r == "refs/tags/v3.0.0"));
    let dump = api.sim.dump(ApiStyle::Enterprise);
    let found = dump["repositories"]["acme/widgets"]["releases"]
        .as_array()
        .expect("releases")
        .iter()
        .any(|r| r["release"]["id"] == release);
    assert!(found);
}

#[test]
fn pushes_and_force_pushes_move_refs_and_pull_requests() {
    let api = Api::start(Fixture::Small);
    let env = TestEnv::new();
    let bare = api.sim.repo_path("acme/widgets");
    let repo_before = api.get("/repos/acme/widgets");
    let tag = header(&repo_before, "etag");
    let repo_before: Value = repo_before.json().expect("JSON");
    let sha = api
        .sim
        .push_commit("acme/widgets", "main", "NEWS.md", b"news\n", "Add news")
        .expect("push");
    assert_eq!(env.git(&bare, &["rev-parse", "refs/heads/main"]), sha);
    let branches = api.json("/repos/acme/widgets/branches?per_page=100");
    let main = branches
        .as_array()
        .expect("branches")
        .iter()
        .find(|b| b["name"] == "main")
        .expect("main");
    assert_eq!(main["commit"]["sha"], sha.as_str());
    let repo_after = api
        .request("/repos/acme/widgets", Some(&format!("token {}", api.token)))
        .header("if-none-match", &tag)
        .send()
        .expect("GET");
    assert_eq!(repo_after.status(), 200, "pushed_at moved, so the ETag did");
    let repo_after: Value = repo_after.json().expect("JSON");
    assert!(repo_after["pushed_at"].as_str() > repo_before["pushed_at"].as_str());

    // Force-pushing an open pull request's branch moves its head ref and logs an event.
    let open = api.all_pages("/repos/acme/widgets/pulls?state=open&per_page=100");
    let pr = open
        .iter()
        .find(|p| {
            let b = p["head"]["ref"].as_str().unwrap_or_default();
            !b.is_empty() && env.git(&bare, &["branch", "--list", b]).contains(b)
        })
        .expect("an open pull request with its branch");
    let n = pr["number"].as_u64().expect("number");
    let branch = pr["head"]["ref"].as_str().expect("ref").to_owned();
    let new = api
        .sim
        .force_push("acme/widgets", &branch)
        .expect("force-push");
    assert_eq!(
        env.git(&bare, &["rev-parse", &format!("refs/pull/{n}/head")]),
        new
    );
    let full = api.json(&format!("/repos/acme/widgets/pulls/{n}"));
    assert_eq!(full["head"]["sha"], new.as_str());
    let events = api.all_pages(&format!("/repos/acme/widgets/issues/{n}/events"));
    assert!(events.iter().any(|e| e["event"] == "head_ref_force_pushed"));
    let commits = api.all_pages(&format!("/repos/acme/widgets/pulls/{n}/commits"));
    assert_eq!(
        commits.last().map(|c| c["sha"].clone()),
        Some(Value::String(new))
    );
    assert!(api
        .sim
        .force_push("acme/widgets", "no-such-branch")
        .is_err());
    assert!(api.sim.add_comment("acme/nothing", 1, None, "x").is_err());
}
