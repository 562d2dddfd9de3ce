//! HTTP plumbing: bodies, query strings, pagination, ETags, GitHub's error bodies.

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::header::HeaderValue;
use hyper::{Response, StatusCode};
use serde_json::{json, Value};

use crate::forge::util::sha256_hex;

pub(crate) type Body = BoxBody<Bytes, hyper::Error>;

pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

pub(crate) fn empty() -> Body {
    full(Bytes::new())
}

/// A plain-text response (git and LFS errors, downloads).
pub(crate) fn text(status: StatusCode, body: &str) -> Response<Body> {
    let mut resp = Response::new(full(body.to_owned()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

pub(crate) fn json_response(status: StatusCode, v: &Value, content_type: &str) -> Response<Body> {
    let body = serde_json::to_vec(v).unwrap_or_default();
    let mut resp = Response::new(full(body));
    *resp.status_mut() = status;
    if let Ok(ct) = HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(hyper::header::CONTENT_TYPE, ct);
    }
    resp
}

/// Query parameters in their order.
#[derive(Debug, Clone, Default)]
pub(crate) struct Query(pub Vec<(String, String)>);

impl Query {
    pub(crate) fn parse(q: Option<&str>) -> Query {
        Query(
            q.map(|q| {
                form_urlencoded::parse(q.as_bytes())
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect()
            })
            .unwrap_or_default(),
        )
    }

    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The query with `page` replaced, in the original order (as GitHub builds its links).
    pub(crate) fn with_page(&self, page: usize) -> String {
        let mut ser = form_urlencoded::Serializer::new(String::new());
        for (k, v) in self.0.iter().filter(|(k, _)| k != "page") {
            ser.append_pair(k, v);
        }
        ser.append_pair("page", &page.to_string());
        ser.finish()
    }
}

/// `page` (from 1) and `per_page` (default 30, at most 100).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Paging {
    pub page: usize,
    pub per_page: usize,
}

impl Paging {
    pub(crate) fn from(q: &Query) -> Paging {
        let per_page = q
            .get("per_page")
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|n| *n > 0)
            .unwrap_or(30)
            .min(100);
        let page = q
            .get("page")
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|n| *n > 0)
            .unwrap_or(1);
        Paging { page, per_page }
    }

    pub(crate) fn range(&self, total: usize) -> std::ops::Range<usize> {
        let start = (self.page - 1).saturating_mul(self.per_page).min(total);
        let end = start.saturating_add(self.per_page).min(total);
        start..end
    }
}

/// The `Link` header for page `p` of `total` items, or `None` when everything fits one page.
/// `base` is the absolute URL of the list without its query.
pub(crate) fn link_header(base: &str, q: &Query, p: Paging, total: usize) -> Option<String> {
    let last = total.div_ceil(p.per_page).max(1);
    if last == 1 && p.page == 1 {
        return None;
    }
    let url = |page: usize| format!("<{base}?{}>", q.with_page(page));
    let mut parts = Vec::new();
    if p.page > 1 {
        parts.push(format!("{}; rel=\"prev\"", url((p.page - 1).min(last))));
    }
    if p.page < last {
        parts.push(format!("{}; rel=\"next\"", url(p.page + 1)));
        parts.push(format!("{}; rel=\"last\"", url(last)));
    }
    if p.page > 1 {
        parts.push(format!("{}; rel=\"first\"", url(1)));
    }
    Some(parts.join(", "))
}

/// A weak ETag over everything that makes up the response, as GitHub sends them.
pub(crate) fn etag(body: &[u8], link: Option<&str>, vary: &str) -> String {
    let mut material = Vec::with_capacity(body.len() + 64);
    material.extend_from_slice(body);
    material.push(0);
    material.extend_from_slice(link.unwrap_or_default().as_bytes());
    material.push(0);
    material.extend_from_slice(vary.as_bytes());
    format!("W/\"{}\"", sha256_hex(&material))
}

/// Whether an `If-None-Match` header names `tag` (weak comparison, lists and `*` allowed).
pub(crate) fn etag_matches(if_none_match: &str, tag: &str) -> bool {
    let strip = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    let ours = strip(tag);
    if_none_match
        .split(',')
        .any(|t| t.trim() == "*" || strip(t) == ours)
}

/// What an API handler answers; the pipeline adds headers, pagination links and ETags.
#[derive(Debug)]
pub(crate) enum Reply {
    Json(StatusCode, Value),
    /// One page of a list, with the total number of items for the `Link` header.
    Page {
        items: Vec<Value>,
        total: usize,
    },
    /// A page of a list wrapped in an object (`{"total_count": n, "<key>": [...]}`).
    Wrapped {
        key: &'static str,
        items: Vec<Value>,
        total: usize,
        extra: Value,
    },
    Redirect(String),
    Empty(StatusCode),
}

impl Reply {
    pub(crate) fn ok(v: Value) -> Reply {
        Reply::Json(StatusCode::OK, v)
    }
}

pub(crate) const DOCS: &str = "https://docs.github.com/rest";

/// A GitHub error response: `{"message": ..., "documentation_url": ..., "status": "..."}`.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub documentation_url: String,
    pub extra: Option<Value>,
    pub headers: Vec<(&'static str, String)>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            documentation_url: DOCS.to_owned(),
            extra: None,
            headers: Vec::new(),
        }
    }

    pub(crate) fn not_found() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "Not Found")
    }

    pub(crate) fn doc(mut self, url: &str) -> ApiError {
        self.documentation_url = url.to_owned();
        self
    }

    pub(crate) fn body(&self) -> Value {
        let mut v = json!({
            "message": self.message,
            "documentation_url": self.documentation_url,
            "status": self.status.as_u16().to_string(),
        });
        if let (Value::Object(m), Some(Value::Object(extra))) = (&mut v, &self.extra) {
            m.extend(extra.clone());
        }
        v
    }

    pub(crate) fn bad_credentials(message: &str) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, message)
    }

    pub(crate) fn requires_auth() -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "Requires authentication")
    }

    pub(crate) fn not_accessible_by_integration() -> ApiError {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "Resource not accessible by integration",
        )
    }

    pub(crate) fn validation(message: &str) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "Validation Failed").with_extra(json!({
            "errors": [{"message": message, "code": "invalid"}],
        }))
    }

    pub(crate) fn with_extra(mut self, extra: Value) -> ApiError {
        self.extra = Some(extra);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_follow_githubs_order_and_keep_the_query() {
        let q = Query::parse(Some("state=all&per_page=10&page=2"));
        let p = Paging::from(&q);
        let link = link_header("https://h/repos/o/r/issues", &q, p, 35).expect("several pages");
        assert_eq!(
            link,
            "<https://h/repos/o/r/issues?state=all&per_page=10&page=1>; rel=\"prev\", \
             <https://h/repos/o/r/issues?state=all&per_page=10&page=3>; rel=\"next\", \
             <https://h/repos/o/r/issues?state=all&per_page=10&page=4>; rel=\"last\", \
             <https://h/repos/o/r/issues?state=all&per_page=10&page=1>; rel=\"first\""
        );
        let one = Query::parse(None);
        assert_eq!(
            link_header("https://h/x", &one, Paging::from(&one), 30),
            None
        );
    }

    #[test]
    fn paging_defaults_and_limits() {
        let p = Paging::from(&Query::parse(Some("per_page=500&page=0")));
        assert_eq!((p.page, p.per_page), (1, 100));
        let p = Paging::from(&Query::parse(None));
        assert_eq!((p.page, p.per_page), (1, 30));
        assert_eq!(
            Paging {
                page: 3,
                per_page: 30
            }
            .range(65),
            60..65
        );
        assert_eq!(
            Paging {
                page: 4,
                per_page: 30
            }
            .range(65),
            65..65
        );
    }

    #[test]
    fn etags_compare_weakly() {
        let tag = etag(b"{}", None, "user:a");
        assert!(tag.starts_with("W/\""));
        assert!(etag_matches(&tag, &tag));
        assert!(etag_matches(tag.trim_start_matches("W/"), &tag));
        assert!(etag_matches(&format!("\"x\", {tag}"), &tag));
        assert!(!etag_matches("W/\"other\"", &tag));
    }
}
