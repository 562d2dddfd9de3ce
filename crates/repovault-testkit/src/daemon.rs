//! `git daemon` (git://) on 127.0.0.1.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

use crate::process::{log_tails, on_free_port, spawn_listening, ServerProcess};
use crate::{absolute, git_exec_program, repo_rel_path, server_path_var, write_server_gitconfig};

/// `git daemon --export-all --enable=receive-pack` serving `repos_root` as its base path.
/// No authentication: anyone on loopback may fetch and push.
#[derive(Debug)]
pub struct GitDaemon {
    port: u16,
    process: Option<ServerProcess>,
    dir: TempDir,
}

impl GitDaemon {
    pub fn start(repos_root: &Path) -> io::Result<Self> {
        // git daemon checks the resolved path of each repo against its whitelist.
        let repos_root = absolute(repos_root)?;
        let dir = tempfile::Builder::new()
            .prefix("repovault-daemon-")
            .tempdir()?;
        let gitconfig = write_server_gitconfig(dir.path())?;
        let log = dir.path().join("daemon.log");
        // git-daemon itself, not `git daemon`: the wrapper would stay in between as a parent
        // process, and its PID is not the one that logs "Ready" or accepts connections.
        let program = git_exec_program("git-daemon")?;
        let (port, process) = on_free_port("git daemon", |port| {
            let mut cmd = Command::new(&program);
            cmd.arg("--listen=127.0.0.1")
                .arg(format!("--port={port}"))
                .arg(format!("--base-path={}", repos_root.display()))
                .arg("--export-all")
                .arg("--enable=receive-pack")
                .arg("--informative-errors")
                .arg("--reuseaddr")
                .arg("--verbose")
                .arg(&repos_root)
                .current_dir(dir.path())
                .env_clear()
                .env("PATH", server_path_var())
                .env("HOME", dir.path())
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .env("GIT_CONFIG_GLOBAL", &gitconfig);
            // With --verbose, logged once every listening socket is bound.
            spawn_listening("git daemon", &mut cmd, port, &log, |p| {
                format!("[{}] Ready to rumble", p.pid().unwrap_or_default())
            })
        })?;
        Ok(GitDaemon {
            port,
            process: Some(process),
            dir,
        })
    }

    /// "git://127.0.0.1:PORT/owner/name.git"
    pub fn url(&self, owner_name: &str) -> String {
        format!(
            "git://127.0.0.1:{}/{}",
            self.port,
            repo_rel_path(owner_name)
        )
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The daemon's log (one line per connection with --verbose), for failure messages.
    pub fn logs(&self) -> String {
        log_tails(&[self.log_path()])
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("daemon.log")
    }

    pub fn pids(&self) -> Vec<u32> {
        self.process.iter().filter_map(ServerProcess::pid).collect()
    }

    /// SIGTERM (after its connection handlers), SIGKILL after a bounded wait. Idempotent; also
    /// done by `Drop`.
    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.stop("TERM", true);
        }
    }
}

impl Drop for GitDaemon {
    fn drop(&mut self) {
        self.stop();
    }
}
