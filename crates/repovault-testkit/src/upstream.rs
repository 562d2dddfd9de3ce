//! Changes made directly to an "upstream" bare repo, as if someone had pushed to it.
//!
//! Plumbing on the bare repo (hash-object, a private index, commit-tree, update-ref) instead
//! of clone + commit + push: a few milliseconds per change, and the result is the same refs and
//! objects a push would leave. Each new commit is dated one minute after its parent, so ids are
//! stable and history is ordered. Test helpers: they panic with git's stderr on failure.

use std::io;
use std::path::Path;

use crate::gitcmd::{run, trimmed, TEST_EPOCH};
use crate::TestEnv;

/// Commits `content` as `file` (a path like "dir/name.txt") on top of `branch` and moves the
/// branch there; creates the branch (as a root commit) if it does not exist. Returns the new
/// commit id.
pub fn commit(
    env: &TestEnv,
    bare: &Path,
    branch: &str,
    file: &str,
    content: &[u8],
    msg: &str,
) -> String {
    match try_commit(env, bare, branch, file, content, msg) {
        Ok(id) => id,
        Err(e) => panic!("{e}"),
    }
}

/// [`commit`] returning git's failure instead of panicking.
pub fn try_commit(
    env: &TestEnv,
    bare: &Path,
    branch: &str,
    file: &str,
    content: &[u8],
    msg: &str,
) -> io::Result<String> {
    let refname = format!("refs/heads/{branch}");
    let parent = resolve(env, bare, &refname);
    let tree = tree_with_file(env, bare, parent.as_deref(), file, content)?;
    let new = commit_tree(env, bare, &tree, parent.as_deref(), msg)?;
    // The old value guards against a concurrent change (or a branch that appeared meanwhile).
    let old = parent.unwrap_or_default();
    git(env, bare, &["update-ref", &refname, &new, &old], None)?;
    Ok(new)
}

/// Replaces the tip of `branch` with a new commit whose parent is the old tip's (first) parent,
/// like a force-push of an amended commit; the old tip becomes unreachable unless another ref
/// points at it. The new commit adds `rewritten.txt` naming the old tip and has the old
/// subject plus " (rewritten)". Returns the new commit id.
pub fn force_push_rewrite(env: &TestEnv, bare: &Path, branch: &str) -> String {
    match try_force_push_rewrite(env, bare, branch) {
        Ok(id) => id,
        Err(e) => panic!("{e}"),
    }
}

/// [`force_push_rewrite`] returning failures instead of panicking.
pub fn try_force_push_rewrite(env: &TestEnv, bare: &Path, branch: &str) -> io::Result<String> {
    let refname = format!("refs/heads/{branch}");
    let Some(tip) = resolve(env, bare, &refname) else {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{refname} does not exist in {}", bare.display()),
        ));
    };
    let parent = resolve(env, bare, &format!("{tip}^1"));
    let content = format!("rewrite of {tip}\n");
    let tree = tree_with_file(env, bare, Some(&tip), "rewritten.txt", content.as_bytes())?;
    let subject = git(env, bare, &["log", "-1", "--format=%s", &tip], None)?;
    let msg = format!("{subject} (rewritten)");
    let date = commit_time(env, bare, &tip)? + 60;
    let new = commit_tree_at(env, bare, &tree, parent.as_deref(), &msg, date)?;
    git(env, bare, &["update-ref", &refname, &new, &tip], None)?;
    Ok(new)
}

/// Deletes `refname` (e.g. "refs/tags/v0.1" or "refs/heads/feature"); panics if it is absent.
pub fn delete_ref(env: &TestEnv, bare: &Path, refname: &str) {
    assert!(
        resolve(env, bare, refname).is_some(),
        "{refname} does not exist in {}",
        bare.display()
    );
    if let Err(e) = git(env, bare, &["update-ref", "-d", refname], None) {
        panic!("{e}");
    }
}

/// All refs as (refname, object id), sorted by refname. Annotated tags give the tag object's
/// id, as `git for-each-ref` does; HEAD is not included.
pub fn refs(env: &TestEnv, bare: &Path) -> Vec<(String, String)> {
    let out = match git(
        env,
        bare,
        &["for-each-ref", "--format=%(refname) %(objectname)"],
        None,
    ) {
        Ok(out) => out,
        Err(e) => panic!("{e}"),
    };
    let mut refs: Vec<(String, String)> = out
        .lines()
        .filter_map(|line| line.split_once(' '))
        .map(|(name, id)| (name.to_owned(), id.to_owned()))
        .collect();
    refs.sort();
    refs
}

/// The commit `rev` resolves to, or None if it does not exist.
fn resolve(env: &TestEnv, bare: &Path, rev: &str) -> Option<String> {
    let mut cmd = env.git_command(bare);
    cmd.args([
        "rev-parse",
        "--verify",
        "--quiet",
        &format!("{rev}^{{commit}}"),
    ]);
    run(&mut cmd, None).ok().map(|out| trimmed(&out))
}

/// Tree of `base` (or the empty tree) with `file` set to `content`, built in a private index
/// so the bare repo's state is untouched until update-ref.
fn tree_with_file(
    env: &TestEnv,
    bare: &Path,
    base: Option<&str>,
    file: &str,
    content: &[u8],
) -> io::Result<String> {
    let index = env.fresh_dir("upstream-index").join("index");
    let index = index.display().to_string();
    let with_index = [("GIT_INDEX_FILE", index.as_str())];
    let blob = git(env, bare, &["hash-object", "-w", "--stdin"], Some(content))?;
    match base {
        Some(base) => git_env(env, bare, &["read-tree", base], None, &with_index)?,
        None => git_env(env, bare, &["read-tree", "--empty"], None, &with_index)?,
    };
    let cacheinfo = format!("100644,{blob},{file}");
    git_env(
        env,
        bare,
        &["update-index", "--add", "--cacheinfo", &cacheinfo],
        None,
        &with_index,
    )?;
    git_env(env, bare, &["write-tree"], None, &with_index)
}

fn commit_tree(
    env: &TestEnv,
    bare: &Path,
    tree: &str,
    parent: Option<&str>,
    msg: &str,
) -> io::Result<String> {
    let date = match parent {
        Some(parent) => commit_time(env, bare, parent)? + 60,
        None => TEST_EPOCH,
    };
    commit_tree_at(env, bare, tree, parent, msg, date)
}

fn commit_tree_at(
    env: &TestEnv,
    bare: &Path,
    tree: &str,
    parent: Option<&str>,
    msg: &str,
    date: i64,
) -> io::Result<String> {
    let date = format!("{date} +0000");
    let mut args = vec!["commit-tree", tree];
    if let Some(parent) = parent {
        args.extend(["-p", parent]);
    }
    // The message goes through stdin so it may hold anything, newlines included.
    git_env(
        env,
        bare,
        &args,
        Some(msg.as_bytes()),
        &[
            ("GIT_AUTHOR_DATE", date.as_str()),
            ("GIT_COMMITTER_DATE", date.as_str()),
        ],
    )
}

fn commit_time(env: &TestEnv, bare: &Path, rev: &str) -> io::Result<i64> {
    let out = git(env, bare, &["log", "-1", "--format=%ct", rev], None)?;
    out.parse()
        .map_err(|e| io::Error::other(format!("commit time of {rev} is {out:?}: {e}")))
}

fn git(env: &TestEnv, bare: &Path, args: &[&str], stdin: Option<&[u8]>) -> io::Result<String> {
    git_env(env, bare, args, stdin, &[])
}

fn git_env(
    env: &TestEnv,
    bare: &Path,
    args: &[&str],
    stdin: Option<&[u8]>,
    vars: &[(&str, &str)],
) -> io::Result<String> {
    let mut cmd = env.git_command(bare);
    cmd.args(args).envs(vars.iter().copied());
    run(&mut cmd, stdin).map(|out| trimmed(&out))
}
