//! Running git children isolated from the developer's and the machine's configuration.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::thread;

/// Name and e-mail used for every commit, tag and reflog entry made in tests.
pub const TEST_NAME: &str = "Repovault Test";
pub const TEST_EMAIL: &str = "test@repovault.invalid";
/// 2023-11-14T22:13:20Z: a fixed date keeps commit ids identical from run to run.
pub const TEST_EPOCH: i64 = 1_700_000_000;

/// Variables that would point a child git at another repository, another configuration or
/// another transport than the test intends: set when tests run from a git hook
/// (GIT_DIR, GIT_INDEX_FILE), or by a developer's shell (GIT_SSH_COMMAND, XDG_CONFIG_HOME).
const INHERITED_VARS_TO_DROP: &[&str] = &[
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
    "GIT_PREFIX",
    "GIT_QUARANTINE_PATH",
    "GIT_SHALLOW_FILE",
    "GIT_GRAFT_FILE",
    "GIT_REPLACE_REF_BASE",
    "GIT_NO_REPLACE_OBJECTS",
    "GIT_CEILING_DIRECTORIES",
    "GIT_DISCOVERY_ACROSS_FILESYSTEM",
    "GIT_CONFIG",
    "GIT_CONFIG_SYSTEM",
    "GIT_CONFIG_PARAMETERS",
    "GIT_CONFIG_COUNT",
    "GIT_PROTOCOL",
    "GIT_ALLOW_PROTOCOL",
    "GIT_PROTOCOL_FROM_USER",
    "GIT_SSH",
    "GIT_SSH_COMMAND",
    "GIT_SSH_VARIANT",
    "GIT_PROXY_COMMAND",
    "GIT_ASKPASS",
    "SSH_ASKPASS",
    "GIT_EDITOR",
    "GIT_SEQUENCE_EDITOR",
    "GIT_PAGER",
];

/// The global git configuration every test git reads instead of ~/.gitconfig.
///
/// gc/maintenance are off so no detached `git gc --auto` outlives a test or rewrites a repo
/// under a running backup; `protocol.file.allow` lets tests use local submodules (blocked by
/// default since git 2.38.1); `safe.directory` accepts repos owned by another user.
fn global_config() -> String {
    format!(
        "[user]\n\tname = {TEST_NAME}\n\temail = {TEST_EMAIL}\n\
         [init]\n\tdefaultBranch = main\n\
         [gc]\n\tauto = 0\n\
         [maintenance]\n\tauto = false\n\
         [receive]\n\tautogc = false\n\
         [advice]\n\tdetachedHead = false\n\
         [core]\n\tautocrlf = false\n\
         [protocol \"file\"]\n\tallow = always\n\
         [safe]\n\tdirectory = *\n"
    )
}

/// Isolation for git child processes: a private HOME with its own global config.
#[derive(Debug, Clone)]
pub struct GitEnv {
    home: PathBuf,
    config: PathBuf,
    vars: Vec<(String, String)>,
}

impl GitEnv {
    /// Creates `home` (if needed) and `home/.gitconfig`, and returns the environment that uses
    /// them.
    pub fn create(home: &Path) -> io::Result<Self> {
        fs::create_dir_all(home)?;
        let config = home.join(".gitconfig");
        fs::write(&config, global_config())?;
        let date = format!("{TEST_EPOCH} +0000");
        let vars = [
            ("GIT_CONFIG_GLOBAL", config.display().to_string()),
            ("GIT_CONFIG_NOSYSTEM", "1".to_owned()),
            ("GIT_TERMINAL_PROMPT", "0".to_owned()),
            ("GIT_AUTHOR_NAME", TEST_NAME.to_owned()),
            ("GIT_AUTHOR_EMAIL", TEST_EMAIL.to_owned()),
            ("GIT_AUTHOR_DATE", date.clone()),
            ("GIT_COMMITTER_NAME", TEST_NAME.to_owned()),
            ("GIT_COMMITTER_EMAIL", TEST_EMAIL.to_owned()),
            ("GIT_COMMITTER_DATE", date),
            ("HOME", home.display().to_string()),
            (
                "XDG_CONFIG_HOME",
                home.join(".config").display().to_string(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        Ok(Self {
            home: home.to_path_buf(),
            config,
            vars,
        })
    }

    /// The variables to set on every git child (see [`GitEnv::apply`] for the full isolation).
    pub fn vars(&self) -> &[(String, String)] {
        &self.vars
    }

    pub fn home(&self) -> &Path {
        &self.home
    }

    /// The file used as GIT_CONFIG_GLOBAL; tests may append to it.
    pub fn config_file(&self) -> &Path {
        &self.config
    }

    /// Removes inherited variables that would redirect git, then sets [`GitEnv::vars`].
    pub fn apply<'c>(&self, cmd: &'c mut Command) -> &'c mut Command {
        for name in INHERITED_VARS_TO_DROP {
            cmd.env_remove(name);
        }
        cmd.envs(self.vars.iter().map(|(k, v)| (k, v)))
    }

    /// A `git` command running in `dir` with this environment.
    pub fn command(&self, dir: &Path) -> Command {
        let mut cmd = Command::new("git");
        cmd.current_dir(dir);
        self.apply(&mut cmd);
        cmd
    }
}

/// Runs `cmd` (optionally feeding `stdin`) and returns its stdout, or an error carrying the
/// command line, exit status and stderr.
pub(crate) fn run(cmd: &mut Command, stdin: Option<&[u8]>) -> io::Result<Vec<u8>> {
    let output = output(cmd, stdin)?;
    if output.status.success() {
        Ok(output.stdout)
    } else {
        Err(io::Error::other(format!(
            "{} failed ({})\nstderr:\n{}\nstdout:\n{}",
            describe(cmd),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim_end(),
            String::from_utf8_lossy(&output.stdout).trim_end(),
        )))
    }
}

/// Runs `cmd` to completion whatever its exit status.
pub(crate) fn output(cmd: &mut Command, stdin: Option<&[u8]>) -> io::Result<Output> {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("starting {}: {e}", describe(cmd))))?;
    match (stdin, child.stdin.take()) {
        (Some(input), Some(mut pipe)) => {
            // Written from another thread: a child that answers while it reads (hash-object,
            // fast-import with a big stream) would otherwise deadlock on a full stdout pipe.
            thread::scope(|s| {
                let writer = s.spawn(move || pipe.write_all(input));
                let out = child.wait_with_output();
                match writer.join() {
                    Ok(Err(e)) if e.kind() != io::ErrorKind::BrokenPipe => Err(e),
                    _ => out,
                }
            })
        }
        _ => child.wait_with_output(),
    }
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        s.push(' ');
        s.push_str(&arg.to_string_lossy());
    }
    if let Some(dir) = cmd.get_current_dir() {
        s.push_str(&format!(" (in {})", dir.display()));
    }
    s
}

/// Stdout as text without the trailing newline git prints.
pub(crate) fn trimmed(stdout: &[u8]) -> String {
    String::from_utf8_lossy(stdout).trim().to_owned()
}
