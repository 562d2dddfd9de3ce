//! The keys of a GitHub source against the forge simulator: selections, filters, capture
//! subsets, the Enterprise path style with a CA bundle, and config errors.

use std::collections::BTreeSet;

use repovault_testkit::forge::{Fixture, ForgeSim, SimOptions};
use repovault_testkit::TestEnv;

use crate::github::{read_json, start, Gh};

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn backed_up(gh: &Gh<'_>) -> BTreeSet<String> {
    let run = gh.backup();
    assert_eq!(
        run.code, 0,
        "stdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
    gh.repos_in(&run.json())
}

#[test]
fn github_selections_and_filters() {
    let env = TestEnv::new();
    let sim: ForgeSim = start(SimOptions::new(Fixture::Small));
    let light = "capture = [\"issues\"]";
    let all = Gh::new(&env, &sim, "all", &format!("orgs = [\"acme\"]\n{light}"));
    let everything = backed_up(&all);
    assert!(everything.contains("acme/legacy") && everything.contains("acme/toolkit"));

    let filtered = Gh::new(
        &env,
        &sim,
        "filtered",
        &format!("orgs = [\"acme\"]\ninclude = [\"acme/*\"]\nexclude = [\"acme/priv*\", \"ACME/EMPTY\"]\nskip_forks = true\nskip_archived = true\n{light}"),
    );
    let got = backed_up(&filtered);
    let mut want = everything.clone();
    for gone in [
        "acme/private-tools",
        "acme/empty",
        "acme/toolkit",
        "acme/legacy",
    ] {
        assert!(want.remove(gone), "{gone} is in the fixture");
    }
    assert_eq!(
        got, want,
        "include/exclude (case-insensitive), skip_forks, skip_archived"
    );

    let mut picked = Gh::new(
        &env,
        &sim,
        "picked",
        "users = [\"alice\"]\nstarred_by = [\"dave\"]\nrepos = [\"oss/toolkit\"]\ncapture = [\"git\", \"gists\"]",
    );
    // A GIT_SSL_CAINFO in the environment (common in containers) must not hide the source's
    // ca_bundle from git.
    picked.rv.extra_env.push((
        "GIT_SSL_CAINFO".into(),
        "/etc/ssl/certs/ca-certificates.crt".into(),
    ));
    let got = backed_up(&picked);
    let repos: BTreeSet<String> = got
        .iter()
        .filter(|r| !r.contains("gist:"))
        .cloned()
        .collect();
    assert_eq!(
        repos,
        set(&["acme/widgets", "alice/dotfiles", "oss/toolkit"]),
        "users, starred_by, repos"
    );
    assert!(
        got.iter().any(|r| r.starts_with("alice/gist:")),
        "gists of listed users"
    );
}

#[test]
fn github_capture_subsets_and_enterprise_paths() {
    let env = TestEnv::new();
    let sim = start(SimOptions::new(Fixture::Small));
    let gh = Gh::new(
        &env,
        &sim,
        "ghe",
        "repos = [\"acme/widgets\"]\ncapture = [\"issues\", \"labels\"]",
    );
    // Enterprise style: https://HOST/api/v3 with the simulator's CA.
    let text = std::fs::read_to_string(&gh.config).expect("config");
    std::fs::write(
        &gh.config,
        text.replace(
            &format!("api_url = \"{}\"", sim.api_url()),
            &format!("api_url = \"{}\"", sim.enterprise_api_url()),
        ),
    )
    .expect("write");
    let mark = sim.mark();
    let run = gh.backup();
    assert_eq!(run.code, 0, "{}", run.stderr);
    let log = sim.requests_since(mark);
    assert!(
        log.iter()
            .filter(|r| r.kind == repovault_testkit::forge::RequestKind::Api)
            .all(|r| r.path.starts_with("/api/v3/")),
        "Enterprise paths only"
    );
    assert!(
        !log.iter()
            .any(|r| r.kind == repovault_testkit::forge::RequestKind::Git),
        "no git without `git` in capture"
    );
    let dir = env.fresh_dir("meta");
    let meta = dir.join("meta");
    let to = dir.join("git");
    let out = gh.rv.run(&[
        "restore",
        "acme/widgets",
        "--to",
        to.to_str().expect("utf-8"),
        "--meta-to",
        meta.to_str().expect("utf-8"),
    ]);
    // Without git in the snapshot there is no repository to restore.
    assert_ne!(out.code, 0);
    let snapshots = gh.rv.snapshots("acme/widgets");
    assert_eq!(snapshots.len(), 1);
    let restored = env.fresh_dir("meta-only");
    let out = std::process::Command::new("restic")
        .args([
            "-r",
            gh.rv.store.to_str().expect("utf-8"),
            "--no-cache",
            "restore",
            "latest",
            "--target",
            restored.to_str().expect("utf-8"),
        ])
        .env("RESTIC_PASSWORD", crate::support::PASSWORD)
        .output()
        .expect("restic runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let root = restored.join("acme/widgets");
    assert!(root.join("meta/labels.json").is_file());
    assert!(
        std::fs::read_dir(root.join("meta/issues"))
            .expect("issues")
            .count()
            > 0
    );
    for absent in [
        "git",
        "wiki",
        "lfs",
        "meta/releases",
        "meta/hooks.json",
        "meta/milestones.json",
        "meta/pulls",
    ] {
        assert!(!root.join(absent).exists(), "{absent} is not captured");
    }
    let manifest = read_json(&root.join("meta/_manifest.json"));
    assert!(manifest["counts"]["issues"].as_u64().expect("count") > 0);
    // The repository's own API URLs are Enterprise style too.
    assert!(read_json(&root.join("meta/repository.json"))["url"]
        .as_str()
        .expect("url")
        .contains("/api/v3/repos/acme/widgets"));
}

#[test]
fn github_config_errors_are_usage_errors() {
    let env = TestEnv::new();
    let rv = crate::support::Rv::new(&env);
    for (extra, says) in [
        ("orgs = [\"acme\"]\nbogus = 1", "bogus"),
        ("", "orgs, users, starred_by or repos"),
        (
            "orgs = [\"acme\"]\napp_id = 1",
            "app_id and private_key_file",
        ),
        ("repos = [\"no-slash\"]", "owner/name"),
        (
            "orgs = [\"acme\"]\ncapture = [\"everything\"]",
            "everything",
        ),
        ("orgs = [\"acme\"]\nfull_pass_interval = \"soon\"", "soon"),
        (
            "orgs = [\"acme\"]\napi_url = \"https://u:secret@ghe.example/api/v3\"",
            "credentials",
        ),
    ] {
        let config = rv.config(&format!(
            "[[source]]\nname = \"g\"\nkind = \"github\"\n{extra}\n"
        ));
        let run = rv.run(&["backup", "--config", config.to_str().expect("utf-8")]);
        assert_eq!(run.code, 2, "{extra}: {}", run.stderr);
        assert!(run.stderr.contains(says), "{extra}: {}", run.stderr);
        assert!(!run.stderr.contains("secret@"), "{}", run.stderr);
    }
}
