//! A small RAM file system for tests of what happens when a disk is full.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs mounted at a directory; unmounted on drop. Needs root (or `CAP_SYS_ADMIN`).
#[derive(Debug)]
pub struct Tmpfs {
    dir: PathBuf,
    mounted: bool,
}

impl Tmpfs {
    /// Mounts a tmpfs of `bytes` at `dir` (created when missing).
    pub fn mount(dir: &Path, bytes: u64) -> io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        run(Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={bytes},mode=0700"))
            .arg("tmpfs")
            .arg(dir))?;
        Ok(Self {
            dir: dir.to_owned(),
            mounted: true,
        })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Changes the size; files stay.
    pub fn resize(&self, bytes: u64) -> io::Result<()> {
        run(Command::new("mount")
            .arg("-o")
            .arg(format!("remount,size={bytes}"))
            .arg(&self.dir))
    }

    pub fn unmount(&mut self) -> io::Result<()> {
        if self.mounted {
            run(Command::new("umount").arg(&self.dir))?;
            self.mounted = false;
        }
        Ok(())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        if let Err(e) = self.unmount() {
            eprintln!("repovault-testkit: unmounting {}: {e}", self.dir.display());
        }
    }
}

fn run(cmd: &mut Command) -> io::Result<()> {
    let out = cmd.output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "{cmd:?} failed ({}): {} (mounting needs root)",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}
