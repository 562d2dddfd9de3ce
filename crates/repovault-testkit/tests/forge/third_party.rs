//! A third-party GitHub client, python-github-backup (installed by scripts/test-deps.sh),
//! backs up the small fixture: evidence that the simulator speaks GitHub's dialect and not
//! only repovault's.

use std::path::Path;
use std::process::Command;

use repovault_testkit::forge::{ApiStyle, Fixture};
use repovault_testkit::TestEnv;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::support::Api;

/// python-github-backup through the interpreter pip installed it for (not a script shim
/// that may be missing from PATH).
fn github_backup() -> Command {
    let check = Command::new("python3")
        .args(["-c", "import github_backup"])
        .output()
        .expect("running python3");
    assert!(
        check.status.success(),
        "python-github-backup is not installed; run scripts/test-deps.sh (it pins the version)"
    );
    let mut cmd = Command::new("python3");
    cmd.args(["-m", "github_backup"]);
    cmd
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs github-backup with `args`, the token read from a file (never in argv), trusting the
/// simulator's CA; returns its combined output.
fn run(api: &Api, env: &TestEnv, args: &[&str], out: &Path) -> String {
    let token_file = env.root().join("token");
    {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&token_file)
            .expect("creating the token file");
        writeln!(f, "{}", api.token).expect("writing the token file");
    }
    let mut cmd = github_backup();
    env.git_isolation().apply(&mut cmd);
    cmd.args(args)
        .arg("-t")
        .arg(format!("file://{}", token_file.display()))
        .arg("-H")
        .arg(api.sim.host())
        .arg("-o")
        .arg(out)
        .env("SSL_CERT_FILE", api.sim.ca_path())
        .env("GIT_SSL_CAINFO", api.sim.ca_path())
        .env("GIT_TERMINAL_PROMPT", "0");
    let output = cmd.output().expect("running github-backup");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "github-backup failed:\n{text}");
    assert!(!text.contains("Traceback"), "{text}");
    text
}

#[test]
fn python_github_backup_backs_up_the_small_fixture() {
    let api = Api::start(Fixture::Small);
    let env = TestEnv::new();
    let mut lfs = env.git_command(env.root());
    lfs.args(["lfs", "install", "--skip-repo"]);
    assert!(lfs.status().expect("git lfs install").success());
    let dump = api.sim.dump(ApiStyle::Enterprise);
    let out = env.root().join("org");
    let mark = api.sim.mark();
    let log = run(
        &api,
        &env,
        &["acme", "-O", "-P", "-F", "--all", "--lfs"],
        &out,
    );

    let repos = out.join("repositories");
    for name in [
        "widgets",
        "assets",
        "legacy",
        "private-tools",
        "empty",
        "toolkit",
    ] {
        assert!(
            repos.join(name).join("repository").exists(),
            "{name} not cloned:\n{log}"
        );
    }
    // Clones have the simulator's branches.
    for name in ["widgets", "assets", "toolkit"] {
        let head = env.git(&repos.join(name).join("repository"), &["rev-parse", "HEAD"]);
        let d = &dump["repositories"][format!("acme/{name}")];
        assert_eq!(d["git"]["refs"]["refs/heads/main"], head.as_str(), "{name}");
    }
    assert!(repos.join("widgets/wiki/Home.md").exists(), "wiki cloned");

    // Issues (pull requests are saved as pulls): contents, comments and events equal the
    // simulator's.
    let d = &dump["repositories"]["acme/widgets"];
    let issues = d["issues"].as_object().expect("issues");
    let mut plain = 0;
    for (n, item) in issues {
        if item["issue"].get("pull_request").is_some() {
            continue;
        }
        plain += 1;
        let saved = read_json(&repos.join(format!("widgets/issues/{n}.json")));
        for key in [
            "title",
            "body",
            "state",
            "updated_at",
            "labels",
            "milestone",
            "user",
        ] {
            assert_eq!(saved[key], item["issue"][key], "issue {n} {key}");
        }
        assert_eq!(
            saved["comment_data"], item["comments"],
            "issue {n} comments"
        );
        assert_eq!(saved["event_data"], item["events"], "issue {n} events");
    }
    assert_eq!(plain, 110);
    let pulls = d["pulls"].as_object().expect("pulls");
    assert_eq!(pulls.len(), 18);
    for (n, item) in pulls {
        let saved = read_json(&repos.join(format!("widgets/pulls/{n}.json")));
        assert_eq!(
            saved["head"]["sha"], item["pull"]["head"]["sha"],
            "pull {n}"
        );
        assert_eq!(saved["review_data"], item["reviews"], "pull {n} reviews");
        assert_eq!(
            saved["comment_data"], item["review_comments"],
            "pull {n} review comments"
        );
        let shas = |v: &Value| -> Vec<Value> {
            v.as_array()
                .into_iter()
                .flatten()
                .map(|c| c["sha"].clone())
                .collect()
        };
        assert_eq!(
            shas(&saved["commit_data"]),
            shas(&item["commits"]),
            "pull {n} commits"
        );
    }

    // Releases with their asset bytes, labels, milestones, masked hooks.
    for rel in d["releases"].as_array().expect("releases") {
        let tag = rel["release"]["tag_name"].as_str().expect("tag");
        let saved = read_json(&repos.join(format!("widgets/releases/{tag}.json")));
        assert_eq!(saved["id"], rel["release"]["id"]);
        for asset in rel["assets"].as_array().expect("assets") {
            let name = asset["name"].as_str().expect("name");
            let path = repos.join(format!("widgets/releases/{tag}/{name}"));
            let bytes =
                std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}\n{log}", path.display()));
            assert_eq!(
                hex::encode(Sha256::digest(&bytes)),
                asset["sha256"],
                "{tag}/{name}"
            );
        }
    }
    assert_eq!(
        read_json(&repos.join("widgets/labels/labels.json")),
        d["labels"]
    );
    let hooks = read_json(&repos.join("widgets/hooks/hooks.json"));
    assert_eq!(hooks, d["hooks"]);
    assert!(
        !std::fs::read_to_string(repos.join("widgets/hooks/hooks.json"))
            .expect("hooks")
            .contains("hook-secret-do-not-serve")
    );
    let milestones = std::fs::read_dir(repos.join("widgets/milestones"))
        .expect("milestones")
        .count();
    assert_eq!(milestones, 3);

    // LFS objects of the checked-out version were fetched and are intact.
    let lfs_dir = repos.join("assets/repository/.git/lfs/objects");
    let mut fetched = 0;
    for oid in api.sim.lfs_oids("acme/assets") {
        let path = lfs_dir.join(&oid[..2]).join(&oid[2..4]).join(&oid);
        if let Ok(bytes) = std::fs::read(&path) {
            assert_eq!(hex::encode(Sha256::digest(&bytes)), oid);
            fetched += 1;
        }
    }
    assert!(fetched >= 2, "only {fetched} LFS objects fetched:\n{log}");

    // It paginated and used the rate-limit budget like a GitHub client.
    let s = api.sim.summary_since(mark);
    assert!(s.api > 100 && s.counted == s.api && s.git > 10, "{s:?}");
    assert_eq!(s.server_errors, 0, "{s:?}");

    // The user's own account: repositories, starred repositories, gists.
    let out = env.root().join("user");
    let log = run(
        &api,
        &env,
        &["alice", "-P", "--all", "--gists", "--starred-gists"],
        &out,
    );
    assert!(
        out.join("repositories/dotfiles/repository").exists(),
        "{log}"
    );
    let starred = read_json(&out.join("account/starred.json"));
    assert_eq!(starred.as_array().map(Vec::len), Some(2));
    for (id, g) in dump["gists"].as_object().expect("gists") {
        let owner = g["gist"]["owner"]["login"].as_str().unwrap_or_default();
        let starred_by_alice = owner == "bob";
        if owner != "alice" && !starred_by_alice {
            continue;
        }
        let dir = out.join("gists").join(id);
        assert!(
            dir.join("repository").exists(),
            "gist {id} not cloned:\n{log}"
        );
        let tip = env.git(&dir.join("repository"), &["rev-parse", "HEAD"]);
        assert_eq!(g["git"]["refs"]["refs/heads/main"], tip.as_str());
    }
}
