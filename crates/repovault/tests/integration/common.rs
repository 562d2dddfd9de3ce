//! Proving a store intact, measuring it, and making incompressible test content.

use crate::support::Rv;

/// The store passes a full check, data included (`restic check --read-data` would do the same).
#[track_caller]
pub fn assert_store_intact(rv: &Rv<'_>) {
    rv.run(&["check", "--read-data"]).ok();
}

/// Bytes of all files of a local store.
pub fn store_bytes(rv: &Rv<'_>) -> u64 {
    dir_bytes(&rv.store)
}

pub fn dir_bytes(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                total += meta.len();
            }
        }
    }
    total
}

/// `len` pseudo-random bytes from `seed` (xorshift): incompressible, and the same on every run.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Runs exactly the shell block marked `dr-steps` in docs/DISASTER-RECOVERY.md (only restic and
/// git) to bring `repo` back into `target`, from the latest snapshot or from `snapshot`
/// (the document says to replace `latest` by a snapshot id for that).
#[track_caller]
pub fn run_dr_steps(
    env: &repovault_testkit::TestEnv,
    rv: &Rv<'_>,
    repo: &str,
    snapshot: Option<&str>,
    target: &std::path::Path,
) {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/DISASTER-RECOVERY.md"
    ))
    .expect("docs/DISASTER-RECOVERY.md");
    let start = doc
        .find("```sh dr-steps\n")
        .expect("a ```sh dr-steps block")
        + "```sh dr-steps\n".len();
    let end = start + doc[start..].find("```").expect("block end");
    let mut script = doc[start..end].to_owned();
    if let Some(id) = snapshot {
        assert!(script.contains("restic restore latest "), "{script}");
        script = script.replace("restic restore latest ", &format!("restic restore {id} "));
    }
    let work = env.fresh_dir("dr-work");
    let out = std::process::Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .envs(env.git_env())
        .envs(rv.extra_env.iter().cloned())
        .env("RESTIC_REPOSITORY", &rv.store)
        .env("RESTIC_PASSWORD", crate::support::PASSWORD)
        .env("REPO", repo)
        .env("TARGET", target)
        .env("WORK", &work)
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "DR steps failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
