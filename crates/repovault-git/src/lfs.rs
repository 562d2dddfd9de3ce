//! Git LFS objects of a mirror, through the real `git-lfs` client.
//!
//! `git lfs fetch --all <url>` downloads every object referenced by any ref into the mirror's
//! `lfs/objects/aa/bb/<oid>`; credentials and the CA bundle reach git-lfs the same way as git
//! (the environment's `GIT_CONFIG_*`, scoped to the remote's origin).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::{FailureKind, GitAuth, GitError, Mirror, RemoteUrl};

impl Mirror {
    /// Where git-lfs keeps the object `oid` in this mirror.
    pub fn lfs_object_path(&self, oid: &str) -> Option<PathBuf> {
        is_oid(oid).then(|| {
            self.path()
                .join("lfs/objects")
                .join(&oid[0..2])
                .join(&oid[2..4])
                .join(oid)
        })
    }

    /// Fetches every LFS object referenced by any ref from `url`.
    pub fn lfs_fetch_all(
        &self,
        url: &RemoteUrl,
        auth: &GitAuth,
        timeout: Option<Duration>,
    ) -> Result<(), GitError> {
        self.git("lfs fetch")
            .args(["lfs", "fetch", "--all", url.as_str()])
            .envs(auth.env_for(url))
            // A bare mirror has no work tree for git-lfs to look at; it needs none.
            .envs(vec![("GIT_LFS_SKIP_SMUDGE".into(), "1".into())])
            .timeout(timeout)
            .run()
            .map_err(|e| match e {
                GitError::Command {
                    operation,
                    kind: FailureKind::Other,
                    message,
                } if message.contains("is not a git command") || message.contains("'lfs'") => {
                    GitError::Command {
                        operation,
                        kind: FailureKind::Tooling,
                        message: "git-lfs is not installed".into(),
                    }
                }
                other => other,
            })?;
        Ok(())
    }

    /// The LFS objects the mirror holds, by oid.
    pub fn lfs_objects(&self) -> Result<Vec<(String, PathBuf)>, GitError> {
        let root = self.path().join("lfs/objects");
        let mut out = Vec::new();
        let Ok(level1) = std::fs::read_dir(&root) else {
            return Ok(out);
        };
        for a in level1.flatten() {
            let Ok(level2) = std::fs::read_dir(a.path()) else {
                continue;
            };
            for b in level2.flatten() {
                let Ok(files) = std::fs::read_dir(b.path()) else {
                    continue;
                };
                for f in files.flatten() {
                    let name = f.file_name().to_string_lossy().into_owned();
                    if is_oid(&name) && f.path().is_file() {
                        out.push((name, f.path()));
                    }
                }
            }
        }
        out.sort();
        Ok(out)
    }
}

/// A git-lfs oid: 64 lower-case hex digits (SHA-256).
pub fn is_oid(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Whether the file's SHA-256 is `oid`.
pub fn lfs_verify(path: &Path, oid: &str) -> Result<bool, GitError> {
    let mut file = std::fs::File::open(path)
        .map_err(|e| GitError::io(format!("opening {}", path.display()), e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| GitError::io(format!("reading {}", path.display()), e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()) == oid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifies_by_sha256() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("x");
        std::fs::write(&f, b"hello\n").expect("write");
        let oid = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";
        assert!(is_oid(oid));
        assert!(lfs_verify(&f, oid).expect("read"));
        assert!(!lfs_verify(&f, &"0".repeat(64)).expect("read"));
        assert!(!is_oid("../x"));
    }
}
