//! Git and Git LFS over HTTPS with the simulator's CA: clones carry every ref GitHub
//! advertises (pull request refs included), wikis and gists are repositories too, and LFS
//! objects come from the batch API.

use std::path::Path;
use std::process::Command;

use repovault_testkit::forge::{ApiStyle, Fixture, LfsBreak};
use repovault_testkit::{upstream, TestEnv};
use sha2::{Digest, Sha256};

use crate::support::Api;

fn git_with(
    env: &TestEnv,
    dir: &Path,
    args: &[&str],
    extra: &[(String, String)],
) -> std::process::Output {
    let mut cmd: Command = env.git_command(dir);
    cmd.args(args).envs(extra.iter().map(|(k, v)| (k, v)));
    cmd.output().expect("running git")
}

fn ok(out: std::process::Output) -> String {
    assert!(
        out.status.success(),
        "git failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn clones_over_https_carry_pull_refs_wikis_and_gists() {
    let api = Api::start(Fixture::Small);
    let env = TestEnv::new();
    let auth = api.sim.git_env(&api.token);
    let mirror = env.root().join("widgets.git");
    let mirror_arg = mirror.display().to_string();
    ok(git_with(
        &env,
        env.root(),
        &[
            "clone",
            "--mirror",
            "-q",
            &api.sim.clone_url("acme/widgets"),
            &mirror_arg,
        ],
        &auth,
    ));
    let upstream_refs = upstream::refs(&env, &api.sim.repo_path("acme/widgets"));
    assert_eq!(upstream::refs(&env, &mirror), upstream_refs);
    assert!(upstream_refs.iter().any(|(r, _)| r.ends_with("/merge")));
    assert!(upstream_refs
        .iter()
        .any(|(r, _)| r.starts_with("refs/pull/")));
    let dump = api.sim.dump(ApiStyle::Enterprise);
    let dumped = &dump["repositories"]["acme/widgets"]["git"]["refs"];
    for (name, id) in &upstream_refs {
        assert_eq!(dumped[name], *id.as_str());
    }
    ok(git_with(&env, &mirror, &["fsck", "--no-progress"], &[]));

    // The wiki, anonymously (public repository), and protocol v2.
    let ca = vec![(
        "GIT_SSL_CAINFO".to_owned(),
        api.sim.ca_path().display().to_string(),
    )];
    let wiki = env.root().join("wiki");
    ok(git_with(
        &env,
        env.root(),
        &[
            "-c",
            "protocol.version=2",
            "clone",
            "-q",
            &format!("{}/acme/widgets.wiki.git", api.sim.base_url()),
            &wiki.display().to_string(),
        ],
        &ca,
    ));
    assert!(wiki.join("Home.md").exists());
    // A wiki that is enabled but has no page does not exist, as on GitHub.
    let missing = git_with(
        &env,
        env.root(),
        &[
            "ls-remote",
            &format!("{}/acme/empty.wiki.git", api.sim.base_url()),
        ],
        &ca,
    );
    assert!(!missing.status.success());

    // Private repositories: the token as user name (TOKEN:x-oauth-basic) works; nothing or a
    // wrong token does not.
    let host = api.sim.host();
    let with_token = format!(
        "https://{}:x-oauth-basic@{host}/acme/private-tools.git",
        api.token
    );
    assert!(
        ok(git_with(&env, env.root(), &["ls-remote", &with_token], &ca))
            .contains("refs/heads/main")
    );
    let anonymous = git_with(
        &env,
        env.root(),
        &["ls-remote", &api.sim.clone_url("acme/private-tools")],
        &ca,
    );
    assert!(!anonymous.status.success());
    let wrong = format!("https://x-access-token:ghp_wrong@{host}/acme/private-tools.git");
    assert!(!git_with(&env, env.root(), &["ls-remote", &wrong], &ca)
        .status
        .success());
    // Pushing is refused.
    let push = git_with(
        &env,
        &mirror,
        &[
            "push",
            "-q",
            &api.sim.clone_url("acme/widgets"),
            "refs/heads/main:refs/heads/copy",
        ],
        &auth,
    );
    assert!(!push.status.success());

    // Gists are repositories at their git_pull_url.
    for (id, g) in dump["gists"].as_object().expect("gists") {
        let url = g["gist"]["git_pull_url"].as_str().expect("git_pull_url");
        let out = ok(git_with(&env, env.root(), &["ls-remote", url], &ca));
        let tip = g["git"]["refs"]["refs/heads/main"]
            .as_str()
            .expect("gist ref");
        assert!(out.contains(tip), "gist {id}: {out}");
    }
    let mark = api.sim.mark();
    ok(git_with(
        &env,
        env.root(),
        &["ls-remote", &api.sim.clone_url("acme/widgets")],
        &ca,
    ));
    let s = api.sim.summary_since(mark);
    assert!(
        s.git >= 1 && s.api == 0 && s.counted == 0,
        "git does not spend the API budget: {s:?}"
    );
}

#[test]
fn lfs_objects_come_from_the_batch_api_and_a_broken_one_fails() {
    let api = Api::start(Fixture::Small);
    let env = TestEnv::new();
    ok(git_with(
        &env,
        env.root(),
        &["lfs", "install", "--skip-repo"],
        &[],
    ));
    let auth = api.sim.git_env(&api.token);
    let mirror = env.root().join("assets.git");
    let mirror_arg = mirror.display().to_string();
    ok(git_with(
        &env,
        env.root(),
        &[
            "clone",
            "--mirror",
            "-q",
            &api.sim.clone_url("acme/assets"),
            &mirror_arg,
        ],
        &auth,
    ));
    ok(git_with(&env, &mirror, &["lfs", "fetch", "--all"], &auth));
    let oids = api.sim.lfs_oids("acme/assets");
    assert_eq!(oids.len(), 3, "two versions of one file and another file");
    for oid in &oids {
        let path = mirror
            .join("lfs/objects")
            .join(&oid[..2])
            .join(&oid[2..4])
            .join(oid);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(&hex::encode(Sha256::digest(&bytes)), oid);
    }

    // A corrupted object is caught by git-lfs' own check; a missing one is reported.
    for how in [LfsBreak::Corrupt, LfsBreak::Missing, LfsBreak::ServerError] {
        let fresh = env.fresh_dir("lfs").join("assets.git");
        let fresh_arg = fresh.display().to_string();
        ok(git_with(
            &env,
            env.root(),
            &[
                "clone",
                "--mirror",
                "-q",
                &api.sim.clone_url("acme/assets"),
                &fresh_arg,
            ],
            &auth,
        ));
        api.sim.break_lfs_object(&oids[0], how);
        let out = git_with(&env, &fresh, &["lfs", "fetch", "--all"], &auth);
        assert!(!out.status.success(), "{how:?} must fail the fetch");
        let path = fresh
            .join("lfs/objects")
            .join(&oids[0][..2])
            .join(&oids[0][2..4])
            .join(&oids[0]);
        assert!(!path.exists(), "{how:?}: no broken object may be stored");
        api.sim.clear_faults();
    }
}
