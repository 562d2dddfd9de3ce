//! The admin API under `/_sim/`, for the standalone binary: the same knobs, changes, request
//! log and dump the Rust API offers. It takes no credentials (the simulator listens on
//! loopback only) and is never counted or logged.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::forge::dump::{dump, ApiStyle};
use crate::forge::http::{json_response, Body, Query};
use crate::forge::limits::{FaultScope, LfsBreak, RepoFault, SecondaryLimit};
use crate::forge::log::RequestSummary;
use crate::forge::mutate::{IssueEdit, SimError};
use crate::forge::state::Shared;

const JSON: &str = "application/json; charset=utf-8";

fn ok(v: Value) -> Response<Body> {
    json_response(StatusCode::OK, &v, JSON)
}

fn bad(message: impl std::fmt::Display) -> Response<Body> {
    json_response(
        StatusCode::BAD_REQUEST,
        &json!({"message": message.to_string()}),
        JSON,
    )
}

fn sim_error(e: &SimError) -> Response<Body> {
    let status = match e {
        SimError::Git(_) => StatusCode::INTERNAL_SERVER_ERROR,
        SimError::Invalid(_) => StatusCode::BAD_REQUEST,
        _ => StatusCode::NOT_FOUND,
    };
    json_response(status, &json!({"message": e.to_string()}), JSON)
}

#[derive(Debug, Deserialize)]
struct RateLimitBody {
    remaining: Option<u64>,
    token: Option<String>,
    window_secs: Option<u64>,
    status: Option<u16>,
}

#[derive(Debug, Deserialize)]
struct SecondaryBody {
    requests: u32,
    retry_after: Option<u64>,
    status: Option<u16>,
}

#[derive(Debug, Deserialize)]
struct FaultsBody {
    #[serde(default, deserialize_with = "some")]
    fail_every_nth: Option<Option<u64>>,
    #[serde(default, deserialize_with = "some")]
    slow_ms: Option<Option<u64>>,
    token_lifetime_secs: Option<u64>,
    count_downloads: Option<bool>,
}

/// Tells "absent" (outer `None`) from `null` (inner `None`).
fn some<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Debug, Deserialize)]
struct RepoFaultBody {
    repo: String,
    fault: String,
    scope: Option<String>,
}

#[derive(Debug, Deserialize)]
struct LfsFaultBody {
    oid: String,
    mode: String,
}

#[derive(Debug, Deserialize)]
struct CommentBody {
    repo: String,
    number: u64,
    body: String,
    user: Option<String>,
}

#[derive(Debug, Deserialize)]
struct IssueBody {
    repo: String,
    number: u64,
    title: Option<String>,
    body: Option<String>,
    closed: Option<bool>,
    bump_updated_at: Option<bool>,
}

#[derive(Debug, Deserialize)]
struct ReviewBody {
    repo: String,
    number: u64,
    state: String,
    #[serde(default)]
    body: String,
    user: Option<String>,
}

#[derive(Debug, Deserialize)]
struct AssetBody {
    name: String,
    content: Option<String>,
    base64: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ReleaseBody {
    repo: String,
    tag: String,
    #[serde(default)]
    assets: Vec<AssetBody>,
}

#[derive(Debug, Deserialize)]
struct CommitBody {
    repo: String,
    branch: String,
    path: String,
    content: String,
    message: String,
}

#[derive(Debug, Deserialize)]
struct ForcePushBody {
    repo: String,
    branch: String,
}

fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, Box<Response<Body>>> {
    serde_json::from_slice(body).map_err(|e| Box::new(bad(format!("invalid JSON body: {e}"))))
}

/// Runs a change that calls git off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, SimError> + Send + 'static,
    render: impl FnOnce(T) -> Value,
) -> Response<Body> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => ok(render(v)),
        Ok(Err(e)) => sim_error(&e),
        Err(e) => bad(format!("change failed: {e}")),
    }
}

pub(crate) async fn serve(shared: Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    let method = req.method().clone();
    let path = req.uri().path().trim_start_matches("/_sim").to_owned();
    let q = Query::parse(req.uri().query());
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return bad(e),
    };
    let since = q.get("since").and_then(|s| s.parse().ok()).unwrap_or(0);
    match (method, path.as_str()) {
        (Method::GET, "" | "/" | "/info") => ok(shared.info.clone()),
        (Method::GET, "/dump") => {
            let style = match q.get("style") {
                Some("root") => ApiStyle::Root,
                _ => ApiStyle::Enterprise,
            };
            let s = shared.clone();
            match tokio::task::spawn_blocking(move || dump(&s, style)).await {
                Ok(v) => ok(v),
                Err(e) => bad(e),
            }
        }
        (Method::GET, "/stats") => ok(crate::forge::dump::stats(&shared)),
        (Method::GET, "/requests") => ok(json!(shared.lock().log.since(since))),
        (Method::GET, "/requests/summary") => {
            ok(json!(RequestSummary::of(shared.lock().log.since(since))))
        }
        (Method::GET | Method::POST, "/requests/mark") => {
            ok(json!({"mark": shared.lock().log.mark()}))
        }
        (Method::POST, "/rate-limit") => {
            let b: RateLimitBody = match parse(&body) {
                Ok(b) => b,
                Err(r) => return *r,
            };
            let mut st = shared.lock();
            if let Some(w) = b.window_secs {
                st.limits.set_window(Duration::from_secs(w));
            }
            if let Some(s) = b.status {
                st.limits.primary_status = if s == 429 { 429 } else { 403 };
            }
            if let Some(n) = b.remaining {
                let ids = match &b.token {
                    Some(t) => match st.auth.resolve(&st.world, t) {
                        Ok(who) => vec![who.bucket()],
                        Err(_) => return bad("unknown token"),
                    },
                    None => st.all_identities(),
                };
                st.limits.set_remaining(&ids, n);
            }
            ok(json!({"window_secs": st.limits.window_secs, "status": st.limits.primary_status}))
        }
        (Method::POST, "/secondary-limit") => {
            let b: SecondaryBody = match parse(&body) {
                Ok(b) => b,
                Err(r) => return *r,
            };
            shared.lock().limits.secondary = Some(SecondaryLimit {
                requests: b.requests,
                retry_after: b.retry_after,
                status: if b.status == Some(429) { 429 } else { 403 },
            });
            ok(json!({"requests": b.requests}))
        }
        (Method::POST, "/faults") => {
            let b: FaultsBody = match parse(&body) {
                Ok(b) => b,
                Err(r) => return *r,
            };
            let mut st = shared.lock();
            if let Some(n) = b.fail_every_nth {
                st.faults.fail_every_nth = n;
                st.faults.api_requests_seen = 0;
            }
            if let Some(ms) = b.slow_ms {
                st.faults.slow = ms.map(Duration::from_millis);
            }
            if let Some(s) = b.token_lifetime_secs {
                st.auth.token_lifetime_secs = s.max(1);
            }
            if let Some(c) = b.count_downloads {
                st.faults.count_downloads = c;
            }
            ok(json!({"ok": true}))
        }
        (Method::POST, "/faults/repo") => {
            let b: RepoFaultBody = match parse(&body) {
                Ok(b) => b,
                Err(r) => return *r,
            };
            let fault = match b.fault.as_str() {
                "server_error" | "500" => RepoFault::ServerError,
                "not_found" | "404" => RepoFault::NotFound,
                "blocked" | "451" => RepoFault::Blocked,
                other => return bad(format!("unknown fault {other:?}")),
            };
            let scope = match b.scope.as_deref().unwrap_or("both") {
                "api" => FaultScope::Api,
                "git" => FaultScope::Git,
                "both" => FaultScope::Both,
                other => return bad(format!("unknown scope {other:?}")),
            };
            shared
                .lock()
                .faults
                .repos
                .insert(b.repo.to_ascii_lowercase(), (fault, scope));
            ok(json!({"ok": true}))
        }
        (Method::DELETE, "/faults/repo") => {
            let repo = q.get("repo").unwrap_or_default().to_ascii_lowercase();
            shared.lock().faults.repos.remove(&repo);
            ok(json!({"ok": true}))
        }
        (Method::POST, "/faults/lfs") => {
            let b: LfsFaultBody = match parse(&body) {
                Ok(b) => b,
                Err(r) => return *r,
            };
            let how = match b.mode.as_str() {
                "corrupt" => LfsBreak::Corrupt,
                "missing" => LfsBreak::Missing,
                "server_error" => LfsBreak::ServerError,
                other => return bad(format!("unknown mode {other:?}")),
            };
            shared.lock().faults.lfs.insert(b.oid, how);
            ok(json!({"ok": true}))
        }
        (Method::POST, "/faults/clear") => {
            let mut st = shared.lock();
            let count = st.faults.count_downloads;
            st.faults = Default::default();
            st.faults.count_downloads = count;
            st.limits.secondary = None;
            ok(json!({"ok": true}))
        }
        (Method::POST, "/mutate/comment") => {
            let b: CommentBody = match parse(&body) {
                Ok(b) => b,
                Err(r) => return *r,
            };
            match shared.add_comment(&b.repo, b.number, b.user.as_deref(), &b.body) {
                Ok(id) => ok(json!({"id": id})),
                Err(e) => sim_error(&e),
            }
        }
        (Method::POST, "/mutate/issue") => {
            let b: IssueBody = match parse(&body) {
                Ok(b) => b,
                Err(r) => return *r,
            };
            let edit = IssueEdit {
                title: b.title,
                body: b.body,
                closed: b.closed,
                bump_updated_at: b.bump_updated_at.unwrap_or(true),
            };
            match shared.edit_issue(&b.repo, b.number, &edit) {
                Ok(()) => ok(json!({"ok": true})),
                Err(e) => sim_error(&e),
            }
        }
        (Method::POST, "/mutate/review") => {
            let b: ReviewBody = match parse(&body) {
                Ok(b) => b,
                Err(r) => return *r,
            };
            match shared.add_review(&b.repo, b.number, b.user.as_deref(), &b.state, &b.body) {
                Ok(id) => ok(json!({"id": id})),
                Err(e) => sim_error(&e),
            }
        }
        (Method::POST, "/mutate/release") => {
            let b: ReleaseBody = match parse(&body) {
                Ok(b) => b,
                Err(r) => return *r,
            };
            let mut assets = Vec::new();
            for a in b.assets {
                let bytes = match (a.content, a.base64) {
                    (Some(c), _) => c.into_bytes(),
                    (None, Some(b64)) => {
                        match base64::engine::general_purpose::STANDARD.decode(b64) {
                            Ok(b) => b,
                            Err(e) => return bad(e),
                        }
                    }
                    (None, None) => Vec::new(),
                };
                assets.push((a.name, bytes));
            }
            let s = shared.clone();
            blocking(
                move || s.add_release(&b.repo, &b.tag, &assets),
                |id| json!({"id": id}),
            )
            .await
        }
        (Method::POST, "/mutate/commit") => {
            let b: CommitBody = match parse(&body) {
                Ok(b) => b,
                Err(r) => return *r,
            };
            let s = shared.clone();
            blocking(
                move || {
                    s.push_commit(
                        &b.repo,
                        &b.branch,
                        &b.path,
                        b.content.as_bytes(),
                        &b.message,
                    )
                },
                |sha| json!({"sha": sha}),
            )
            .await
        }
        (Method::POST, "/mutate/force-push") => {
            let b: ForcePushBody = match parse(&body) {
                Ok(b) => b,
                Err(r) => return *r,
            };
            let s = shared.clone();
            blocking(
                move || s.force_push(&b.repo, &b.branch),
                |sha| json!({"sha": sha}),
            )
            .await
        }
        _ => json_response(
            StatusCode::NOT_FOUND,
            &json!({"message": "Not Found"}),
            JSON,
        ),
    }
}
