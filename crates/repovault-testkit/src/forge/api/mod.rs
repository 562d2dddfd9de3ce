//! The REST API pipeline: credentials, secondary limits and faults, the primary budget,
//! routing, pagination links, ETags and `304 Not Modified`, GitHub's response headers, and
//! the request log.

mod accounts;
mod apps;
mod issues;
pub(crate) mod repo;

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};

use crate::forge::auth::{api_credential, Credential, Identity};
use crate::forge::http::{
    etag, etag_matches, json_response, link_header, ApiError, Body, Paging, Query, Reply,
};
use crate::forge::limits::Bucket;
use crate::forge::log::{RequestKind, RequestRecord};
use crate::forge::render::{Urls, R};
use crate::forge::state::{repo_perms, Shared, SimState};

/// API versions GitHub accepts in `X-GitHub-Api-Version`.
const API_VERSIONS: [&str; 2] = ["2022-11-28", "2026-03-10"];
const MAX_BODY: usize = 1 << 20;
const SECONDARY_DOCS: &str = "https://docs.github.com/free-pro-team@latest/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits";
const PRIMARY_DOCS: &str =
    "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api#about-primary-rate-limits";
const USER_SCOPES: &str = "admin:org, admin:repo_hook, gist, read:user, repo, user:email";

/// A request as the handlers see it.
pub(crate) struct Cx<'a> {
    pub st: &'a mut SimState,
    pub u: &'a Urls,
    pub who: &'a Identity,
    pub token: Option<&'a str>,
    pub q: &'a Query,
    pub paging: Paging,
    pub method: &'a Method,
    pub body: &'a [u8],
    pub accept: &'a str,
    /// The repository the request concerned, for the log.
    pub repo: Option<String>,
}

impl<'a> Cx<'a> {
    pub(crate) fn r(&self) -> R<'_> {
        R {
            u: self.u,
            w: &self.st.world,
        }
    }

    /// Renders the requested page of `items`.
    pub(crate) fn page<T>(&self, items: &[T], render: impl Fn(&T) -> Value) -> Reply {
        let range = self.paging.range(items.len());
        Reply::Page {
            items: items[range].iter().map(render).collect(),
            total: items.len(),
        }
    }

    /// The full name of repository `owner/name` if the caller may see it, after its fault
    /// knob (look it up again with `self.st.world.repo`).
    pub(crate) fn check_repo(&mut self, owner: &str, name: &str) -> Result<String, ApiError> {
        let full = format!("{owner}/{name}");
        let repo = self.st.world.repo(&full).ok_or_else(ApiError::not_found)?;
        if repo_perms(&self.st.world, self.who, repo).is_none() {
            return Err(ApiError::not_found());
        }
        self.repo = Some(repo.full_name());
        let full = repo.full_name();
        if let Some((fault, scope)) = self.st.faults.repo(&full) {
            if scope.api() {
                return Err(repo_fault_error(fault, self.u));
            }
        }
        Ok(repo.full_name())
    }

    pub(crate) fn sort_desc(&self, default_desc: bool) -> bool {
        match self.q.get("direction") {
            Some("asc") => false,
            Some("desc") => true,
            _ => default_desc,
        }
    }

    pub(crate) fn since(&self) -> Result<Option<i64>, ApiError> {
        match self.q.get("since") {
            None | Some("") => Ok(None),
            Some(s) => crate::forge::util::parse_iso(s)
                .map(Some)
                .ok_or_else(|| ApiError::validation("since must be an ISO 8601 timestamp")),
        }
    }
}

pub(crate) fn repo_fault_error(fault: crate::forge::limits::RepoFault, u: &Urls) -> ApiError {
    use crate::forge::limits::RepoFault;
    match fault {
        RepoFault::ServerError => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "Server Error"),
        RepoFault::NotFound => ApiError::not_found(),
        RepoFault::Blocked => ApiError::new(
            StatusCode::UNAVAILABLE_FOR_LEGAL_REASONS,
            "Repository access blocked",
        )
        .with_extra(json!({"block": {
            "reason": "dmca",
            "created_at": "2024-01-01T00:00:00Z",
            "html_url": format!("{}/github/dmca/blob/master/2024/01/2024-01-01-sim.md", u.web),
        }})),
    }
}

/// Serves one REST (or GraphQL) request. `path` has the `/api/v3` prefix removed.
pub(crate) async fn serve(
    shared: Arc<Shared>,
    req: Request<Incoming>,
    enterprise: bool,
    path: String,
) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let body = match read_body(body).await {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let urls = Urls::new(&shared.web, &shared.hostname, enterprise);
    let query = Query::parse(parts.uri.query());
    let path_and_query = match parts.uri.query() {
        Some(q) => format!("{}?{q}", parts.uri.path()),
        None => parts.uri.path().to_owned(),
    };
    let if_none_match = header("if-none-match");
    let conditional = if_none_match.is_some() || header("if-modified-since").is_some();
    let graphql = path == "/graphql";
    // Every Accept header counts (clients may send a generic one and a specific one).
    let accept = parts
        .headers
        .get_all("accept")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(", ");

    let (resp, slow) = {
        let mut st = shared.lock();
        let mut log = RequestRecord {
            seq: 0,
            method: parts.method.to_string(),
            path: path_and_query,
            kind: if graphql {
                RequestKind::GraphQl
            } else {
                RequestKind::Api
            },
            conditional,
            status: 200,
            counted: false,
            identity: Identity::Anonymous.bucket(),
            repo: None,
        };
        let outcome = handle(
            &mut st,
            &urls,
            &parts.method,
            &path,
            &query,
            &body,
            &accept,
            header("authorization").as_deref(),
            header("x-github-api-version").as_deref(),
            if_none_match.as_deref(),
            &mut log,
        );
        log.status = outcome.status().as_u16();
        st.log.push(log);
        (outcome, st.faults.slow)
    };
    if let Some(d) = slow {
        tokio::time::sleep(d).await;
    }
    resp
}

async fn read_body(body: Incoming) -> Result<Bytes, Response<Body>> {
    match http_body_util::Limited::new(body, MAX_BODY).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(_) => Err(json_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            &json!({"message": "Body too large"}),
            "application/json; charset=utf-8",
        )),
    }
}

#[allow(clippy::too_many_arguments)]
fn handle(
    st: &mut SimState,
    u: &Urls,
    method: &Method,
    path: &str,
    q: &Query,
    body: &[u8],
    accept: &str,
    authorization: Option<&str>,
    api_version: Option<&str>,
    if_none_match: Option<&str>,
    log: &mut RequestRecord,
) -> Response<Body> {
    let graphql = path == "/graphql";
    let resource = if graphql { "graphql" } else { "core" };
    // Who is asking. Refused credentials are answered with the anonymous budget's headers,
    // as GitHub does, without spending it.
    let refuse = |st: &mut SimState, message: &str| {
        let b = st.limits.bucket(&Identity::Anonymous.bucket(), resource);
        error_response(&ApiError::bad_credentials(message), Some((b, resource)), u)
    };
    let (who, token) = match api_credential(authorization) {
        Credential::None => (Identity::Anonymous, None),
        Credential::Token(t) => match st.auth.resolve(&st.world, &t) {
            Ok(who) => (who, Some(t)),
            Err(e) => return refuse(st, &e.0),
        },
        Credential::Jwt(jwt) => match st.auth.verify_jwt(&st.world, &jwt) {
            Ok(app) => (Identity::App(app), None),
            Err(e) => return refuse(st, &e.0),
        },
        Credential::Malformed => return refuse(st, "Bad credentials"),
    };
    log.identity = who.bucket();
    if let Some(v) = api_version.filter(|v| !API_VERSIONS.contains(v)) {
        let e = ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("API version {v} is not supported."),
        );
        return error_response(&e, None, u);
    }
    let free = path == "/rate_limit";
    let bucket_key = who.bucket();
    // Secondary limits come first: they are about the burst, not the budget.
    if let Some(s) = st.limits.take_secondary() {
        let mut e = ApiError::new(
            StatusCode::from_u16(s.status).unwrap_or(StatusCode::FORBIDDEN),
            "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you reach out to GitHub Support for help, please include the request ID 0000:0000:0000000:0000000:00000000.",
        )
        .doc(SECONDARY_DOCS);
        if let Some(after) = s.retry_after {
            e.headers.push(("retry-after", after.to_string()));
        }
        let b = st.limits.bucket(&bucket_key, resource);
        return error_response(&e, Some((b, resource)), u);
    }
    if st.faults.nth_fails() {
        let e = ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "Server Error");
        let b = st.limits.bucket(&bucket_key, resource);
        return error_response(&e, Some((b, resource)), u);
    }
    let bucket = st.limits.bucket(&bucket_key, resource);
    if !free && bucket.remaining() == 0 {
        let subject = match &who {
            Identity::User(login) => {
                let id = st.world.account(login).map_or(0, |a| a.id);
                format!("user ID {id}")
            }
            Identity::Installation { id, .. } => format!("installation ID {id}"),
            Identity::App(id) => format!("app ID {id}"),
            Identity::Anonymous => "127.0.0.1".to_owned(),
        };
        let status =
            StatusCode::from_u16(st.limits.primary_status).unwrap_or(StatusCode::FORBIDDEN);
        let e = ApiError::new(
            status,
            format!("API rate limit exceeded for {subject}. If you reach out to GitHub Support for help, please include the request ID 0000:0000:0000000:0000000:00000000."),
        )
        .doc(PRIMARY_DOCS);
        return error_response(&e, Some((bucket, resource)), u);
    }

    let mut cx = Cx {
        st,
        u,
        who: &who,
        token: token.as_deref(),
        q,
        paging: Paging::from(q),
        method,
        body,
        accept,
        repo: None,
    };
    let segs: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(crate::forge::util::percent_decode)
        .collect();
    let segs = canonical(&cx, segs);
    let seg_refs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let result = if graphql {
        crate::forge::graphql::serve(&mut cx)
    } else {
        route(&mut cx, &seg_refs)
    };
    log.repo = cx.repo.take();
    let paging = cx.paging;
    let link_base = format!("{}/{}", u.api, link_path(&cx, &seg_refs));
    let st = cx.st;
    let mut out = Outcome {
        st,
        bucket_key: &bucket_key,
        resource,
        counted: !free,
        log,
    };
    let mut resp = match result {
        Err(e) => {
            let b = out.spend();
            error_response(&e, Some((b, resource)), u)
        }
        Ok(Reply::Redirect(location)) => {
            let b = out.spend();
            let mut resp = Response::new(crate::forge::http::empty());
            *resp.status_mut() = StatusCode::FOUND;
            set(&mut resp, "location", &location);
            rate_headers(&mut resp, b, resource);
            resp
        }
        Ok(Reply::Empty(status)) => {
            let b = out.spend();
            let mut resp = Response::new(crate::forge::http::empty());
            *resp.status_mut() = status;
            rate_headers(&mut resp, b, resource);
            resp
        }
        Ok(Reply::Json(status, v)) => out.json(method, status, &v, None, if_none_match, &who),
        Ok(Reply::Page { items, total }) => {
            let link = link_header(&link_base, q, paging, total);
            out.json(
                method,
                StatusCode::OK,
                &Value::Array(items),
                link,
                if_none_match,
                &who,
            )
        }
        Ok(Reply::Wrapped {
            key,
            items,
            total,
            extra,
        }) => {
            let mut v = json!({"total_count": total});
            crate::forge::render::extend(&mut v, extra);
            if let Value::Object(m) = &mut v {
                m.insert(key.to_owned(), Value::Array(items));
            }
            let link = link_header(&link_base, q, paging, total);
            out.json(method, StatusCode::OK, &v, link, if_none_match, &who)
        }
    };
    common_headers(&mut resp, &who, u);
    resp
}

/// The end of a request: spending from the budget (not for 304s) and the JSON response.
struct Outcome<'s, 'l> {
    st: &'s mut SimState,
    bucket_key: &'s str,
    resource: &'static str,
    counted: bool,
    log: &'l mut RequestRecord,
}

impl Outcome<'_, '_> {
    fn spend(&mut self) -> Bucket {
        if self.counted {
            self.log.counted = true;
            self.st.limits.spend(self.bucket_key, self.resource)
        } else {
            self.st.limits.bucket(self.bucket_key, self.resource)
        }
    }

    fn json(
        &mut self,
        method: &Method,
        status: StatusCode,
        value: &Value,
        link: Option<String>,
        if_none_match: Option<&str>,
        who: &Identity,
    ) -> Response<Body> {
        let bytes = serde_json::to_vec(value).unwrap_or_default();
        let tag = etag(&bytes, link.as_deref(), &who.bucket());
        let cacheable =
            status == StatusCode::OK && (*method == Method::GET || *method == Method::HEAD);
        let not_modified = cacheable && if_none_match.is_some_and(|inm| etag_matches(inm, &tag));
        let mut resp = if not_modified {
            let b = self.st.limits.bucket(self.bucket_key, self.resource);
            let mut resp = Response::new(crate::forge::http::empty());
            *resp.status_mut() = StatusCode::NOT_MODIFIED;
            rate_headers(&mut resp, b, self.resource);
            resp
        } else {
            let b = self.spend();
            let mut resp = Response::new(crate::forge::http::full(bytes));
            *resp.status_mut() = status;
            set(&mut resp, "content-type", "application/json; charset=utf-8");
            rate_headers(&mut resp, b, self.resource);
            resp
        };
        if let Some(link) = &link {
            set(&mut resp, "link", link);
        }
        if cacheable {
            set(&mut resp, "etag", &tag);
            set(
                &mut resp,
                "cache-control",
                "private, max-age=60, s-maxage=60",
            );
        }
        resp
    }
}

/// `/repositories/{id}/…`, `/organizations/{id}/…` and `/user/{id}/…` (the paths GitHub puts
/// in `Link` headers) mean the same as the named paths.
fn canonical(cx: &Cx<'_>, segs: Vec<String>) -> Vec<String> {
    let w = &cx.st.world;
    let id = |s: &str| s.parse::<u64>().ok();
    match segs.as_slice() {
        [first, n, rest @ ..] if first == "repositories" => {
            match id(n).and_then(|n| w.repo_by_id(n)) {
                Some(r) => [
                    vec!["repos".to_owned(), r.owner.clone(), r.name.clone()],
                    rest.to_vec(),
                ]
                .concat(),
                None => segs,
            }
        }
        [first, n, rest @ ..] if first == "organizations" || first == "user" => {
            match id(n).and_then(|n| w.account_by_id(n)) {
                Some(a) => {
                    let kind = if first == "organizations" {
                        "orgs"
                    } else {
                        "users"
                    };
                    [vec![kind.to_owned(), a.login.clone()], rest.to_vec()].concat()
                }
                None => segs,
            }
        }
        _ => segs,
    }
}

/// The path `Link` headers use for a list: GitHub names repositories and accounts by id.
fn link_path(cx: &Cx<'_>, segs: &[&str]) -> String {
    let w = &cx.st.world;
    match segs {
        ["repos", o, r, rest @ ..] => match w.repo(&format!("{o}/{r}")) {
            Some(repo) => {
                let mut p = format!("repositories/{}", repo.id);
                for s in rest {
                    p.push('/');
                    p.push_str(&crate::forge::render::seg(s));
                }
                p
            }
            None => segs.join("/"),
        },
        ["orgs", o, "repos"] => match w.account(o) {
            Some(a) => format!("organizations/{}/repos", a.id),
            None => segs.join("/"),
        },
        ["users", u, "repos"] => match w.account(u) {
            Some(a) => format!("user/{}/repos", a.id),
            None => segs.join("/"),
        },
        _ => segs.join("/"),
    }
}

fn route(cx: &mut Cx<'_>, segs: &[&str]) -> Result<Reply, ApiError> {
    let get = *cx.method == Method::GET || *cx.method == Method::HEAD;
    match segs {
        [] if get => Ok(Reply::ok(root(cx.u))),
        ["meta"] if get => Ok(Reply::ok(meta(cx.u))),
        ["rate_limit"] if get => Ok(Reply::ok(rate_limit(cx))),
        ["app", ..] | ["orgs", _, "installation"] | ["users", _, "installation"] => {
            apps::route(cx, segs)
        }
        ["repos", _, _, "installation"] => apps::route(cx, segs),
        ["installation", ..] => apps::route(cx, segs),
        _ if matches!(cx.who, Identity::App(_)) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "A JSON web token could not be decoded",
        )),
        ["repos", owner, name, rest @ ..] => {
            let (owner, name) = (owner.to_string(), name.to_string());
            match rest {
                ["issues", ..] | ["pulls", ..] => issues::route(cx, &owner, &name, rest),
                _ => repo::route(cx, &owner, &name, rest),
            }
        }
        _ => accounts::route(cx, segs),
    }
}

fn root(u: &Urls) -> Value {
    json!({
        "current_user_url": format!("{}/user", u.api),
        "authorizations_url": format!("{}/authorizations", u.api),
        "emojis_url": format!("{}/emojis", u.api),
        "events_url": format!("{}/events", u.api),
        "gists_url": format!("{}/gists{{/gist_id}}", u.api),
        "issues_url": format!("{}/issues", u.api),
        "organization_url": format!("{}/orgs/{{org}}", u.api),
        "organization_repositories_url": format!("{}/orgs/{{org}}/repos{{?type,page,per_page,sort}}", u.api),
        "rate_limit_url": format!("{}/rate_limit", u.api),
        "repository_url": format!("{}/repos/{{owner}}/{{repo}}", u.api),
        "starred_url": format!("{}/user/starred{{/owner}}{{/repo}}", u.api),
        "user_url": format!("{}/users/{{user}}", u.api),
        "user_organizations_url": format!("{}/user/orgs", u.api),
        "user_repositories_url": format!("{}/users/{{user}}/repos{{?type,page,per_page,sort}}", u.api),
    })
}

fn meta(u: &Urls) -> Value {
    let mut v = json!({"verifiable_password_authentication": false});
    if u.enterprise {
        crate::forge::render::extend(&mut v, json!({"installed_version": "3.17.0"}));
    }
    v
}

fn rate_limit(cx: &mut Cx<'_>) -> Value {
    let key = cx.who.bucket();
    let view = |b: Bucket| json!({"limit": b.limit, "used": b.used, "remaining": b.remaining(), "reset": b.reset});
    let core = view(cx.st.limits.bucket(&key, "core"));
    let graphql = view(cx.st.limits.bucket(&key, "graphql"));
    let search = view(cx.st.limits.bucket(&key, "search"));
    json!({
        "resources": {
            "core": core,
            "graphql": graphql,
            "search": search,
            "code_search": search,
            "integration_manifest": core,
            "source_import": search,
            "code_scanning_upload": core,
            "actions_runner_registration": core,
            "scim": core,
            "dependency_snapshots": core,
            "audit_log": core,
        },
        "rate": core,
    })
}

fn set(resp: &mut Response<Body>, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers_mut().insert(HeaderName::from_static(name), v);
    }
}

fn rate_headers(resp: &mut Response<Body>, b: Bucket, resource: &str) {
    set(resp, "x-ratelimit-limit", &b.limit.to_string());
    set(resp, "x-ratelimit-remaining", &b.remaining().to_string());
    set(resp, "x-ratelimit-reset", &b.reset.to_string());
    set(resp, "x-ratelimit-used", &b.used.to_string());
    set(resp, "x-ratelimit-resource", resource);
}

fn common_headers(resp: &mut Response<Body>, who: &Identity, u: &Urls) {
    set(resp, "x-github-media-type", "github.v3; format=json");
    set(resp, "x-github-api-version-selected", API_VERSIONS[0]);
    set(
        resp,
        "x-github-request-id",
        "0000:0000:0000000:0000000:00000000",
    );
    set(resp, "vary", "Accept, Authorization, Cookie, X-GitHub-OTP");
    set(resp, "x-content-type-options", "nosniff");
    set(
        resp,
        "access-control-expose-headers",
        "ETag, Link, Location, Retry-After, X-GitHub-OTP, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Used, X-RateLimit-Resource, X-RateLimit-Reset, X-OAuth-Scopes, X-Accepted-OAuth-Scopes, X-Poll-Interval, X-GitHub-Media-Type, X-GitHub-SSO, X-GitHub-Request-Id, Deprecation, Sunset",
    );
    if let Identity::User(_) = who {
        set(resp, "x-oauth-scopes", USER_SCOPES);
        set(resp, "x-accepted-oauth-scopes", "");
    }
    if u.enterprise {
        set(resp, "x-github-enterprise-version", "3.17.0");
    }
}

fn error_response(e: &ApiError, bucket: Option<(Bucket, &str)>, u: &Urls) -> Response<Body> {
    let mut resp = json_response(e.status, &e.body(), "application/json; charset=utf-8");
    for (name, value) in &e.headers {
        set(&mut resp, name, value);
    }
    if let Some((b, resource)) = bucket {
        rate_headers(&mut resp, b, resource);
    }
    common_headers(&mut resp, &Identity::Anonymous, u);
    resp
}
