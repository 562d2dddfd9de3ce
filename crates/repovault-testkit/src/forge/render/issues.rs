//! Issues, their comments, events and timelines; labels and milestones.

use serde_json::{json, Value};

use super::pulls::{commits_of, review_timeline, timeline_commit};
use super::{extend, reactions, seg, R};
use crate::forge::model::{Comment, Event, Issue, IssueState, Label, Milestone, Repo};
use crate::forge::util::{iso, node_id};

pub(crate) fn label(cx: R<'_>, r: &Repo, l: &Label) -> Value {
    json!({
        "id": l.id,
        "node_id": node_id("Label", l.id),
        "url": format!("{}/labels/{}", cx.u.repo_api(r), seg(&l.name)),
        "name": l.name,
        "color": l.color,
        "default": l.default,
        "description": l.description,
    })
}

fn label_by_name(cx: R<'_>, r: &Repo, name: &str) -> Value {
    match r.labels.iter().find(|l| l.name == name) {
        Some(l) => label(cx, r, l),
        None => json!({"name": name, "color": "ededed"}),
    }
}

pub(crate) fn milestone(cx: R<'_>, r: &Repo, m: &Milestone) -> Value {
    let api = format!("{}/milestones/{}", cx.u.repo_api(r), m.number);
    let (open, closed) = r
        .issues
        .values()
        .filter(|i| i.milestone == Some(m.number))
        .fold((0, 0), |(o, c), i| {
            if i.state_open() {
                (o + 1, c)
            } else {
                (o, c + 1)
            }
        });
    json!({
        "url": api,
        "html_url": format!("{}/milestone/{}", cx.u.repo_web(r), m.number),
        "labels_url": format!("{api}/labels"),
        "id": m.id,
        "node_id": node_id("Milestone", m.id),
        "number": m.number,
        "state": if m.open { "open" } else { "closed" },
        "title": m.title,
        "description": m.description,
        "creator": cx.user(&m.creator),
        "open_issues": open,
        "closed_issues": closed,
        "created_at": iso(m.created_at),
        "updated_at": iso(m.updated_at),
        "closed_at": m.closed_at.map(iso),
        "due_on": m.due_on.map(iso),
    })
}

/// The issue object (also for pull requests, which carry `pull_request`).
pub(crate) fn issue(cx: R<'_>, r: &Repo, i: &Issue) -> Value {
    let api = format!("{}/issues/{}", cx.u.repo_api(r), i.number);
    let web_kind = if i.pull.is_some() { "pull" } else { "issues" };
    let html = format!("{}/{web_kind}/{}", cx.u.repo_web(r), i.number);
    let assignees: Vec<Value> = i.assignees.iter().map(|a| cx.user(a)).collect();
    let milestone_json = i
        .milestone
        .and_then(|n| r.milestones.iter().find(|m| m.number == n))
        .map_or(Value::Null, |m| milestone(cx, r, m));
    let mut v = json!({
        "id": i.id,
        "node_id": node_id(if i.pull.is_some() { "PullRequest" } else { "Issue" }, i.id),
        "url": api,
        "repository_url": cx.u.repo_api(r),
        "labels_url": format!("{api}/labels{{/name}}"),
        "comments_url": format!("{api}/comments"),
        "events_url": format!("{api}/events"),
        "html_url": html,
        "number": i.number,
        "state": match i.state { IssueState::Open => "open", IssueState::Closed => "closed" },
        "state_reason": i.state_reason,
        "title": i.title,
        "body": i.body,
        "user": cx.user(&i.user),
        "labels": i.labels.iter().map(|l| label_by_name(cx, r, l)).collect::<Vec<_>>(),
        "assignee": assignees.first().cloned().unwrap_or(Value::Null),
        "assignees": assignees,
        "milestone": milestone_json,
        "locked": i.locked,
        "active_lock_reason": i.active_lock_reason,
        "comments": i.comments.len(),
        "closed_at": i.closed_at.map(iso),
        "created_at": iso(i.created_at),
        "updated_at": iso(i.updated_at),
        "closed_by": cx.opt_user(i.closed_by.as_deref()),
        "author_association": i.author_association,
        "reactions": reactions(&api),
        "timeline_url": format!("{api}/timeline"),
        "performed_via_github_app": null,
        "type": null,
        "sub_issues_summary": {"total": 0, "completed": 0, "percent_completed": 0},
    });
    if let Some(p) = &i.pull {
        let pulls = format!("{}/pulls/{}", cx.u.repo_api(r), i.number);
        extend(
            &mut v,
            json!({
                "draft": p.draft,
                "pull_request": {
                    "url": pulls,
                    "html_url": html,
                    "diff_url": format!("{html}.diff"),
                    "patch_url": format!("{html}.patch"),
                    "merged_at": p.merged_at.map(iso),
                },
            }),
        );
    }
    v
}

pub(crate) fn comment(cx: R<'_>, r: &Repo, i: &Issue, c: &Comment) -> Value {
    let api = format!("{}/issues/comments/{}", cx.u.repo_api(r), c.id);
    let web_kind = if i.pull.is_some() { "pull" } else { "issues" };
    json!({
        "id": c.id,
        "node_id": node_id("IssueComment", c.id),
        "url": api,
        "html_url": format!("{}/{web_kind}/{}#issuecomment-{}", cx.u.repo_web(r), i.number, c.id),
        "body": c.body,
        "user": cx.user(&c.user),
        "created_at": iso(c.created_at),
        "updated_at": iso(c.updated_at),
        "issue_url": format!("{}/issues/{}", cx.u.repo_api(r), i.number),
        "author_association": c.author_association,
        "reactions": reactions(&api),
        "performed_via_github_app": null,
    })
}

/// GraphQL-style type names of events, used in their node ids.
fn event_type_name(event: &str) -> String {
    event
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
                None => String::new(),
            }
        })
        .collect::<String>()
        + "Event"
}

/// An issue event as `GET .../issues/{n}/events` serves it; `with_issue` adds the issue
/// (repository-wide `GET .../issues/events`), `timeline` drops the fields only the events
/// API has.
pub(crate) fn event(
    cx: R<'_>,
    r: &Repo,
    i: &Issue,
    e: &Event,
    with_issue: bool,
    timeline: bool,
) -> Value {
    let mut v = json!({
        "id": e.id,
        "node_id": node_id(&event_type_name(e.event), e.id),
        "url": format!("{}/issues/events/{}", cx.u.repo_api(r), e.id),
        "actor": cx.user(&e.actor),
        "event": e.event,
        "commit_id": e.commit_id,
        "commit_url": e.commit_id.as_ref().map(|c| format!("{}/commits/{c}", cx.u.repo_api(r))),
        "created_at": iso(e.created_at),
        "performed_via_github_app": null,
    });
    if let Some(l) = &e.label {
        let color = r
            .labels
            .iter()
            .find(|x| &x.name == l)
            .map_or("ededed", |x| x.color.as_str());
        extend(&mut v, json!({"label": {"name": l, "color": color}}));
    }
    if let Some(a) = &e.assignee {
        extend(&mut v, json!({"assignee": cx.user(a)}));
        if !timeline {
            extend(&mut v, json!({"assigner": cx.user(&e.actor)}));
        }
    }
    if let Some(m) = &e.milestone {
        extend(&mut v, json!({"milestone": {"title": m}}));
    }
    if let Some((from, to)) = &e.rename {
        extend(&mut v, json!({"rename": {"from": from, "to": to}}));
    }
    if let Some(rr) = &e.requested_reviewer {
        extend(
            &mut v,
            json!({"requested_reviewer": cx.user(rr), "review_requester": cx.user(&e.actor)}),
        );
    }
    if e.event == "locked" {
        extend(&mut v, json!({"lock_reason": i.active_lock_reason}));
    }
    if with_issue {
        extend(&mut v, json!({"issue": issue(cx, r, i)}));
    }
    v
}

/// `GET .../issues/{n}/timeline`: events, comments (`commented`), and for pull requests their
/// commits (`committed`) and reviews (`reviewed`), oldest first.
pub(crate) fn timeline(cx: R<'_>, r: &Repo, i: &Issue) -> Vec<Value> {
    // (time, tie-breaker, item): commits sort by author date as GitHub shows them.
    let mut items: Vec<(i64, u64, Value)> = Vec::new();
    for e in &i.events {
        items.push((e.created_at, e.id, event(cx, r, i, e, false, true)));
    }
    for c in &i.comments {
        let mut v = comment(cx, r, i, c);
        extend(
            &mut v,
            json!({"event": "commented", "actor": cx.user(&c.user)}),
        );
        items.push((c.created_at, c.id, v));
    }
    if let Some(p) = &i.pull {
        for (k, c) in commits_of(r, i.number).iter().enumerate() {
            items.push((c.author_time, k as u64, timeline_commit(cx, r, c)));
        }
        for rv in &p.reviews {
            items.push((rv.submitted_at, rv.id, review_timeline(cx, r, i, rv)));
        }
    }
    items.sort_by_key(|(t, id, _)| (*t, *id));
    items.into_iter().map(|(_, _, v)| v).collect()
}
