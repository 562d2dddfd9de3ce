//! Issues and pull requests: lists with GitHub's filters and sort orders, single items,
//! comments (per item and repository-wide with `since`), events, timelines, reviews, review
//! comments and commits.

use hyper::{Method, StatusCode};
use serde_json::{json, Value};

use super::Cx;
use crate::forge::http::{ApiError, Reply};
use crate::forge::model::{Comment, Issue, Repo, ReviewComment};
use crate::forge::render::{self, R};

fn issues_disabled() -> ApiError {
    ApiError::new(StatusCode::GONE, "Issues are disabled for this repo")
}

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
    let since = cx.since()?;
    let r = cx.r();
    let repo = r.w.repo(&full).ok_or_else(ApiError::not_found)?;
    let num = |s: &str| s.parse::<u64>().map_err(|_| ApiError::not_found());
    match rest {
        ["issues"] => list_issues(cx, r, repo, since),
        ["issues", "comments"] => {
            let mut all: Vec<(&Issue, &Comment)> = repo
                .issues
                .values()
                .flat_map(|i| i.comments.iter().map(move |c| (i, c)))
                .filter(|(_, c)| since.is_none_or(|s| c.updated_at >= s))
                .collect();
            match cx.q.get("sort") {
                Some("updated") => all.sort_by_key(|(_, c)| (c.updated_at, c.id)),
                Some(_) => all.sort_by_key(|(_, c)| (c.created_at, c.id)),
                None => all.sort_by_key(|(_, c)| c.id),
            }
            if cx.q.get("sort").is_some() && cx.sort_desc(false) {
                all.reverse();
            }
            Ok(cx.page(&all, |(i, c)| render::comment(r, repo, i, c)))
        }
        ["issues", "comments", id] => {
            let id = num(id)?;
            repo.issues
                .values()
                .find_map(|i| i.comments.iter().find(|c| c.id == id).map(|c| (i, c)))
                .map(|(i, c)| Reply::ok(render::comment(r, repo, i, c)))
                .ok_or_else(ApiError::not_found)
        }
        ["issues", "events"] => {
            let mut all: Vec<(&Issue, &crate::forge::model::Event)> = repo
                .issues
                .values()
                .flat_map(|i| i.events.iter().map(move |e| (i, e)))
                .collect();
            all.sort_by_key(|(_, e)| std::cmp::Reverse(e.id));
            Ok(cx.page(&all, |(i, e)| render::event(r, repo, i, e, true, false)))
        }
        ["issues", "events", id] => {
            let id = num(id)?;
            repo.issues
                .values()
                .find_map(|i| i.events.iter().find(|e| e.id == id).map(|e| (i, e)))
                .map(|(i, e)| Reply::ok(render::event(r, repo, i, e, true, false)))
                .ok_or_else(ApiError::not_found)
        }
        ["issues", n, tail @ ..] => {
            let i = issue(repo, num(n)?)?;
            match tail {
                [] => Ok(Reply::ok(render::issue(r, repo, i))),
                ["comments"] => {
                    let comments: Vec<&Comment> = i
                        .comments
                        .iter()
                        .filter(|c| since.is_none_or(|s| c.updated_at >= s))
                        .collect();
                    Ok(cx.page(&comments, |c| render::comment(r, repo, i, c)))
                }
                ["events"] => {
                    Ok(cx.page(&i.events, |e| render::event(r, repo, i, e, false, false)))
                }
                ["timeline"] => {
                    let items = render::timeline(r, repo, i);
                    Ok(cx.page(&items, Clone::clone))
                }
                ["labels"] => {
                    let labels: Vec<_> = i
                        .labels
                        .iter()
                        .filter_map(|n| repo.labels.iter().find(|l| &l.name == n))
                        .collect();
                    Ok(cx.page(&labels, |l| render::label(r, repo, l)))
                }
                _ => Err(ApiError::not_found()),
            }
        }
        ["pulls"] => list_pulls(cx, r, repo),
        ["pulls", "comments"] => {
            let mut all: Vec<(&Issue, &ReviewComment)> = repo
                .issues
                .values()
                .filter_map(|i| i.pull.as_ref().map(|p| (i, p)))
                .flat_map(|(i, p)| p.review_comments.iter().map(move |c| (i, c)))
                .filter(|(_, c)| since.is_none_or(|s| c.updated_at >= s))
                .collect();
            sort_review_comments(cx, &mut all);
            Ok(cx.page(&all, |(i, c)| render::review_comment(r, repo, i, c)))
        }
        ["pulls", "comments", id] => {
            let id = num(id)?;
            repo.issues
                .values()
                .find_map(|i| {
                    i.pull
                        .as_ref()
                        .and_then(|p| p.review_comments.iter().find(|c| c.id == id))
                        .map(|c| (i, c))
                })
                .map(|(i, c)| Reply::ok(render::review_comment(r, repo, i, c)))
                .ok_or_else(ApiError::not_found)
        }
        ["pulls", n, tail @ ..] => {
            let i = repo
                .issues
                .get(&num(n)?)
                .filter(|i| i.pull.is_some())
                .ok_or_else(ApiError::not_found)?;
            let p = i.pull.as_ref().ok_or_else(ApiError::not_found)?;
            match tail {
                [] => render::pull(r, repo, i, true)
                    .map(Reply::ok)
                    .ok_or_else(ApiError::not_found),
                ["reviews"] => Ok(cx.page(&p.reviews, |rv| render::review(r, repo, i, rv))),
                ["reviews", id] => {
                    let id = num(id)?;
                    p.reviews
                        .iter()
                        .find(|rv| rv.id == id)
                        .map(|rv| Reply::ok(render::review(r, repo, i, rv)))
                        .ok_or_else(ApiError::not_found)
                }
                ["reviews", id, "comments"] => {
                    let id = num(id)?;
                    if !p.reviews.iter().any(|rv| rv.id == id) {
                        return Err(ApiError::not_found());
                    }
                    let comments: Vec<&ReviewComment> = p
                        .review_comments
                        .iter()
                        .filter(|c| c.review_id == Some(id))
                        .collect();
                    Ok(cx.page(&comments, |c| render::review_comment(r, repo, i, c)))
                }
                ["comments"] => {
                    let mut all: Vec<(&Issue, &ReviewComment)> = p
                        .review_comments
                        .iter()
                        .filter(|c| since.is_none_or(|s| c.updated_at >= s))
                        .map(|c| (i, c))
                        .collect();
                    sort_review_comments(cx, &mut all);
                    Ok(cx.page(&all, |(i, c)| render::review_comment(r, repo, i, c)))
                }
                ["commits"] => {
                    let commits = render::commits_of(repo, i.number);
                    Ok(cx.page(&commits, |c| render::pr_commit(r, repo, c)))
                }
                ["requested_reviewers"] => Ok(Reply::ok(json!({
                    "users": p.requested_reviewers.iter().map(|u| r.user(u)).collect::<Vec<_>>(),
                    "teams": [],
                }))),
                ["merge"] if p.merged_at.is_some() => Ok(Reply::Empty(StatusCode::NO_CONTENT)),
                ["merge"] => Err(ApiError::not_found()),
                _ => Err(ApiError::not_found()),
            }
        }
        _ => Err(ApiError::not_found()),
    }
}

/// An issue by number; plain issues of a repository with issues disabled are gone.
fn issue(repo: &Repo, number: u64) -> Result<&Issue, ApiError> {
    let i = repo.issues.get(&number).ok_or_else(ApiError::not_found)?;
    if !repo.has_issues && i.pull.is_none() {
        return Err(issues_disabled());
    }
    Ok(i)
}

fn sort_review_comments(cx: &Cx<'_>, all: &mut [(&Issue, &ReviewComment)]) {
    match cx.q.get("sort") {
        Some("updated") => all.sort_by_key(|(_, c)| (c.updated_at, c.id)),
        Some(_) => all.sort_by_key(|(_, c)| (c.created_at, c.id)),
        None => all.sort_by_key(|(_, c)| c.id),
    }
    if cx.q.get("sort").is_some() && cx.sort_desc(false) {
        all.reverse();
    }
}

/// `GET /repos/{owner}/{repo}/issues`: pull requests included (with `pull_request`), filters
/// `state` (open), `milestone`, `assignee`, `creator`, `mentioned`, `labels`, `since`; sort
/// `created` (default), `updated`, `comments`; direction `desc` by default.
fn list_issues(cx: &Cx<'_>, r: R<'_>, repo: &Repo, since: Option<i64>) -> Result<Reply, ApiError> {
    let q = cx.q;
    let state = q.get("state").unwrap_or("open");
    let labels: Vec<&str> = q
        .get("labels")
        .map(|l| {
            l.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let milestone = q.get("milestone");
    let mut items: Vec<&Issue> = repo
        .issues
        .values()
        .filter(|i| repo.has_issues || i.pull.is_some())
        .filter(|i| match state {
            "closed" => !i.state_open(),
            "all" => true,
            "open" => i.state_open(),
            _ => i.state_open(),
        })
        .filter(|i| since.is_none_or(|s| i.updated_at >= s))
        .filter(|i| {
            labels
                .iter()
                .all(|l| i.labels.iter().any(|x| x.eq_ignore_ascii_case(l)))
        })
        .filter(|i| match milestone {
            None => true,
            Some("*") => i.milestone.is_some(),
            Some("none") => i.milestone.is_none(),
            Some(n) => n.parse::<u64>().ok() == i.milestone,
        })
        .filter(|i| match q.get("assignee") {
            None => true,
            Some("*") => !i.assignees.is_empty(),
            Some("none") => i.assignees.is_empty(),
            Some(a) => i.assignees.iter().any(|x| x.eq_ignore_ascii_case(a)),
        })
        .filter(|i| {
            q.get("creator")
                .is_none_or(|c| i.user.eq_ignore_ascii_case(c))
        })
        .filter(|i| {
            q.get("mentioned").is_none_or(|m| {
                let needle = format!("@{}", m.to_ascii_lowercase());
                i.body
                    .as_deref()
                    .is_some_and(|b| b.to_ascii_lowercase().contains(&needle))
            })
        })
        .collect();
    match q.get("sort").unwrap_or("created") {
        "updated" => items.sort_by_key(|i| (i.updated_at, i.number)),
        "comments" => items.sort_by_key(|i| (i.comments.len(), i.number)),
        "created" => items.sort_by_key(|i| (i.created_at, i.number)),
        _ => return Err(ApiError::validation("sort is not valid")),
    }
    if cx.sort_desc(true) {
        items.reverse();
    }
    Ok(cx.page(&items, |i| render::issue(r, repo, i)))
}

/// `GET /repos/{owner}/{repo}/pulls`: `state` (open), `head` (`user:ref`), `base`; sort
/// `created` (default), `updated`, `popularity`, `long-running`; direction `desc` for
/// `created` (or no sort), `asc` otherwise.
fn list_pulls(cx: &Cx<'_>, r: R<'_>, repo: &Repo) -> Result<Reply, ApiError> {
    let q = cx.q;
    let state = q.get("state").unwrap_or("open");
    let mut items: Vec<&Issue> = repo
        .issues
        .values()
        .filter(|i| i.pull.is_some())
        .filter(|i| match state {
            "closed" => !i.state_open(),
            "all" => true,
            _ => i.state_open(),
        })
        .filter(|i| {
            q.get("head").is_none_or(|h| {
                let p = i
                    .pull
                    .as_ref()
                    .map(|p| p.head_ref.as_str())
                    .unwrap_or_default();
                let want = h.split_once(':').map_or(h, |(_, b)| b);
                p == want
            })
        })
        .filter(|i| {
            q.get("base")
                .is_none_or(|b| i.pull.as_ref().is_some_and(|p| p.base_ref == b))
        })
        .collect();
    let sort = q.get("sort").unwrap_or("created");
    match sort {
        "updated" => items.sort_by_key(|i| (i.updated_at, i.number)),
        "popularity" => items.sort_by_key(|i| (i.comments.len(), i.number)),
        "long-running" => items.sort_by_key(|i| (std::cmp::Reverse(i.created_at), i.number)),
        "created" => items.sort_by_key(|i| (i.created_at, i.number)),
        _ => return Err(ApiError::validation("sort is not valid")),
    }
    if cx.sort_desc(sort == "created") {
        items.reverse();
    }
    let values: Vec<Value> = items[cx.paging.range(items.len())]
        .iter()
        .filter_map(|i| render::pull(r, repo, i, false))
        .collect();
    Ok(Reply::Page {
        items: values,
        total: items.len(),
    })
}
