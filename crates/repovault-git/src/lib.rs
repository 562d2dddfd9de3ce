//! Git side of repovault, over the `git` CLI: remote URLs and credentials, the bare mirror
//! cache, `refs.txt`, incremental bundle chains and rebuilding a repository from a chain.
//!
//! Nothing here prints; every error message is redacted before it is built.

mod auth;
mod chain;
mod cmd;
mod consolidate;
mod error;
mod lfs;
mod mirror;
mod redact;
mod refs;
mod url;

pub use auth::GitAuth;
pub use chain::{
    bundle_heads, list_chain, rebuild, ChainLink, ChainPolicy, NewBaseReason, NewLink, PendingLink,
};
pub use error::{FailureKind, GitError};
pub use lfs::{is_oid, lfs_verify};
pub use mirror::Mirror;
pub use redact::redact;
pub use refs::{Head, RefsFile};
pub use url::{RemoteUrl, Transport};

/// Makes a non-bare working clone at `work_dir` out of the bare repository `bare` built by
/// [`rebuild`]: the bare repository becomes `work_dir/.git` and HEAD is checked out.
pub fn convert_to_worktree(work_dir: &std::path::Path) -> Result<(), GitError> {
    let git_dir = work_dir.join(".git");
    let g = |op: &'static str| cmd::Git::new(op).git_dir(&git_dir);
    g("config").args(["config", "core.bare", "false"]).run()?;
    // An unborn HEAD (empty repository) has nothing to check out.
    let (has_head, _) = g("rev-parse")
        .args(["rev-parse", "-q", "--verify", "HEAD"])
        .run_status()?;
    if has_head {
        g("reset")
            .args([
                "--work-tree",
                &work_dir.display().to_string(),
                "reset",
                "--hard",
                "--quiet",
                "HEAD",
            ])
            .run()?;
    }
    Ok(())
}
