//! Running the git CLI: a clean, non-interactive environment, an optional time limit, and
//! redacted errors.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::error::{classify, FailureKind};
use crate::{redact, GitError};

/// One git invocation.
pub(crate) struct Git<'a> {
    operation: &'a str,
    args: Vec<String>,
    dir: Option<&'a Path>,
    env: Vec<(String, String)>,
    stdin: Option<Vec<u8>>,
    timeout: Option<Duration>,
}

pub(crate) struct Output {
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Output {
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

impl<'a> Git<'a> {
    pub fn new(operation: &'a str) -> Self {
        Self {
            operation,
            args: Vec::new(),
            dir: None,
            env: Vec::new(),
            stdin: None,
            timeout: None,
        }
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    pub fn arg(mut self, arg: impl AsRef<str>) -> Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    pub fn git_dir(mut self, dir: &'a Path) -> Self {
        self.dir = Some(dir);
        self
    }

    pub fn envs(mut self, env: Vec<(String, String)>) -> Self {
        self.env.extend(env);
        self
    }

    pub fn stdin(mut self, input: Vec<u8>) -> Self {
        self.stdin = Some(input);
        self
    }

    pub fn timeout(mut self, limit: Option<Duration>) -> Self {
        self.timeout = limit;
        self
    }

    /// Runs git; a non-zero exit becomes a [`GitError::Command`] with redacted stderr.
    pub fn run(self) -> Result<Output, GitError> {
        let operation = self.operation.to_owned();
        let (status, out) = self.run_status()?;
        if status {
            Ok(out)
        } else {
            Err(GitError::Command {
                kind: classify(&out.stderr),
                message: last_lines(&out.stderr),
                operation,
            })
        }
    }

    /// Runs git and returns whether it succeeded along with its output.
    pub fn run_status(self) -> Result<(bool, Output), GitError> {
        let mut cmd = Command::new("git");
        if let Some(dir) = self.dir {
            cmd.arg("--git-dir").arg(dir);
        }
        if self
            .env
            .iter()
            .any(|(k, v)| k.starts_with("GIT_CONFIG_KEY_") && v.ends_with(".sslCAInfo"))
        {
            // GIT_SSL_CAINFO outranks every http.*.sslCAInfo setting; with a CA bundle for the
            // remote's origin, it would make git (and git-lfs) ignore that bundle.
            cmd.env_remove("GIT_SSL_CAINFO");
        }
        cmd.args(&self.args)
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("LC_ALL", "C")
            .env_remove("GIT_ASKPASS")
            .env_remove("SSH_ASKPASS")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own process group, so a time-out also stops the transport helpers git starts
            // (git-remote-http, ssh), which would otherwise keep the pipes open.
            .process_group(0);
        let mut child = cmd.spawn().map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                GitError::Command {
                    operation: self.operation.to_owned(),
                    kind: FailureKind::Tooling,
                    message: "the `git` program was not found on PATH".into(),
                }
            } else {
                GitError::io(format!("starting git {}", self.operation), e)
            }
        })?;
        let feeder = match (self.stdin, child.stdin.take()) {
            (Some(input), Some(mut pipe)) => Some(std::thread::spawn(move || {
                // A broken pipe only means git stopped reading; its exit status says why.
                let _ = pipe.write_all(&input);
            })),
            _ => None,
        };
        let mut stdout_pipe = child.stdout.take();
        let mut stderr_pipe = child.stderr.take();
        let out_reader = std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(p) = stdout_pipe.as_mut() {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        });
        let err_reader = std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(p) = stderr_pipe.as_mut() {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        });
        let pid = child.id();
        let watchdog = self.timeout.map(|limit| Watchdog::start(pid, limit));
        let status = child.wait();
        let timed_out = watchdog.is_some_and(Watchdog::stop);
        let status = status.map_err(|e| GitError::io("waiting for git", e))?;
        if let Some(f) = feeder {
            let _ = f.join();
        }
        let stdout = out_reader.join().unwrap_or_default();
        let stderr = redact(&String::from_utf8_lossy(
            &err_reader.join().unwrap_or_default(),
        ));
        if timed_out {
            return Err(GitError::Command {
                operation: self.operation.to_owned(),
                kind: FailureKind::Timeout,
                message: format!(
                    "stopped after {}s without finishing",
                    self.timeout.map_or(0, |t| t.as_secs())
                ),
            });
        }
        Ok((status.success(), Output { stdout, stderr }))
    }
}

/// Stops a git process group that runs past its time limit. Waiting is left to the caller's
/// blocking `wait`, so a git call costs no polling delay.
struct Watchdog {
    done: mpsc::Sender<()>,
    handle: std::thread::JoinHandle<bool>,
}

impl Watchdog {
    fn start(pid: u32, limit: Duration) -> Self {
        let (done, rx) = mpsc::channel::<()>();
        let handle = std::thread::spawn(move || match rx.recv_timeout(limit) {
            Err(mpsc::RecvTimeoutError::Timeout) => {
                kill_group(pid);
                true
            }
            _ => false,
        });
        Self { done, handle }
    }

    /// Ends the watch after the process was reaped; returns whether it had to kill.
    fn stop(self) -> bool {
        let _ = self.done.send(());
        self.handle.join().unwrap_or(false)
    }
}

fn kill_group(pid: u32) {
    use nix::sys::signal::{killpg, Signal};
    use nix::unistd::Pid;
    if let Ok(pid) = i32::try_from(pid) {
        // The group may already be gone; there is nothing else to do then.
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    }
}

/// The useful tail of git's stderr: progress lines dropped, at most a few lines kept.
fn last_lines(stderr: &str) -> String {
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.contains('\r'))
        .collect();
    let start = lines.len().saturating_sub(4);
    let text = lines[start..].join(" | ");
    if text.is_empty() {
        "git exited with an error and printed nothing".into()
    } else {
        text
    }
}
