//! Lifetime of the server processes the testkit starts.
//!
//! Every server is a direct child of the test process, so its PID is ours to signal and ours to
//! reap. Signals go through the `kill` command because the workspace forbids `unsafe` (and with
//! it `libc::kill`).

use std::collections::{HashMap, VecDeque};
use std::fs::{self, File};
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::Duration;

/// How often and how long to poll for a server to come up or go away: 100 × 50 ms keeps a
/// broken server from stalling a test for more than a few seconds.
// 15 s: the Python-based S3 server needs a few seconds to import before it listens.
const POLL_ATTEMPTS: u32 = 300;
const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Only the end of a log matters for a failure message, and a chatty server must not bury the
/// assertion that failed.
const LOG_TAIL_BYTES: usize = 4096;

/// A server process started by the testkit.
#[derive(Debug)]
pub(crate) struct ServerProcess {
    name: &'static str,
    child: Option<Child>,
}

impl ServerProcess {
    /// Spawns `cmd` with stdin closed and stdout/stderr appended to `log`.
    ///
    /// The server must never hold the test's own stdout/stderr: if a test binary is killed, a
    /// surviving daemon holding those pipes would keep CI waiting for end of file forever.
    pub(crate) fn spawn(name: &'static str, cmd: &mut Command, log: &Path) -> io::Result<Self> {
        Self::spawn_with_stdin(name, cmd, Stdio::null(), log)
    }

    /// Like [`ServerProcess::spawn`], with a caller-supplied stdin (fcgiwrap takes its listening
    /// socket there).
    pub(crate) fn spawn_with_stdin(
        name: &'static str,
        cmd: &mut Command,
        stdin: Stdio,
        log: &Path,
    ) -> io::Result<Self> {
        let out = File::options().create(true).append(true).open(log)?;
        let err = out.try_clone()?;
        let child = cmd
            .stdin(stdin)
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("starting {name} ({:?}): {e}", cmd.get_program()),
                )
            })?;
        Ok(Self {
            name,
            child: Some(child),
        })
    }

    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// `Some(status)` once the process has exited (and has been reaped).
    pub(crate) fn exit_status(&mut self) -> Option<ExitStatus> {
        match self.child.as_mut().map(Child::try_wait) {
            Some(Ok(status)) => status,
            // try_wait only fails if the child was already reaped, i.e. it is gone.
            Some(Err(_)) | None => Some(ExitStatus::default()),
        }
    }

    /// Stops the process with `signal` (a `kill` signal name such as `TERM` or `QUIT`), falls
    /// back to SIGKILL after a bounded wait, and reaps it. Idempotent.
    ///
    /// Descendants are signalled first, while their parent is still alive to reap them: on
    /// machines whose PID 1 does not reap orphans (like the build machines), an orphan killed
    /// later would stay a zombie forever. This only matters when a connection is still being
    /// served at stop time.
    pub(crate) fn stop(&mut self, signal: &str, include_descendants: bool) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        let pid = child.id();
        if include_descendants {
            for descendant in descendants(pid).into_iter().rev() {
                send_signal(descendant, "TERM");
            }
        }
        if send_signal(pid, signal) {
            for _ in 0..POLL_ATTEMPTS {
                match child.try_wait() {
                    Ok(Some(_)) | Err(_) => return,
                    Ok(None) => thread::sleep(POLL_INTERVAL),
                }
            }
            eprintln!(
                "repovault-testkit: {} (pid {pid}) ignored SIG{signal}; killing it",
                self.name
            );
        }
        // SIGKILL through std: no `kill` binary needed, and it cannot be ignored.
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.stop("TERM", true);
    }
}

/// Sends `SIG<signal>` to `pid`; false if that could not be done (process gone, no `kill`).
fn send_signal(pid: u32, signal: &str) -> bool {
    Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// PIDs of all live descendants of `pid`, parents before children.
///
/// Read from /proc; elsewhere the list is empty and stopping falls back to the main process.
fn descendants(pid: u32) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for entry in entries.flatten() {
        let Some(child_pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // The command name (field 2) may contain spaces and parentheses, so parse after the
        // last ')': "<state> <ppid> ...".
        let Some(rest) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next();
        if state == Some("Z") {
            continue;
        }
        if let Some(ppid) = fields.next().and_then(|s| s.parse::<u32>().ok()) {
            children.entry(ppid).or_default().push(child_pid);
        }
    }
    let mut out = Vec::new();
    let mut queue = VecDeque::from([pid]);
    while let Some(p) = queue.pop_front() {
        for &c in children.get(&p).into_iter().flatten() {
            out.push(c);
            queue.push_back(c);
        }
    }
    out
}

/// Polls until 127.0.0.1:`port` accepts TCP connections and `ready_log` contains
/// `ready_marker`.
///
/// The marker (a line the server logs once it has bound its port) proves that it is *our*
/// server that accepts: another process may have taken the port [`crate::free_port`] returned.
/// Fails early when `process` exits (with `io::ErrorKind::AddrInUse` if a log says so, so the
/// caller can retry on another port) and includes the tails of `logs` in every error.
/// Spawns a server that logs to one file and waits until it listens on `port` and has logged
/// `marker(&process)` (a marker may name the server's PID, known only after the spawn).
pub(crate) fn spawn_listening(
    name: &'static str,
    cmd: &mut Command,
    port: u16,
    log: &Path,
    marker: impl FnOnce(&ServerProcess) -> String,
) -> io::Result<(u16, ServerProcess)> {
    let mut process = ServerProcess::spawn(name, cmd, log)?;
    let marker = marker(&process);
    wait_until_listening(&mut process, port, log, &marker, &[log.to_path_buf()])?;
    Ok((port, process))
}

pub(crate) fn wait_until_listening(
    process: &mut ServerProcess,
    port: u16,
    ready_log: &Path,
    ready_marker: &str,
    logs: &[PathBuf],
) -> io::Result<()> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    for _ in 0..POLL_ATTEMPTS {
        if let Some(status) = process.exit_status() {
            let tails = log_tails(logs);
            let kind = if tails.contains("Address already in use") {
                io::ErrorKind::AddrInUse
            } else {
                io::ErrorKind::Other
            };
            return Err(io::Error::new(
                kind,
                format!(
                    "{} exited ({status}) before listening on {addr}\n{tails}",
                    process.name
                ),
            ));
        }
        // The log first: every bare connect shows up in the server's log as a dropped client.
        if fs::read(ready_log).is_ok_and(|log| contains(&log, ready_marker.as_bytes()))
            && TcpStream::connect_timeout(&addr, POLL_INTERVAL).is_ok()
        {
            return Ok(());
        }
        thread::sleep(POLL_INTERVAL);
    }
    Err(io::Error::new(
        io::ErrorKind::TimedOut,
        format!(
            "{} did not listen on {addr} (and log {ready_marker:?}) within {} ms\n{}",
            process.name,
            POLL_ATTEMPTS as u128 * POLL_INTERVAL.as_millis(),
            log_tails(logs)
        ),
    ))
}

/// An empty needle is always contained (servers that log nothing useful when ready).
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// The last few KB of each log, labelled, for error messages.
pub(crate) fn log_tails(logs: &[PathBuf]) -> String {
    let mut out = String::new();
    for log in logs {
        let text = match fs::read(log) {
            Ok(bytes) => {
                let start = bytes.len().saturating_sub(LOG_TAIL_BYTES);
                String::from_utf8_lossy(&bytes[start..]).into_owned()
            }
            Err(e) => format!("(unreadable: {e})"),
        };
        out.push_str(&format!("--- {} ---\n{}\n", log.display(), text.trim_end()));
    }
    out
}

/// Whether a process with this PID exists (zombies included: they still hold the PID).
pub fn pid_exists(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

/// How often a server start is tried on a new port after another process took the one chosen.
const PORT_ATTEMPTS: usize = 3;

/// Runs `start` with a fresh free port until it does not fail with `AddrInUse` (another process
/// took the port between choosing and binding it), at most [`PORT_ATTEMPTS`] times.
pub(crate) fn on_free_port<T>(
    what: &str,
    mut start: impl FnMut(u16) -> io::Result<T>,
) -> io::Result<T> {
    let mut last_err = None;
    for _ in 0..PORT_ATTEMPTS {
        match start(crate::free_port()) {
            Ok(v) => return Ok(v),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => last_err = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_err.unwrap_or_else(|| io::Error::other(format!("{what} did not start"))))
}
