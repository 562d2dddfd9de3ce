//! Binary objects: the Git LFS batch API and object downloads, and release asset downloads
//! (the signed storage URLs the API redirects to, and `browser_download_url`).

use std::sync::Arc;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::forge::api::repo::{asset_url_valid, signed_asset_url};
use crate::forge::auth::Identity;
use crate::forge::git::{authorize, identify, GitPath};
use crate::forge::http::{full, json_response, text, Body, Query};
use crate::forge::limits::LfsBreak;
use crate::forge::log::{RequestKind, RequestRecord};
use crate::forge::model::Repo;
use crate::forge::state::{repo_perms, Shared};
use crate::forge::util::{now, percent_decode, sign};

const LFS_JSON: &str = "application/vnd.git-lfs+json";
/// How long LFS download links are valid (GitHub: an hour).
const LFS_LINK_LIFETIME: i64 = 3600;

#[derive(Debug, Deserialize)]
struct BatchRequest {
    operation: String,
    #[serde(default)]
    objects: Vec<BatchObject>,
}

#[derive(Debug, Deserialize)]
struct BatchObject {
    oid: String,
    #[serde(default)]
    size: u64,
}

fn record(method: &Method, path: &str, kind: RequestKind) -> RequestRecord {
    RequestRecord {
        seq: 0,
        method: method.to_string(),
        path: path.to_owned(),
        kind,
        conditional: false,
        status: 0,
        counted: false,
        identity: Identity::Anonymous.bucket(),
        repo: None,
    }
}

async fn finish(shared: &Shared, mut rec: RequestRecord, resp: Response<Body>) -> Response<Body> {
    rec.status = resp.status().as_u16();
    let slow = {
        let mut st = shared.lock();
        st.log.push(rec);
        st.faults.slow
    };
    if let Some(d) = slow {
        tokio::time::sleep(d).await;
    }
    resp
}

fn lfs_error(status: StatusCode, message: &str) -> Response<Body> {
    json_response(
        status,
        &json!({"message": message, "documentation_url": "https://docs.github.com/articles/about-git-large-file-storage"}),
        LFS_JSON,
    )
}

/// The LFS objects a repository may serve: its own and those of the repositories it was
/// forked from (forks share their network's LFS storage).
fn lfs_object<'a>(
    w: &'a crate::forge::model::World,
    repo: &'a Repo,
    oid: &str,
) -> Option<&'a crate::forge::model::LfsObject> {
    let mut current = Some(repo);
    for _ in 0..32 {
        let r = current?;
        if let Some(o) = r.lfs.get(oid) {
            return Some(o);
        }
        current = r.fork_of.as_deref().and_then(|p| w.repo(p));
    }
    None
}

/// `POST /<owner>/<repo>.git/info/lfs/objects/batch`.
pub(crate) async fn batch(
    shared: Arc<Shared>,
    req: Request<Incoming>,
    gp: GitPath,
) -> Response<Body> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let mut rec = record(&method, &path, RequestKind::Lfs);
    if method != Method::POST || gp.rest != "info/lfs/objects/batch" {
        return finish(&shared, rec, lfs_error(StatusCode::NOT_FOUND, "Not Found")).await;
    }
    let authorization = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = match http_body_util::Limited::new(req.into_body(), 4 << 20)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            let resp = lfs_error(StatusCode::PAYLOAD_TOO_LARGE, "Request too large");
            return finish(&shared, rec, resp).await;
        }
    };
    let resp = {
        let st = shared.lock();
        let decided = identify(&st, authorization.as_deref()).and_then(|who| {
            rec.identity = who.bucket();
            authorize(&st, &who, &gp.target).map(|ok| (who, ok))
        });
        match decided {
            Err(resp) => {
                let mut resp = *resp;
                if resp.status() == StatusCode::UNAUTHORIZED {
                    resp.headers_mut().insert(
                        "lfs-authenticate",
                        HeaderValue::from_static("Basic realm=\"GitHub\""),
                    );
                }
                resp
            }
            Ok((_, (_, repo_name))) => {
                rec.repo = repo_name.clone();
                let repo = repo_name.as_deref().and_then(|n| st.world.repo(n));
                match (serde_json::from_slice::<BatchRequest>(&body), repo) {
                    (Err(_), _) => lfs_error(StatusCode::UNPROCESSABLE_ENTITY, "Invalid request"),
                    (Ok(_), None) => lfs_error(StatusCode::NOT_FOUND, "Repository not found"),
                    (Ok(b), Some(_)) if b.operation != "download" => lfs_error(
                        StatusCode::FORBIDDEN,
                        "The forge simulator does not accept LFS uploads",
                    ),
                    (Ok(b), Some(repo)) => {
                        let objects: Vec<Value> = b
                            .objects
                            .iter()
                            .map(|o| {
                                let broken = st.faults.lfs.get(&o.oid).copied();
                                match lfs_object(&st.world, repo, &o.oid) {
                                    Some(obj) if broken != Some(LfsBreak::Missing) => {
                                        let exp = now() + LFS_LINK_LIFETIME;
                                        let sig = sign(&st.secret, &format!("lfs/{}/{exp}", o.oid));
                                        json!({
                                            "oid": o.oid,
                                            "size": obj.size,
                                            "authenticated": true,
                                            "actions": {"download": {
                                                "href": format!("{}/_lfs/objects/{}?exp={exp}&sig={sig}", shared.web, o.oid),
                                                "expires_in": LFS_LINK_LIFETIME,
                                            }},
                                        })
                                    }
                                    _ => json!({
                                        "oid": o.oid,
                                        "size": o.size,
                                        "error": {"code": 404, "message": "Object does not exist"},
                                    }),
                                }
                            })
                            .collect();
                        json_response(
                            StatusCode::OK,
                            &json!({"transfer": "basic", "objects": objects, "hash_algo": "sha256"}),
                            LFS_JSON,
                        )
                    }
                }
            }
        }
    };
    finish(&shared, rec, resp).await
}

/// `GET /_lfs/objects/<oid>?exp=…&sig=…` (the href handed out by the batch API).
pub(crate) async fn lfs_download(
    shared: Arc<Shared>,
    req: Request<Incoming>,
    oid: &str,
) -> Response<Body> {
    let path = req.uri().path().to_owned();
    let rec = record(req.method(), &path, RequestKind::Lfs);
    let q = Query::parse(req.uri().query());
    let (valid, broken) = {
        let st = shared.lock();
        let exp = q.get("exp").unwrap_or_default();
        let fresh = exp.parse::<i64>().is_ok_and(|e| e >= now());
        let ok =
            fresh && q.get("sig") == Some(sign(&st.secret, &format!("lfs/{oid}/{exp}")).as_str());
        (ok, st.faults.lfs.get(oid).copied())
    };
    let resp = if !valid || !oid.bytes().all(|b| b.is_ascii_hexdigit()) || oid.len() != 64 {
        text(
            StatusCode::FORBIDDEN,
            "Request has expired or is not signed\n",
        )
    } else if broken == Some(LfsBreak::ServerError) {
        text(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error\n")
    } else {
        match tokio::fs::read(shared.lfs_root.join(oid)).await {
            Ok(mut bytes) => {
                if broken == Some(LfsBreak::Corrupt) {
                    if let Some(b) = bytes.first_mut() {
                        *b ^= 0xFF;
                    }
                }
                octets(bytes, None)
            }
            Err(_) => text(StatusCode::NOT_FOUND, "Not Found\n"),
        }
    };
    finish(&shared, rec, resp).await
}

fn octets(bytes: Vec<u8>, file_name: Option<&str>) -> Response<Body> {
    let len = bytes.len();
    let mut resp = Response::new(full(bytes));
    let h = resp.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Ok(v) = HeaderValue::from_str(&len.to_string()) {
        h.insert("content-length", v);
    }
    if let Some(name) = file_name {
        let safe: String = name
            .chars()
            .filter(|c| !c.is_control() && *c != '"')
            .collect();
        if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{safe}\"")) {
            h.insert("content-disposition", v);
        }
    }
    resp
}

/// `GET /_objects/release-assets/<id>?exp=…&sig=…`: the bytes of a release asset.
pub(crate) async fn asset_download(
    shared: Arc<Shared>,
    req: Request<Incoming>,
    id: &str,
) -> Response<Body> {
    let path = req.uri().path().to_owned();
    let mut rec = record(req.method(), &path, RequestKind::Download);
    let q = Query::parse(req.uri().query());
    let found = {
        let mut st = shared.lock();
        let id_num = id.parse::<u64>().unwrap_or_default();
        let valid = asset_url_valid(
            &st.secret,
            id_num,
            q.get("exp").unwrap_or_default(),
            q.get("sig").unwrap_or_default(),
        );
        let count = st.faults.count_downloads;
        let mut found = None;
        if valid {
            for repo in st.world.repos.values_mut() {
                let full_name = repo.full_name();
                for rel in &mut repo.releases {
                    if let Some(a) = rel.assets.iter_mut().find(|a| a.id == id_num) {
                        if count {
                            a.download_count += 1;
                        }
                        rec.repo = Some(full_name.clone());
                        found = Some((a.data.bytes(), a.name.clone()));
                    }
                }
            }
        }
        found
    };
    let resp = match found {
        Some((bytes, name)) => octets(bytes.as_ref().clone(), Some(&name)),
        None => text(
            StatusCode::FORBIDDEN,
            "Request has expired or is not signed\n",
        ),
    };
    finish(&shared, rec, resp).await
}

/// Whether `path` is `/<owner>/<repo>/releases/download/<tag>/<name>`.
pub(crate) fn browser_download_path(path: &str) -> Option<(String, String, String)> {
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match segs.as_slice() {
        [owner, repo, "releases", "download", tag, name] => Some((
            format!("{owner}/{repo}"),
            percent_decode(tag),
            percent_decode(name),
        )),
        _ => None,
    }
}

/// `browser_download_url`: a redirect to the signed storage URL, like github.com. Private
/// repositories need a token (Basic or `token`), public ones none.
pub(crate) async fn browser_download(
    shared: Arc<Shared>,
    req: Request<Incoming>,
    (full_name, tag, name): (String, String, String),
) -> Response<Body> {
    let path = req.uri().path().to_owned();
    let mut rec = record(req.method(), &path, RequestKind::Download);
    let authorization = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let resp = {
        let st = shared.lock();
        let who = match crate::forge::auth::api_credential(authorization.as_deref()) {
            crate::forge::auth::Credential::Token(t) => st.auth.resolve(&st.world, &t).ok(),
            crate::forge::auth::Credential::None => Some(Identity::Anonymous),
            _ => None,
        };
        let repo = st.world.repo(&full_name);
        let asset = repo
            .filter(|r| {
                who.as_ref()
                    .is_some_and(|w| repo_perms(&st.world, w, r).is_some())
            })
            .and_then(|r| {
                r.releases
                    .iter()
                    .filter(|rel| rel.tag_name == tag && !rel.draft)
                    .flat_map(|rel| rel.assets.iter())
                    .find(|a| a.name == name)
                    .map(|a| (r.full_name(), a.id, a.name.clone()))
            });
        match asset {
            Some((repo_name, id, name)) => {
                rec.repo = Some(repo_name);
                let mut resp = Response::new(crate::forge::http::empty());
                *resp.status_mut() = StatusCode::FOUND;
                if let Ok(v) =
                    HeaderValue::from_str(&signed_asset_url(&st.secret, &shared.web, id, &name))
                {
                    resp.headers_mut().insert("location", v);
                }
                resp
            }
            None => text(StatusCode::NOT_FOUND, "Not Found\n"),
        }
    };
    finish(&shared, rec, resp).await
}
