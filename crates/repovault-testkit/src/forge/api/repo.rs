//! One repository's own endpoints: the repository, topics, branches, tags, forks, labels,
//! milestones, webhooks, releases and their assets, security advisories.

use hyper::{Method, StatusCode};
use serde_json::{json, Value};

use super::Cx;
use crate::forge::http::{ApiError, Reply};
use crate::forge::model::{Milestone, Release, Repo};
use crate::forge::render::{self, seg};
use crate::forge::state::{can_read_hooks, repo_perms};
use crate::forge::util::sign;

/// Signed asset URLs stay valid this long (GitHub's are short-lived too).
const DOWNLOAD_URL_LIFETIME: i64 = 300;

pub(super) fn route(
    cx: &mut Cx<'_>,
    owner: &str,
    name: &str,
    rest: &[&str],
) -> Result<Reply, ApiError> {
    if *cx.method != Method::GET && *cx.method != Method::HEAD {
        return Err(ApiError::not_found());
    }
    let full = cx.check_repo(owner, name)?;
    let r = cx.r();
    let w = r.w;
    let repo = w.repo(&full).ok_or_else(ApiError::not_found)?;
    let perms = repo_perms(w, cx.who, repo);
    match rest {
        [] => Ok(Reply::ok(r.repo(repo, perms, true))),
        ["topics"] => Ok(Reply::ok(json!({"names": repo.topics}))),
        ["languages"] => Ok(Reply::ok(match &repo.language {
            Some(l) => json!({ l.as_str(): repo.git.size_kb * 1024 }),
            None => json!({}),
        })),
        ["branches"] => {
            let branches: Vec<(&str, &String)> = repo
                .git
                .refs
                .iter()
                .filter_map(|(name, sha)| name.strip_prefix("refs/heads/").map(|b| (b, sha)))
                .collect();
            Ok(cx.page(&branches, |(b, sha)| {
                json!({
                    "name": b,
                    "commit": {"sha": sha, "url": format!("{}/commits/{sha}", r.u.repo_api(repo))},
                    "protected": false,
                })
            }))
        }
        ["tags"] => {
            let mut tags: Vec<(&str, &String)> = repo
                .git
                .refs
                .iter()
                .filter_map(|(name, sha)| name.strip_prefix("refs/tags/").map(|t| (t, sha)))
                .collect();
            tags.reverse();
            Ok(cx.page(&tags, |(t, sha)| {
                let commit = peeled(repo, t, sha);
                json!({
                    "name": t,
                    "zipball_url": format!("{}/zipball/refs/tags/{}", r.u.repo_api(repo), seg(t)),
                    "tarball_url": format!("{}/tarball/refs/tags/{}", r.u.repo_api(repo), seg(t)),
                    "commit": {"sha": commit, "url": format!("{}/commits/{commit}", r.u.repo_api(repo))},
                    "node_id": crate::forge::util::node_id("Ref", format!("{}:refs/tags/{t}", repo.id)),
                })
            }))
        }
        ["forks"] => {
            let mut forks: Vec<&Repo> = w
                .repos
                .values()
                .filter(|f| {
                    f.fork_of
                        .as_deref()
                        .is_some_and(|p| p.eq_ignore_ascii_case(&full))
                })
                .filter(|f| repo_perms(w, cx.who, f).is_some())
                .collect();
            match cx.q.get("sort").unwrap_or("newest") {
                "oldest" => forks.sort_by_key(|f| (f.created_at, f.id)),
                "stargazers" | "watchers" => forks.sort_by_key(|f| std::cmp::Reverse(f.stargazers)),
                _ => forks.sort_by_key(|f| std::cmp::Reverse((f.created_at, f.id))),
            }
            Ok(cx.page(&forks, |f| r.repo(f, repo_perms(w, cx.who, f), false)))
        }
        ["labels"] => {
            let mut labels: Vec<_> = repo.labels.iter().collect();
            labels.sort_by_key(|l| (l.name.to_ascii_lowercase(), l.id));
            Ok(cx.page(&labels, |l| render::label(r, repo, l)))
        }
        ["labels", name] => repo
            .labels
            .iter()
            .find(|l| l.name.eq_ignore_ascii_case(name))
            .map(|l| Reply::ok(render::label(r, repo, l)))
            .ok_or_else(ApiError::not_found),
        ["milestones"] => {
            let state = cx.q.get("state").unwrap_or("open");
            let mut ms: Vec<&Milestone> = repo
                .milestones
                .iter()
                .filter(|m| match state {
                    "closed" => !m.open,
                    "all" => true,
                    _ => m.open,
                })
                .collect();
            match cx.q.get("sort").unwrap_or("due_on") {
                "completeness" => ms.sort_by_key(|m| {
                    let (open, total) = repo
                        .issues
                        .values()
                        .filter(|i| i.milestone == Some(m.number))
                        .fold((0usize, 0usize), |(o, t), i| {
                            (o + usize::from(i.state_open()), t + 1)
                        });
                    (
                        ((total - open) * 1000).checked_div(total).unwrap_or(0),
                        m.number,
                    )
                }),
                _ => ms.sort_by_key(|m| (m.due_on.is_none(), m.due_on, m.number)),
            }
            if cx.sort_desc(false) {
                ms.reverse();
            }
            Ok(cx.page(&ms, |m| render::milestone(r, repo, m)))
        }
        ["milestones", n] => {
            let n: u64 = n.parse().map_err(|_| ApiError::not_found())?;
            repo.milestones
                .iter()
                .find(|m| m.number == n)
                .map(|m| Reply::ok(render::milestone(r, repo, m)))
                .ok_or_else(ApiError::not_found)
        }
        ["hooks", ..] if !can_read_hooks(w, cx.who, repo) => Err(ApiError::not_found()),
        ["hooks"] => Ok(cx.page(&repo.hooks, |h| render::hook(r, repo, h))),
        ["hooks", id] => repo
            .hooks
            .iter()
            .find(|h| h.id.to_string() == *id)
            .map(|h| Reply::ok(render::hook(r, repo, h)))
            .ok_or_else(ApiError::not_found),
        ["hooks", id, "config"] => repo
            .hooks
            .iter()
            .find(|h| h.id.to_string() == *id)
            .map(|h| Reply::ok(render::hook(r, repo, h)["config"].clone()))
            .ok_or_else(ApiError::not_found),
        ["security-advisories"] => Ok(cx.page(&[] as &[Value], Clone::clone)),
        ["releases"] => {
            let show_drafts = perms.is_some_and(|p| p.push);
            let mut rels: Vec<&Release> = repo
                .releases
                .iter()
                .filter(|rel| show_drafts || !rel.draft)
                .collect();
            rels.sort_by_key(|rel| std::cmp::Reverse((rel.created_at, rel.id)));
            Ok(cx.page(&rels, |rel| render::release(r, repo, rel)))
        }
        ["releases", "latest"] => repo
            .releases
            .iter()
            .filter(|rel| !rel.draft && !rel.prerelease)
            .max_by_key(|rel| (rel.created_at, rel.id))
            .map(|rel| Reply::ok(render::release(r, repo, rel)))
            .ok_or_else(ApiError::not_found),
        ["releases", "tags", tag] => repo
            .releases
            .iter()
            .find(|rel| rel.tag_name == *tag && !rel.draft)
            .map(|rel| Reply::ok(render::release(r, repo, rel)))
            .ok_or_else(ApiError::not_found),
        ["releases", "assets", id] => {
            let (rel, a) = find_asset(repo, id).ok_or_else(ApiError::not_found)?;
            if cx.accept.contains("application/octet-stream") {
                Ok(Reply::Redirect(signed_asset_url(
                    &cx.st.secret,
                    &r.u.web,
                    a.id,
                    &a.name,
                )))
            } else {
                Ok(Reply::ok(render::asset(r, repo, rel, a)))
            }
        }
        ["releases", id] => release(repo, id)
            .map(|rel| Reply::ok(render::release(r, repo, rel)))
            .ok_or_else(ApiError::not_found),
        ["releases", id, "assets"] => {
            let rel = release(repo, id).ok_or_else(ApiError::not_found)?;
            Ok(cx.page(&rel.assets, |a| render::asset(r, repo, rel, a)))
        }
        _ => Err(ApiError::new(StatusCode::NOT_FOUND, "Not Found")),
    }
}

fn release<'a>(repo: &'a Repo, id: &str) -> Option<&'a Release> {
    repo.releases.iter().find(|rel| rel.id.to_string() == id)
}

pub(crate) fn find_asset<'a>(
    repo: &'a Repo,
    id: &str,
) -> Option<(&'a Release, &'a crate::forge::model::Asset)> {
    repo.releases.iter().find_map(|rel| {
        rel.assets
            .iter()
            .find(|a| a.id.to_string() == id)
            .map(|a| (rel, a))
    })
}

/// The commit a tag points to (an annotated tag's ref names the tag object).
fn peeled<'a>(repo: &'a Repo, tag: &str, sha: &'a str) -> &'a str {
    repo.git
        .peeled
        .get(&format!("refs/tags/{tag}"))
        .map_or(sha, String::as_str)
}

/// A time-limited download URL for an asset, like the storage URLs GitHub redirects to.
pub(crate) fn signed_asset_url(secret: &[u8; 32], web: &str, id: u64, name: &str) -> String {
    let exp = crate::forge::util::now() + DOWNLOAD_URL_LIFETIME;
    let sig = sign(secret, &format!("asset/{id}/{exp}"));
    format!(
        "{web}/_objects/release-assets/{id}?exp={exp}&sig={sig}&response-content-disposition=attachment%3B%20filename%3D{}",
        seg(name)
    )
}

/// Checks a signed asset URL's query.
pub(crate) fn asset_url_valid(secret: &[u8; 32], id: u64, exp: &str, sig: &str) -> bool {
    let Ok(exp_t) = exp.parse::<i64>() else {
        return false;
    };
    exp_t >= crate::forge::util::now() && sign(secret, &format!("asset/{id}/{exp}")) == sig
}
