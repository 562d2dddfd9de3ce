//! A GitHub REST API simulator ("forge simulator") for tests and benchmarks.
//!
//! [`ForgeSim::start`] builds a fixture (accounts, repositories with real git history, issues,
//! pull requests, releases, LFS objects, gists, a GitHub App), starts the testkit's
//! [`GitHttpServer`](crate::GitHttpServer) over its bare repositories, and serves on one
//! HTTPS port (a generated CA, see [`ForgeSim::ca_path`]):
//!
//! - the REST API at the root (api.github.com style) and under `/api/v3` (Enterprise style),
//!   with GitHub's JSON shapes, `Link` pagination, weak ETags and `304 Not Modified`, a real
//!   primary rate-limit budget with GitHub's headers, and secondary limits on demand;
//! - git over HTTPS (`/<owner>/<repo>.git`, `.wiki.git`, `/gist/<id>.git`) through a
//!   streaming proxy to the git server, after GitHub-style credential checks;
//! - the Git LFS batch API and release asset downloads;
//! - an admin API under `/_sim/` for knobs, mutations, the request log and the data dump.
//!
//! Tests drive the same knobs and mutations through methods. docs/FORGE-SIMULATOR.md describes
//! the fixtures, the knobs and what is faithful or simplified.

mod admin;
mod api;
mod auth;
mod dump;
mod fixture;
mod git;
mod graphql;
mod http;
mod limits;
mod log;
mod model;
mod mutate;
mod objects;
mod render;
mod server;
mod state;
mod tls;
mod util;

use std::io;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::runtime::Runtime;

pub use dump::ApiStyle;
pub use fixture::{Fixture, FixtureParseError};
pub use limits::{FaultScope, LfsBreak, RepoFault, SecondaryLimit};
pub use log::{RequestKind, RequestRecord, RequestSummary};
pub use mutate::{IssueEdit, SimError};

use crate::{GitHttpServer, TestEnv};
use state::{Shared, SimState};

/// How to start the simulator.
#[derive(Debug, Clone)]
pub struct SimOptions {
    pub fixture: Fixture,
    /// Where to listen; port 0 picks a free one. Only loopback addresses make sense.
    pub listen: SocketAddr,
    /// Length of a primary rate-limit window (GitHub: an hour).
    pub rate_window: Duration,
    /// Lifetime of installation tokens (GitHub: an hour).
    pub token_lifetime: Duration,
}

impl SimOptions {
    pub fn new(fixture: Fixture) -> SimOptions {
        SimOptions {
            fixture,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            rate_window: Duration::from_secs(3600),
            token_lifetime: Duration::from_secs(3600),
        }
    }
}

/// Credentials of the fixture's GitHub App.
#[derive(Debug, Clone)]
pub struct AppCredentials {
    pub app_id: u64,
    pub client_id: String,
    pub slug: String,
    /// PKCS#8 PEM, mode 0600.
    pub private_key_path: PathBuf,
    /// (account login, installation id).
    pub installations: Vec<(String, u64)>,
}

/// A running simulator. Dropping it stops the server and the git server.
pub struct ForgeSim {
    shared: Arc<Shared>,
    runtime: Option<Runtime>,
    git: Option<GitHttpServer>,
    addr: SocketAddr,
    ca_path: PathBuf,
    fixture: Fixture,
    build_time: Duration,
    data_dir: PathBuf,
}

impl std::fmt::Debug for ForgeSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForgeSim")
            .field("addr", &self.addr)
            .field("fixture", &self.fixture)
            .finish_non_exhaustive()
    }
}

impl ForgeSim {
    /// Starts a simulator serving `fixture` on a free port of 127.0.0.1.
    pub fn start(fixture: Fixture) -> io::Result<ForgeSim> {
        ForgeSim::start_with(SimOptions::new(fixture))
    }

    pub fn start_with(opts: SimOptions) -> io::Result<ForgeSim> {
        let started = Instant::now();
        // Bound first: a taken port fails before minutes of fixture building.
        let listener = StdListener::bind(opts.listen)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let env = TestEnv::try_new()?;
        let root = env.root().to_path_buf();
        let repos_root = root.join("repos");
        let lfs_root = root.join("lfs");
        let keys = root.join("keys");
        for d in [&repos_root, &lfs_root, &keys] {
            std::fs::create_dir_all(d)?;
        }
        let world = fixture::build(
            &opts.fixture,
            &fixture::BuildDirs {
                env: env.git_isolation(),
                repos_root: &repos_root,
                lfs_root: &lfs_root,
                keys_dir: &keys,
            },
        )?;
        let build_time = started.elapsed();
        let tls = tls::generate(&keys)?;
        let secret = util::random_secret();
        let git_password = util::sign(&secret, "git-server");
        let git = GitHttpServer::start(&repos_root, "forge-sim", &git_password)?;
        let web = format!("https://{addr}");
        let mut auth = auth::AuthState::new(secret);
        auth.token_lifetime_secs = opts.token_lifetime.as_secs().max(1);
        let mut limits = limits::Limits::default();
        limits.set_window(opts.rate_window);
        let info = info(
            &world,
            &web,
            &tls.ca_path,
            &root,
            &opts.fixture,
            &git.pids(),
        );
        let shared = Arc::new(Shared {
            state: Mutex::new(SimState {
                world,
                auth,
                limits,
                faults: Default::default(),
                log: Default::default(),
                secret,
            }),
            web,
            hostname: addr.ip().to_string(),
            repos_root,
            lfs_root,
            git_port: git.port(),
            git_basic: crate::basic_auth_header("forge-sim", &git_password),
            env,
            info,
        });
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("forge-sim")
            .enable_all()
            .build()?;
        let acceptor = tokio_rustls::TlsAcceptor::from(tls.config.clone());
        let serve_shared = shared.clone();
        runtime.spawn(async move {
            if let Ok(l) = tokio::net::TcpListener::from_std(listener) {
                server::run(l, acceptor, serve_shared).await;
            }
        });
        Ok(ForgeSim {
            shared,
            runtime: Some(runtime),
            git: Some(git),
            addr,
            ca_path: tls.ca_path,
            fixture: opts.fixture,
            build_time,
            data_dir: root,
        })
    }

    /// `https://127.0.0.1:PORT`: html URLs, clone URLs, and the api.github.com-style API root.
    pub fn base_url(&self) -> String {
        self.shared.web.clone()
    }

    /// The API root in api.github.com style (the same as [`ForgeSim::base_url`]).
    pub fn api_url(&self) -> String {
        self.shared.web.clone()
    }

    /// The API root in Enterprise style: `https://127.0.0.1:PORT/api/v3`.
    pub fn enterprise_api_url(&self) -> String {
        format!("{}/api/v3", self.shared.web)
    }

    /// `127.0.0.1:PORT`, what python-github-backup's `-H` takes.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn fixture(&self) -> &Fixture {
        &self.fixture
    }

    /// How long building the fixture took.
    pub fn build_time(&self) -> Duration {
        self.build_time
    }

    /// The simulator's files (repositories, LFS objects, keys); removed on drop.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The PEM file of the CA that signed the server certificate.
    pub fn ca_path(&self) -> &Path {
        &self.ca_path
    }

    /// The classic token of the fixture's main user (an owner of the fixture's organization).
    pub fn token(&self) -> String {
        let st = self.shared.lock();
        st.world
            .user_tokens
            .first()
            .map(|(t, _)| t.clone())
            .unwrap_or_default()
    }

    /// The login the main token belongs to.
    pub fn token_owner(&self) -> String {
        let st = self.shared.lock();
        st.world
            .user_tokens
            .first()
            .map(|(_, l)| l.clone())
            .unwrap_or_default()
    }

    /// The classic token of `login`, if the fixture gave it one.
    pub fn user_token(&self, login: &str) -> Option<String> {
        let st = self.shared.lock();
        st.world
            .user_tokens
            .iter()
            .find(|(_, l)| l.eq_ignore_ascii_case(login))
            .map(|(t, _)| t.clone())
    }

    /// The fixture's GitHub App.
    pub fn app(&self) -> Option<AppCredentials> {
        let st = self.shared.lock();
        let app = st.world.apps.first()?;
        Some(AppCredentials {
            app_id: app.id,
            client_id: app.client_id.clone(),
            slug: app.slug.clone(),
            private_key_path: app.private_key_path.clone(),
            installations: st
                .world
                .installations
                .iter()
                .filter(|i| i.app_id == app.id)
                .map(|i| (i.account.clone(), i.id))
                .collect(),
        })
    }

    /// `https://127.0.0.1:PORT/<owner>/<name>.git`.
    pub fn clone_url(&self, full_name: &str) -> String {
        format!("{}/{full_name}.git", self.shared.web)
    }

    /// The bare repository behind `owner/name` (also `owner/name.wiki`, `gist/<id>`).
    pub fn repo_path(&self, full_name: &str) -> PathBuf {
        self.shared.repos_root.join(format!("{full_name}.git"))
    }

    /// Variables for a git child that trusts the CA and sends `token` as Basic credentials
    /// (through GIT_CONFIG_*, so it appears in neither argv nor URLs).
    pub fn git_env(&self, token: &str) -> Vec<(String, String)> {
        vec![
            ("GIT_SSL_CAINFO".into(), self.ca_path.display().to_string()),
            ("GIT_CONFIG_COUNT".into(), "1".into()),
            (
                "GIT_CONFIG_KEY_0".into(),
                format!("http.{}/.extraHeader", self.shared.web),
            ),
            (
                "GIT_CONFIG_VALUE_0".into(),
                format!(
                    "Authorization: {}",
                    crate::basic_auth_header("x-access-token", token)
                ),
            ),
        ]
    }

    /// PIDs of the git server's processes (the simulator itself runs in this process).
    pub fn pids(&self) -> Vec<u32> {
        self.git
            .as_ref()
            .map(GitHttpServer::pids)
            .unwrap_or_default()
    }

    /// What `/_sim/info` serves: URLs, the token, the CA path, the App's credentials.
    pub fn info(&self) -> serde_json::Value {
        self.shared.info.clone()
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Stops the server and the git server. Idempotent; also done by `Drop`.
    pub fn stop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            // Not `drop`: that would block (and panic) inside an async test's runtime.
            rt.shutdown_background();
        }
        if let Some(mut git) = self.git.take() {
            git.stop();
        }
    }
}

/// The start-up facts a client needs, as `/_sim/info` and the binary print them.
fn info(
    world: &model::World,
    web: &str,
    ca_path: &Path,
    data_dir: &Path,
    fixture: &Fixture,
    git_pids: &[u32],
) -> serde_json::Value {
    let app = world.apps.first().map(|a| {
        serde_json::json!({
            "app_id": a.id,
            "client_id": a.client_id,
            "slug": a.slug,
            "private_key_path": a.private_key_path,
            "installations": world
                .installations
                .iter()
                .filter(|i| i.app_id == a.id)
                .map(|i| serde_json::json!({"account": i.account, "id": i.id}))
                .collect::<Vec<_>>(),
        })
    });
    let (token, owner) = world.user_tokens.first().cloned().unwrap_or_default();
    serde_json::json!({
        "fixture": fixture.to_string(),
        "organization": fixture.org(),
        "base_url": web,
        "api_url": web,
        "enterprise_api_url": format!("{web}/api/v3"),
        "token": token,
        "token_owner": owner,
        "ca_path": ca_path,
        "app": app,
        "data_dir": data_dir,
        "git_server_pids": git_pids,
    })
}

impl Drop for ForgeSim {
    fn drop(&mut self) {
        self.stop();
    }
}
