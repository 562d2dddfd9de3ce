//! OpenSSH sshd on a high port of 127.0.0.1, accepting one generated client key.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

use crate::gitcmd::run;
use crate::http::sbin_binary;
use crate::process::{log_tails, on_free_port, spawn_listening, ServerProcess};
use crate::{
    absolute, current_user_name, repo_rel_path, running_as_root, server_path_var,
    write_server_gitconfig,
};

/// sshd for git over ssh, logging in as the user running the tests (usually root).
///
/// Only the generated client key is accepted (no passwords, no PAM). The session runs git with
/// a server-side git config of its own, and accepts GIT_PROTOCOL so protocol v2 works.
#[derive(Debug)]
pub struct SshServer {
    port: u16,
    user: String,
    repos_root: PathBuf,
    client_key: PathBuf,
    known_hosts: PathBuf,
    process: Option<ServerProcess>,
    dir: TempDir,
}

impl SshServer {
    pub fn start(repos_root: &Path) -> io::Result<Self> {
        let repos_root = absolute(repos_root)?;
        let user = current_user_name()?;
        if running_as_root() {
            // sshd refuses to start as root without its privilege separation dir; apt does not
            // create it on images where services are never started.
            fs::create_dir_all("/run/sshd")?;
        }
        let dir = tempfile::Builder::new()
            .prefix("repovault-ssh-")
            .tempdir()?;
        let d = dir.path();
        let host_key = d.join("host_ed25519");
        let client_key = d.join("client_ed25519");
        keygen(&host_key, "repovault-test-host")?;
        keygen(&client_key, "repovault-test-client")?;
        // ssh refuses a private key others can read.
        fs::set_permissions(&client_key, fs::Permissions::from_mode(0o600))?;
        fs::set_permissions(&host_key, fs::Permissions::from_mode(0o600))?;
        fs::copy(d.join("client_ed25519.pub"), d.join("authorized_keys"))?;
        let host_pub = fs::read_to_string(d.join("host_ed25519.pub"))?;
        // "ssh-ed25519 AAAA… comment" → "ssh-ed25519 AAAA…"
        let host_pub: Vec<&str> = host_pub.split_whitespace().take(2).collect();
        let host_pub = host_pub.join(" ");
        let gitconfig = write_server_gitconfig(d)?;
        let known_hosts = d.join("known_hosts");
        let log = d.join("sshd.log");
        let sshd = sbin_binary("sshd");

        let (port, process) = on_free_port("sshd", |port| {
            let config = d.join("sshd_config");
            fs::write(&config, sshd_config(d, port, &user, &host_key, &gitconfig))?;
            fs::write(&known_hosts, format!("[127.0.0.1]:{port} {host_pub}\n"))?;
            let mut cmd = Command::new(&sshd);
            // -D: stay a child of the test so it can be stopped by PID; -e: log to stderr
            // (our log file) instead of syslog. sshd re-executes itself, so it needs the
            // absolute path it was started with.
            cmd.arg("-D")
                .arg("-e")
                .arg("-f")
                .arg(&config)
                .current_dir(d)
                .env_clear()
                .env("PATH", server_path_var());
            spawn_listening("sshd", &mut cmd, port, &log, |_| {
                format!("Server listening on 127.0.0.1 port {port}.")
            })
        })?;
        Ok(SshServer {
            port,
            user,
            repos_root,
            client_key,
            known_hosts,
            process: Some(process),
            dir,
        })
    }

    /// "ssh://USER@127.0.0.1:PORT/ABS_REPOS_ROOT/owner/name.git"
    pub fn url(&self, owner_name: &str) -> String {
        format!(
            "ssh://{}@127.0.0.1:{}{}/{}",
            self.user,
            self.port,
            self.repos_root.display(),
            repo_rel_path(owner_name)
        )
    }

    /// The client's private key (mode 0600), the only key sshd accepts.
    pub fn client_key(&self) -> &Path {
        &self.client_key
    }

    /// A known_hosts file with "[127.0.0.1]:PORT ssh-ed25519 AAAA…".
    pub fn known_hosts(&self) -> &Path {
        &self.known_hosts
    }

    /// A value for GIT_SSH_COMMAND that authenticates with [`SshServer::client_key`], trusts
    /// only [`SshServer::known_hosts`] and never prompts. `-F /dev/null` keeps the user's
    /// ~/.ssh/config out; the port comes from the URL.
    pub fn git_ssh_command(&self) -> String {
        format!(
            "ssh -F /dev/null -i '{}' -o IdentitiesOnly=yes -o UserKnownHostsFile='{}' \
             -o StrictHostKeyChecking=yes -o BatchMode=yes",
            self.client_key.display(),
            self.known_hosts.display()
        )
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    /// sshd's log, for failure messages.
    pub fn logs(&self) -> String {
        log_tails(&[self.dir.path().join("sshd.log")])
    }

    pub fn pids(&self) -> Vec<u32> {
        self.process.iter().filter_map(ServerProcess::pid).collect()
    }

    /// SIGTERM to open sessions and then the listener, SIGKILL after a bounded wait.
    /// Idempotent; also done by `Drop`.
    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.stop("TERM", true);
        }
    }
}

impl Drop for SshServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn keygen(path: &Path, comment: &str) -> io::Result<()> {
    let mut cmd = Command::new("ssh-keygen");
    cmd.args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(path);
    run(&mut cmd, None).map(drop)
}

fn sshd_config(d: &Path, port: u16, user: &str, host_key: &Path, gitconfig: &Path) -> String {
    // SetEnv: sshd builds the session environment itself (HOME from passwd), so this is the way
    // to keep the user's ~/.gitconfig and /etc/gitconfig away from server-side git.
    format!(
        "Port {port}\n\
         ListenAddress 127.0.0.1\n\
         HostKey {host_key}\n\
         PidFile {d}/sshd.pid\n\
         AuthorizedKeysFile {d}/authorized_keys\n\
         AllowUsers {user}\n\
         PubkeyAuthentication yes\n\
         PasswordAuthentication no\n\
         KbdInteractiveAuthentication no\n\
         UsePAM no\n\
         StrictModes no\n\
         PermitRootLogin prohibit-password\n\
         AcceptEnv GIT_PROTOCOL\n\
         SetEnv GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL={gitconfig}\n\
         PrintMotd no\n\
         PrintLastLog no\n\
         X11Forwarding no\n\
         AllowTcpForwarding no\n\
         AllowAgentForwarding no\n\
         PermitTTY no\n\
         LogLevel INFO\n",
        d = d.display(),
        host_key = host_key.display(),
        gitconfig = gitconfig.display(),
    )
}
