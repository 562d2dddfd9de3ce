//! Accounts and repository discovery: `/user`, `/users/{u}`, `/orgs/{o}`, the repository
//! listings (`/orgs/{o}/repos`, `/users/{u}/repos`, `/user/repos`, starred, watched),
//! followers, and gists.

use hyper::Method;
use serde_json::{json, Value};

use super::Cx;
use crate::forge::auth::Identity;
use crate::forge::http::{ApiError, Reply};
use crate::forge::model::{Account, Gist, Repo};
use crate::forge::render::{self, R};
use crate::forge::state::repo_perms;
use crate::forge::util::iso;

pub(super) fn route(cx: &mut Cx<'_>, segs: &[&str]) -> Result<Reply, ApiError> {
    if *cx.method != Method::GET && *cx.method != Method::HEAD {
        return Err(ApiError::not_found());
    }
    match segs {
        ["user"] => {
            let login = authenticated_user(cx)?;
            let a = account(cx, &login)?;
            Ok(Reply::ok(cx.r().public_user(a, true)))
        }
        ["user", "repos"] => user_repos(cx),
        ["user", "starred"] => {
            let login = authenticated_user(cx)?;
            starred(cx, &login)
        }
        ["user", "subscriptions"] => {
            let login = authenticated_user(cx)?;
            watched(cx, &login)
        }
        ["user", "orgs"] => {
            let login = authenticated_user(cx)?;
            orgs_of(cx, &login)
        }
        ["user", rel @ ("followers" | "following")] => {
            let login = authenticated_user(cx)?;
            follow_list(cx, &login, rel)
        }
        ["users", u] => {
            let a = account(cx, u)?;
            Ok(Reply::ok(cx.r().public_user(a, false)))
        }
        ["users", u, "repos"] => {
            let a = account(cx, u)?.login.clone();
            owner_repos(cx, &a, false)
        }
        ["users", u, "starred"] => {
            let a = account(cx, u)?.login.clone();
            starred(cx, &a)
        }
        ["users", u, "subscriptions"] => {
            let a = account(cx, u)?.login.clone();
            watched(cx, &a)
        }
        ["users", u, "orgs"] => {
            let a = account(cx, u)?.login.clone();
            orgs_of(cx, &a)
        }
        ["users", u, rel @ ("followers" | "following")] => {
            let a = account(cx, u)?.login.clone();
            follow_list(cx, &a, rel)
        }
        ["users", u, "gists"] => {
            let a = account(cx, u)?.login.clone();
            gists_of(cx, &a)
        }
        ["orgs", o] => {
            let a = account(cx, o)?;
            if !a.is_org() {
                return Err(ApiError::not_found());
            }
            let member = match cx.who {
                Identity::User(login) => cx.st.world.is_member(&a.login, login, false),
                Identity::Installation { id, .. } => cx
                    .st
                    .world
                    .installations
                    .iter()
                    .any(|i| i.id == *id && i.account.eq_ignore_ascii_case(&a.login)),
                _ => false,
            };
            Ok(Reply::ok(cx.r().org(a, member)))
        }
        ["orgs", o, "repos"] => {
            let a = account(cx, o)?;
            if !a.is_org() {
                return Err(ApiError::not_found());
            }
            let login = a.login.clone();
            owner_repos(cx, &login, true)
        }
        ["orgs", o, "members"] => {
            let a = account(cx, o)?;
            let visible = match cx.who {
                Identity::User(login) => cx.st.world.is_member(&a.login, login, false),
                Identity::Installation { .. } => true,
                _ => false,
            };
            let members: Vec<String> = if visible {
                a.members.clone()
            } else {
                Vec::new()
            };
            Ok(cx.page(&members, |m| cx.r().user(m)))
        }
        ["gists"] => {
            let login = authenticated_user(cx)?;
            gists_of(cx, &login)
        }
        ["gists", "starred"] => {
            let login = authenticated_user(cx)?;
            let mut gists: Vec<&Gist> = cx
                .st
                .world
                .gists
                .values()
                .filter(|g| g.starred_by.iter().any(|s| s.eq_ignore_ascii_case(&login)))
                .collect();
            gists.sort_by(|a, b| (b.updated_at, &b.id).cmp(&(a.updated_at, &a.id)));
            Ok(cx.page(&gists, |g| render::gist(cx.r(), g, false)))
        }
        ["gists", id] => {
            let g = gist(cx, id)?;
            Ok(Reply::ok(render::gist(cx.r(), g, true)))
        }
        ["gists", id, "comments"] => {
            gist(cx, id)?;
            Ok(cx.page(&[] as &[Value], Clone::clone))
        }
        ["gists", id, "commits"] => {
            let g = gist(cx, id)?;
            let full = render::gist(cx.r(), g, true);
            let history: Vec<Value> = full
                .get("history")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            Ok(cx.page(&history, Clone::clone))
        }
        _ => Err(ApiError::not_found()),
    }
}

fn authenticated_user(cx: &Cx<'_>) -> Result<String, ApiError> {
    match cx.who {
        Identity::User(login) => Ok(login.clone()),
        Identity::Installation { .. } | Identity::App(_) => {
            Err(ApiError::not_accessible_by_integration())
        }
        Identity::Anonymous => Err(ApiError::requires_auth()),
    }
}

fn account<'c>(cx: &'c Cx<'_>, login: &str) -> Result<&'c Account, ApiError> {
    cx.st.world.account(login).ok_or_else(ApiError::not_found)
}

fn gist<'c>(cx: &'c Cx<'_>, id: &str) -> Result<&'c Gist, ApiError> {
    cx.st.world.gists.get(id).ok_or_else(ApiError::not_found)
}

/// Sorts repositories by `sort` (`created`, `updated`, `pushed`, `full_name`).
fn sort_repos(cx: &Cx<'_>, repos: &mut Vec<&Repo>, default_sort: &str) -> Result<(), ApiError> {
    let sort = cx.q.get("sort").unwrap_or(default_sort);
    let desc = cx.sort_desc(sort != "full_name");
    match sort {
        "created" => repos.sort_by_key(|r| (r.created_at, r.id)),
        "updated" => repos.sort_by_key(|r| (r.updated_at, r.id)),
        "pushed" => repos.sort_by_key(|r| (r.pushed_at.unwrap_or(0), r.id)),
        "full_name" => repos.sort_by_key(|r| r.full_name().to_ascii_lowercase()),
        _ => return Err(ApiError::validation("sort is not valid")),
    }
    if desc {
        repos.reverse();
    }
    Ok(())
}

fn render_repos(cx: &Cx<'_>, repos: &[&Repo]) -> Reply {
    let r: R<'_> = cx.r();
    cx.page(repos, |repo| {
        r.repo(repo, repo_perms(r.w, cx.who, repo), false)
    })
}

/// `/orgs/{org}/repos` (`org`) and `/users/{username}/repos`.
fn owner_repos(cx: &mut Cx<'_>, owner: &str, org: bool) -> Result<Reply, ApiError> {
    let ty =
        cx.q.get("type")
            .unwrap_or(if org { "all" } else { "owner" });
    let w = &cx.st.world;
    let mut repos: Vec<&Repo> = w
        .repos
        .values()
        .filter(|r| r.owner.eq_ignore_ascii_case(owner))
        // Listings of other accounts show public repositories only, unless the caller may
        // see the private ones (organization members, installations on the account).
        .filter(|r| {
            if org {
                repo_perms(w, cx.who, r).is_some()
            } else {
                !r.private || matches!(cx.who, Identity::User(l) if l.eq_ignore_ascii_case(owner))
            }
        })
        .filter(|r| match ty {
            "public" => !r.private,
            "private" => r.private,
            "forks" => r.fork_of.is_some(),
            "sources" => r.fork_of.is_none(),
            "member" => false,
            _ => true,
        })
        .collect();
    sort_repos(cx, &mut repos, if org { "created" } else { "full_name" })?;
    Ok(render_repos(cx, &repos))
}

/// `/user/repos`: the caller's own repositories and those of its organizations.
fn user_repos(cx: &mut Cx<'_>) -> Result<Reply, ApiError> {
    let login = authenticated_user(cx)?;
    let visibility = cx.q.get("visibility").unwrap_or("all");
    let affiliation =
        cx.q.get("affiliation")
            .unwrap_or("owner,collaborator,organization_member");
    let ty = cx.q.get("type");
    if ty.is_some() && (cx.q.get("visibility").is_some() || cx.q.get("affiliation").is_some()) {
        return Err(ApiError::validation(
            "If you specify visibility or affiliation, you cannot specify type.",
        ));
    }
    let w = &cx.st.world;
    let mut repos: Vec<&Repo> = w
        .repos
        .values()
        .filter(|r| {
            let own = r.owner.eq_ignore_ascii_case(&login);
            let member = w.is_member(&r.owner, &login, false);
            match ty {
                Some("owner") => own,
                Some("member") => member,
                Some("public") => (own || member) && !r.private,
                Some("private") => (own || member) && r.private,
                Some(_) => own || member,
                None => {
                    (own && affiliation.contains("owner"))
                        || (member && affiliation.contains("organization_member"))
                }
            }
        })
        .filter(|r| match visibility {
            "public" => !r.private,
            "private" => r.private,
            _ => true,
        })
        .collect();
    sort_repos(cx, &mut repos, "full_name")?;
    Ok(render_repos(cx, &repos))
}

fn starred(cx: &mut Cx<'_>, login: &str) -> Result<Reply, ApiError> {
    let w = &cx.st.world;
    let a = w.account(login).ok_or_else(ApiError::not_found)?;
    let mut items: Vec<(&Repo, i64)> = a
        .starred
        .iter()
        .filter_map(|(name, at)| w.repo(name).map(|r| (r, *at)))
        .filter(|(r, _)| repo_perms(w, cx.who, r).is_some())
        .collect();
    let sort = cx.q.get("sort").unwrap_or("created");
    match sort {
        "updated" => items.sort_by_key(|(r, _)| (r.updated_at, r.id)),
        _ => items.sort_by_key(|(r, at)| (*at, r.id)),
    }
    if cx.sort_desc(true) {
        items.reverse();
    }
    let star_json = cx.accept.contains("star+json");
    let r = cx.r();
    Ok(cx.page(&items, |(repo, at)| {
        let v = r.repo(repo, repo_perms(r.w, cx.who, repo), false);
        if star_json {
            json!({"starred_at": iso(*at), "repo": v})
        } else {
            v
        }
    }))
}

fn watched(cx: &mut Cx<'_>, login: &str) -> Result<Reply, ApiError> {
    let w = &cx.st.world;
    let a = w.account(login).ok_or_else(ApiError::not_found)?;
    let repos: Vec<&Repo> = a
        .watching
        .iter()
        .filter_map(|name| w.repo(name))
        .filter(|r| repo_perms(w, cx.who, r).is_some())
        .collect();
    Ok(render_repos(cx, &repos))
}

fn orgs_of(cx: &mut Cx<'_>, login: &str) -> Result<Reply, ApiError> {
    let w = &cx.st.world;
    let orgs: Vec<&Account> = w
        .accounts
        .values()
        .filter(|a| a.is_org() && a.members.iter().any(|m| m.eq_ignore_ascii_case(login)))
        .collect();
    let r = cx.r();
    Ok(cx.page(&orgs, |o| {
        let full = r.org(o, false);
        let keep = [
            "login",
            "id",
            "node_id",
            "url",
            "repos_url",
            "events_url",
            "hooks_url",
            "issues_url",
            "members_url",
            "public_members_url",
            "avatar_url",
            "description",
        ];
        match full {
            Value::Object(m) => Value::Object(
                m.into_iter()
                    .filter(|(k, _)| keep.contains(&k.as_str()))
                    .collect(),
            ),
            other => other,
        }
    }))
}

fn follow_list(cx: &mut Cx<'_>, login: &str, rel: &str) -> Result<Reply, ApiError> {
    let a = account(cx, login)?;
    let logins = if rel == "followers" {
        a.followers.clone()
    } else {
        a.following.clone()
    };
    Ok(cx.page(&logins, |l| cx.r().user(l)))
}

/// `/users/{u}/gists` (and `/gists` for the caller): public gists, plus secret ones for
/// their owner; newest first; `since` filters on `updated_at`.
fn gists_of(cx: &mut Cx<'_>, login: &str) -> Result<Reply, ApiError> {
    let since = cx.since()?;
    let own = matches!(cx.who, Identity::User(l) if l.eq_ignore_ascii_case(login));
    let mut gists: Vec<&Gist> = cx
        .st
        .world
        .gists
        .values()
        .filter(|g| g.owner.eq_ignore_ascii_case(login) && (g.public || own))
        .filter(|g| since.is_none_or(|s| g.updated_at >= s))
        .collect();
    gists.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
    Ok(cx.page(&gists, |g| render::gist(cx.r(), g, false)))
}
