//! Running a command so that a test can SIGKILL it at any moment and be sure nothing it started
//! outlives it (see `scripts/reaper.py`): the model of a crash of the machine or container.

use std::io;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::Duration;

use tempfile::TempDir;

const SCRIPT: &str = include_str!("../scripts/reaper.py");

/// How a reaped command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReapedExit {
    Code(i32),
    Signal(i32),
}

/// A command running under the reaper, with stdout and stderr captured in files.
pub struct Reaped {
    reaper: Child,
    dir: TempDir,
    pid: Option<u32>,
}

/// What the command printed and how it ended.
#[derive(Debug)]
pub struct ReapedOutput {
    pub exit: ReapedExit,
    pub stdout: String,
    pub stderr: String,
}

impl Reaped {
    /// Starts `cmd` (program, arguments, environment changes and directory are taken from it)
    /// under `python3` with the reaper script.
    pub fn spawn(cmd: &Command) -> io::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("repovault-reaper-")
            .tempdir()?;
        let mut reaper = Command::new("python3");
        reaper
            .arg("-c")
            .arg(SCRIPT)
            .arg(dir.path().join("pid"))
            .arg(cmd.get_program())
            .args(cmd.get_args());
        for (k, v) in cmd.get_envs() {
            match v {
                Some(v) => reaper.env(k, v),
                None => reaper.env_remove(k),
            };
        }
        if let Some(d) = cmd.get_current_dir() {
            reaper.current_dir(d);
        }
        let out = std::fs::File::create(dir.path().join("stdout"))?;
        let err = std::fs::File::create(dir.path().join("stderr"))?;
        let reaper = reaper
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()?;
        Ok(Self {
            reaper,
            dir,
            pid: None,
        })
    }

    fn pid_file(&self) -> PathBuf {
        self.dir.path().join("pid")
    }

    /// The command's PID; waits (at most 10 s) for the reaper to have started it.
    pub fn pid(&mut self) -> io::Result<u32> {
        if let Some(pid) = self.pid {
            return Ok(pid);
        }
        for _ in 0..1000 {
            if let Ok(text) = std::fs::read_to_string(self.pid_file()) {
                let pid = text
                    .trim()
                    .parse()
                    .map_err(|e| io::Error::other(format!("reaper pid file {text:?}: {e}")))?;
                self.pid = Some(pid);
                return Ok(pid);
            }
            if let Some(status) = self.reaper.try_wait()? {
                return Err(io::Error::other(format!(
                    "the reaper exited ({status}) before starting the command: {}",
                    std::fs::read_to_string(self.dir.path().join("stderr")).unwrap_or_default()
                )));
            }
            thread::sleep(Duration::from_millis(10));
        }
        Err(io::Error::other(
            "the reaper did not start the command within 10 s",
        ))
    }

    /// Waits (at most `limit`) until the command has printed `needle` on stderr; false if it
    /// ended or the time ran out first.
    pub fn wait_for_stderr(&mut self, needle: &str, limit: Duration) -> io::Result<bool> {
        let path = self.dir.path().join("stderr");
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline {
            if std::fs::read_to_string(&path).is_ok_and(|t| t.contains(needle)) {
                return Ok(true);
            }
            if self.reaper.try_wait()?.is_some() {
                return Ok(false);
            }
            thread::sleep(Duration::from_millis(2));
        }
        Ok(false)
    }

    /// Sends SIGKILL to the command (not to the reaper, which then cleans up after it).
    /// Returns false if the command had already ended.
    pub fn kill(&mut self) -> io::Result<bool> {
        let pid = self.pid()?;
        let status = Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        Ok(status.success())
    }

    /// Waits for the command and everything it left behind.
    pub fn wait(mut self) -> io::Result<ReapedOutput> {
        let status = self.reaper.wait()?;
        let code = status
            .code()
            .ok_or_else(|| io::Error::other(format!("the reaper itself was killed: {status}")))?;
        let exit = if code > 128 {
            ReapedExit::Signal(code - 128)
        } else {
            ReapedExit::Code(code)
        };
        let read = |n: &str| std::fs::read_to_string(self.dir.path().join(n)).unwrap_or_default();
        Ok(ReapedOutput {
            exit,
            stdout: read("stdout"),
            stderr: read("stderr"),
        })
    }
}

impl Drop for Reaped {
    fn drop(&mut self) {
        if matches!(self.reaper.try_wait(), Ok(None)) {
            let _ = self.kill();
            let _ = self.reaper.wait();
        }
    }
}
