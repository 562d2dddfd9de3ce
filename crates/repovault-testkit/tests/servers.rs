//! The servers really serve: clone, push and authentication through each of them, and `Drop`
//! really stops them.

use std::path::{Path, PathBuf};
use std::time::Instant;

use repovault_testkit::{
    fixtures, pid_exists, upstream, GitDaemon, GitHttpServer, SshServer, TestEnv,
};

const USER: &str = "alice";
const PASSWORD: &str = "s3cret:with colon";

/// A repos root with the standard fixture at owner/repo.git.
fn repos_with_standard(env: &TestEnv) -> (PathBuf, PathBuf) {
    let root = env.root().join("repos");
    let bare = fixtures::standard(env, &root, "owner/repo");
    (root, bare)
}

/// `git clone --mirror url` and check it has exactly the upstream's refs and HEAD.
fn assert_mirror_matches(env: &TestEnv, url: &str, bare: &Path, extra: &[(String, String)]) {
    let mirror = env.fresh_dir("mirror").join("repo.git");
    let mirror_arg = mirror.display().to_string();
    env.git_with_env(
        env.root(),
        &["clone", "--mirror", "-q", url, &mirror_arg],
        extra,
    );
    assert_eq!(upstream::refs(env, &mirror), upstream::refs(env, bare));
    assert_eq!(
        env.git(&mirror, &["symbolic-ref", "HEAD"]),
        "refs/heads/main"
    );
    env.git(&mirror, &["fsck", "--no-progress", "--no-dangling"]);
}

/// Clone, commit, push to `url`; the upstream bare repo must then have the pushed commit.
fn assert_push_works(env: &TestEnv, url: &str, bare: &Path, extra: &[(String, String)]) {
    let work = env.fresh_dir("push").join("work");
    let work_arg = work.display().to_string();
    env.git_with_env(env.root(), &["clone", "-q", url, &work_arg], extra);
    std::fs::write(work.join("pushed.txt"), "pushed\n").expect("writing a file in the clone");
    env.git(&work, &["add", "pushed.txt"]);
    env.git(&work, &["commit", "-q", "-m", "Pushed"]);
    let head = env.git(&work, &["rev-parse", "HEAD"]);
    env.git_with_env(&work, &["push", "-q", "origin", "main"], extra);
    assert_eq!(env.git(bare, &["rev-parse", "refs/heads/main"]), head);
}

#[test]
fn http_serves_clone_push_and_protocol_v2_with_basic_auth() {
    let env = TestEnv::new();
    let (root, bare) = repos_with_standard(&env);
    let started = Instant::now();
    let server = GitHttpServer::start(&root, USER, PASSWORD).expect("starting the http server");
    eprintln!("http server up in {:?}", started.elapsed());
    let url = server.url("owner/repo");
    assert_eq!(
        url,
        format!("http://127.0.0.1:{}/owner/repo.git", server.port())
    );
    assert_eq!(
        server.base_url(),
        format!("http://127.0.0.1:{}", server.port())
    );

    let auth = server.auth_env();
    assert_mirror_matches(&env, &url, &bare, &auth);

    let mut cmd = env.git_command(env.root());
    cmd.args(["-c", "protocol.version=2", "ls-remote", &url])
        .envs(auth.iter().map(|(k, v)| (k, v)))
        .env("GIT_TRACE_PACKET", "1");
    let out = cmd.output().expect("running git ls-remote");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ls-remote failed: {stderr}");
    assert!(
        stderr.contains("version 2"),
        "server did not speak protocol v2:\n{stderr}\n{}",
        server.logs()
    );

    assert_push_works(&env, &url, &bare, &auth);
}

#[test]
fn http_rejects_a_wrong_or_missing_password() {
    let env = TestEnv::new();
    let (root, _bare) = repos_with_standard(&env);
    let server = GitHttpServer::start(&root, USER, PASSWORD).expect("starting the http server");
    let url = server.url("owner/repo");
    let wrong = repovault_testkit::basic_auth_header(USER, "not-the-password");
    let cases: [(&str, Vec<(String, String)>); 2] = [
        (
            "wrong password",
            vec![
                ("GIT_CONFIG_COUNT".into(), "1".into()),
                ("GIT_CONFIG_KEY_0".into(), "http.extraHeader".into()),
                (
                    "GIT_CONFIG_VALUE_0".into(),
                    format!("Authorization: {wrong}"),
                ),
            ],
        ),
        ("no credentials", Vec::new()),
    ];
    for (what, envs) in cases {
        let out = env
            .git_command(env.root())
            .args(["ls-remote", &url])
            .envs(envs.iter().map(|(k, v)| (k, v)))
            .output()
            .expect("running git ls-remote");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{what}: ls-remote succeeded");
        // git answers a 401 by asking for credentials, which GIT_TERMINAL_PROMPT=0 refuses.
        assert!(
            stderr.contains("terminal prompts disabled")
                || stderr.contains("401")
                || stderr.contains("Authentication failed"),
            "{what}: unexpected error: {stderr}"
        );
    }
    let access_log = std::fs::read_to_string(server.dir().join("access.log"))
        .expect("reading nginx's access log");
    let statuses: Vec<&str> = access_log
        .lines()
        .filter_map(|line| line.split('"').nth(2)?.split_whitespace().next())
        .collect();
    assert_eq!(statuses, ["401", "401"], "{access_log}");
}

#[test]
fn git_daemon_serves_clone_and_push() {
    let env = TestEnv::new();
    let (root, bare) = repos_with_standard(&env);
    let daemon = GitDaemon::start(&root).expect("starting git daemon");
    let url = daemon.url("owner/repo");
    assert_eq!(
        url,
        format!("git://127.0.0.1:{}/owner/repo.git", daemon.port())
    );
    assert_mirror_matches(&env, &url, &bare, &[]);
    assert_push_works(&env, &url, &bare, &[]);
}

#[test]
fn sshd_serves_clone_and_push_with_the_client_key() {
    let env = TestEnv::new();
    let (root, bare) = repos_with_standard(&env);
    let server = SshServer::start(&root).expect("starting sshd");
    let url = server.url("owner/repo");
    let abs_bare = bare
        .canonicalize()
        .expect("canonicalizing the bare repo path");
    assert_eq!(
        url,
        format!(
            "ssh://{}@127.0.0.1:{}{}",
            server.user(),
            server.port(),
            abs_bare.display()
        )
    );
    let known_hosts = std::fs::read_to_string(server.known_hosts()).expect("reading known_hosts");
    assert!(
        known_hosts.starts_with(&format!("[127.0.0.1]:{} ssh-ed25519 AAAA", server.port())),
        "{known_hosts}"
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(server.client_key())
            .expect("stat of the client key")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);

    let ssh = vec![("GIT_SSH_COMMAND".to_owned(), server.git_ssh_command())];
    assert_mirror_matches(&env, &url, &bare, &ssh);
    assert_push_works(&env, &url, &bare, &ssh);
}

#[test]
fn ssh_refuses_an_unknown_client_key() {
    let env = TestEnv::new();
    let (root, _bare) = repos_with_standard(&env);
    let server = SshServer::start(&root).expect("starting sshd");
    let other_key = env.root().join("other_key");
    let status = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other_key)
        .status()
        .expect("running ssh-keygen");
    assert!(status.success());
    let ssh = server.git_ssh_command().replace(
        &server.client_key().display().to_string(),
        &other_key.display().to_string(),
    );
    let out = env
        .git_command(env.root())
        .args(["ls-remote", &server.url("owner/repo")])
        .env("GIT_SSH_COMMAND", ssh)
        .output()
        .expect("running git ls-remote");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Permission denied"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn drop_and_stop_end_every_started_process() {
    let env = TestEnv::new();
    let (root, _bare) = repos_with_standard(&env);

    let http = GitHttpServer::start(&root, USER, PASSWORD).expect("starting the http server");
    let daemon = GitDaemon::start(&root).expect("starting git daemon");
    let ssh = SshServer::start(&root).expect("starting sshd");
    // One request through each, so worker processes have done real work before the stop.
    env.git_with_env(
        env.root(),
        &["ls-remote", &http.url("owner/repo")],
        &http.auth_env(),
    );
    env.git(env.root(), &["ls-remote", &daemon.url("owner/repo")]);
    env.git_with_env(
        env.root(),
        &["ls-remote", &ssh.url("owner/repo")],
        &[("GIT_SSH_COMMAND".into(), ssh.git_ssh_command())],
    );

    let mut pids = http.pids();
    assert_eq!(pids.len(), 5, "nginx + 4 fcgiwrap");
    pids.extend(daemon.pids());
    pids.extend(ssh.pids());
    assert_eq!(pids.len(), 7);
    assert!(pids.iter().all(|&pid| pid_exists(pid)));
    let (http_port, daemon_port, ssh_port) = (http.port(), daemon.port(), ssh.port());

    drop(http);
    drop(daemon);
    drop(ssh);
    for pid in &pids {
        assert!(!pid_exists(*pid), "pid {pid} still exists after drop");
    }
    for port in [http_port, daemon_port, ssh_port] {
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "port {port} still accepts connections"
        );
    }

    // stop() is idempotent, and Drop after stop() is harmless.
    let mut daemon = GitDaemon::start(&root).expect("starting git daemon");
    let pid = daemon.pids()[0];
    daemon.stop();
    daemon.stop();
    assert!(daemon.pids().is_empty());
    assert!(!pid_exists(pid));
}

#[test]
fn drop_stops_servers_when_a_test_panics() {
    let env = TestEnv::new();
    let root = env.root().join("repos");
    std::fs::create_dir_all(&root).expect("creating the repos root");
    let (tx, rx) = std::sync::mpsc::channel();
    let result = std::thread::spawn(move || {
        let http = GitHttpServer::start(&root, USER, PASSWORD).expect("starting the http server");
        let ssh = SshServer::start(&root).expect("starting sshd");
        let mut pids = http.pids();
        pids.extend(ssh.pids());
        tx.send(pids).expect("sending pids");
        panic!("deliberate panic with servers running");
    })
    .join();
    assert!(result.is_err(), "the thread was meant to panic");
    let pids = rx.recv().expect("receiving pids");
    assert_eq!(pids.len(), 6);
    for pid in pids {
        assert!(!pid_exists(pid), "pid {pid} survived the panic");
    }
}
