//! The data dump: exactly what the simulator serves, as the main token's owner sees it, so a
//! test can compare a backup against it.
//!
//! Shape (every object as the corresponding endpoint renders it):
//! ```text
//! { "api_url": ..., "accounts": {login: user or org},
//!   "repositories": { "owner/name": {
//!       "repository": GET /repos/{o}/{r},
//!       "issues": {"<n>": {"issue", "comments", "events", "timeline"}},   (pull requests too)
//!       "pulls": {"<n>": {"pull", "reviews", "review_comments", "commits"}},
//!       "releases": [{"release", "assets": [{"id","name","size","sha256"}]}],
//!       "labels", "milestones" (state=all), "hooks",
//!       "lfs": [{"oid","size"}],
//!       "git": {"refs": {name: id}, "head": "refs/heads/main"},
//!       "wiki": {"refs": {...}} or null } },
//!   "gists": {id: {"gist": GET /gists/{id}, "git": {"refs": {...}}}} }
//! ```

use serde_json::{json, Map, Value};

use crate::forge::auth::Identity;
use crate::forge::render::{self, Urls, R};
use crate::forge::state::{can_read_hooks, repo_perms, Shared};
use crate::forge::util::sha256_hex;

/// Which URL style the dump's objects are rendered in (they embed API URLs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiStyle {
    /// `https://HOST/repos/...` (api.github.com style).
    Root,
    /// `https://HOST/api/v3/repos/...` (Enterprise style).
    Enterprise,
}

pub(crate) fn dump(shared: &Shared, style: ApiStyle) -> Value {
    let urls = Urls::new(&shared.web, &shared.hostname, style == ApiStyle::Enterprise);
    let wiki_refs: Vec<(String, Value)> = {
        let st = shared.lock();
        st.world
            .repos
            .values()
            .filter(|r| r.wiki_exists)
            .map(|r| r.full_name())
            .collect::<Vec<_>>()
    }
    .into_iter()
    .map(|full| {
        let path = shared.repos_root.join(format!("{full}.wiki.git"));
        let refs = crate::forge::git::load_facts(shared.env.git_isolation(), &path)
            .map(|f| json!(f.refs))
            .unwrap_or(Value::Null);
        (full.to_ascii_lowercase(), json!({"refs": refs}))
    })
    .collect();
    let st = shared.lock();
    let w = &st.world;
    let r = R { u: &urls, w };
    let viewer = w
        .user_tokens
        .first()
        .map_or(Identity::Anonymous, |(_, l)| Identity::User(l.clone()));
    let mut accounts = Map::new();
    for a in w.accounts.values() {
        let v = if a.is_org() {
            r.org(a, true)
        } else {
            r.public_user(a, false)
        };
        accounts.insert(a.login.clone(), v);
    }
    let mut repos = Map::new();
    for repo in w.repos.values() {
        let Some(perms) = repo_perms(w, &viewer, repo) else {
            continue;
        };
        let mut issues = Map::new();
        let mut pulls = Map::new();
        for i in repo.issues.values() {
            issues.insert(
                i.number.to_string(),
                json!({
                    "issue": render::issue(r, repo, i),
                    "comments": i.comments.iter().map(|c| render::comment(r, repo, i, c)).collect::<Vec<_>>(),
                    "events": i.events.iter().map(|e| render::event(r, repo, i, e, false, false)).collect::<Vec<_>>(),
                    "timeline": render::timeline(r, repo, i),
                }),
            );
            if let (Some(p), Some(pull)) = (&i.pull, render::pull(r, repo, i, true)) {
                pulls.insert(
                    i.number.to_string(),
                    json!({
                        "pull": pull,
                        "reviews": p.reviews.iter().map(|rv| render::review(r, repo, i, rv)).collect::<Vec<_>>(),
                        "review_comments": p.review_comments.iter().map(|c| render::review_comment(r, repo, i, c)).collect::<Vec<_>>(),
                        "commits": render::commits_of(repo, i.number).iter().map(|c| render::pr_commit(r, repo, c)).collect::<Vec<_>>(),
                    }),
                );
            }
        }
        let releases: Vec<Value> = repo
            .releases
            .iter()
            .filter(|rel| perms.push || !rel.draft)
            .map(|rel| {
                json!({
                    "release": render::release(r, repo, rel),
                    "assets": rel.assets.iter().map(|a| {
                        let bytes = a.data.bytes();
                        json!({"id": a.id, "name": a.name, "size": bytes.len(), "sha256": sha256_hex(&bytes)})
                    }).collect::<Vec<_>>(),
                })
            })
            .collect();
        let hooks: Vec<Value> = if can_read_hooks(w, &viewer, repo) {
            repo.hooks
                .iter()
                .map(|h| render::hook(r, repo, h))
                .collect()
        } else {
            Vec::new()
        };
        let head = if repo.git.refs.is_empty() {
            Value::Null
        } else {
            json!(format!("refs/heads/{}", repo.default_branch))
        };
        let key = repo.full_name().to_ascii_lowercase();
        let wiki = wiki_refs
            .iter()
            .find(|(k, _)| *k == key)
            .map_or(Value::Null, |(_, v)| v.clone());
        repos.insert(
            repo.full_name(),
            json!({
                "repository": r.repo(repo, Some(perms), true),
                "issues": issues,
                "pulls": pulls,
                "releases": releases,
                "labels": repo.labels.iter().map(|l| render::label(r, repo, l)).collect::<Vec<_>>(),
                "milestones": repo.milestones.iter().map(|m| render::milestone(r, repo, m)).collect::<Vec<_>>(),
                "hooks": hooks,
                "lfs": repo.lfs.iter().map(|(oid, o)| json!({"oid": oid, "size": o.size})).collect::<Vec<_>>(),
                "git": {"refs": repo.git.refs, "head": head},
                "wiki": wiki,
            }),
        );
    }
    let mut gists = Map::new();
    for g in w.gists.values() {
        gists.insert(
            g.id.clone(),
            json!({"gist": render::gist(r, g, true), "git": {"refs": g.git.refs}}),
        );
    }
    json!({
        "api_url": urls.api,
        "accounts": accounts,
        "repositories": repos,
        "gists": gists,
    })
}

impl crate::forge::ForgeSim {
    /// Everything the simulator serves, as the main token's owner sees it (see the module
    /// docs of `dump` for the shape; `/_sim/dump?style=enterprise|root` serves the same).
    pub fn dump(&self, style: ApiStyle) -> Value {
        dump(self.shared(), style)
    }
}

/// Counts of what the world holds (cheap, unlike the dump; `/_sim/stats`).
pub(crate) fn stats(shared: &Shared) -> Value {
    let st = shared.lock();
    let w = &st.world;
    let repos = w.repos.values();
    let mut s = serde_json::Map::new();
    let mut add = |k: &str, n: usize| {
        s.insert(k.to_owned(), json!(n));
    };
    add("accounts", w.accounts.len());
    add("repositories", w.repos.len());
    add(
        "forks",
        repos.clone().filter(|r| r.fork_of.is_some()).count(),
    );
    add("archived", repos.clone().filter(|r| r.archived).count());
    add("private", repos.clone().filter(|r| r.private).count());
    add("wikis", repos.clone().filter(|r| r.wiki_exists).count());
    let issues = || repos.clone().flat_map(|r| r.issues.values());
    add("issues", issues().filter(|i| i.pull.is_none()).count());
    add("pulls", issues().filter(|i| i.pull.is_some()).count());
    add("comments", issues().map(|i| i.comments.len()).sum());
    add("events", issues().map(|i| i.events.len()).sum());
    add(
        "reviews",
        issues()
            .filter_map(|i| i.pull.as_ref())
            .map(|p| p.reviews.len())
            .sum(),
    );
    add(
        "review_comments",
        issues()
            .filter_map(|i| i.pull.as_ref())
            .map(|p| p.review_comments.len())
            .sum(),
    );
    add("releases", repos.clone().map(|r| r.releases.len()).sum());
    add(
        "assets",
        repos
            .clone()
            .flat_map(|r| r.releases.iter())
            .map(|rel| rel.assets.len())
            .sum(),
    );
    add("labels", repos.clone().map(|r| r.labels.len()).sum());
    add(
        "milestones",
        repos.clone().map(|r| r.milestones.len()).sum(),
    );
    add("hooks", repos.clone().map(|r| r.hooks.len()).sum());
    add("lfs_objects", repos.clone().map(|r| r.lfs.len()).sum());
    add("gists", w.gists.len());
    add("installations", w.installations.len());
    Value::Object(s)
}

impl crate::forge::ForgeSim {
    /// Counts of repositories, forks, issues, pull requests, reviews, releases and so on.
    pub fn stats(&self) -> Value {
        stats(self.shared())
    }
}
