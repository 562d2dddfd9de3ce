//! Running the repovault binary in an isolated environment and checking restored repositories.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use repovault_testkit::{fixtures, TestEnv};

pub const PASSWORD: &str = "correct horse battery staple";

/// One store, one cache and one password, in the test's temp dir.
pub struct Rv<'a> {
    pub env: &'a TestEnv,
    pub store: PathBuf,
    pub cache: PathBuf,
    /// Extra environment for repovault and restic (e.g. S3 credentials).
    pub extra_env: Vec<(String, String)>,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }

    #[track_caller]
    pub fn ok(self) -> Self {
        assert_eq!(
            self.code, 0,
            "stdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

impl<'a> Rv<'a> {
    /// A new, initialised store.
    pub fn new(env: &'a TestEnv) -> Self {
        let rv = Self::uninitialised(env);
        rv.run(&["init"]).ok();
        rv
    }

    pub fn uninitialised(env: &'a TestEnv) -> Self {
        Self {
            store: env.root().join("store"),
            cache: env.root().join("cache"),
            extra_env: Vec::new(),
            env,
        }
    }

    pub fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_repovault"));
        for (k, _) in std::env::vars() {
            if k.starts_with("REPOVAULT_") || k.starts_with("GIT_") {
                cmd.env_remove(k);
            }
        }
        cmd.envs(self.env.git_env())
            .env("REPOVAULT_STORE", &self.store)
            .env("REPOVAULT_CACHE_DIR", &self.cache)
            .env("REPOVAULT_PASSWORD", PASSWORD)
            .envs(self.extra_env.iter().cloned())
            .stdin(std::process::Stdio::null());
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Run {
        output(self.command().args(args).output().expect("repovault runs"))
    }

    pub fn run_with(&self, args: &[&str], f: impl FnOnce(&mut Command)) -> Run {
        let mut cmd = self.command();
        cmd.args(args);
        f(&mut cmd);
        output(cmd.output().expect("repovault runs"))
    }

    /// Writes a config file and returns its path.
    pub fn config(&self, text: &str) -> PathBuf {
        let path = self.env.root().join("repovault.toml");
        std::fs::write(&path, text).expect("write config");
        path
    }

    /// `repovault backup --config <config> --json` started in the background, its output piped.
    pub fn spawn_backup(&self, config: &Path) -> std::process::Child {
        self.command()
            .args([
                "backup",
                "--config",
                config.to_str().expect("utf-8 path"),
                "--json",
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("backup starts")
    }

    pub fn backup_config(&self, config: &Path) -> Run {
        self.run(&[
            "backup",
            "--config",
            config.to_str().expect("utf-8 path"),
            "--json",
        ])
    }

    /// Restores `repo` (latest, or the given snapshot) into a fresh dir and returns it.
    pub fn restore(&self, repo: &str, snapshot: Option<&str>, to: &Path) -> Run {
        let mut args = vec![
            "restore",
            repo,
            "--to",
            to.to_str().expect("utf-8 path"),
            "--json",
        ];
        if let Some(s) = snapshot {
            args.extend(["--snapshot", s]);
        }
        self.run(&args)
    }

    pub fn snapshots(&self, repo: &str) -> Vec<serde_json::Value> {
        let run = self.run(&["snapshots", "--repo", repo, "--json"]).ok();
        run.json().as_array().cloned().unwrap_or_default()
    }
}

/// The standard fixture as `acme/app` (a bare repo that is also its URL), a new store, and one
/// backup of it.
pub fn backed_up_standard(env: &TestEnv) -> (PathBuf, Rv<'_>) {
    let bare = fixtures::standard(env, &env.root().join("repos"), "acme/app");
    let rv = Rv::new(env);
    rv.backup_url(&bare);
    (bare, rv)
}

impl Rv<'_> {
    /// `repovault backup --url <path>`, which must succeed.
    pub fn backup_url(&self, repo: &Path) -> Run {
        self.run(&[
            "backup",
            "--url",
            repo.to_str().expect("utf-8 path"),
            "--json",
        ])
        .ok()
    }
}

fn output(out: Output) -> Run {
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `(refname, oid)` pairs of any repository, sorted.
pub fn refs_of(env: &TestEnv, repo: &Path) -> Vec<(String, String)> {
    let out = env.git(repo, &["for-each-ref", "--format=%(refname) %(objectname)"]);
    let mut v: Vec<(String, String)> = out
        .lines()
        .filter_map(|l| l.split_once(' ').map(|(a, b)| (a.to_owned(), b.to_owned())))
        .collect();
    v.sort();
    v
}

pub fn head_of(env: &TestEnv, repo: &Path) -> String {
    env.git(repo, &["symbolic-ref", "HEAD"])
}

/// The repository at `restored` has exactly `want` refs, HEAD `head` and passes fsck.
#[track_caller]
pub fn assert_restored(env: &TestEnv, restored: &Path, want: &[(String, String)], head: &str) {
    assert_eq!(
        refs_of(env, restored),
        want,
        "refs of {}",
        restored.display()
    );
    assert_eq!(head_of(env, restored), head);
    env.git(restored, &["fsck", "--full", "--strict"]);
}

pub fn repo_report<'v>(report: &'v serde_json::Value, repo: &str) -> &'v serde_json::Value {
    report["repos"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["repo"] == repo))
        .unwrap_or_else(|| panic!("no report for {repo} in {report:#}"))
}

/// Runs git with `stdin` and returns its raw stdout.
pub fn git_bytes(env: &TestEnv, dir: &Path, args: &[&str], stdin: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut child = Command::new("git")
        .args(args)
        .current_dir(dir)
        .envs(env.git_env())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("git runs");
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(stdin)
        .expect("write stdin");
    let out = child.wait_with_output().expect("git finishes");
    assert!(out.status.success(), "git {args:?} failed");
    out.stdout
}

/// Runs restic on the store (scripts/test-deps.sh installs it) and returns its stdout.
pub fn restic(rv: &Rv<'_>, args: &[&str]) -> String {
    let out = Command::new("restic")
        .args(["-r", rv.store.to_str().expect("utf-8"), "--no-cache"])
        .args(args)
        .env("RESTIC_PASSWORD", PASSWORD)
        .envs(rv.extra_env.iter().cloned())
        .output()
        .expect("restic runs (scripts/test-deps.sh installs it)");
    assert!(
        out.status.success(),
        "restic {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
