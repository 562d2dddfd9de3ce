//! Releases and assets, webhooks, gists, GitHub Apps and installations.

use serde_json::{json, Map, Value};

use super::{seg, R};
use crate::forge::model::{App, Asset, Gist, Hook, Installation, Release, Repo};
use crate::forge::util::{iso, node_id, sha256_hex};

/// Digests of asset bytes are cached by the caller when it renders many; here each asset is
/// hashed when rendered, which is cheap for fixture-sized assets.
pub(crate) fn asset(cx: R<'_>, r: &Repo, rel: &Release, a: &Asset) -> Value {
    let bytes = a.data.bytes();
    json!({
        "url": format!("{}/releases/assets/{}", cx.u.repo_api(r), a.id),
        "browser_download_url": format!(
            "{}/releases/download/{}/{}", cx.u.repo_web(r), seg(&rel.tag_name), seg(&a.name)
        ),
        "id": a.id,
        "node_id": node_id("ReleaseAsset", a.id),
        "name": a.name,
        "label": a.label,
        "state": "uploaded",
        "content_type": a.content_type,
        "size": a.data.len(),
        "digest": format!("sha256:{}", sha256_hex(&bytes)),
        "download_count": a.download_count,
        "created_at": iso(a.created_at),
        "updated_at": iso(a.updated_at),
        "uploader": cx.user(&a.uploader),
    })
}

pub(crate) fn release(cx: R<'_>, r: &Repo, rel: &Release) -> Value {
    let api = format!("{}/releases/{}", cx.u.repo_api(r), rel.id);
    let html = if rel.draft {
        format!("{}/releases/tag/untagged-{}", cx.u.repo_web(r), rel.id)
    } else {
        format!("{}/releases/tag/{}", cx.u.repo_web(r), seg(&rel.tag_name))
    };
    json!({
        "url": api,
        "html_url": html,
        "assets_url": format!("{api}/assets"),
        "upload_url": format!(
            "{}/repos/{}/releases/{}/assets{{?name,label}}", cx.u.uploads(), r.full_name(), rel.id
        ),
        "tarball_url": format!("{}/tarball/{}", cx.u.repo_api(r), seg(&rel.tag_name)),
        "zipball_url": format!("{}/zipball/{}", cx.u.repo_api(r), seg(&rel.tag_name)),
        "id": rel.id,
        "node_id": node_id("Release", rel.id),
        "tag_name": rel.tag_name,
        "target_commitish": rel.target_commitish,
        "name": rel.name,
        "body": rel.body,
        "draft": rel.draft,
        "prerelease": rel.prerelease,
        "immutable": false,
        "created_at": iso(rel.created_at),
        "published_at": rel.published_at.map(iso),
        "author": cx.user(&rel.author),
        "assets": rel.assets.iter().map(|a| asset(cx, r, rel, a)).collect::<Vec<_>>(),
    })
}

/// A repository webhook; the secret is masked as GitHub does.
pub(crate) fn hook(cx: R<'_>, r: &Repo, h: &Hook) -> Value {
    let api = format!("{}/hooks/{}", cx.u.repo_api(r), h.id);
    let mut config = json!({
        "content_type": h.content_type,
        "insecure_ssl": h.insecure_ssl,
        "url": h.url,
    });
    if h.secret.is_some() {
        if let Value::Object(m) = &mut config {
            m.insert("secret".into(), Value::String("********".into()));
        }
    }
    json!({
        "type": "Repository",
        "id": h.id,
        "name": "web",
        "active": h.active,
        "events": h.events,
        "config": config,
        "updated_at": iso(h.updated_at),
        "created_at": iso(h.created_at),
        "url": api,
        "test_url": format!("{api}/test"),
        "ping_url": format!("{api}/pings"),
        "deliveries_url": format!("{api}/deliveries"),
        "last_response": {"code": null, "status": "unused", "message": null},
    })
}

fn file_type(name: &str) -> (&'static str, Value) {
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("md") => ("text/markdown", json!("Markdown")),
        Some("rs") => ("text/x-rust", json!("Rust")),
        Some("sh") => ("application/x-sh", json!("Shell")),
        Some("toml") => ("application/toml", json!("TOML")),
        Some("py") => ("application/x-python", json!("Python")),
        _ => ("text/plain", json!("Text")),
    }
}

/// A gist; `full` (`GET /gists/{id}`) adds file contents and the history.
pub(crate) fn gist(cx: R<'_>, g: &Gist, full: bool) -> Value {
    let api = format!("{}/gists/{}", cx.u.api, g.id);
    let tip = g.git.refs.values().next().cloned().unwrap_or_default();
    let mut files = Map::new();
    for (name, content) in &g.files {
        let (mime, language) = file_type(name);
        let mut f = json!({
            "filename": name,
            "type": mime,
            "language": language,
            "raw_url": format!("{}/gist/{}/{}/raw/{tip}/{}", cx.u.web, g.owner, g.id, seg(name)),
            "size": content.len(),
        });
        if full {
            if let Value::Object(m) = &mut f {
                m.insert("truncated".into(), Value::Bool(false));
                m.insert("content".into(), Value::String(content.clone()));
                m.insert("encoding".into(), Value::String("utf-8".into()));
            }
        }
        files.insert(name.clone(), f);
    }
    let git_url = format!("{}/gist/{}.git", cx.u.web, g.id);
    let mut v = json!({
        "url": api,
        "forks_url": format!("{api}/forks"),
        "commits_url": format!("{api}/commits"),
        "id": g.id,
        "node_id": node_id("Gist", &g.id),
        "git_pull_url": git_url,
        "git_push_url": git_url,
        "html_url": format!("{}/gist/{}", cx.u.web, g.id),
        "files": files,
        "public": g.public,
        "created_at": iso(g.created_at),
        "updated_at": iso(g.updated_at),
        "description": g.description,
        "comments": g.comments,
        "comments_enabled": true,
        "user": null,
        "comments_url": format!("{api}/comments"),
        "owner": cx.user(&g.owner),
        "truncated": false,
    });
    if full {
        let mut history: Vec<(i64, Value)> = g
            .git
            .commits
            .values()
            .map(|c| {
                (
                    c.committer_time,
                    json!({
                        "user": cx.user(&g.owner),
                        "version": c.sha,
                        "committed_at": iso(c.committer_time),
                        "change_status": {"total": 1, "additions": 1, "deletions": 0},
                        "url": format!("{api}/{}", c.sha),
                    }),
                )
            })
            .collect();
        // Newest first, as GitHub lists a gist's history.
        history.sort_by_key(|h| std::cmp::Reverse(h.0));
        if let Value::Object(m) = &mut v {
            m.insert("forks".into(), json!([]));
            m.insert(
                "history".into(),
                Value::Array(history.into_iter().map(|(_, h)| h).collect()),
            );
        }
    }
    v
}

/// The permissions every installation of the simulated App has: enough to read everything a
/// backup captures.
pub(crate) fn app_permissions() -> Value {
    json!({
        "contents": "read",
        "issues": "read",
        "metadata": "read",
        "pull_requests": "read",
        "repository_hooks": "read",
        "members": "read",
    })
}

pub(crate) fn app(cx: R<'_>, a: &App) -> Value {
    let installs =
        cx.w.installations
            .iter()
            .filter(|i| i.app_id == a.id)
            .count();
    json!({
        "id": a.id,
        "slug": a.slug,
        "node_id": node_id("Integration", a.id),
        "client_id": a.client_id,
        "owner": cx.user(&a.owner),
        "name": a.name,
        "description": a.description,
        "external_url": format!("{}/{}", cx.u.web, a.owner),
        "html_url": format!("{}/apps/{}", cx.u.web, a.slug),
        "created_at": iso(a.created_at),
        "updated_at": iso(a.updated_at),
        "permissions": app_permissions(),
        "events": [],
        "installations_count": installs,
    })
}

pub(crate) fn installation(cx: R<'_>, i: &Installation) -> Value {
    let app = cx.w.apps.iter().find(|a| a.id == i.app_id);
    let account = cx.w.account(&i.account);
    json!({
        "id": i.id,
        "account": cx.user(&i.account),
        "access_tokens_url": format!("{}/app/installations/{}/access_tokens", cx.u.api, i.id),
        "repositories_url": format!("{}/installation/repositories", cx.u.api),
        "html_url": format!("{}/organizations/{}/settings/installations/{}", cx.u.web, i.account, i.id),
        "app_id": i.app_id,
        "app_slug": app.map(|a| a.slug.clone()),
        "client_id": app.map(|a| a.client_id.clone()),
        "target_id": account.map(|a| a.id),
        "target_type": if account.is_some_and(|a| a.is_org()) { "Organization" } else { "User" },
        "permissions": app_permissions(),
        "events": [],
        "created_at": iso(i.created_at),
        "updated_at": iso(i.updated_at),
        "single_file_name": null,
        "has_multiple_single_files": false,
        "single_file_paths": [],
        "repository_selection": if i.repositories.is_some() { "selected" } else { "all" },
        "suspended_by": null,
        "suspended_at": null,
    })
}
