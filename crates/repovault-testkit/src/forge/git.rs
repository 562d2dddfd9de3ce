//! Git over HTTPS: GitHub-style credential checks in front of the real git server, a
//! streaming reverse proxy to it, and reading refs and commits back from bare repositories.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, AUTHORIZATION, HOST};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::forge::auth::{git_credential, Credential, Identity};
use crate::forge::http::{text, Body};
use crate::forge::limits::RepoFault;
use crate::forge::log::{RequestKind, RequestRecord};
use crate::forge::model::{CommitInfo, GitFacts};
use crate::forge::state::{repo_perms, Shared, SimState};
use crate::gitcmd::{run, GitEnv};

/// Which bare repository a git URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum GitTarget {
    Repo { full_name: String },
    Wiki { full_name: String },
    Gist { id: String },
}

/// A parsed git-over-HTTPS path: the repository and what follows it (`info/refs`,
/// `git-upload-pack`, `info/lfs/...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GitPath {
    pub target: GitTarget,
    pub rest: String,
}

/// `/<owner>/<name>.git/…`, `/<owner>/<name>.wiki.git/…`, `/gist/<id>.git/…`, and the
/// `.git`-less `/<owner>/<name>/info/refs` (and `git-upload-pack`) GitHub also answers.
pub(crate) fn parse_path(path: &str) -> Option<GitPath> {
    let segs: Vec<&str> = path.trim_start_matches('/').splitn(3, '/').collect();
    let [first, second, rest] = segs.as_slice() else {
        return None;
    };
    if *first == "gist" {
        let id = second.strip_suffix(".git")?;
        return Some(GitPath {
            target: GitTarget::Gist { id: id.to_owned() },
            rest: (*rest).to_owned(),
        });
    }
    if first.is_empty() || first.starts_with('_') {
        return None;
    }
    let target = if let Some(name) = second.strip_suffix(".wiki.git") {
        GitTarget::Wiki {
            full_name: format!("{first}/{name}"),
        }
    } else if let Some(name) = second.strip_suffix(".git") {
        GitTarget::Repo {
            full_name: format!("{first}/{name}"),
        }
    } else if matches!(*rest, "info/refs" | "git-upload-pack" | "git-receive-pack") {
        GitTarget::Repo {
            full_name: format!("{first}/{second}"),
        }
    } else {
        return None;
    };
    Some(GitPath {
        target,
        rest: (*rest).to_owned(),
    })
}

fn client() -> &'static Client<HttpConnector, Incoming> {
    static CLIENT: OnceLock<Client<HttpConnector, Incoming>> = OnceLock::new();
    CLIENT.get_or_init(|| Client::builder(TokioExecutor::new()).build_http())
}

fn unauthorized() -> Response<Body> {
    let mut resp = text(
        StatusCode::UNAUTHORIZED,
        "Invalid username or token. Password authentication is not supported for Git operations.\n",
    );
    resp.headers_mut().insert(
        "www-authenticate",
        HeaderValue::from_static("Basic realm=\"GitHub\""),
    );
    resp
}

fn not_found() -> Response<Body> {
    text(StatusCode::NOT_FOUND, "Repository not found.\n")
}

/// A response sent instead of serving the request (boxed: responses are large).
pub(crate) type Refusal = Box<Response<Body>>;

/// Who a git request is from, or the response that refuses it.
pub(crate) fn identify(st: &SimState, authorization: Option<&str>) -> Result<Identity, Refusal> {
    match git_credential(authorization) {
        Credential::None => Ok(Identity::Anonymous),
        Credential::Token(t) => st
            .auth
            .resolve(&st.world, &t)
            .map_err(|_| Box::new(unauthorized())),
        Credential::Jwt(_) | Credential::Malformed => Err(Box::new(unauthorized())),
    }
}

/// Resolves the target to its path on the git server (canonical case), after access checks.
/// `Err` is the response to send instead.
pub(crate) fn authorize(
    st: &SimState,
    who: &Identity,
    target: &GitTarget,
) -> Result<(String, Option<String>), Refusal> {
    let w = &st.world;
    let (full, wiki) = match target {
        GitTarget::Gist { id } => {
            return match w.gists.get(id) {
                Some(g) => Ok((format!("gist/{}.git", g.id), None)),
                None => Err(Box::new(not_found())),
            }
        }
        GitTarget::Repo { full_name } => (full_name, false),
        GitTarget::Wiki { full_name } => (full_name, true),
    };
    let Some(repo) = w.repo(full) else {
        return Err(Box::new(not_found()));
    };
    if repo_perms(w, who, repo).is_none() {
        return Err(Box::new(if *who == Identity::Anonymous {
            unauthorized()
        } else {
            not_found()
        }));
    }
    if let Some((fault, scope)) = st.faults.repo(full) {
        if scope.git() {
            return Err(Box::new(match fault {
                RepoFault::ServerError => {
                    text(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error\n")
                }
                RepoFault::NotFound => not_found(),
                RepoFault::Blocked => text(
                    StatusCode::UNAVAILABLE_FOR_LEGAL_REASONS,
                    "Repository access blocked\n",
                ),
            }));
        }
    }
    if wiki && !(repo.has_wiki && repo.wiki_exists) {
        return Err(Box::new(not_found()));
    }
    let suffix = if wiki { ".wiki.git" } else { ".git" };
    Ok((
        format!("{}/{}{suffix}", repo.owner, repo.name),
        Some(repo.full_name()),
    ))
}

/// Serves a git smart-HTTP request through the git server.
pub(crate) async fn serve(
    shared: Arc<Shared>,
    req: Request<Incoming>,
    gp: GitPath,
) -> Response<Body> {
    let method = req.method().clone();
    let path_and_query = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let query = req.uri().query().map(str::to_owned);
    let authorization = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut record = RequestRecord {
        seq: 0,
        method: method.to_string(),
        path: path_and_query,
        kind: RequestKind::Git,
        conditional: false,
        status: 0,
        counted: false,
        identity: Identity::Anonymous.bucket(),
        repo: None,
    };
    let decided = {
        let st = shared.lock();
        identify(&st, authorization.as_deref()).and_then(|who| {
            record.identity = who.bucket();
            authorize(&st, &who, &gp.target)
        })
    };
    let (upstream_path, repo) = match decided {
        Ok(ok) => ok,
        Err(resp) => return finish(&shared, record, *resp).await,
    };
    record.repo = repo;
    let service_ok = match (&method, gp.rest.as_str()) {
        (&Method::GET, "info/refs") => query
            .as_deref()
            .is_some_and(|q| q.contains("service=git-upload-pack")),
        (&Method::POST, "git-upload-pack") => true,
        _ => false,
    };
    if !service_ok {
        let resp = if gp.rest.contains("receive-pack") {
            text(
                StatusCode::FORBIDDEN,
                "Write access to repository not granted.\n",
            )
        } else {
            not_found()
        };
        return finish(&shared, record, resp).await;
    }
    let resp = proxy(&shared, req, &upstream_path, &gp.rest, query.as_deref()).await;
    finish(&shared, record, resp).await
}

async fn finish(
    shared: &Shared,
    mut record: RequestRecord,
    resp: Response<Body>,
) -> Response<Body> {
    record.status = resp.status().as_u16();
    let slow = {
        let mut st = shared.lock();
        st.log.push(record);
        st.faults.slow
    };
    if let Some(d) = slow {
        tokio::time::sleep(d).await;
    }
    resp
}

/// Forwards the request to the git server with its credentials, streaming both bodies.
async fn proxy(
    shared: &Shared,
    mut req: Request<Incoming>,
    repo_path: &str,
    rest: &str,
    query: Option<&str>,
) -> Response<Body> {
    let uri = match query {
        Some(q) => format!(
            "http://127.0.0.1:{}/{repo_path}/{rest}?{q}",
            shared.git_port
        ),
        None => format!("http://127.0.0.1:{}/{repo_path}/{rest}", shared.git_port),
    };
    let Ok(uri) = uri.parse() else {
        return not_found();
    };
    *req.uri_mut() = uri;
    let headers = req.headers_mut();
    for hop in [
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
        "expect",
    ] {
        headers.remove(hop);
    }
    if let Ok(v) = HeaderValue::from_str(&shared.git_basic) {
        headers.insert(AUTHORIZATION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("127.0.0.1:{}", shared.git_port)) {
        headers.insert(HOST, v);
    }
    match client().request(req).await {
        Ok(resp) => {
            let (mut parts, body) = resp.into_parts();
            parts.headers.remove("connection");
            Response::from_parts(parts, body.boxed())
        }
        Err(e) => text(
            StatusCode::BAD_GATEWAY,
            &format!("git server unavailable: {e}\n"),
        ),
    }
}

/// Reads every ref, the peeled targets of annotated tags, every commit reachable from a ref,
/// and the size of the object store.
pub(crate) fn load_facts(env: &GitEnv, bare: &Path) -> io::Result<GitFacts> {
    let mut cmd = env.command(bare);
    cmd.args([
        "for-each-ref",
        "--format=%(refname)%00%(objectname)%00%(*objectname)",
    ]);
    let out = run(&mut cmd, None)?;
    let mut refs = BTreeMap::new();
    let mut peeled = BTreeMap::new();
    for line in String::from_utf8_lossy(&out).lines() {
        let mut parts = line.split('\0');
        let (Some(name), Some(id)) = (parts.next(), parts.next()) else {
            continue;
        };
        refs.insert(name.to_owned(), id.to_owned());
        if let Some(target) = parts.next().filter(|t| !t.is_empty()) {
            peeled.insert(name.to_owned(), target.to_owned());
        }
    }
    let mut commits = HashMap::new();
    if !refs.is_empty() {
        let mut cmd = env.command(bare);
        cmd.args([
            "log",
            "--all",
            "--format=%H%x00%T%x00%P%x00%an%x00%ae%x00%at%x00%cn%x00%ce%x00%ct%x00%B%x1e",
        ]);
        let out = run(&mut cmd, None)?;
        for record in String::from_utf8_lossy(&out).split('\x1e') {
            let f: Vec<&str> = record.trim_start_matches('\n').splitn(10, '\0').collect();
            let [sha, tree, parents, an, ae, at, cn, ce, ct, msg] = f.as_slice() else {
                continue;
            };
            let info = CommitInfo {
                sha: (*sha).to_owned(),
                tree: (*tree).to_owned(),
                parents: parents.split_whitespace().map(str::to_owned).collect(),
                author_name: (*an).to_owned(),
                author_email: (*ae).to_owned(),
                author_time: at.parse().unwrap_or_default(),
                committer_name: (*cn).to_owned(),
                committer_email: (*ce).to_owned(),
                committer_time: ct.parse().unwrap_or_default(),
                message: msg.trim_end_matches('\n').to_owned(),
            };
            commits.insert(info.sha.clone(), Arc::new(info));
        }
    }
    Ok(GitFacts {
        refs,
        peeled,
        commits,
        size_kb: dir_size(&bare.join("objects")).div_ceil(1024),
    })
}

fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            Ok(_) => e.metadata().map(|m| m.len()).unwrap_or(0),
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(full: &str, rest: &str) -> Option<GitPath> {
        Some(GitPath {
            target: GitTarget::Repo {
                full_name: full.into(),
            },
            rest: rest.into(),
        })
    }

    #[test]
    fn git_paths() {
        assert_eq!(
            parse_path("/acme/widgets.git/info/refs"),
            repo("acme/widgets", "info/refs")
        );
        assert_eq!(
            parse_path("/acme/widgets/info/refs"),
            repo("acme/widgets", "info/refs")
        );
        assert_eq!(
            parse_path("/acme/widgets.wiki.git/git-upload-pack"),
            Some(GitPath {
                target: GitTarget::Wiki {
                    full_name: "acme/widgets".into()
                },
                rest: "git-upload-pack".into()
            })
        );
        assert_eq!(
            parse_path("/gist/abc.git/info/refs").map(|p| p.target),
            Some(GitTarget::Gist { id: "abc".into() })
        );
        assert_eq!(
            parse_path("/acme/widgets.git/info/lfs/objects/batch").map(|p| p.rest),
            Some("info/lfs/objects/batch".into())
        );
        assert_eq!(parse_path("/repos/acme/widgets"), None);
        assert_eq!(parse_path("/acme/widgets/releases/download/v1/x"), None);
        assert_eq!(parse_path("/_sim/dump"), None);
    }
}
