//! GitHub App endpoints: the App itself and its installations (JWT), installation access
//! tokens, and what an installation token may list.

use hyper::{Method, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::Cx;
use crate::forge::auth::Identity;
use crate::forge::http::{ApiError, Reply};
use crate::forge::model::{Installation, Repo};
use crate::forge::render::{self, app_permissions};
use crate::forge::state::{installation_covers, repo_perms};
use crate::forge::util::iso;

#[derive(Debug, Default, Deserialize)]
struct TokenRequest {
    #[serde(default)]
    repositories: Option<Vec<String>>,
    #[serde(default)]
    repository_ids: Option<Vec<u64>>,
}

fn jwt_required() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "A JSON web token could not be decoded",
    )
}

pub(super) fn route(cx: &mut Cx<'_>, segs: &[&str]) -> Result<Reply, ApiError> {
    let method = cx.method.clone();
    if let ["installation", ..] = segs {
        return installation_scope(cx, segs, &method);
    }
    let Identity::App(app_id) = *cx.who else {
        return Err(jwt_required());
    };
    let r = cx.r();
    let app =
        r.w.apps
            .iter()
            .find(|a| a.id == app_id)
            .ok_or_else(ApiError::not_found)?;
    let installs: Vec<&Installation> =
        r.w.installations
            .iter()
            .filter(|i| i.app_id == app_id)
            .collect();
    let find = |id: &str| {
        installs
            .iter()
            .find(|i| i.id.to_string() == id)
            .copied()
            .ok_or_else(ApiError::not_found)
    };
    let by_account = |login: &str| {
        installs
            .iter()
            .find(|i| i.account.eq_ignore_ascii_case(login))
            .map(|i| Reply::ok(render::installation(r, i)))
            .ok_or_else(ApiError::not_found)
    };
    match (method, segs) {
        (Method::GET, ["app"]) => Ok(Reply::ok(render::app(r, app))),
        (Method::GET, ["app", "installations"]) => {
            Ok(cx.page(&installs, |i| render::installation(r, i)))
        }
        (Method::GET, ["app", "installations", id]) => {
            Ok(Reply::ok(render::installation(r, find(id)?)))
        }
        (Method::GET, ["orgs", o, "installation"])
        | (Method::GET, ["users", o, "installation"]) => by_account(o),
        (Method::GET, ["repos", o, _, "installation"]) => by_account(o),
        (Method::POST, ["app", "installations", id, "access_tokens"]) => {
            let inst = find(id)?;
            let inst_id = inst.id;
            let account = inst.account.clone();
            let req: TokenRequest = if cx.body.is_empty() {
                TokenRequest::default()
            } else {
                serde_json::from_slice(cx.body)
                    .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "Problems parsing JSON"))?
            };
            let mut narrowed: Option<Vec<String>> = None;
            if let Some(names) = &req.repositories {
                let mut full = Vec::new();
                for n in names {
                    let f = format!("{account}/{n}").to_ascii_lowercase();
                    if r.w.repo(&f).is_none() {
                        return Err(ApiError::validation(
                            "There is at least one repository that does not exist or is not accessible to the parent installation.",
                        ));
                    }
                    full.push(f);
                }
                narrowed = Some(full);
            }
            if let Some(ids) = &req.repository_ids {
                let mut full = narrowed.take().unwrap_or_default();
                for id in ids {
                    match r.w.repo_by_id(*id) {
                        Some(repo) if repo.owner.eq_ignore_ascii_case(&account) => {
                            full.push(repo.full_name().to_ascii_lowercase())
                        }
                        _ => {
                            return Err(ApiError::validation(
                                "There is at least one repository that does not exist or is not accessible to the parent installation.",
                            ))
                        }
                    }
                }
                narrowed = Some(full);
            }
            let repos_json: Option<Vec<serde_json::Value>> = narrowed.as_ref().map(|names| {
                names
                    .iter()
                    .filter_map(|n| r.w.repo(n))
                    .map(|repo| r.repo(repo, Some(render::Perms::READ), false))
                    .collect()
            });
            let selection = if narrowed.is_some() || inst.repositories.is_some() {
                "selected"
            } else {
                "all"
            };
            let token = cx.st.auth.issue(inst_id, narrowed);
            let mut v = json!({
                "token": token.token,
                "expires_at": iso(token.expires_at),
                "permissions": app_permissions(),
                "repository_selection": selection,
            });
            if let Some(repos) = repos_json {
                render::extend(&mut v, json!({ "repositories": repos }));
            }
            Ok(Reply::Json(StatusCode::CREATED, v))
        }
        _ => Err(ApiError::not_found()),
    }
}

/// `/installation/...`: what an installation token itself may call.
fn installation_scope(cx: &mut Cx<'_>, segs: &[&str], method: &Method) -> Result<Reply, ApiError> {
    let Identity::Installation { id, .. } = cx.who.clone() else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "You must authenticate with an installation access token in order to list repositories for an installation.",
        ));
    };
    match (method, segs) {
        (&Method::GET, ["installation", "repositories"]) => {
            let r = cx.r();
            let inst =
                r.w.installations
                    .iter()
                    .find(|i| i.id == id)
                    .ok_or_else(ApiError::not_found)?;
            let narrowed = match cx.who {
                Identity::Installation { repos, .. } => repos.clone(),
                _ => None,
            };
            let repos: Vec<&Repo> =
                r.w.repos
                    .values()
                    .filter(|repo| installation_covers(r.w, inst.id, narrowed.as_deref(), repo))
                    .collect();
            let range = cx.paging.range(repos.len());
            let items = repos[range]
                .iter()
                .map(|repo| r.repo(repo, repo_perms(r.w, cx.who, repo), false))
                .collect();
            Ok(Reply::Wrapped {
                key: "repositories",
                items,
                total: repos.len(),
                extra: json!({
                    "repository_selection": if inst.repositories.is_some() { "selected" } else { "all" },
                }),
            })
        }
        (&Method::DELETE, ["installation", "token"]) => {
            if let Some(t) = cx.token {
                let t = t.to_owned();
                cx.st.auth.revoke(&t);
            }
            Ok(Reply::Empty(StatusCode::NO_CONTENT))
        }
        _ => Err(ApiError::not_found()),
    }
}
