//! Pull requests, their reviews, review comments and commits.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use serde_json::{json, Value};

use super::issues::{label, milestone};
use super::{extend, reactions, Perms, R};
use crate::forge::model::{CommitInfo, Issue, IssueState, Repo, Review, ReviewComment};
use crate::forge::util::{iso, node_id};

/// GitHub lists at most 250 commits of a pull request.
const MAX_PR_COMMITS: usize = 250;

pub(crate) fn head_sha(r: &Repo, number: u64) -> Option<&str> {
    r.git
        .refs
        .get(&format!("refs/pull/{number}/head"))
        .map(String::as_str)
}

/// The base commit: the merge commit's first parent once merged, else the base branch's tip.
pub(crate) fn base_sha(r: &Repo, i: &Issue) -> Option<String> {
    let p = i.pull.as_ref()?;
    if let Some(parent) = p
        .merge_commit_sha
        .as_ref()
        .and_then(|m| r.git.commits.get(m))
        .and_then(|c| c.parents.first())
    {
        return Some(parent.clone());
    }
    r.git
        .refs
        .get(&format!("refs/heads/{}", p.base_ref))
        .cloned()
}

/// Commits of pull request `number`: reachable from its head and not from its base, oldest
/// first (as `git log --reverse base..head`).
pub(crate) fn commits_of(r: &Repo, number: u64) -> Vec<Arc<CommitInfo>> {
    let Some(i) = r.issues.get(&number) else {
        return Vec::new();
    };
    let Some(head) = head_sha(r, number) else {
        return Vec::new();
    };
    let excluded = base_sha(r, i).map_or_else(HashSet::new, |b| reachable(r, &b, usize::MAX));
    let mut out: Vec<Arc<CommitInfo>> = Vec::new();
    let mut seen = HashSet::new();
    let mut queue = VecDeque::from([head.to_owned()]);
    while let Some(sha) = queue.pop_front() {
        if excluded.contains(&sha) || !seen.insert(sha.clone()) || out.len() > 10_000 {
            continue;
        }
        if let Some(c) = r.git.commits.get(&sha) {
            queue.extend(c.parents.iter().cloned());
            out.push(c.clone());
        }
    }
    out.sort_by(|a, b| (a.committer_time, &a.sha).cmp(&(b.committer_time, &b.sha)));
    out.truncate(MAX_PR_COMMITS);
    out
}

fn reachable(r: &Repo, from: &str, limit: usize) -> HashSet<String> {
    let mut seen = HashSet::new();
    let mut queue = VecDeque::from([from.to_owned()]);
    while let Some(sha) = queue.pop_front() {
        if seen.len() >= limit || !seen.insert(sha.clone()) {
            continue;
        }
        if let Some(c) = r.git.commits.get(&sha) {
            queue.extend(c.parents.iter().cloned());
        }
    }
    seen
}

fn branch_end(cx: R<'_>, r: &Repo, branch: &str, sha: Option<String>) -> Value {
    json!({
        "label": format!("{}:{branch}", r.owner),
        "ref": branch,
        "sha": sha,
        "user": cx.user(&r.owner),
        "repo": cx.repo(r, Some(Perms::READ), false),
    })
}

/// A pull request: the list shape ("pull request simple"), or with `full` the shape of
/// `GET .../pulls/{n}` (merge state, counts).
pub(crate) fn pull(cx: R<'_>, r: &Repo, i: &Issue, full: bool) -> Option<Value> {
    let p = i.pull.as_ref()?;
    let api = format!("{}/pulls/{}", cx.u.repo_api(r), i.number);
    let issue_api = format!("{}/issues/{}", cx.u.repo_api(r), i.number);
    let html = format!("{}/pull/{}", cx.u.repo_web(r), i.number);
    let head = head_sha(r, i.number).map(str::to_owned);
    let statuses = format!(
        "{}/statuses/{}",
        cx.u.repo_api(r),
        head.as_deref().unwrap_or_default()
    );
    let assignees: Vec<Value> = i.assignees.iter().map(|a| cx.user(a)).collect();
    let milestone_json = i
        .milestone
        .and_then(|n| r.milestones.iter().find(|m| m.number == n))
        .map_or(Value::Null, |m| milestone(cx, r, m));
    let labels: Vec<Value> = i
        .labels
        .iter()
        .filter_map(|n| r.labels.iter().find(|l| &l.name == n))
        .map(|l| label(cx, r, l))
        .collect();
    let mut v = json!({
        "url": api,
        "id": p.id,
        "node_id": node_id("PullRequest", p.id),
        "html_url": html,
        "diff_url": format!("{html}.diff"),
        "patch_url": format!("{html}.patch"),
        "issue_url": issue_api,
        "commits_url": format!("{api}/commits"),
        "review_comments_url": format!("{api}/comments"),
        "review_comment_url": format!("{}/pulls/comments{{/number}}", cx.u.repo_api(r)),
        "comments_url": format!("{issue_api}/comments"),
        "statuses_url": statuses,
        "number": i.number,
        "state": match i.state { IssueState::Open => "open", IssueState::Closed => "closed" },
        "locked": i.locked,
        "title": i.title,
        "user": cx.user(&i.user),
        "body": i.body,
        "labels": labels,
        "milestone": milestone_json,
        "active_lock_reason": i.active_lock_reason,
        "created_at": iso(i.created_at),
        "updated_at": iso(i.updated_at),
        "closed_at": i.closed_at.map(iso),
        "merged_at": p.merged_at.map(iso),
        "merge_commit_sha": p.merge_commit_sha,
        "assignee": assignees.first().cloned().unwrap_or(Value::Null),
        "assignees": assignees,
        "requested_reviewers": p.requested_reviewers.iter().map(|u| cx.user(u)).collect::<Vec<_>>(),
        "requested_teams": [],
        "head": branch_end(cx, r, &p.head_ref, head.clone()),
        "base": branch_end(cx, r, &p.base_ref, base_sha(r, i)),
        "_links": {
            "self": {"href": api},
            "html": {"href": html},
            "issue": {"href": issue_api},
            "comments": {"href": format!("{issue_api}/comments")},
            "review_comments": {"href": format!("{api}/comments")},
            "review_comment": {"href": format!("{}/pulls/comments{{/number}}", cx.u.repo_api(r))},
            "commits": {"href": format!("{api}/commits")},
            "statuses": {"href": statuses},
        },
        "author_association": i.author_association,
        "auto_merge": null,
        "draft": p.draft,
    });
    if full {
        let merged = p.merged_at.is_some();
        let mergeable_ref = r
            .git
            .refs
            .contains_key(&format!("refs/pull/{}/merge", i.number));
        let (mergeable, state) = if merged || !i.state_open() {
            (Value::Null, "unknown")
        } else if mergeable_ref {
            (Value::Bool(true), if p.draft { "draft" } else { "clean" })
        } else {
            (Value::Bool(false), "dirty")
        };
        extend(
            &mut v,
            json!({
                "merged": merged,
                "mergeable": mergeable,
                "rebaseable": mergeable,
                "mergeable_state": state,
                "merged_by": cx.opt_user(p.merged_by.as_deref()),
                "comments": i.comments.len(),
                "review_comments": p.review_comments.len(),
                "maintainer_can_modify": false,
                "commits": commits_of(r, i.number).len(),
                "additions": 0,
                "deletions": 0,
                "changed_files": 0,
            }),
        );
    }
    Some(v)
}

pub(crate) fn review(cx: R<'_>, r: &Repo, i: &Issue, rv: &Review) -> Value {
    let pr_api = format!("{}/pulls/{}", cx.u.repo_api(r), i.number);
    let html = format!(
        "{}/pull/{}#pullrequestreview-{}",
        cx.u.repo_web(r),
        i.number,
        rv.id
    );
    json!({
        "id": rv.id,
        "node_id": node_id("PullRequestReview", rv.id),
        "user": cx.user(&rv.user),
        "body": rv.body,
        "state": rv.state,
        "html_url": html,
        "pull_request_url": pr_api,
        "author_association": rv.author_association,
        "_links": {"html": {"href": html}, "pull_request": {"href": pr_api}},
        "submitted_at": iso(rv.submitted_at),
        "commit_id": rv.commit_id,
    })
}

/// A review in a timeline: the same fields with a lower-case state and `event: "reviewed"`.
pub(crate) fn review_timeline(cx: R<'_>, r: &Repo, i: &Issue, rv: &Review) -> Value {
    let mut v = review(cx, r, i, rv);
    extend(
        &mut v,
        json!({"state": rv.state.to_ascii_lowercase(), "event": "reviewed"}),
    );
    v
}

pub(crate) fn review_comment(cx: R<'_>, r: &Repo, i: &Issue, c: &ReviewComment) -> Value {
    let api = format!("{}/pulls/comments/{}", cx.u.repo_api(r), c.id);
    let pr_api = format!("{}/pulls/{}", cx.u.repo_api(r), i.number);
    let html = format!(
        "{}/pull/{}#discussion_r{}",
        cx.u.repo_web(r),
        i.number,
        c.id
    );
    let mut v = json!({
        "url": api,
        "pull_request_review_id": c.review_id,
        "id": c.id,
        "node_id": node_id("PullRequestReviewComment", c.id),
        "diff_hunk": c.diff_hunk,
        "path": c.path,
        "position": c.line,
        "original_position": c.line,
        "commit_id": c.commit_id,
        "original_commit_id": c.commit_id,
        "user": cx.user(&c.user),
        "body": c.body,
        "created_at": iso(c.created_at),
        "updated_at": iso(c.updated_at),
        "html_url": html,
        "pull_request_url": pr_api,
        "author_association": c.author_association,
        "_links": {"self": {"href": api}, "html": {"href": html}, "pull_request": {"href": pr_api}},
        "reactions": reactions(&api),
        "start_line": null,
        "original_start_line": null,
        "start_side": null,
        "line": c.line,
        "original_line": c.line,
        "side": "RIGHT",
        "subject_type": "line",
    });
    if let Some(to) = c.in_reply_to {
        extend(&mut v, json!({"in_reply_to_id": to}));
    }
    v
}

fn git_person(name: &str, email: &str, t: i64) -> Value {
    json!({"name": name, "email": email, "date": iso(t)})
}

const UNSIGNED: &str = "unsigned";

/// An account whose e-mail is the commit's, as GitHub links commit authors to users.
fn account_by_email(cx: R<'_>, email: &str) -> Value {
    cx.w.accounts
        .values()
        .find(|a| a.email.as_deref() == Some(email))
        .map_or(Value::Null, |a| cx.simple_user(a))
}

fn parents(cx: R<'_>, r: &Repo, c: &CommitInfo) -> Vec<Value> {
    c.parents
        .iter()
        .map(|p| {
            json!({
                "sha": p,
                "url": format!("{}/commits/{p}", cx.u.repo_api(r)),
                "html_url": format!("{}/commit/{p}", cx.u.repo_web(r)),
            })
        })
        .collect()
}

/// A commit as `GET .../pulls/{n}/commits` lists it.
pub(crate) fn pr_commit(cx: R<'_>, r: &Repo, c: &CommitInfo) -> Value {
    let api = format!("{}/commits/{}", cx.u.repo_api(r), c.sha);
    json!({
        "sha": c.sha,
        "node_id": node_id("Commit", format!("{}:{}", r.id, c.sha)),
        "commit": {
            "author": git_person(&c.author_name, &c.author_email, c.author_time),
            "committer": git_person(&c.committer_name, &c.committer_email, c.committer_time),
            "message": c.message,
            "tree": {"sha": c.tree, "url": format!("{}/git/trees/{}", cx.u.repo_api(r), c.tree)},
            "url": format!("{}/git/commits/{}", cx.u.repo_api(r), c.sha),
            "comment_count": 0,
            "verification": {"verified": false, "reason": UNSIGNED, "signature": null, "payload": null, "verified_at": null},
        },
        "url": api,
        "html_url": format!("{}/commit/{}", cx.u.repo_web(r), c.sha),
        "comments_url": format!("{api}/comments"),
        "author": account_by_email(cx, &c.author_email),
        "committer": account_by_email(cx, &c.committer_email),
        "parents": parents(cx, r, c),
    })
}

/// A commit in a pull request's timeline (`event: "committed"`).
pub(crate) fn timeline_commit(cx: R<'_>, r: &Repo, c: &CommitInfo) -> Value {
    json!({
        "sha": c.sha,
        "node_id": node_id("Commit", format!("{}:{}", r.id, c.sha)),
        "url": format!("{}/git/commits/{}", cx.u.repo_api(r), c.sha),
        "html_url": format!("{}/commit/{}", cx.u.repo_web(r), c.sha),
        "author": git_person(&c.author_name, &c.author_email, c.author_time),
        "committer": git_person(&c.committer_name, &c.committer_email, c.committer_time),
        "tree": {"sha": c.tree, "url": format!("{}/git/trees/{}", cx.u.repo_api(r), c.tree)},
        "message": c.message,
        "parents": parents(cx, r, c),
        "verification": {"verified": false, "reason": UNSIGNED, "signature": null, "payload": null, "verified_at": null},
        "event": "committed",
    })
}
