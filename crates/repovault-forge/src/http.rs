//! The one HTTP layer every forge request goes through: authentication, conditional requests,
//! `Link` pagination, primary and secondary rate limits, and bounded, jittered retries.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, ETAG, IF_NONE_MATCH};
use reqwest::{Method, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::auth::{AppAuth, Credentials, Identity, InstallationToken};
use crate::error::{ErrorKind, ForgeError};
use crate::limits::{ApiStats, Budgets, Counters, Reading, RetryPolicy};

const JSON: &str = "application/vnd.github+json";
const API_VERSION: &str = "2022-11-28";

/// How to reach a forge API.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `https://api.github.com`, or `https://ghe.example.com/api/v3` for Enterprise.
    pub api_url: String,
    /// PEM bundle of the CAs to trust instead of the system's (Enterprise with a private CA).
    pub ca_bundle: Option<PathBuf>,
    pub credentials: Credentials,
    pub policy: RetryPolicy,
}

/// A successful (2xx) or not-modified (304) answer.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub etag: Option<String>,
    /// The `rel="next"` page, checked to be on the API's origin.
    pub next: Option<Url>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn not_modified(&self) -> bool {
        self.status == 304
    }

    pub fn json(&self) -> Result<serde_json::Value, ForgeError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| ForgeError::invalid(format!("the forge sent invalid JSON: {e}")))
    }
}

pub struct Client {
    http: reqwest::Client,
    api: Url,
    credentials: Credentials,
    app: Option<AppAuth>,
    budgets: Budgets,
    counters: Counters,
    policy: RetryPolicy,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Client({}, {:?})", self.api, self.credentials)
    }
}

/// What one attempt came to.
enum Attempt {
    Done(reqwest::Response),
    /// Wait this long, then try again (counted as a retry).
    Retry(Duration, ForgeError),
    /// A rate limit: wait, then try again.
    Limited(Duration, ForgeError),
    Fail(ForgeError),
}

impl Client {
    pub fn new(config: ClientConfig) -> Result<Self, ForgeError> {
        let mut api = Url::parse(&config.api_url)
            .map_err(|e| ForgeError::local(format!("api_url {:?}: {e}", config.api_url)))?;
        if !matches!(api.scheme(), "https" | "http") || api.host_str().is_none() {
            return Err(ForgeError::local(format!(
                "api_url {:?} must be an http(s) URL with a host",
                config.api_url
            )));
        }
        if !api.username().is_empty() || api.password().is_some() {
            return Err(ForgeError::local(
                "api_url must not contain credentials; use token_file, token_command or token_env",
            ));
        }
        if !api.path().ends_with('/') {
            let p = format!("{}/", api.path());
            api.set_path(&p);
        }
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("repovault/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(30))
            .timeout(config.policy.request_timeout)
            .https_only(api.scheme() == "https");
        if let Some(path) = &config.ca_bundle {
            let pem = std::fs::read(path).map_err(|e| {
                ForgeError::local(format!("reading ca_bundle {}: {e}", path.display()))
            })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| ForgeError::local(format!("ca_bundle {}: {e}", path.display())))?;
            if certs.is_empty() {
                return Err(ForgeError::local(format!(
                    "ca_bundle {} holds no certificate",
                    path.display()
                )));
            }
            builder = builder.tls_certs_only(certs);
        }
        let http = builder
            .build()
            .map_err(|e| ForgeError::local(format!("setting up HTTPS: {e}")))?;
        let app = match &config.credentials {
            Credentials::App(a) => Some(AppAuth::new(a)?),
            _ => None,
        };
        Ok(Self {
            http,
            api,
            credentials: config.credentials,
            app,
            budgets: Budgets::default(),
            counters: Counters::default(),
            policy: config.policy,
        })
    }

    /// The API base, ending with `/`.
    pub fn api(&self) -> &Url {
        &self.api
    }

    pub fn is_app(&self) -> bool {
        self.app.is_some()
    }

    /// `path` (e.g. `repos/a/b/issues?state=all`) below the API base.
    pub fn url(&self, path: &str) -> Result<Url, ForgeError> {
        self.api
            .join(path.trim_start_matches('/'))
            .map_err(|e| ForgeError::invalid(format!("bad API path {path:?}: {e}")))
    }

    /// The key of a URL in ETag caches: its path and query below the API base.
    pub fn cache_key(&self, url: &Url) -> String {
        let full = url.as_str();
        full.strip_prefix(self.api.as_str())
            .unwrap_or(full)
            .to_owned()
    }

    pub fn stats(&self) -> ApiStats {
        let (remaining, limit) = self.budgets.lowest();
        ApiStats {
            requests: self.counters.requests.load(Ordering::Relaxed),
            not_modified: self.counters.not_modified.load(Ordering::Relaxed),
            retries: self.counters.retries.load(Ordering::Relaxed),
            rate_limit_waits: self.counters.waits.load(Ordering::Relaxed),
            rate_limit_wait_ms: self.counters.wait_ms.load(Ordering::Relaxed),
            remaining,
            limit,
        }
    }

    /// A GET of JSON, conditional when `etag` is given.
    pub async fn get(
        &self,
        url: &Url,
        who: &Identity,
        etag: Option<&str>,
    ) -> Result<Response, ForgeError> {
        let resp = self.send(Method::GET, url, who, etag, JSON).await?;
        self.read(resp).await
    }

    /// A POST without a body (token exchange).
    pub(crate) async fn post(&self, url: &Url, who: &Identity) -> Result<Response, ForgeError> {
        let resp = self.send(Method::POST, url, who, None, JSON).await?;
        self.read(resp).await
    }

    async fn read(&self, resp: reqwest::Response) -> Result<Response, ForgeError> {
        let status = resp.status().as_u16();
        let etag = header_str(resp.headers(), ETAG.as_str());
        let next = next_link(resp.headers())
            .map(|n| self.check_same_origin(&n))
            .transpose()?;
        let body = resp
            .bytes()
            .await
            .map_err(|e| ForgeError::new(ErrorKind::Network, format!("reading a response: {e}")))?
            .to_vec();
        Ok(Response {
            status,
            etag,
            next,
            body,
        })
    }

    /// Streams a download (e.g. a release asset with `Accept: application/octet-stream`,
    /// following redirects; reqwest drops `Authorization` on a redirect to another host) into
    /// `dest`, replacing it only when complete. Returns the size.
    pub async fn download(
        &self,
        url: &Url,
        who: &Identity,
        dest: &Path,
    ) -> Result<u64, ForgeError> {
        let mut attempt = 0;
        loop {
            let resp = self
                .send(Method::GET, url, who, None, "application/octet-stream")
                .await?;
            match write_body(resp, dest).await {
                Ok(n) => return Ok(n),
                Err(e) if e.is_retryable() && attempt < self.policy.max_retries => {
                    Counters::add(&self.counters.retries, 1);
                    tokio::time::sleep(self.policy.backoff(attempt)).await;
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    pub(crate) fn check_same_origin(&self, url: &Url) -> Result<Url, ForgeError> {
        if url.origin() == self.api.origin() {
            Ok(url.clone())
        } else {
            Err(ForgeError::invalid(format!(
                "the forge linked to another origin ({}); not following it",
                url.origin().ascii_serialization()
            )))
        }
    }

    /// Sends one request with retries, waits and token renewal; returns a 2xx or 304 response.
    async fn send(
        &self,
        method: Method,
        url: &Url,
        who: &Identity,
        etag: Option<&str>,
        accept: &str,
    ) -> Result<reqwest::Response, ForgeError> {
        let what = format!("{method} {}", url.path());
        let mut retries = 0;
        let mut waits = 0;
        let mut renewed = false;
        loop {
            let (key, token) = self.token_for(who).await?;
            let pause = self.budgets.before_request(&key, &self.policy);
            if !pause.is_zero() {
                self.counters.waited(pause);
                tracing::info!("rate limit: waiting {}s before {what}", pause.as_secs());
                tokio::time::sleep(pause).await;
            }
            let mut req = self
                .http
                .request(method.clone(), url.clone())
                .header(ACCEPT, accept)
                .header("X-GitHub-Api-Version", API_VERSION);
            if let Some(token) = &token {
                let mut v = HeaderValue::from_str(&format!("Bearer {}", token.expose_secret()))
                    .map_err(|_| {
                        ForgeError::local("the token holds characters not allowed in HTTP headers")
                    })?;
                v.set_sensitive(true);
                req = req.header(AUTHORIZATION, v);
            }
            if let Some(tag) = etag {
                if let Ok(v) = HeaderValue::from_str(tag) {
                    req = req.header(IF_NONE_MATCH, v);
                }
            }
            if method == Method::POST {
                req = req.header(reqwest::header::CONTENT_LENGTH, "0");
            }
            Counters::add(&self.counters.requests, 1);
            let attempt = match req.send().await {
                Err(e) => Attempt::Retry(
                    self.policy.backoff(retries),
                    ForgeError::new(
                        ErrorKind::Network,
                        format!("{what}: {}", describe_reqwest(&e)),
                    ),
                ),
                Ok(resp) => {
                    let reading = Reading::from_headers(resp.headers());
                    self.budgets.update(&key, &reading);
                    self.classify(resp, &what, reading, retries).await
                }
            };
            match attempt {
                Attempt::Done(resp) => {
                    if resp.status() == StatusCode::NOT_MODIFIED {
                        Counters::add(&self.counters.not_modified, 1);
                    }
                    return Ok(resp);
                }
                Attempt::Retry(delay, err) => {
                    if retries >= self.policy.max_retries {
                        return Err(err);
                    }
                    retries += 1;
                    Counters::add(&self.counters.retries, 1);
                    tracing::debug!("retrying in {}ms: {err}", delay.as_millis());
                    tokio::time::sleep(delay).await;
                }
                Attempt::Limited(delay, err) => {
                    if waits >= self.policy.max_rate_limit_waits {
                        return Err(err);
                    }
                    waits += 1;
                    Counters::add(&self.counters.retries, 1);
                    let delay = delay.min(self.policy.max_wait);
                    self.counters.waited(delay);
                    tracing::info!("{err}; waiting {}s", delay.as_secs());
                    tokio::time::sleep(delay).await;
                }
                Attempt::Fail(err)
                    if err.kind() == ErrorKind::Auth
                        && !renewed
                        && self.is_app()
                        && *who != Identity::App =>
                {
                    // An installation token can be revoked or expire early: get a new one once.
                    renewed = true;
                    self.forget_token(who).await;
                    Counters::add(&self.counters.retries, 1);
                }
                Attempt::Fail(err) => return Err(err),
            }
        }
    }

    async fn classify(
        &self,
        resp: reqwest::Response,
        what: &str,
        reading: Reading,
        retries: u32,
    ) -> Attempt {
        let status = resp.status();
        if status.is_success() || status == StatusCode::NOT_MODIFIED {
            return Attempt::Done(resp);
        }
        let retry_after = header_str(resp.headers(), "retry-after")
            .and_then(|s| s.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let code = status.as_u16();
        let body = resp.text().await.unwrap_or_default();
        let message = api_message(&body);
        let err = ForgeError::from_status(code, what, &message);
        match code {
            403 | 429 => {
                let lower = message.to_ascii_lowercase();
                if let Some(after) = retry_after {
                    // Secondary limits say how long to back off.
                    Attempt::Limited(
                        after.max(Duration::from_secs(1)),
                        ForgeError::new(
                            ErrorKind::RateLimited,
                            format!("{what}: secondary rate limit"),
                        ),
                    )
                } else if reading.remaining == Some(0) {
                    Attempt::Limited(
                        reading.until_reset().unwrap_or(Duration::from_secs(60)),
                        ForgeError::new(
                            ErrorKind::RateLimited,
                            format!("{what}: rate limit exhausted"),
                        ),
                    )
                } else if lower.contains("secondary rate limit") || lower.contains("abuse") {
                    // GitHub's advice without Retry-After: at least a minute, growing.
                    Attempt::Limited(
                        Duration::from_secs(60) * 2u32.saturating_pow(retries.min(4)),
                        ForgeError::new(
                            ErrorKind::RateLimited,
                            format!("{what}: secondary rate limit"),
                        ),
                    )
                } else if lower.contains("rate limit") {
                    Attempt::Limited(
                        reading.until_reset().unwrap_or(Duration::from_secs(60)),
                        ForgeError::new(
                            ErrorKind::RateLimited,
                            format!("{what}: rate limit exceeded"),
                        ),
                    )
                } else {
                    Attempt::Fail(err)
                }
            }
            500 | 502 | 503 | 504 => Attempt::Retry(
                retry_after.unwrap_or_else(|| self.policy.backoff(retries)),
                err,
            ),
            _ => Attempt::Fail(err),
        }
    }

    /// The budget key and the bearer token for `who`.
    async fn token_for(
        &self,
        who: &Identity,
    ) -> Result<(String, Option<SecretString>), ForgeError> {
        match (&self.credentials, &self.app) {
            (Credentials::Anonymous, _) => Ok(("anonymous".into(), None)),
            (Credentials::Token(t), _) => Ok(("token".into(), Some(t.clone()))),
            (Credentials::App(_), Some(app)) => match who {
                Identity::App => Ok(("app".into(), Some(app.jwt()?))),
                Identity::Installation(id) => Ok((
                    format!("installation:{id}"),
                    Some(self.installation_token(app, *id).await?),
                )),
                Identity::Default => {
                    let id = self.default_installation(app).await?;
                    Ok((
                        format!("installation:{id}"),
                        Some(self.installation_token(app, id).await?),
                    ))
                }
            },
            (Credentials::App(_), None) => Err(ForgeError::local("App credentials not loaded")),
        }
    }

    async fn forget_token(&self, who: &Identity) {
        if let Some(app) = &self.app {
            let mut tokens = app.tokens.lock().await;
            match who {
                Identity::Installation(id) => {
                    tokens.remove(id);
                }
                _ => tokens.clear(),
            }
        }
    }

    /// A fresh installation token, exchanged for a JWT when the cached one is due for renewal.
    pub(crate) async fn installation_token(
        &self,
        app: &AppAuth,
        id: u64,
    ) -> Result<SecretString, ForgeError> {
        let mut tokens = app.tokens.lock().await;
        if let Some(t) = tokens.get(&id).filter(|t| t.fresh()) {
            return Ok(t.token.clone());
        }
        let url = self.url(&format!("app/installations/{id}/access_tokens"))?;
        let resp = Box::pin(self.post(&url, &Identity::App))
            .await
            .map_err(|e| e.context(format!("getting a token for installation {id}")))?;
        let v = resp.json()?;
        let token = v
            .get("token")
            .and_then(|t| t.as_str())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ForgeError::invalid("the installation token answer has no token"))?;
        let expires = v
            .get("expires_at")
            .and_then(|t| t.as_str())
            .and_then(|s| s.parse::<jiff::Timestamp>().ok())
            .map(|t| UNIX_EPOCH + Duration::from_secs(u64::try_from(t.as_second()).unwrap_or(0)))
            .unwrap_or_else(|| SystemTime::now() + Duration::from_secs(3000));
        let token = SecretString::from(token.to_owned());
        tokens.insert(id, InstallationToken::new(token.clone(), expires));
        tracing::debug!("new token for installation {id}");
        Ok(token)
    }

    async fn default_installation(&self, app: &AppAuth) -> Result<u64, ForgeError> {
        if let Some(id) = app.configured.first() {
            return Ok(*id);
        }
        let all = self.installations().await?;
        all.first()
            .map(|(id, _)| *id)
            .ok_or_else(|| ForgeError::new(ErrorKind::Auth, "the App has no installations"))
    }

    /// The App's installations (`id`, account login): the configured ones, else all of them
    /// (`GET /app/installations`). Remembers which account each belongs to.
    pub async fn installations(&self) -> Result<Vec<(u64, String)>, ForgeError> {
        let Some(app) = &self.app else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        if app.configured.is_empty() {
            let mut next = Some(self.url("app/installations?per_page=100")?);
            let mut pages = 0;
            while let Some(url) = next.take() {
                let resp = Box::pin(self.get(&url, &Identity::App, None)).await?;
                let v = resp.json()?;
                for inst in v.as_array().into_iter().flatten() {
                    if let Some(id) = inst.get("id").and_then(serde_json::Value::as_u64) {
                        out.push((id, account_login(inst)));
                    }
                }
                pages += 1;
                next = resp.next.filter(|_| pages < 1000);
            }
        } else {
            for id in &app.configured {
                let url = self.url(&format!("app/installations/{id}"))?;
                let login = match Box::pin(self.get(&url, &Identity::App, None)).await {
                    Ok(resp) => account_login(&resp.json()?),
                    Err(e) => return Err(e.context(format!("installation {id}"))),
                };
                out.push((*id, login));
            }
        }
        for (id, login) in &out {
            if !login.is_empty() {
                app.remember_owner(login, *id);
            }
        }
        Ok(out)
    }

    /// Who to act as for a repository of `owner`: its installation when known.
    pub fn identity_for_owner(&self, owner: &str) -> Identity {
        self.app
            .as_ref()
            .and_then(|a| a.owner_installation(owner))
            .map_or(Identity::Default, Identity::Installation)
    }

    /// The token git should use for a repository of `owner`, fresh at the time of asking.
    pub async fn git_token(&self, owner: &str) -> Result<Option<SecretString>, ForgeError> {
        Ok(self.token_for(&self.identity_for_owner(owner)).await?.1)
    }
}

fn account_login(inst: &serde_json::Value) -> String {
    inst.get("account")
        .and_then(|a| a.get("login"))
        .and_then(|l| l.as_str())
        .unwrap_or_default()
        .to_owned()
}

fn header_str(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// The `rel="next"` target of a `Link` header.
pub(crate) fn next_link(h: &HeaderMap) -> Option<Url> {
    for value in h.get_all(reqwest::header::LINK) {
        let Ok(text) = value.to_str() else { continue };
        for part in text.split(',') {
            let mut pieces = part.split(';');
            let Some(target) = pieces.next() else {
                continue;
            };
            let is_next = pieces.any(|p| {
                let p = p.trim();
                p == "rel=\"next\"" || p == "rel=next"
            });
            if is_next {
                let t = target.trim().trim_start_matches('<').trim_end_matches('>');
                if let Ok(u) = Url::parse(t) {
                    return Some(u);
                }
            }
        }
    }
    None
}

/// GitHub's `{"message": …}`, cut short; forge text is untrusted and goes into reports.
fn api_message(body: &str) -> String {
    let msg = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
        .unwrap_or_default();
    msg.chars().filter(|c| !c.is_control()).take(200).collect()
}

fn describe_reqwest(e: &reqwest::Error) -> String {
    // The full chain names TLS and connection causes; URLs hold no secrets here.
    let mut s = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

async fn write_body(mut resp: reqwest::Response, dest: &Path) -> Result<u64, ForgeError> {
    let expected = resp.content_length();
    let tmp = dest.with_extension("part");
    if let Some(dir) = dest.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| ForgeError::local(format!("creating {}: {e}", dir.display())))?;
    }
    let mut file = std::fs::File::create(&tmp)
        .map_err(|e| ForgeError::local(format!("creating {}: {e}", tmp.display())))?;
    let mut n = 0u64;
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                file.write_all(&chunk)
                    .map_err(|e| ForgeError::local(format!("writing {}: {e}", tmp.display())))?;
                n += chunk.len() as u64;
            }
            Ok(None) => break,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(ForgeError::new(
                    ErrorKind::Network,
                    format!("download interrupted: {}", describe_reqwest(&e)),
                ));
            }
        }
    }
    if expected.is_some_and(|len| len != n) {
        let _ = std::fs::remove_file(&tmp);
        return Err(ForgeError::new(
            ErrorKind::Network,
            "download shorter than announced",
        ));
    }
    file.sync_all()
        .map_err(|e| ForgeError::local(format!("writing {}: {e}", tmp.display())))?;
    std::fs::rename(&tmp, dest)
        .map_err(|e| ForgeError::local(format!("renaming to {}: {e}", dest.display())))?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_next_link() {
        let mut h = HeaderMap::new();
        h.insert(
            reqwest::header::LINK,
            HeaderValue::from_static(
                "<https://api.x/r?page=1>; rel=\"prev\", <https://api.x/r?page=3>; rel=\"next\", <https://api.x/r?page=9>; rel=\"last\"",
            ),
        );
        assert_eq!(
            next_link(&h).map(|u| u.to_string()).as_deref(),
            Some("https://api.x/r?page=3")
        );
        assert!(next_link(&HeaderMap::new()).is_none());
    }

    #[test]
    fn messages_are_cut_and_cleaned() {
        assert_eq!(api_message(r#"{"message":"Not\u0007 Found"}"#), "Not Found");
        assert_eq!(api_message("<html>"), "");
    }
}
