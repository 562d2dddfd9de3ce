//! An HTTPS client that trusts the simulator's CA, and helpers to walk paginated lists.

use std::time::Duration;

use repovault_testkit::forge::{Fixture, ForgeSim, SimOptions};
use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::header::{HeaderMap, LINK};
use serde_json::Value;

/// Lists longer than this many pages mean the simulator's `Link` headers loop.
const MAX_PAGES: usize = 500;

pub struct Api {
    pub sim: ForgeSim,
    pub client: Client,
    pub token: String,
}

impl Api {
    pub fn start(fixture: Fixture) -> Api {
        Api::with(SimOptions::new(fixture))
    }

    pub fn with(opts: SimOptions) -> Api {
        let sim = ForgeSim::start_with(opts).expect("starting the forge simulator");
        let pem = std::fs::read(sim.ca_path()).expect("reading the simulator's CA");
        let client = Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("CA PEM"))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("repovault-testkit-tests")
            .timeout(Duration::from_secs(60))
            .build()
            .expect("building the HTTPS client");
        let token = sim.token();
        Api { sim, client, token }
    }

    /// An Enterprise-style API URL (`/api/v3` + `path`); absolute URLs are kept.
    pub fn url(&self, path: &str) -> String {
        if path.starts_with("https://") {
            path.to_owned()
        } else {
            format!("{}{path}", self.sim.enterprise_api_url())
        }
    }

    /// GET `path` with the main token.
    pub fn get(&self, path: &str) -> Response {
        self.request(path, Some(&format!("token {}", self.token)))
            .send()
            .expect("GET")
    }

    /// GET `path` with this `Authorization` header (or none).
    pub fn get_with(&self, path: &str, authorization: Option<&str>) -> Response {
        self.request(path, authorization).send().expect("GET")
    }

    pub fn request(&self, path: &str, authorization: Option<&str>) -> RequestBuilder {
        self.request_accepting(path, authorization, "application/vnd.github+json")
    }

    pub fn request_accepting(
        &self,
        path: &str,
        authorization: Option<&str>,
        accept: &str,
    ) -> RequestBuilder {
        let mut r = self.client.get(self.url(path)).header("accept", accept);
        if let Some(a) = authorization {
            r = r.header("authorization", a);
        }
        r
    }

    /// GET `path` and return its JSON, asserting a 200.
    pub fn json(&self, path: &str) -> Value {
        let resp = self.get(path);
        let status = resp.status();
        let body = resp.text().expect("body");
        assert_eq!(status, 200, "GET {path}: {body}");
        serde_json::from_str(&body).expect("JSON")
    }

    /// Every item of a paginated list, following `Link: rel="next"`.
    pub fn all_pages(&self, path: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut next = Some(self.url(path));
        for _ in 0..MAX_PAGES {
            let Some(url) = next.take() else {
                return out;
            };
            let resp = self.get(&url);
            assert_eq!(resp.status(), 200, "GET {url}");
            next = next_link(resp.headers());
            match resp.json::<Value>().expect("JSON") {
                Value::Array(items) => out.extend(items),
                other => panic!("{url} is not a list: {other}"),
            }
        }
        panic!("{path}: more than {MAX_PAGES} pages");
    }
}

/// The `rel` URLs of a `Link` header.
pub fn links(headers: &HeaderMap) -> Vec<(String, String)> {
    let Some(link) = headers.get(LINK).and_then(|v| v.to_str().ok()) else {
        return Vec::new();
    };
    link.split(',')
        .filter_map(|part| {
            let (url, rel) = part.split_once(';')?;
            let url = url.trim().trim_start_matches('<').trim_end_matches('>');
            let rel = rel.trim().strip_prefix("rel=\"")?.strip_suffix('"')?;
            Some((rel.to_owned(), url.to_owned()))
        })
        .collect()
}

pub fn next_link(headers: &HeaderMap) -> Option<String> {
    links(headers)
        .into_iter()
        .find(|(rel, _)| rel == "next")
        .map(|(_, url)| url)
}

pub fn header(resp: &Response, name: &str) -> String {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}
