//! Fixture repositories built by script, with fixed names and dates so their ids are stable.
//!
//! These are test helpers: they panic with the failing command's stderr instead of returning
//! errors, because a test cannot go on without its fixture.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::gitcmd::{run, TEST_EMAIL, TEST_EPOCH, TEST_NAME};
use crate::{repo_rel_path, TestEnv};

const STANDARD_SCRIPT: &str = include_str!("../fixtures/standard.sh");

/// Size of the binary file in the standard fixture: big enough to be stored as a delta-less
/// blob of some KB, small enough to keep fixtures fast.
pub const STANDARD_BINARY_LEN: usize = 8 * 1024;

/// Creates the bare repo `repos_root/<owner>/<name>.git` with the standard history and returns
/// its path. The work clone used to build it lives under `env.root()`.
///
/// History (dates one hour apart from [`TEST_EPOCH`]):
/// - `main` (HEAD): "Initial commit" (README.md, src/lib.rs, src/nested/deep.txt, executable
///   tools/build.sh, symlink README.link) → "Add binary asset" (assets/blob.bin,
///   [`standard_binary`]) → "Update README" → "Merge branch 'dev'" (two parents) →
///   "Bump answer";
/// - `dev`: two commits off "Add binary asset", merged into main;
/// - `feature`: two commits off "Add binary asset", not merged;
/// - `v0.1`: lightweight tag on "Add binary asset";
/// - `v1.0`: annotated tag ("Release 1.0") on the merge commit.
///
/// `http.receivepack` is set so the repo accepts pushes over HTTP.
pub fn standard(env: &TestEnv, repos_root: &Path, owner_name: &str) -> PathBuf {
    let bare = init_bare(env, repos_root, owner_name);
    let scratch = env.fresh_dir("fixture-standard");
    let binary = scratch.join("blob.bin");
    fs::write(&binary, standard_binary()).expect("writing the fixture's binary file");
    let mut cmd = Command::new("bash");
    env.git_isolation().apply(&mut cmd);
    cmd.arg("-c")
        .arg(STANDARD_SCRIPT)
        .arg("standard.sh")
        .arg(scratch.join("work"))
        .arg(&bare)
        .arg(&binary)
        .current_dir(&scratch);
    if let Err(e) = run(&mut cmd, None) {
        panic!("building the standard fixture {}: {e}", bare.display());
    }
    bare
}

/// Creates the bare repo `repos_root/<owner>/<name>.git` with no commits (HEAD → main, unborn).
pub fn empty(env: &TestEnv, repos_root: &Path, owner_name: &str) -> PathBuf {
    init_bare(env, repos_root, owner_name)
}

/// Creates the bare repo `repos_root/<owner>/<name>.git` with `n` linear commits on main.
///
/// Commit `i` (1-based) has message "Commit i", sets counter.txt to "i\n" and is dated
/// `TEST_EPOCH + 60 * i`; the first also adds README.md. Written with `git fast-import`, so
/// thousands of commits take a second or two.
pub fn many_commits(env: &TestEnv, repos_root: &Path, owner_name: &str, n: usize) -> PathBuf {
    let bare = init_bare(env, repos_root, owner_name);
    if n == 0 {
        return bare;
    }
    let mut stream = String::with_capacity(n * 200);
    for i in 1..=n {
        let when = TEST_EPOCH + 60 * i as i64;
        let message = format!("Commit {i}\n");
        let counter = format!("{i}\n");
        // Infallible: writing to a String.
        let _ = write!(
            stream,
            "commit refs/heads/main\n\
             mark :{i}\n\
             author {TEST_NAME} <{TEST_EMAIL}> {when} +0000\n\
             committer {TEST_NAME} <{TEST_EMAIL}> {when} +0000\n\
             data {}\n{message}",
            message.len()
        );
        if i == 1 {
            let readme = "# Many commits\n";
            let _ = write!(
                stream,
                "M 100644 inline README.md\ndata {}\n{readme}",
                readme.len()
            );
        }
        let _ = write!(
            stream,
            "M 100644 inline counter.txt\ndata {}\n{counter}\n",
            counter.len()
        );
    }
    stream.push_str("done\n");
    let mut cmd = env.git_command(&bare);
    cmd.args(["fast-import", "--quiet", "--done"]);
    if let Err(e) = run(&mut cmd, Some(stream.as_bytes())) {
        panic!("fast-import of {n} commits into {}: {e}", bare.display());
    }
    bare
}

/// The bytes of assets/blob.bin in the standard fixture: [`STANDARD_BINARY_LEN`] pseudo-random
/// bytes (xorshift, fixed seed), starting with a NUL and an 0xFF so it is not UTF-8.
pub fn standard_binary() -> Vec<u8> {
    let mut state: u32 = 0x9E37_79B9;
    let mut out = Vec::with_capacity(STANDARD_BINARY_LEN);
    out.extend_from_slice(&[0x00, 0xFF, 0xFE, 0x80]);
    while out.len() < STANDARD_BINARY_LEN {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(STANDARD_BINARY_LEN);
    out
}

/// `git init --bare -b main` at `repos_root/<owner>/<name>.git`, pushable over HTTP.
fn init_bare(env: &TestEnv, repos_root: &Path, owner_name: &str) -> PathBuf {
    let bare = repos_root.join(repo_rel_path(owner_name));
    // Building into an existing repo would silently mix two fixtures.
    assert!(
        !bare.exists(),
        "fixture repo {} already exists",
        bare.display()
    );
    let parent = bare.parent().unwrap_or(repos_root);
    if let Err(e) = fs::create_dir_all(parent) {
        panic!("creating {}: {e}", parent.display());
    }
    let bare_arg = bare.display().to_string();
    env.git(parent, &["init", "-q", "--bare", "-b", "main", &bare_arg]);
    env.git(&bare, &["config", "http.receivepack", "true"]);
    bare
}
