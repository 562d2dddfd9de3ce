//! A deliberately small GraphQL endpoint (`POST /graphql`, `POST /api/graphql`).
//!
//! The simulator is a REST simulator; it answers only the query shapes third-party backup
//! clients send alongside REST (python-github-backup's discussion listing and its
//! cross-reference counts), recognised by the fields they select rather than parsed. The
//! simulated forge has no discussions and no cross-references, so the answers are truthful
//! empty connections. Anything else gets a GraphQL error.

use hyper::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::forge::api::Cx;
use crate::forge::auth::Identity;
use crate::forge::http::{ApiError, Reply};
use crate::forge::model::Repo;
use crate::forge::state::repo_perms;

#[derive(Debug, Deserialize)]
struct GraphQlRequest {
    query: String,
    #[serde(default)]
    variables: Map<String, Value>,
}

fn empty_connection() -> Value {
    json!({"totalCount": 0, "nodes": [], "pageInfo": {"hasNextPage": false, "endCursor": null}})
}

pub(crate) fn serve(cx: &mut Cx<'_>) -> Result<Reply, ApiError> {
    if *cx.method != Method::POST {
        return Err(ApiError::not_found());
    }
    if matches!(cx.who, Identity::Anonymous) {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "This endpoint requires you to be authenticated.",
        ));
    }
    let req: GraphQlRequest = serde_json::from_slice(cx.body)
        .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "Problems parsing JSON"))?;
    let var = |name: &str| {
        req.variables
            .get(name)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let (Some(owner), Some(name)) = (var("owner"), var("name")) else {
        return Ok(unsupported());
    };
    let w = &cx.st.world;
    let repo: Option<&Repo> = w
        .repo(&format!("{owner}/{name}"))
        .filter(|r| repo_perms(w, cx.who, r).is_some());
    let Some(repo) = repo else {
        return Ok(Reply::ok(json!({
            "data": {"repository": null},
            "errors": [{
                "type": "NOT_FOUND",
                "path": ["repository"],
                "message": format!("Could not resolve to a Repository with the name '{owner}/{name}'."),
            }],
        })));
    };
    let q = &req.query;
    let data = if q.contains("hasDiscussionsEnabled") {
        json!({"repository": {
            "hasDiscussionsEnabled": false,
            "discussions": empty_connection(),
        }})
    } else if q.contains("discussion(number") {
        json!({"repository": {"discussion": null}})
    } else if q.contains("pullRequests(first") || q.contains("issues(first") {
        let pulls = q.contains("pullRequests(first");
        let page_size = req
            .variables
            .get("pageSize")
            .and_then(Value::as_u64)
            .unwrap_or(100)
            .clamp(1, 100) as usize;
        let after = var("after")
            .and_then(|c| {
                c.strip_prefix("cursor:")
                    .and_then(|n| n.parse::<usize>().ok())
            })
            .unwrap_or(0);
        let numbers: Vec<u64> = repo
            .issues
            .values()
            .filter(|i| i.pull.is_some() == pulls)
            .map(|i| i.number)
            .collect();
        let end = (after + page_size).min(numbers.len());
        let nodes: Vec<Value> = numbers[after.min(end)..end]
            .iter()
            .map(|n| json!({"number": n, "timelineItems": {"totalCount": 0, "nodes": []}}))
            .collect();
        let key = if pulls { "pullRequests" } else { "issues" };
        json!({"repository": { key: {
            "nodes": nodes,
            "pageInfo": {"hasNextPage": end < numbers.len(), "endCursor": format!("cursor:{end}")},
        }}})
    } else {
        return Ok(unsupported());
    };
    Ok(Reply::ok(json!({ "data": data })))
}

fn unsupported() -> Reply {
    Reply::ok(json!({"errors": [{
        "message": "This query is not supported by the forge simulator's GraphQL endpoint.",
    }]}))
}
