//! The HTTP layer against a small scripted HTTP server on 127.0.0.1: pagination, ETags, rate
//! limits, retries, App tokens, and links to other origins.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use repovault_forge::http::{Client, ClientConfig};
use repovault_forge::{AppCredentials, Credentials, ErrorKind, Identity, RetryPolicy};
use secrecy::SecretString;

/// One request as the server saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    headers: HashMap<String, String>,
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

fn reply(status: u16, body: &str) -> Reply {
    Reply {
        status,
        headers: Vec::new(),
        body: body.into(),
    }
}

impl Reply {
    fn header(mut self, k: &str, v: impl Into<String>) -> Self {
        self.headers.push((k.into(), v.into()));
        self
    }
}

type Handler = dyn Fn(&Seen, usize) -> Reply + Send + Sync;

/// Serves `handler` (given the request and its 0-based index) until the test ends.
fn serve(handler: Box<Handler>) -> (String, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() || line.is_empty() {
                continue;
            }
            let mut parts = line.split_whitespace();
            let method = parts.next().unwrap_or_default().to_owned();
            let path = parts.next().unwrap_or_default().to_owned();
            let mut headers = HashMap::new();
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).is_err() || h == "\r\n" || h.is_empty() {
                    break;
                }
                if let Some((k, v)) = h.trim_end().split_once(':') {
                    headers.insert(k.to_ascii_lowercase(), v.trim().to_owned());
                }
            }
            let req = Seen {
                method,
                path,
                headers,
            };
            let index = {
                let mut l = log.lock().expect("lock");
                l.push(req.clone());
                l.len() - 1
            };
            let r = handler(&req, index);
            let mut out = format!(
                "HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\nContent-Type: application/json\r\n",
                r.status,
                r.body.len()
            );
            for (k, v) in &r.headers {
                out.push_str(&format!("{k}: {v}\r\n"));
            }
            out.push_str("\r\n");
            out.push_str(&r.body);
            let _ = stream.write_all(out.as_bytes());
        }
    });
    (base, seen)
}

fn fast() -> RetryPolicy {
    RetryPolicy {
        base_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        ..RetryPolicy::default()
    }
}

fn client(base: &str, credentials: Credentials) -> Client {
    Client::new(ClientConfig {
        api_url: base.into(),
        ca_bundle: None,
        credentials,
        policy: fast(),
    })
    .expect("client")
}

fn token() -> Credentials {
    Credentials::Token(SecretString::from("tok-123"))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

#[test]
fn follows_links_and_sends_stored_etags() {
    let (base, seen) = serve(Box::new(|req, _| {
        let base = format!("http://{}", req.headers["host"]);
        if req.headers.get("if-none-match").map(String::as_str) == Some("W/\"p1\"") {
            return reply(304, "");
        }
        match req.path.as_str() {
            "/items?page=1" => reply(200, "[1,2]").header("ETag", "W/\"p1\"").header(
                "Link",
                format!("<{base}/items?page=2>; rel=\"next\", <{base}/items?page=2>; rel=\"last\""),
            ),
            "/items?page=2" => reply(200, "[3]").header("ETag", "W/\"p2\""),
            _ => reply(404, r#"{"message":"Not Found"}"#),
        }
    }));
    let c = client(&base, token());
    let rt = runtime();
    let first = rt
        .block_on(c.get(
            &c.url("items?page=1").expect("url"),
            &Identity::Default,
            None,
        ))
        .expect("page 1");
    assert_eq!(first.json().expect("json"), serde_json::json!([1, 2]));
    let next = first.next.expect("next link");
    let second = rt
        .block_on(c.get(&next, &Identity::Default, None))
        .expect("page 2");
    assert!(second.next.is_none());
    let again = rt
        .block_on(c.get(
            &c.url("items?page=1").expect("url"),
            &Identity::Default,
            first.etag.as_deref(),
        ))
        .expect("conditional");
    assert!(again.not_modified());
    let s = c.stats();
    assert_eq!((s.requests, s.not_modified), (3, 1));
    {
        let seen = seen.lock().expect("lock");
        assert_eq!(seen[0].headers["authorization"], "Bearer tok-123");
        assert_eq!(seen[0].headers["accept"], "application/vnd.github+json");
    }
    let missing = rt.block_on(c.get(&c.url("nope").expect("url"), &Identity::Default, None));
    assert_eq!(missing.expect_err("404").kind(), ErrorKind::NotFound);
}

#[test]
fn refuses_links_to_another_origin() {
    let (base, _) = serve(Box::new(|_, _| {
        reply(200, "[]").header("Link", "<http://127.0.0.2:1/x?page=2>; rel=\"next\"")
    }));
    let c = client(&base, token());
    let err = runtime()
        .block_on(c.get(&c.url("x").expect("url"), &Identity::Default, None))
        .expect_err("foreign link");
    assert_eq!(err.kind(), ErrorKind::Invalid);
}

#[test]
fn retries_server_errors_and_gives_up_after_the_bound() {
    let (base, _) = serve(Box::new(|req, i| {
        if req.path == "/flaky" && i < 2 {
            reply(502, "")
        } else if req.path == "/flaky" {
            reply(200, "{}")
        } else {
            reply(500, "")
        }
    }));
    let c = client(&base, token());
    let rt = runtime();
    rt.block_on(c.get(&c.url("flaky").expect("url"), &Identity::Default, None))
        .expect("succeeds after two retries");
    assert_eq!(c.stats().retries, 2);
    let err = rt
        .block_on(c.get(&c.url("broken").expect("url"), &Identity::Default, None))
        .expect_err("always 500");
    assert_eq!(err.kind(), ErrorKind::Server);
    assert!(err.is_retryable());
    // Two for /flaky plus the bounded retries of /broken.
    assert_eq!(c.stats().retries, 2 + u64::from(fast().max_retries));
}

fn epoch_in(secs: u64) -> String {
    (SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("time")
        .as_secs()
        + secs)
        .to_string()
}

#[test]
fn waits_for_the_reset_when_the_budget_is_exhausted() {
    let (base, _) = serve(Box::new(|_, i| match i {
        0 => reply(403, r#"{"message":"API rate limit exceeded"}"#)
            .header("X-RateLimit-Limit", "5000")
            .header("X-RateLimit-Remaining", "0")
            .header("X-RateLimit-Reset", epoch_in(1)),
        1 => reply(
            429,
            r#"{"message":"You have exceeded a secondary rate limit"}"#,
        )
        .header("Retry-After", "1"),
        _ => reply(200, "{}")
            .header("X-RateLimit-Limit", "5000")
            .header("X-RateLimit-Remaining", "4999")
            .header("X-RateLimit-Reset", epoch_in(3600)),
    }));
    let c = client(&base, token());
    runtime()
        .block_on(c.get(&c.url("x").expect("url"), &Identity::Default, None))
        .expect("succeeds after the waits");
    let s = c.stats();
    assert!(s.rate_limit_waits >= 2, "{s:?}");
    assert!(s.rate_limit_wait_ms >= 1000, "{s:?}");
    assert_eq!(s.requests, 3);
    assert_eq!(s.remaining, Some(4999));
}

#[test]
fn app_tokens_are_exchanged_renewed_and_never_shown() {
    let issued = Arc::new(Mutex::new(0u32));
    let counter = issued.clone();
    let (base, seen) = serve(Box::new(move |req, _| {
        if req.method == "POST" && req.path == "/app/installations/7/access_tokens" {
            let mut n = counter.lock().expect("lock");
            *n += 1;
            // Already due for renewal: every later request must get a new one.
            let expires = jiff::Timestamp::now().to_string();
            return reply(
                201,
                &format!(r#"{{"token":"ghs_{n}","expires_at":"{expires}"}}"#),
            );
        }
        let auth = req
            .headers
            .get("authorization")
            .cloned()
            .unwrap_or_default();
        if auth == "Bearer ghs_1" && req.path == "/revoked" {
            return reply(401, r#"{"message":"Bad credentials"}"#);
        }
        if auth.starts_with("Bearer ghs_") {
            reply(200, "{}")
        } else {
            reply(401, r#"{"message":"Bad credentials"}"#)
        }
    }));
    let key = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/test-app-key.pem"
    ))
    .expect("test key");
    let creds = Credentials::App(AppCredentials {
        app_id: "42".into(),
        private_key_pem: SecretString::from(key),
        installation_ids: vec![7],
    });
    let c = client(&base, creds);
    let rt = runtime();
    rt.block_on(c.get(&c.url("a").expect("url"), &Identity::Installation(7), None))
        .expect("first");
    rt.block_on(c.get(&c.url("b").expect("url"), &Identity::Default, None))
        .expect("second");
    assert_eq!(*issued.lock().expect("lock"), 2, "renewed before expiry");
    let seen = seen.lock().expect("lock");
    let exchange = seen.iter().find(|s| s.method == "POST").expect("exchange");
    let jwt = exchange.headers["authorization"].trim_start_matches("Bearer ");
    assert_eq!(jwt.split('.').count(), 3, "a JWT");
    assert!(!format!("{c:?}").contains("ghs_"));
}
