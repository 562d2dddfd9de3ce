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

    /// moto only: a bucket with Object Lock enabled and, with `days`, a default COMPLIANCE
    /// retention for every new object (moto does not check signatures, so plain requests do).
    pub fn create_locked_bucket(&self, bucket: &str, days: Option<u32>) -> io::Result<()> {
        assert_eq!(self.kind, S3Kind::Moto, "Object Lock needs moto");
        let (status, body) = self.raw(
            "PUT",
            &format!("/{bucket}"),
            &[("x-amz-bucket-object-lock-enabled", "true")],
            b"",
        )?;
        if status != 200 {
            return Err(io::Error::other(format!(
                "creating {bucket}: {status} {body}"
            )));
        }
        if let Some(days) = days {
            let conf = format!(
                "<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled><Rule><DefaultRetention><Mode>COMPLIANCE</Mode><Days>{days}</Days></DefaultRetention></Rule></ObjectLockConfiguration>"
            );
            let (status, body) = self.raw(
                "PUT",
                &format!("/{bucket}?object-lock"),
                &[],
                conf.as_bytes(),
            )?;
            if status != 200 {
                return Err(io::Error::other(format!(
                    "locking {bucket}: {status} {body}"
                )));
            }
        }
        Ok(())
    }

    /// moto only: writes an object directly (with the Content-MD5 locked buckets require).
    pub fn put_object(&self, bucket: &str, key: &str, body: &[u8]) -> io::Result<u16> {
        use base64::Engine;
        use md5::Digest;
        let md5 = base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(body));
        self.raw(
            "PUT",
            &format!("/{bucket}/{key}"),
            &[("Content-MD5", &md5)],
            body,
        )
        .map(|(status, _)| status)
    }

    /// moto only: locks one object version until `until` (RFC 3339), COMPLIANCE mode.
    pub fn lock_object(&self, bucket: &str, key: &str, until: &str) -> io::Result<u16> {
        use base64::Engine;
        use md5::Digest;
        let conf = format!(
            "<Retention><Mode>COMPLIANCE</Mode><RetainUntilDate>{until}</RetainUntilDate></Retention>"
        );
        let md5 =
            base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(conf.as_bytes()));
        self.raw(
            "PUT",
            &format!("/{bucket}/{key}?retention"),
            &[("Content-MD5", &md5)],
            conf.as_bytes(),
        )
        .map(|(status, _)| status)
    }

    /// moto only: every version of the objects under `prefix` as (key, version id), delete
    /// markers excluded.
    pub fn object_versions(&self, bucket: &str, prefix: &str) -> io::Result<Vec<(String, String)>> {
        let (status, body) = self.raw(
            "GET",
            &format!("/{bucket}?versions&prefix={prefix}&max-keys=1000"),
            &[],
            b"",
        )?;
        if status != 200 {
            return Err(io::Error::other(format!(
                "listing versions: {status} {body}"
            )));
        }
        let mut out = Vec::new();
        for part in body.split("<Version>").skip(1) {
            let part = part.split("</Version>").next().unwrap_or_default();
            let key = xml_field(part, "Key");
            let version = xml_field(part, "VersionId");
            if let (Some(k), Some(v)) = (key, version) {
                out.push((k, v));
            }
        }
        Ok(out)
    }

    /// moto only: the keys under `prefix` (current versions), up to 1000.
    pub fn list_keys(&self, bucket: &str, prefix: &str) -> io::Result<Vec<String>> {
        let (status, body) = self.raw(
            "GET",
            &format!("/{bucket}?list-type=2&prefix={prefix}&max-keys=1000"),
            &[],
            b"",
        )?;
        if status != 200 {
            return Err(io::Error::other(format!(
                "listing {bucket}: {status} {body}"
            )));
        }
        Ok(body
            .split("<Contents>")
            .skip(1)
            .filter_map(|part| xml_field(part, "Key"))
            .collect())
    }

    /// moto only: DELETE of one object version; returns the status (403 while it is locked).
    pub fn delete_version(&self, bucket: &str, key: &str, version: &str) -> io::Result<u16> {
        self.raw(
            "DELETE",
            &format!("/{bucket}/{key}?versionId={version}"),
            &[],
            b"",
        )
        .map(|(status, _)| status)
    }

    /// moto only: DELETE of an object without a version (a delete marker on versioned buckets).
    pub fn delete_object(&self, bucket: &str, key: &str) -> io::Result<u16> {
        self.raw("DELETE", &format!("/{bucket}/{key}"), &[], b"")
            .map(|(status, _)| status)
    }

    /// moto's request log: every S3 request it answered, in order.
    pub fn requests(&self) -> Vec<S3Request> {
        assert_eq!(self.kind, S3Kind::Moto, "the request log is moto's");
        self.logs().lines().filter_map(S3Request::parse).collect()
    }

    /// One HTTP/1.1 request to the server. moto does not verify signatures but treats requests
    /// without any as anonymous (refusing deletes), so a placeholder one is sent.
    fn raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<(u16, String)> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port))?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\nConnection: close\r\n",
            self.port,
            body.len()
        );
        head.push_str(&format!(
            "Authorization: AWS4-HMAC-SHA256 Credential={S3_ACCESS_KEY}/20260101/{S3_REGION}/s3/aws4_request, SignedHeaders=host, Signature=0\r\n"
        ));
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes())?;
        s.write_all(body)?;
        let mut reply = Vec::new();
        s.read_to_end(&mut reply)?;
        let reply = String::from_utf8_lossy(&reply).into_owned();
        let status = reply
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = reply
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_owned())
            .unwrap_or_default();
        Ok((status, body))
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

fn xml_field(xml: &str, name: &str) -> Option<String> {
    let start = xml.find(&format!("<{name}>"))? + name.len() + 2;
    let end = xml[start..].find(&format!("</{name}>"))? + start;
    Some(xml[start..end].to_owned())
}

/// One line of moto's request log: `127.0.0.1 - - [date] "PUT /bucket/key?x HTTP/1.1" 200 -`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Request {
    pub method: String,
    /// The path without the query, e.g. `/bucket/prefix/data/ab/ab12…`.
    pub path: String,
    pub query: String,
    pub status: u16,
}

impl S3Request {
    fn parse(line: &str) -> Option<Self> {
        let quoted = line.split('"').nth(1)?;
        let after = line.split('"').nth(2)?;
        let mut parts = quoted.split_whitespace();
        let method = parts.next()?.to_owned();
        let target = parts.next()?;
        if !parts.next()?.starts_with("HTTP/") {
            return None;
        }
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let status = after.split_whitespace().next()?.parse().ok()?;
        Some(Self {
            method,
            path: path.to_owned(),
            query: query.to_owned(),
            status,
        })
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
