//! GitHub sources end to end: the real binary against the forge simulator (HTTPS with its own
//! CA, real git, git-lfs and release downloads), checked against the simulator's data dump.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use repovault_testkit::forge::{
    ApiStyle, FaultScope, Fixture, ForgeSim, IssueEdit, LfsBreak, RepoFault, RequestKind,
    SimOptions,
};
use repovault_testkit::TestEnv;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::support::{refs_of, repo_report, Run, Rv};

const TOKEN_ENV: &str = "RV_TEST_GITHUB_TOKEN";

/// A store, cache and config of its own, against one simulator.
pub struct Gh<'a> {
    pub rv: Rv<'a>,
    pub sim: &'a ForgeSim,
    pub config: PathBuf,
}

impl<'a> Gh<'a> {
    /// `extra` are more keys of the source (`orgs = [...]`, `capture = [...]`, …).
    pub fn new(env: &'a TestEnv, sim: &'a ForgeSim, tag: &str, extra: &str) -> Self {
        let rv = Rv {
            env,
            store: env.root().join(format!("store-{tag}")),
            cache: env.root().join(format!("cache-{tag}")),
            extra_env: vec![(TOKEN_ENV.into(), sim.token())],
        };
        rv.run(&["init"]).ok();
        let config = env.root().join(format!("{tag}.toml"));
        let gh = Self { rv, sim, config };
        gh.set_source(extra);
        gh
    }

    pub fn set_source(&self, extra: &str) {
        let text = format!(
            "[[source]]\nname = \"gh\"\nkind = \"github\"\napi_url = \"{}\"\nca_bundle = \"{}\"\n{extra}\n",
            self.sim.api_url(),
            self.sim.ca_path().display()
        );
        let text = if extra.contains("app_id") {
            text
        } else {
            format!("{text}token_env = \"{TOKEN_ENV}\"\n")
        };
        std::fs::write(&self.config, text).expect("write config");
    }

    /// A backup run; every output is checked for the token.
    pub fn backup(&self) -> Run {
        let run = self.rv.backup_config(&self.config);
        self.assert_no_secret(&run);
        run
    }

    pub fn assert_no_secret(&self, run: &Run) {
        let token = self.sim.token();
        assert!(
            !run.stdout.contains(&token) && !run.stderr.contains(&token),
            "the token appeared in the output"
        );
    }

    /// Restores `repo` with its wiki and metadata into fresh directories.
    pub fn restore_all(&self, repo: &str, with_wiki: bool) -> (PathBuf, Option<PathBuf>, PathBuf) {
        let dir = self
            .rv
            .env
            .fresh_dir(&format!("restore-{}", repo.replace(['/', ':'], "-")));
        let git = dir.join("git");
        let wiki = dir.join("wiki");
        let meta = dir.join("meta");
        let mut args = vec![
            "restore".to_owned(),
            repo.to_owned(),
            "--to".into(),
            git.display().to_string(),
            "--meta-to".into(),
            meta.display().to_string(),
            "--json".into(),
        ];
        if with_wiki {
            args.extend(["--wiki-to".into(), wiki.display().to_string()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = self.rv.run(&args).ok();
        self.assert_no_secret(&run);
        (git, with_wiki.then_some(wiki), meta)
    }

    pub fn repos_in(&self, report: &Value) -> BTreeSet<String> {
        report["repos"]
            .as_array()
            .expect("repos")
            .iter()
            .map(|r| r["repo"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

pub fn start(options: SimOptions) -> ForgeSim {
    ForgeSim::start_with(options).expect("the forge simulator starts")
}

pub fn read_json(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn sha256_file(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).expect("read")))
}

fn refs_map(env: &TestEnv, repo: &Path) -> BTreeMap<String, String> {
    refs_of(env, repo).into_iter().collect()
}

fn as_refs(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// The same webhook redaction as the export, for comparing with the simulator's hooks.
fn without_secrets(mut hooks: Value) -> Value {
    for h in hooks.as_array_mut().into_iter().flatten() {
        if let Some(c) = h.get_mut("config").and_then(Value::as_object_mut) {
            c.retain(|k, _| {
                let k = k.to_ascii_lowercase();
                !(k.contains("secret") || k.contains("token") || k.contains("password"))
            });
        }
    }
    hooks
}

fn sorted_by(mut v: Vec<Value>, key: &str) -> Vec<Value> {
    v.sort_by(|a, b| {
        let ka = (a[key].as_u64(), a[key].as_str().map(str::to_owned));
        let kb = (b[key].as_u64(), b[key].as_str().map(str::to_owned));
        ka.cmp(&kb)
    });
    v
}

/// Paths where two JSON values differ, for readable failures.
fn differences(a: &Value, b: &Value, path: &str, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for k in x.keys().chain(y.keys()).collect::<BTreeSet<_>>() {
                differences(
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                    &format!("{path}.{k}"),
                    out,
                );
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                differences(p, q, &format!("{path}[{i}]"), out);
            }
        }
        _ if a != b => out.push(format!("{path}: {a} != {b}")),
        _ => {}
    }
}

#[track_caller]
fn assert_json(have: &Value, want: &Value, what: &str) {
    let mut d = Vec::new();
    differences(have, want, "", &mut d);
    assert!(
        d.is_empty(),
        "{what} differs:\n{}",
        d.iter().take(20).cloned().collect::<Vec<_>>().join("\n")
    );
}

/// Every file below `dir`, relative.
fn files_below(dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(rel) = p.strip_prefix(dir) {
                out.insert(rel.display().to_string());
            }
        }
    }
    out
}

/// The restored metadata of one repository equals what the simulator serves.
///
/// Not `strict`: pull requests embed their repository (`base.repo`, `head.repo`), which changes
/// with every push without moving the pull request's `updated_at`; only a full pass refreshes
/// those copies, so they are left out of the comparison.
fn assert_meta_equals(meta: &Path, want: &Value, repo: &str, strict: bool) {
    let embedded = |mut v: Value| {
        if !strict {
            for side in ["base", "head"] {
                if let Some(o) = v.get_mut(side).and_then(Value::as_object_mut) {
                    o.remove("repo");
                }
            }
        }
        v
    };
    assert_json(
        &read_json(&meta.join("repository.json")),
        &want["repository"],
        &format!("{repo}: repository"),
    );
    let issues = want["issues"].as_object().expect("issues");
    let pulls = want["pulls"].as_object().expect("pulls");
    let mut expected_files = BTreeSet::new();
    for (n, i) in issues {
        if let Some(p) = pulls.get(n) {
            let doc = read_json(&meta.join(format!("pulls/{n}.json")));
            expected_files.insert(format!("pulls/{n}.json"));
            assert_json(
                &doc["issue"],
                &i["issue"],
                &format!("{repo} pull {n}: issue"),
            );
            assert_eq!(doc["comments"], i["comments"], "{repo} pull {n}: comments");
            assert_eq!(doc["events"], i["events"], "{repo} pull {n}: events");
            assert_json(
                &embedded(doc["pull"].clone()),
                &embedded(p["pull"].clone()),
                &format!("{repo} pull {n}: pull"),
            );
            assert_eq!(doc["reviews"], p["reviews"], "{repo} pull {n}: reviews");
            assert_eq!(
                doc["review_comments"], p["review_comments"],
                "{repo} pull {n}: review comments"
            );
            assert_eq!(doc["commits"], p["commits"], "{repo} pull {n}: commits");
        } else {
            let doc = read_json(&meta.join(format!("issues/{n}.json")));
            expected_files.insert(format!("issues/{n}.json"));
            assert_json(
                &doc["issue"],
                &i["issue"],
                &format!("{repo} issue {n}: issue"),
            );
            assert_eq!(doc["comments"], i["comments"], "{repo} issue {n}: comments");
            assert_eq!(doc["events"], i["events"], "{repo} issue {n}: events");
        }
    }
    for r in want["releases"].as_array().expect("releases") {
        let id = r["release"]["id"].as_u64().expect("release id");
        expected_files.insert(format!("releases/{id}.json"));
        assert_eq!(
            read_json(&meta.join(format!("releases/{id}.json"))),
            r["release"],
            "{repo} release {id}"
        );
        for a in r["assets"].as_array().expect("assets") {
            let dir = meta.join(format!("releases/{id}/assets"));
            let aid = a["id"].as_u64().expect("asset id");
            let file = std::fs::read_dir(&dir)
                .expect("asset dir")
                .flatten()
                .find(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .starts_with(&format!("{aid}-"))
                })
                .unwrap_or_else(|| panic!("{repo}: asset {aid} missing"));
            expected_files.insert(format!(
                "releases/{id}/assets/{}",
                file.file_name().to_string_lossy()
            ));
            assert_eq!(
                sha256_file(&file.path()),
                a["sha256"].as_str().expect("sha"),
                "{repo}: asset {aid} bytes"
            );
        }
    }
    let labels = read_json(&meta.join("labels.json"));
    assert_eq!(
        labels,
        Value::Array(sorted_by(
            want["labels"].as_array().cloned().unwrap_or_default(),
            "name"
        )),
        "{repo}: labels"
    );
    let milestones = read_json(&meta.join("milestones.json"));
    assert_eq!(
        milestones,
        Value::Array(sorted_by(
            want["milestones"].as_array().cloned().unwrap_or_default(),
            "number"
        )),
        "{repo}: milestones"
    );
    let hooks = without_secrets(want["hooks"].clone());
    if hooks.as_array().is_some_and(|h| !h.is_empty()) {
        assert_eq!(
            read_json(&meta.join("hooks.json")),
            Value::Array(sorted_by(
                hooks.as_array().cloned().unwrap_or_default(),
                "id"
            )),
            "{repo}: hooks"
        );
        expected_files.insert("hooks.json".into());
    }
    for f in [
        "repository.json",
        "labels.json",
        "milestones.json",
        "_manifest.json",
    ] {
        expected_files.insert(f.into());
    }
    let have: BTreeSet<String> = files_below(meta)
        .into_iter()
        .filter(|f| f != "hooks.json" || expected_files.contains(f))
        .collect();
    assert_eq!(have, expected_files, "{repo}: the files of meta/");
    let manifest = read_json(&meta.join("_manifest.json"));
    assert_eq!(manifest["schema_version"], 1);
    assert!(
        manifest["etags"].as_object().is_some_and(|e| !e.is_empty()),
        "{repo}: ETags kept"
    );
}

fn backup_json(gh: &Gh<'_>) -> Value {
    let run = gh.backup();
    assert_eq!(
        run.code, 0,
        "stdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
    run.json()
}

#[test]
fn github_capture_is_exact_incremental_and_restorable() {
    let env = TestEnv::new();
    let sim = start(SimOptions::new(Fixture::Small));
    let gh = Gh::new(&env, &sim, "main", "orgs = [\"acme\"]\nusers = [\"alice\"]");
    let first = backup_json(&gh);
    let dump = sim.dump(ApiStyle::Root);
    let repos = dump["repositories"].as_object().expect("repositories");
    let wanted: Vec<&String> = repos
        .keys()
        .filter(|k| k.starts_with("acme/") || k.starts_with("alice/"))
        .collect();
    assert_eq!(
        gh.repos_in(&first)
            .into_iter()
            .filter(|r| !r.contains("gist:"))
            .collect::<BTreeSet<_>>(),
        wanted.iter().map(|s| (*s).clone()).collect::<BTreeSet<_>>(),
        "every repository of acme and alice"
    );
    let api = &first["sources"][0]["api"];
    assert!(api["requests"].as_u64().expect("requests") > 0, "{first:#}");
    for full in &wanted {
        let want = &repos[*full];
        let with_wiki = !want["wiki"].is_null();
        let (git, wiki, meta) = gh.restore_all(full, with_wiki);
        assert_eq!(
            refs_map(&env, &git),
            as_refs(&want["git"]["refs"]),
            "{full}: refs"
        );
        if let Some(wiki) = wiki {
            assert_eq!(
                refs_map(&env, &wiki),
                as_refs(&want["wiki"]["refs"]),
                "{full}: wiki refs"
            );
        }
        assert_meta_equals(&meta, want, full, true);
        let lfs: BTreeSet<String> = want["lfs"]
            .as_array()
            .expect("lfs")
            .iter()
            .map(|o| o["oid"].as_str().unwrap_or_default().to_owned())
            .collect();
        let placed: BTreeSet<String> = files_below(&git.join("lfs/objects"))
            .into_iter()
            .filter_map(|p| p.rsplit('/').next().map(str::to_owned))
            .collect();
        assert_eq!(
            placed, lfs,
            "{full}: LFS objects placed in the restored repository"
        );
        for oid in &placed {
            let p = git
                .join("lfs/objects")
                .join(&oid[0..2])
                .join(&oid[2..4])
                .join(oid);
            assert_eq!(&sha256_file(&p), oid);
        }
    }
    assert!(
        repos
            .values()
            .any(|r| !r["lfs"].as_array().is_none_or(Vec::is_empty)),
        "the fixture has LFS objects"
    );
    assert!(
        repos.values().any(|r| !r["wiki"].is_null()),
        "the fixture has a wiki"
    );
    // Gists of alice.
    let gists = dump["gists"].as_object().expect("gists");
    let mut alice_gists = 0;
    for (id, g) in gists {
        if g["gist"]["owner"]["login"] != "alice" {
            continue;
        }
        alice_gists += 1;
        let dir = env.fresh_dir("gist");
        gh.rv.restore(&format!("alice/gist:{id}"), None, &dir).ok();
        assert_eq!(
            refs_map(&env, &dir),
            as_refs(&g["git"]["refs"]),
            "gist {id}"
        );
    }
    assert!(alice_gists > 0, "alice has gists");

    // A second run with no changes: only conditional API requests, nothing new stored.
    let mark = sim.mark();
    let second = backup_json(&gh);
    let unconditional: Vec<_> = sim
        .non_conditional_since(mark)
        .into_iter()
        .filter(|r| r.kind == RequestKind::Api)
        .collect();
    assert!(
        unconditional.is_empty(),
        "unconditional requests on a no-change run: {unconditional:#?}"
    );
    assert_eq!(
        sim.counted_since(mark),
        0,
        "no request counted against the budget"
    );
    assert_eq!(second["totals"]["changed"], 0, "{second:#}");
    assert!(
        second["totals"]["bytes_added"].as_u64().expect("bytes") < 64 * 1024,
        "{second:#}"
    );
    assert_eq!(
        second["sources"][0]["api"]["not_modified"],
        second["sources"][0]["api"]["requests"]
    );

    // Changes on the forge appear in the next snapshot.
    let comment = sim
        .add_comment(
            "acme/widgets",
            1,
            Some("bob"),
            "a new comment from the test",
        )
        .expect("comment");
    sim.edit_issue(
        "acme/widgets",
        2,
        &IssueEdit {
            title: Some("An edited title".into()),
            bump_updated_at: true,
            ..IssueEdit::default()
        },
    )
    .expect("edit");
    let release = sim
        .add_release(
            "acme/widgets",
            "v9.9.9",
            &[("tool.bin", b"new release bytes")],
        )
        .expect("release");
    let forced = sim.force_push("acme/widgets", "main").expect("force push");
    let third = backup_json(&gh);
    assert_eq!(repo_report(&third, "acme/widgets")["changed"], true);
    let (git, _, meta) = gh.restore_all("acme/widgets", false);
    assert_eq!(
        refs_map(&env, &git)["refs/heads/main"],
        forced,
        "force-pushed main"
    );
    let dump = sim.dump(ApiStyle::Root);
    let want = &dump["repositories"]["acme/widgets"];
    assert_eq!(refs_map(&env, &git), as_refs(&want["git"]["refs"]));
    let doc_of = |n: u64| {
        let p = meta.join(format!("issues/{n}.json"));
        if p.exists() {
            read_json(&p)
        } else {
            read_json(&meta.join(format!("pulls/{n}.json")))
        }
    };
    assert!(doc_of(1)["comments"]
        .as_array()
        .expect("comments")
        .iter()
        .any(|c| c["id"] == comment));
    assert_eq!(doc_of(2)["issue"]["title"], "An edited title");
    assert!(
        meta.join(format!("releases/{release}.json")).is_file(),
        "new release"
    );
    // Pull requests whose base moved with the force-push are refreshed by the full pass below;
    // everything else is current already.
    let _ = want;

    // An edit that does not move updated_at is caught by the next full pass.
    // (Issue 3: 1 and 2 were just updated, so they sit on the page the cursor points at.)
    sim.edit_issue(
        "acme/widgets",
        3,
        &IssueEdit {
            body: Some("silently edited".into()),
            bump_updated_at: false,
            ..IssueEdit::default()
        },
    )
    .expect("edit");
    let incremental = backup_json(&gh);
    let (_, _, meta) = gh.restore_all("acme/widgets", false);
    let body = |meta: &Path| {
        let p = meta.join("issues/3.json");
        let doc = if p.exists() {
            read_json(&p)
        } else {
            read_json(&meta.join("pulls/3.json"))
        };
        doc["issue"]["body"].clone()
    };
    assert_ne!(
        body(&meta),
        "silently edited",
        "not visible to since: {incremental:#}"
    );
    gh.set_source("orgs = [\"acme\"]\nusers = [\"alice\"]\nfull_pass_interval = \"1s\"");
    std::thread::sleep(Duration::from_millis(1100));
    backup_json(&gh);
    let (_, _, meta) = gh.restore_all("acme/widgets", false);
    assert_eq!(body(&meta), "silently edited", "the full pass caught it");
    assert_meta_equals(
        &meta,
        &sim.dump(ApiStyle::Root)["repositories"]["acme/widgets"],
        "acme/widgets",
        true,
    );
    // No token anywhere in the cache either.
    for f in files_below(&gh.rv.cache) {
        let bytes = std::fs::read(gh.rv.cache.join(&f)).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(&sim.token()),
            "token in {f}"
        );
    }
}

#[test]
fn github_waits_for_the_rate_limit_reset() {
    let env = TestEnv::new();
    let mut options = SimOptions::new(Fixture::Small);
    options.rate_window = Duration::from_secs(6);
    let sim = start(options);
    let gh = Gh::new(&env, &sim, "rl", "orgs = [\"acme\"]");
    sim.set_remaining(50);
    let report = backup_json(&gh);
    let api = &report["sources"][0]["api"];
    assert!(api["requests"].as_u64().expect("requests") > 50, "{api:#}");
    assert!(
        api["rate_limit_waits"].as_u64().expect("waits") >= 1,
        "{api:#}"
    );
    assert!(
        api["rate_limit_wait_ms"].as_u64().expect("ms") > 0,
        "{api:#}"
    );
    assert_eq!(report["totals"]["failed"], 0);
}

#[test]
fn github_app_tokens_are_renewed_during_a_run() {
    let env = TestEnv::new();
    let mut options = SimOptions::new(Fixture::Small);
    options.token_lifetime = Duration::from_secs(8);
    let sim = start(options);
    // Every answer is delayed, so the run outlasts the 8 s tokens by construction: each
    // repository waits for a chain of more than ten requests in turn.
    sim.set_slow(Some(Duration::from_millis(150)));
    let app = sim.app().expect("the fixture has an App");
    let gh = Gh::new(
        &env,
        &sim,
        "app",
        &format!(
            "app_id = {}\nprivate_key_file = \"{}\"\norgs = [\"acme\"]",
            app.app_id,
            app.private_key_path.display()
        ),
    );
    let mark = sim.mark();
    let run = gh.rv.run(&[
        "backup",
        "--config",
        gh.config.to_str().expect("utf-8"),
        "--json",
        "--concurrency",
        "1",
    ]);
    assert_eq!(
        run.code, 0,
        "stdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
    let log = sim.requests_since(mark);
    let exchanges = log
        .iter()
        .filter(|r| r.path.contains("/access_tokens"))
        .count();
    assert!(
        exchanges >= 2,
        "the installation token was renewed ({exchanges} exchanges)"
    );
    assert!(
        !log.iter().any(|r| r.status == 401),
        "no request with an expired token"
    );
    assert!(log.iter().any(|r| r.identity.starts_with("installation:")));
}

#[test]
fn github_failing_repositories_do_not_fail_the_others() {
    let env = TestEnv::new();
    let sim = start(SimOptions::new(Fixture::Small));
    let gh = Gh::new(&env, &sim, "faults", "orgs = [\"acme\"]");
    sim.fail_repo("acme/widgets", RepoFault::ServerError, FaultScope::Api);
    sim.fail_repo("acme/legacy", RepoFault::Blocked, FaultScope::Both);
    sim.fail_repo("acme/private-tools", RepoFault::NotFound, FaultScope::Both);
    let oids = sim.lfs_oids("acme/assets");
    sim.break_lfs_object(&oids[0], LfsBreak::Corrupt);
    let run = gh.backup();
    assert_eq!(run.code, 1, "some repositories failed: {}", run.stderr);
    let report = run.json();
    let kind = |repo: &str| {
        repo_report(&report, repo)["error"]["kind"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(repo_report(&report, "acme/widgets")["status"], "failed");
    assert_eq!(kind("acme/widgets"), "server");
    assert_eq!(repo_report(&report, "acme/legacy")["status"], "failed");
    assert_eq!(
        repo_report(&report, "acme/private-tools")["status"],
        "failed"
    );
    assert_eq!(kind("acme/private-tools"), "not-found");
    assert_eq!(
        repo_report(&report, "acme/assets")["status"],
        "failed",
        "broken LFS object"
    );
    // The code of widgets was still stored, and the healthy repositories are fine.
    assert!(repo_report(&report, "acme/widgets")["snapshot"].is_string());
    for ok in ["acme/empty", "acme/toolkit"] {
        assert_eq!(repo_report(&report, ok)["status"], "ok", "{ok}: {report:#}");
    }
    // Once the forge recovers, the next run is clean.
    sim.clear_faults();
    let again = backup_json(&gh);
    assert_eq!(again["totals"]["failed"], 0, "{again:#}");
}
