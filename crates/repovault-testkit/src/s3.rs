//! Real S3-compatible servers on loopback: moto (Python; versioning and Object Lock work) and
//! s3s-fs (Rust; objects are plain files under its directory, so tests can inspect and damage
//! them). Both are installed by `scripts/test-deps.sh`.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;

use crate::process::{on_free_port, spawn_listening, ServerProcess};
use crate::server_path_var;

/// Which S3 server to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum S3Kind {
    Moto,
    S3sFs,
}

/// The test credentials every server accepts. Not secrets: the servers only listen on loopback.
pub const S3_ACCESS_KEY: &str = "repovaulttestkey";
pub const S3_SECRET_KEY: &str = "repovaulttestsecret0123456789";
pub const S3_REGION: &str = "us-east-1";

pub struct S3Server {
    kind: S3Kind,
    port: u16,
    process: Option<ServerProcess>,
    dir: TempDir,
}

impl S3Server {
    pub fn start(kind: S3Kind) -> io::Result<Self> {
        let dir = tempfile::Builder::new().prefix("repovault-s3-").tempdir()?;
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data)?;
        let log = dir.path().join("s3.log");
        let (port, process) = on_free_port("S3 server", |port| {
            let (mut cmd, name, marker) = match kind {
                S3Kind::Moto => {
                    // The interpreter itself rather than a `moto_server` script: version managers'
                    // shims may not have one until rehashed, and need the user's HOME.
                    let mut cmd = Command::new(python_executable()?);
                    cmd.args([
                        "-m",
                        "moto.server",
                        "-H",
                        "127.0.0.1",
                        "-p",
                        &port.to_string(),
                    ]);
                    (
                        cmd,
                        "moto_server",
                        format!("Running on http://127.0.0.1:{port}"),
                    )
                }
                S3Kind::S3sFs => {
                    let mut cmd = Command::new(program("s3s-fs")?);
                    cmd.args(["--host", "127.0.0.1", "--port", &port.to_string()])
                        .args(["--access-key", S3_ACCESS_KEY, "--secret-key", S3_SECRET_KEY])
                        .arg(&data);
                    (cmd, "s3s-fs", String::new())
                }
            };
            cmd.current_dir(dir.path())
                .env_clear()
                .env("PATH", server_path_var())
                .env("HOME", dir.path());
            spawn_listening(name, &mut cmd, port, &log, |_| marker)
        })?;
        Ok(Self {
            kind,
            port,
            process: Some(process),
            dir,
        })
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A repovault / restic store URL for `bucket/prefix` on this server.
    pub fn store_url(&self, bucket: &str, prefix: &str) -> String {
        format!("s3:{}/{bucket}/{prefix}", self.endpoint())
    }

    /// The environment a client needs: credentials and region.
    pub fn client_env(&self) -> Vec<(String, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID".into(), S3_ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY".into(), S3_SECRET_KEY.into()),
            ("AWS_REGION".into(), S3_REGION.into()),
            ("AWS_DEFAULT_REGION".into(), S3_REGION.into()),
        ]
    }

    /// Where s3s-fs keeps objects (`<dir>/<bucket>/<key>`); moto keeps them in memory.
    pub fn data_dir(&self) -> Option<PathBuf> {
        (self.kind == S3Kind::S3sFs).then(|| self.dir.path().join("data"))
    }

    pub fn create_bucket(&self, bucket: &str) -> io::Result<()> {
        match self.kind {
            // s3s-fs maps buckets to directories.
            S3Kind::S3sFs => std::fs::create_dir_all(self.dir.path().join("data").join(bucket)),
            // moto does not check signatures, so a bare PUT creates the bucket.
            S3Kind::Moto => {
                let mut s = TcpStream::connect(("127.0.0.1", self.port))?;
                s.set_read_timeout(Some(Duration::from_secs(10)))?;
                write!(
                    s,
                    "PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    self.port
                )?;
                let mut reply = String::new();
                s.read_to_string(&mut reply)?;
                if reply.starts_with("HTTP/1.1 200") {
                    Ok(())
                } else {
                    Err(io::Error::other(format!(
                        "creating bucket {bucket}: {}",
                        reply.lines().next().unwrap_or_default()
                    )))
                }
            }
        }
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("s3.log")).unwrap_or_default()
    }

    pub fn stop(&mut self) {
        if let Some(mut p) = self.process.take() {
            p.stop("TERM", true);
        }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The real path of the `python3` on PATH (which may be a shim).
fn python_executable() -> io::Result<PathBuf> {
    let out = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()?;
    let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if out.status.success() && !path.is_empty() {
        Ok(PathBuf::from(path))
    } else {
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            "python3 not found; run scripts/test-deps.sh",
        ))
    }
}

/// Finds a server program on PATH or where `pip` and `cargo install` put them.
fn program(name: &str) -> io::Result<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(Path::new(&home).join(".cargo/bin"));
        dirs.push(Path::new(&home).join(".local/bin"));
    }
    dirs.into_iter()
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!("{name} not found; run scripts/test-deps.sh"),
            )
        })
}
