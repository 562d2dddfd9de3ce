//! REST shapes, pagination, ETags, authentication and the data dump.

use repovault_testkit::forge::{ApiStyle, Fixture, RequestKind};
use repovault_testkit::{upstream, TestEnv};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::support::{header, links, Api};

#[test]
fn lists_paginate_with_link_headers_in_both_url_styles() {
    let api = Api::start(Fixture::Small);
    // 110 issues and 18 pull requests: two pages at per_page=100.
    let all = api.all_pages("/repos/acme/widgets/issues?state=all&per_page=100");
    assert_eq!(all.len(), 128);
    let prs = all
        .iter()
        .filter(|i| i.get("pull_request").is_some())
        .count();
    assert_eq!(prs, 18);
    let numbers: Vec<u64> = all.iter().filter_map(|i| i["number"].as_u64()).collect();
    let mut sorted = numbers.clone();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    assert_eq!(numbers, sorted, "newest first by default");

    let page2 = api.get("/repos/acme/widgets/issues?state=all&per_page=50&page=2");
    let rels = links(page2.headers());
    let rel = |name: &str| {
        rels.iter()
            .find(|(r, _)| r == name)
            .map(|(_, u)| u.clone())
            .unwrap_or_else(|| panic!("no rel={name} in {rels:?}"))
    };
    assert!(rel("next").ends_with("per_page=50&page=3"), "{rels:?}");
    assert!(rel("last").ends_with("page=3"));
    assert!(rel("first").ends_with("page=1"));
    assert!(rel("prev").ends_with("page=1"));
    // GitHub names the repository by id in links; the simulator serves those paths too.
    let repo_id = api.json("/repos/acme/widgets")["id"].as_u64().expect("id");
    assert!(
        rel("next").starts_with(&format!(
            "{}/repositories/{repo_id}/issues?",
            api.sim.enterprise_api_url()
        )),
        "{}",
        rel("next")
    );

    // Defaults and limits of per_page.
    assert_eq!(
        api.json("/repos/acme/widgets/issues?state=all")
            .as_array()
            .map(Vec::len),
        Some(30)
    );
    assert_eq!(
        api.json("/repos/acme/widgets/issues?state=all&per_page=1000")
            .as_array()
            .map(Vec::len),
        Some(100)
    );
    assert_eq!(
        api.json("/repos/acme/widgets/issues?state=all&per_page=100&page=9")
            .as_array()
            .map(Vec::len),
        Some(0)
    );

    // api.github.com style at the root: same data, root URLs.
    let root = api
        .client
        .get(format!("{}/repos/acme/widgets/issues/1", api.sim.api_url()))
        .header("authorization", format!("Bearer {}", api.token))
        .send()
        .expect("GET");
    assert_eq!(root.status(), 200);
    let v: Value = root.json().expect("JSON");
    assert_eq!(
        v["url"],
        format!("{}/repos/acme/widgets/issues/1", api.sim.api_url())
    );
    let v3 = api.json("/repos/acme/widgets/issues/1");
    assert_eq!(
        v3["url"],
        format!(
            "{}/repos/acme/widgets/issues/1",
            api.sim.enterprise_api_url()
        )
    );
    assert_eq!(v["title"], v3["title"]);
}

#[test]
fn etags_give_304s_that_do_not_count_and_change_with_the_content() {
    let api = Api::start(Fixture::Small);
    let path = "/repos/acme/widgets/issues/3";
    let first = api.get(path);
    let tag = header(&first, "etag");
    assert!(tag.starts_with("W/\""), "weak ETag, got {tag:?}");
    let remaining: u64 = header(&first, "x-ratelimit-remaining")
        .parse()
        .expect("remaining");
    let mark = api.sim.mark();
    let again = api
        .request(path, Some(&format!("token {}", api.token)))
        .header("if-none-match", &tag)
        .send()
        .expect("GET");
    assert_eq!(again.status(), 304);
    assert_eq!(header(&again, "etag"), tag);
    assert_eq!(
        header(&again, "x-ratelimit-remaining"),
        remaining.to_string()
    );
    let log = api.sim.requests_since(mark);
    assert_eq!(log.len(), 1);
    assert!(log[0].conditional && !log[0].counted && log[0].status == 304);
    assert_eq!(api.sim.non_conditional_since(mark).len(), 0);

    // A new comment bumps updated_at: the issue and its comment list change.
    api.sim
        .add_comment("acme/widgets", 3, None, "a new comment")
        .expect("comment");
    let changed = api
        .request(path, Some(&format!("token {}", api.token)))
        .header("if-none-match", &tag)
        .send()
        .expect("GET");
    assert_eq!(changed.status(), 200);
    assert_ne!(header(&changed, "etag"), tag);
    let s = api.sim.summary_since(mark);
    assert_eq!((s.api, s.not_modified, s.counted), (2, 1, 1));

    // Lists get ETags too, and a 304 when nothing changed.
    let list = api.get("/orgs/acme/repos?per_page=100");
    let list_tag = header(&list, "etag");
    let list_again = api
        .request(
            "/orgs/acme/repos?per_page=100",
            Some(&format!("token {}", api.token)),
        )
        .header("if-none-match", &list_tag)
        .send()
        .expect("GET");
    assert_eq!(list_again.status(), 304);
}

#[test]
fn authentication_and_visibility_work_like_github() {
    let api = Api::start(Fixture::Small);
    let bad = api.get_with("/user", Some("token ghp_not-a-real-token"));
    assert_eq!(bad.status(), 401);
    let body: Value = bad.json().expect("JSON");
    assert_eq!(body["message"], "Bad credentials");
    assert!(body["documentation_url"].as_str().is_some());

    let anonymous = api.get_with("/user", None);
    assert_eq!(anonymous.status(), 401);
    assert_eq!(header(&anonymous, "x-ratelimit-limit"), "60");

    // Basic with the token as user name (python-github-backup) or as password.
    let b64 = |s: &str| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(s)
    };
    for pair in [
        format!("{}:x-oauth-basic", api.token),
        format!("x-access-token:{}", api.token),
    ] {
        let resp = api.get_with("/user", Some(&format!("Basic {}", b64(&pair))));
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.json::<Value>().expect("JSON")["login"], "alice");
    }

    // Private repositories: members see them, others get 404 (not 403), anonymous too.
    let dave = format!(
        "token {}",
        api.sim.user_token("dave").expect("dave's token")
    );
    assert_eq!(api.get("/repos/acme/private-tools").status(), 200);
    assert_eq!(
        api.get_with("/repos/acme/private-tools", Some(&dave))
            .status(),
        404
    );
    assert_eq!(
        api.get_with("/repos/acme/private-tools", None).status(),
        404
    );
    let listed = |auth: Option<&str>| {
        api.get_with("/orgs/acme/repos?per_page=100", auth)
            .json::<Vec<Value>>()
            .expect("JSON")
            .iter()
            .filter_map(|r| r["name"].as_str().map(str::to_owned))
            .collect::<Vec<_>>()
    };
    assert!(listed(Some(&format!("token {}", api.token))).contains(&"private-tools".to_owned()));
    assert!(!listed(Some(&dave)).contains(&"private-tools".to_owned()));

    // Webhooks need admin rights, and their secrets are masked.
    let hooks = api.json("/repos/acme/widgets/hooks");
    assert_eq!(hooks[0]["config"]["secret"], "********");
    assert!(hooks[1]["config"].get("secret").is_none());
    let bob = format!("token {}", api.sim.user_token("bob").expect("bob's token"));
    assert_eq!(
        api.get_with("/repos/acme/widgets/hooks", Some(&bob))
            .status(),
        404
    );

    // Unknown API versions are refused as GitHub does.
    let v = api
        .request("/user", Some(&format!("token {}", api.token)))
        .header("x-github-api-version", "2001-01-01")
        .send()
        .expect("GET");
    assert_eq!(v.status(), 400);
}

#[test]
fn repository_objects_carry_what_clients_rely_on() {
    let api = Api::start(Fixture::Small);
    let repo = api.json("/repos/acme/widgets");
    for field in [
        "id",
        "node_id",
        "name",
        "full_name",
        "owner",
        "private",
        "html_url",
        "description",
        "fork",
        "url",
        "clone_url",
        "ssh_url",
        "default_branch",
        "visibility",
        "topics",
        "archived",
        "has_wiki",
        "has_issues",
        "pushed_at",
        "created_at",
        "updated_at",
        "permissions",
        "allow_squash_merge",
        "allow_merge_commit",
        "delete_branch_on_merge",
        "organization",
        "license",
        "network_count",
        "subscribers_count",
    ] {
        assert!(
            repo.get(field).is_some(),
            "GET /repos/acme/widgets lacks {field}"
        );
    }
    assert_eq!(
        repo["clone_url"],
        format!("{}/acme/widgets.git", api.sim.base_url())
    );
    assert_eq!(
        repo["topics"],
        serde_json::json!(["backup", "rust", "widgets"])
    );
    assert_eq!(repo["permissions"]["admin"], true);
    assert_eq!(repo["owner"]["type"], "Organization");

    let fork = api.json("/repos/acme/toolkit");
    assert_eq!(fork["fork"], true);
    assert_eq!(fork["parent"]["full_name"], "oss/toolkit");
    assert_eq!(fork["source"]["full_name"], "oss/toolkit");
    assert_eq!(fork["has_issues"], false);
    assert_eq!(api.json("/repos/acme/legacy")["archived"], true);
    let listed = api.json("/orgs/acme/repos?type=forks");
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    assert!(
        listed[0].get("parent").is_none(),
        "lists carry the minimal shape"
    );

    // Users, organizations, starred, installations' discovery endpoints.
    assert_eq!(api.json("/user")["login"], "alice");
    assert_eq!(api.json("/orgs/acme")["login"], "acme");
    let starred = api.json("/users/alice/starred");
    assert_eq!(starred.as_array().map(Vec::len), Some(2));
    let star = api
        .request_accepting(
            "/users/alice/starred",
            Some(&format!("token {}", api.token)),
            "application/vnd.github.star+json",
        )
        .send()
        .expect("GET")
        .json::<Value>()
        .expect("JSON");
    assert!(star[0]["starred_at"].is_string() && star[0]["repo"]["full_name"].is_string());
    let user_repos: Vec<String> = api
        .all_pages("/user/repos?per_page=100")
        .iter()
        .filter_map(|r| r["full_name"].as_str().map(str::to_owned))
        .collect();
    assert!(user_repos.contains(&"alice/dotfiles".to_owned()));
    assert!(user_repos.contains(&"acme/private-tools".to_owned()));
    assert!(!user_repos.contains(&"oss/toolkit".to_owned()));
}

#[test]
fn pull_requests_match_their_git_refs() {
    let api = Api::start(Fixture::Small);
    let env = TestEnv::new();
    let bare = api.sim.repo_path("acme/widgets");
    let refs = upstream::refs(&env, &bare);
    let pulls = api.all_pages("/repos/acme/widgets/pulls?state=all&per_page=100");
    assert_eq!(pulls.len(), 18);
    let mut merged = 0;
    let mut with_merge_ref = 0;
    for p in &pulls {
        let n = p["number"].as_u64().expect("number");
        let head = refs
            .iter()
            .find(|(r, _)| *r == format!("refs/pull/{n}/head"))
            .map(|(_, id)| id.clone())
            .expect("every pull request has refs/pull/<n>/head");
        assert_eq!(p["head"]["sha"], head);
        let full = api.json(&format!("/repos/acme/widgets/pulls/{n}"));
        let has_merge_ref = refs
            .iter()
            .any(|(r, _)| *r == format!("refs/pull/{n}/merge"));
        if has_merge_ref {
            with_merge_ref += 1;
            assert_eq!(full["state"], "open");
            assert_eq!(full["mergeable"], true);
        }
        if full["merged"] == true {
            merged += 1;
            assert!(full["merge_commit_sha"].is_string());
        }
        // The commits are git's `base..head`.
        let base = full["base"]["sha"].as_str().expect("base sha");
        let range = format!("{base}..{head}");
        let expected: Vec<String> = env
            .git(&bare, &["rev-list", "--reverse", &range])
            .lines()
            .map(str::to_owned)
            .collect();
        let commits: Vec<String> = api
            .all_pages(&format!("/repos/acme/widgets/pulls/{n}/commits"))
            .iter()
            .filter_map(|c| c["sha"].as_str().map(str::to_owned))
            .collect();
        assert_eq!(commits, expected, "commits of #{n}");
        assert!(!commits.is_empty());
        // Reviews and review comments name real commits.
        for r in api.all_pages(&format!("/repos/acme/widgets/pulls/{n}/reviews")) {
            assert_eq!(r["commit_id"], head);
        }
        let timeline = api.all_pages(&format!("/repos/acme/widgets/issues/{n}/timeline"));
        let committed = timeline
            .iter()
            .filter(|t| t["event"] == "committed")
            .count();
        assert_eq!(committed, commits.len());
    }
    assert!(
        merged >= 2 && with_merge_ref >= 3,
        "merged {merged}, merge refs {with_merge_ref}"
    );
    let comments = api.all_pages("/repos/acme/widgets/pulls/comments?per_page=100");
    assert!(comments.iter().any(|c| c.get("in_reply_to_id").is_some()));
}

#[test]
fn since_filters_and_sorts() {
    let api = Api::start(Fixture::Small);
    let before = api.all_pages("/repos/acme/widgets/issues/comments?per_page=100");
    let newest = before
        .iter()
        .filter_map(|c| c["updated_at"].as_str())
        .max()
        .expect("comments")
        .to_owned();
    let id = api
        .sim
        .add_comment("acme/widgets", 7, Some("carol"), "late comment")
        .expect("comment");
    let since = api.all_pages(&format!(
        "/repos/acme/widgets/issues/comments?since={newest}&per_page=100"
    ));
    assert!(since.iter().any(|c| c["id"] == id));
    assert!(since.len() < before.len());
    let issues = api.all_pages(&format!(
        "/repos/acme/widgets/issues?state=all&since={newest}"
    ));
    assert!(issues.iter().any(|i| i["number"] == 7));
    let updated =
        api.json("/repos/acme/widgets/issues?state=all&sort=updated&direction=desc&per_page=1");
    assert_eq!(updated[0]["number"], 7);
    let closed = api.all_pages("/repos/acme/widgets/issues?state=closed&per_page=100");
    assert!(closed.iter().all(|i| i["state"] == "closed"));
    let milestones = api.json("/repos/acme/widgets/milestones?state=all");
    assert_eq!(milestones.as_array().map(Vec::len), Some(3));
    assert_eq!(
        api.json("/repos/acme/widgets/milestones")
            .as_array()
            .map(Vec::len),
        Some(2)
    );
}

#[test]
fn release_assets_redirect_to_their_bytes() {
    let api = Api::start(Fixture::Small);
    let releases = api.json("/repos/acme/widgets/releases");
    let names: Vec<&str> = releases
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|r| r["tag_name"].as_str())
        .collect();
    assert_eq!(
        names,
        ["v2.0.0", "v1.1.0-rc.1", "v1.0.0"],
        "newest first, drafts for admins"
    );
    let dump = api.sim.dump(ApiStyle::Enterprise);
    let release = &dump["repositories"]["acme/widgets"]["releases"]
        .as_array()
        .expect("releases")
        .iter()
        .find(|r| r["release"]["tag_name"] == "v1.0.0")
        .expect("v1.0.0")
        .clone();
    for asset in release["assets"].as_array().expect("assets") {
        let id = asset["id"].as_u64().expect("id");
        let resp = api
            .request_accepting(
                &format!("/repos/acme/widgets/releases/assets/{id}"),
                Some(&format!("token {}", api.token)),
                "application/octet-stream",
            )
            .send()
            .expect("GET");
        assert_eq!(resp.status(), 302);
        let location = header(&resp, "location");
        // The storage URL is signed and needs no credentials (clients drop them).
        let bytes = api
            .client
            .get(&location)
            .send()
            .expect("GET")
            .bytes()
            .expect("bytes");
        assert_eq!(hex::encode(Sha256::digest(&bytes)), asset["sha256"]);
        // browser_download_url works the same way.
        let json = api.json(&format!("/repos/acme/widgets/releases/assets/{id}"));
        let browser = api
            .client
            .get(json["browser_download_url"].as_str().expect("url"))
            .send()
            .expect("GET");
        assert_eq!(browser.status(), 302);
        assert_eq!(
            json["digest"],
            format!("sha256:{}", asset["sha256"].as_str().expect("sha"))
        );
    }
    let mark = api.sim.mark();
    let tampered = api
        .client
        .get(format!(
            "{}/_objects/release-assets/1?exp=9999999999&sig=00",
            api.sim.base_url()
        ))
        .send()
        .expect("GET");
    assert_eq!(tampered.status(), 403);
    assert_eq!(api.sim.requests_since(mark)[0].kind, RequestKind::Download);
}

#[test]
fn the_dump_equals_what_the_api_serves() {
    let api = Api::start(Fixture::Small);
    let dump = api.sim.dump(ApiStyle::Enterprise);
    let repos = dump["repositories"].as_object().expect("repositories");
    assert!(repos.contains_key("acme/widgets") && repos.contains_key("oss/toolkit"));
    for (name, d) in repos {
        assert_eq!(
            api.json(&format!("/repos/{name}")),
            d["repository"],
            "{name}"
        );
        if d["repository"]["has_issues"] == true {
            let issues = api.all_pages(&format!("/repos/{name}/issues?state=all&per_page=100"));
            assert_eq!(
                issues.len(),
                d["issues"].as_object().map_or(0, |m| m.len()),
                "{name}"
            );
            for i in issues {
                let n = i["number"].to_string();
                assert_eq!(i, d["issues"][&n]["issue"], "{name}#{n}");
                assert_eq!(
                    Value::Array(api.all_pages(&format!("/repos/{name}/issues/{n}/comments"))),
                    d["issues"][&n]["comments"]
                );
                assert_eq!(
                    Value::Array(api.all_pages(&format!("/repos/{name}/issues/{n}/timeline"))),
                    d["issues"][&n]["timeline"]
                );
            }
        }
        for p in api.all_pages(&format!("/repos/{name}/pulls?state=all&per_page=100")) {
            let n = p["number"].to_string();
            assert_eq!(
                api.json(&format!("/repos/{name}/pulls/{n}")),
                d["pulls"][&n]["pull"]
            );
            assert_eq!(
                Value::Array(api.all_pages(&format!("/repos/{name}/pulls/{n}/reviews"))),
                d["pulls"][&n]["reviews"]
            );
            assert_eq!(
                Value::Array(api.all_pages(&format!("/repos/{name}/pulls/{n}/comments"))),
                d["pulls"][&n]["review_comments"]
            );
        }
        assert_eq!(
            Value::Array(api.all_pages(&format!("/repos/{name}/milestones?state=all")))
                .as_array()
                .map(Vec::len),
            d["milestones"].as_array().map(Vec::len)
        );
    }
    // The Root style dump names root URLs.
    let root = api.sim.dump(ApiStyle::Root);
    assert_eq!(
        root["repositories"]["acme/widgets"]["repository"]["url"],
        format!("{}/repos/acme/widgets", api.sim.api_url())
    );
}
