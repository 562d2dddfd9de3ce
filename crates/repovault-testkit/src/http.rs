//! Smart HTTP git server: nginx (basic auth) → fcgiwrap → git http-backend.

use std::fs;
use std::io;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tempfile::TempDir;

use crate::gitcmd::run;
use crate::process::{log_tails, on_free_port, wait_until_listening, ServerProcess};
use crate::{
    absolute, git_exec_program, repo_rel_path, running_as_root, server_path_var,
    write_server_gitconfig,
};

/// One fcgiwrap process serves one request at a time; a few let a test fetch several repos in
/// parallel from one server.
const FCGI_WORKERS: usize = 4;

/// nginx + fcgiwrap + `git http-backend` on 127.0.0.1, basic auth on every path.
///
/// Push is enabled (REMOTE_USER is passed), protocol v2 works (GIT_PROTOCOL is passed), and
/// every repo under `repos_root` is exported (GIT_HTTP_EXPORT_ALL).
#[derive(Debug)]
pub struct GitHttpServer {
    port: u16,
    user: String,
    password: String,
    nginx: Option<ServerProcess>,
    fcgiwrap: Vec<ServerProcess>,
    dir: TempDir,
}

impl GitHttpServer {
    pub fn start(repos_root: &Path, user: &str, password: &str) -> io::Result<Self> {
        if user.is_empty() || user.contains([':', '\n', '\r']) || password.contains(['\n', '\r']) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "basic auth user must be non-empty without ':' or newlines; password without newlines",
            ));
        }
        let repos_root = absolute(repos_root)?;
        let dir = tempfile::Builder::new()
            .prefix("repovault-http-")
            .tempdir()?;
        let d = dir.path();
        fs::write(d.join("htpasswd"), htpasswd_line(user, password)?)?;
        let gitconfig = write_server_gitconfig(d)?;
        let backend = http_backend_path()?;
        let fcgiwrap = start_fcgiwrap(d, &gitconfig)?;

        let mut server = GitHttpServer {
            port: 0,
            user: user.to_owned(),
            password: password.to_owned(),
            nginx: None,
            fcgiwrap,
            dir,
        };
        let (port, nginx) = on_free_port("nginx", |port| {
            server
                .start_nginx(port, &repos_root, &gitconfig, &backend)
                .map(|nginx| (port, nginx))
        })?;
        server.port = port;
        server.nginx = Some(nginx);
        Ok(server)
    }

    fn start_nginx(
        &self,
        port: u16,
        repos_root: &Path,
        gitconfig: &Path,
        backend: &Path,
    ) -> io::Result<ServerProcess> {
        let d = self.dir.path();
        let conf = d.join("nginx.conf");
        fs::write(&conf, nginx_conf(d, port, repos_root, gitconfig, backend))?;
        let error_log = d.join("error.log");
        let stderr_log = d.join("nginx.stderr.log");
        let mut cmd = Command::new(nginx_binary());
        // -e: nginx opens its default error log (under /var/log) before reading the config.
        cmd.arg("-p")
            .arg(format!("{}/", d.display()))
            .arg("-e")
            .arg(&error_log)
            .arg("-c")
            .arg(&conf)
            .env_clear()
            .env("PATH", server_path_var());
        let mut nginx = ServerProcess::spawn("nginx", &mut cmd, &stderr_log)?;
        let mut logs = vec![error_log, stderr_log];
        logs.extend((0..self.fcgiwrap.len()).map(|i| d.join(format!("fcgiwrap-{i}.log"))));
        let ready_log = logs[0].clone();
        // Logged at notice level once all listening sockets are bound, as "PID#TID: ..." (the
        // master's main thread, so TID = PID), which tells it from an earlier attempt's line.
        let pid = nginx.pid().unwrap_or_default();
        let marker = format!("{pid}#{pid}: start worker processes");
        wait_until_listening(&mut nginx, port, &ready_log, &marker, &logs)?;
        Ok(nginx)
    }

    /// "http://127.0.0.1:PORT"
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// "http://127.0.0.1:PORT/owner/name.git", served from `repos_root/owner/name.git`.
    pub fn url(&self, owner_name: &str) -> String {
        format!("{}/{}", self.base_url(), repo_rel_path(owner_name))
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    pub fn password(&self) -> &str {
        &self.password
    }

    /// Variables that make git send this server's credentials as an `http.extraHeader`
    /// (through GIT_CONFIG_COUNT/KEY/VALUE, so they appear neither in URLs nor in argv).
    pub fn auth_env(&self) -> Vec<(String, String)> {
        vec![
            ("GIT_CONFIG_COUNT".into(), "1".into()),
            ("GIT_CONFIG_KEY_0".into(), "http.extraHeader".into()),
            (
                "GIT_CONFIG_VALUE_0".into(),
                format!(
                    "Authorization: {}",
                    basic_auth_header(&self.user, &self.password)
                ),
            ),
        ]
    }

    /// The server's temp dir (configs and logs).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// nginx's error log and the fcgiwrap logs (where git http-backend's stderr goes), for
    /// failure messages.
    pub fn logs(&self) -> String {
        let d = self.dir.path();
        let mut logs = vec![
            d.join("error.log"),
            d.join("access.log"),
            d.join("nginx.stderr.log"),
        ];
        logs.extend((0..self.fcgiwrap.len()).map(|i| d.join(format!("fcgiwrap-{i}.log"))));
        log_tails(&logs)
    }

    /// PIDs of the processes this server started (nginx master first, then fcgiwrap).
    pub fn pids(&self) -> Vec<u32> {
        self.nginx
            .iter()
            .chain(&self.fcgiwrap)
            .filter_map(ServerProcess::pid)
            .collect()
    }

    /// Stops nginx (graceful SIGQUIT to its master, which then stops its workers), then
    /// fcgiwrap. Idempotent; also done by `Drop`.
    pub fn stop(&mut self) {
        if let Some(mut nginx) = self.nginx.take() {
            // Workers are not signalled directly: the master would respawn them.
            nginx.stop("QUIT", false);
        }
        for mut worker in self.fcgiwrap.drain(..) {
            worker.stop("TERM", true);
        }
    }
}

impl Drop for GitHttpServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts the fcgiwrap processes, all accepting on one unix socket.
///
/// The socket is bound here and handed to each process as its stdin (the FastCGI convention
/// fcgiwrap follows without `-s`). fcgiwrap's own `-c N` pre-forking would leave N-1
/// grandchildren that survive their parent's SIGTERM; separate children are each reaped here.
fn start_fcgiwrap(d: &Path, gitconfig: &Path) -> io::Result<Vec<ServerProcess>> {
    let listener = UnixListener::bind(d.join("fcgi.sock"))?;
    let mut workers = Vec::with_capacity(FCGI_WORKERS);
    for i in 0..FCGI_WORKERS {
        let socket = listener.try_clone()?;
        let mut cmd = Command::new(fcgiwrap_binary());
        cmd.env_clear()
            .env("PATH", server_path_var())
            .env("HOME", d)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", gitconfig);
        let log = d.join(format!("fcgiwrap-{i}.log"));
        workers.push(ServerProcess::spawn_with_stdin(
            "fcgiwrap",
            &mut cmd,
            Stdio::from(std::os::fd::OwnedFd::from(socket)),
            &log,
        )?);
    }
    Ok(workers)
}

fn nginx_conf(d: &Path, port: u16, repos_root: &Path, gitconfig: &Path, backend: &Path) -> String {
    let d = d.display();
    // nginx ignores `user` (with a warning) unless started as root; as root its workers would
    // otherwise run as nobody and could not read repos in 0700 temp dirs.
    let user = if running_as_root() {
        "user root;\n"
    } else {
        ""
    };
    format!(
        r#"daemon off;
master_process on;
worker_processes 1;
{user}pid "{d}/nginx.pid";
error_log "{d}/error.log" notice;
events {{
    worker_connections 256;
}}
http {{
    access_log "{d}/access.log";
    client_body_temp_path "{d}/client_body_temp";
    proxy_temp_path "{d}/proxy_temp";
    fastcgi_temp_path "{d}/fastcgi_temp";
    uwsgi_temp_path "{d}/uwsgi_temp";
    scgi_temp_path "{d}/scgi_temp";
    server {{
        listen 127.0.0.1:{port};
        server_name 127.0.0.1;
        client_max_body_size 0;
        auth_basic "repovault-test";
        auth_basic_user_file "{d}/htpasswd";
        location / {{
            fastcgi_pass "unix:{d}/fcgi.sock";
            fastcgi_read_timeout 300s;
            fastcgi_send_timeout 300s;
            fastcgi_param SCRIPT_FILENAME "{backend}";
            fastcgi_param GIT_PROJECT_ROOT "{root}";
            fastcgi_param GIT_HTTP_EXPORT_ALL "";
            fastcgi_param GIT_PROTOCOL $http_git_protocol;
            fastcgi_param GIT_CONFIG_NOSYSTEM 1;
            fastcgi_param GIT_CONFIG_GLOBAL "{gitconfig}";
            fastcgi_param HOME "{d}";
            fastcgi_param REMOTE_USER $remote_user;
            fastcgi_param REMOTE_ADDR $remote_addr;
            fastcgi_param PATH_INFO $uri;
            fastcgi_param QUERY_STRING $query_string;
            fastcgi_param REQUEST_METHOD $request_method;
            fastcgi_param REQUEST_URI $request_uri;
            fastcgi_param CONTENT_TYPE $content_type;
            fastcgi_param CONTENT_LENGTH $content_length;
            fastcgi_param SERVER_PROTOCOL $server_protocol;
            fastcgi_param SERVER_NAME $server_name;
            fastcgi_param SERVER_PORT $server_port;
            fastcgi_param GATEWAY_INTERFACE CGI/1.1;
        }}
    }}
}}
"#,
        backend = backend.display(),
        root = repos_root.display(),
        gitconfig = gitconfig.display(),
    )
}

/// An htpasswd line in apr1 (MD5), which nginx verifies itself rather than through libc's
/// crypt(). nginx ends the password field at ':', so `{PLAIN}` is only the fallback for
/// machines without htpasswd and passwords without ':'.
fn htpasswd_line(user: &str, password: &str) -> io::Result<String> {
    let mut cmd = Command::new("htpasswd");
    cmd.args(["-n", "-b", "-m", user, password]);
    match run(&mut cmd, None) {
        Ok(out) => Ok(format!("{}\n", String::from_utf8_lossy(&out).trim())),
        Err(e) if e.kind() == io::ErrorKind::NotFound && !password.contains(':') => {
            Ok(format!("{user}:{{PLAIN}}{password}\n"))
        }
        Err(e) => Err(e),
    }
}

/// git-http-backend lives in git's exec path (/usr/lib/git-core on Debian, elsewhere on others).
fn http_backend_path() -> io::Result<PathBuf> {
    git_exec_program("git-http-backend")
}

/// nginx and fcgiwrap live in sbin, which is not on every user's PATH.
fn nginx_binary() -> PathBuf {
    sbin_binary("nginx")
}

fn fcgiwrap_binary() -> PathBuf {
    sbin_binary("fcgiwrap")
}

pub(crate) fn sbin_binary(name: &str) -> PathBuf {
    ["/usr/sbin", "/usr/local/sbin", "/sbin"]
        .iter()
        .map(|dir| Path::new(dir).join(name))
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from(name))
}

/// `Basic <base64(user:password)>`, the value of an HTTP Authorization header.
pub fn basic_auth_header(user: &str, password: &str) -> String {
    format!("Basic {}", base64(format!("{user}:{password}").as_bytes()))
}

fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A port taken by someone else must surface as AddrInUse (what `start` retries on), not
    /// as a server that seems up because the other listener accepts.
    #[test]
    fn nginx_on_a_taken_port_reports_addr_in_use() {
        let repos = tempfile::tempdir().expect("creating a temp dir");
        let server = GitHttpServer::start(repos.path(), "u", "p").expect("starting the server");
        let squatter = std::net::TcpListener::bind("127.0.0.1:0").expect("binding a port");
        let taken = squatter.local_addr().expect("local address").port();
        let d = server.dir();
        let err = server
            .start_nginx(
                taken,
                repos.path(),
                &d.join("gitconfig"),
                &http_backend_path().expect("git-http-backend"),
            )
            .expect_err("nginx must not come up on a taken port");
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse, "{err}");
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (input, expected) in cases {
            assert_eq!(base64(input.as_bytes()), expected, "input {input:?}");
        }
    }
}
