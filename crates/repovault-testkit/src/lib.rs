//! Real git servers on 127.0.0.1 and scripted fixture repositories for repovault's tests.
//!
//! Servers ([`GitHttpServer`], [`GitDaemon`], [`SshServer`]) run as child processes of the test
//! with their configuration, logs and temp files in their own temp dir, listen on free random
//! ports, and are stopped by PID in `Drop` (so also when a test panics). Fixtures
//! ([`fixtures`]) and upstream mutations ([`upstream`]) use fixed names and dates so object
//! ids are the same on every run. Nothing here touches the network beyond loopback.

// serde_json's `json!` recurses once per field; GitHub's objects have many.
#![recursion_limit = "256"]

mod daemon;
pub mod fixtures;
pub mod forge;
mod gitcmd;
mod http;
mod process;
mod s3;
mod ssh;
pub mod upstream;

use std::collections::HashSet;
use std::io;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use tempfile::TempDir;

pub use daemon::GitDaemon;
pub use forge::{ForgeSim, SimOptions};
pub use gitcmd::{GitEnv, TEST_EMAIL, TEST_EPOCH, TEST_NAME};
pub use http::{basic_auth_header, GitHttpServer};
pub use process::pid_exists;
pub use s3::{S3Kind, S3Server, S3_ACCESS_KEY, S3_REGION, S3_SECRET_KEY};
pub use ssh::SshServer;

/// A free TCP port on 127.0.0.1.
///
/// The port is released before it is returned, so another process could take it before the
/// server binds it; the servers retry on "address in use". Within this process a port is never
/// handed out twice, which removes the likely race: parallel tests of one test binary asking at
/// the same moment.
pub fn free_port() -> u16 {
    static HANDED_OUT: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    let handed_out = HANDED_OUT.get_or_init(Default::default);
    for _ in 0..1000 {
        let listener =
            TcpListener::bind(("127.0.0.1", 0)).expect("binding 127.0.0.1:0 to find a free port");
        let port = listener
            .local_addr()
            .expect("reading the local address of a bound listener")
            .port();
        drop(listener);
        let mut seen = handed_out
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if seen.insert(port) {
            return port;
        }
    }
    panic!("no unused free port found on 127.0.0.1 after 1000 tries")
}

/// A temp dir for one test, with an isolated git environment inside it.
#[derive(Debug)]
pub struct TestEnv {
    dir: TempDir,
    git: GitEnv,
}

impl TestEnv {
    /// Panics if the temp dir cannot be created (a test cannot proceed without it).
    pub fn new() -> TestEnv {
        Self::try_new().expect("creating a test environment in the temp dir")
    }

    pub fn try_new() -> io::Result<TestEnv> {
        let dir = tempfile::Builder::new()
            .prefix("repovault-test-")
            .tempdir()?;
        let git = GitEnv::create(&dir.path().join("home"))?;
        Ok(TestEnv { dir, git })
    }

    /// Root of the temp dir; removed when the `TestEnv` is dropped.
    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// The variables every git invocation in tests should use (see [`GitEnv::create`]).
    pub fn git_env(&self) -> Vec<(String, String)> {
        self.git.vars().to_vec()
    }

    /// The isolation itself, for [`GitEnv::apply`] on other commands.
    pub fn git_isolation(&self) -> &GitEnv {
        &self.git
    }

    /// A `git` command in `dir` with the isolated environment, for cases the helpers below do
    /// not cover (expected failures, stdin, extra variables).
    pub fn git_command(&self, dir: &Path) -> Command {
        self.git.command(dir)
    }

    /// Runs git in `dir` and returns its stdout, trimmed. Panics with stderr on failure.
    pub fn git(&self, dir: &Path, args: &[&str]) -> String {
        self.git_with_env(dir, args, &[])
    }

    /// Like [`TestEnv::git`] with extra variables (e.g. [`GitHttpServer::auth_env`]).
    pub fn git_with_env(&self, dir: &Path, args: &[&str], envs: &[(String, String)]) -> String {
        let mut cmd = self.git_command(dir);
        cmd.args(args).envs(envs.iter().map(|(k, v)| (k, v)));
        match gitcmd::run(&mut cmd, None) {
            Ok(stdout) => gitcmd::trimmed(&stdout),
            Err(e) => panic!("{e}"),
        }
    }

    /// A new, empty directory under [`TestEnv::root`] whose name starts with `prefix`.
    pub fn fresh_dir(&self, prefix: &str) -> PathBuf {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        loop {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let dir = self.root().join(format!("{prefix}-{n}"));
            match std::fs::create_dir(&dir) {
                Ok(()) => return dir,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => panic!("creating {}: {e}", dir.display()),
            }
        }
    }
}

impl Default for TestEnv {
    fn default() -> Self {
        Self::new()
    }
}

/// "owner/name" → "owner/name.git" (an explicit ".git" suffix is kept as is).
pub(crate) fn repo_rel_path(owner_name: &str) -> String {
    let trimmed = owner_name.trim_matches('/');
    if trimmed.ends_with(".git") {
        trimmed.to_owned()
    } else {
        format!("{trimmed}.git")
    }
}

/// `path` made absolute and free of symlinks where possible: git daemon and sshd compare and
/// print resolved paths, so URLs built from an unresolved /tmp symlink would not match.
pub(crate) fn absolute(path: &Path) -> io::Result<PathBuf> {
    match path.canonicalize() {
        Ok(p) => Ok(p),
        Err(_) => std::path::absolute(path),
    }
}

/// Whether this process runs as root (nginx then needs `user root;` to read repos in 0700 temp
/// dirs, and sshd needs /run/sshd).
pub(crate) fn running_as_root() -> bool {
    current_user_id().map(|id| id == 0).unwrap_or(false)
}

fn current_user_id() -> Option<u32> {
    static UID: OnceLock<Option<u32>> = OnceLock::new();
    *UID.get_or_init(|| {
        let out = Command::new("id").arg("-u").output().ok()?;
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    })
}

/// Login name of the user running the tests, for ssh URLs.
pub(crate) fn current_user_name() -> io::Result<String> {
    let out = Command::new("id").arg("-un").output()?;
    let name = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if !out.status.success() || name.is_empty() {
        return Err(io::Error::other(format!(
            "`id -un` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(name)
}

/// Writes the server-side global git config into a server's dir: no gc behind a test's back,
/// and repos owned by another user are still served.
pub(crate) fn write_server_gitconfig(dir: &Path) -> io::Result<PathBuf> {
    let path = dir.join("gitconfig");
    std::fs::write(
        &path,
        "[gc]\n\tauto = 0\n[maintenance]\n\tauto = false\n[receive]\n\tautogc = false\n\
         [safe]\n\tdirectory = *\n[uploadpack]\n\tallowFilter = true\n",
    )?;
    Ok(path)
}

/// PATH for server children, whose environment is otherwise cleared so the developer's git
/// variables cannot leak into the server side.
pub(crate) fn server_path_var() -> String {
    std::env::var("PATH")
        .unwrap_or_else(|_| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into())
}

/// `name` in `git --exec-path`, for git programs that must be started directly rather than
/// through the `git` wrapper (which would be the PID we hold instead of the server's).
pub(crate) fn git_exec_program(name: &str) -> io::Result<PathBuf> {
    static EXEC_PATH: OnceLock<Option<PathBuf>> = OnceLock::new();
    let exec_path = EXEC_PATH.get_or_init(|| {
        let out = Command::new("git").arg("--exec-path").output().ok()?;
        let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        (out.status.success() && !path.is_empty()).then(|| PathBuf::from(path))
    });
    let program = exec_path.as_ref().map(|dir| dir.join(name));
    match program {
        Some(program) if program.exists() => Ok(program),
        _ => Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{name} not found in git's exec path ({exec_path:?})"),
        )),
    }
}
