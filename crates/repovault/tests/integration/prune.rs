//! Two-phase prune: nothing is deleted before the grace period, marked data a newer snapshot
//! needs is put back into use, and a backup that runs across forget and prune loses nothing.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use repovault_testkit::{fixtures, upstream, Gate, GitHttpServer, TestEnv};

use crate::support::*;

fn pack_files(store: &Path) -> BTreeSet<String> {
    std::fs::read_dir(store.join("data"))
        .expect("data dir")
        .flat_map(|d| std::fs::read_dir(d.expect("entry").path()).expect("subdir"))
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect()
}

fn prune(rv: &Rv<'_>, grace: &str) -> serde_json::Value {
    rv.run(&["prune", "--grace", grace, "--json"]).ok().json()
}

#[test]
fn nothing_is_deleted_before_the_grace_period() {
    let env = TestEnv::new();
    let (bare, rv) = backed_up_standard(&env);
    for i in 0..3 {
        upstream::commit(
            &env,
            &bare,
            "main",
            &format!("n{i}.txt"),
            &[b'x'; 3000],
            "n",
        );
        rv.backup_url(&bare);
    }
    // What forget + prune would mark, predicted before anything changes.
    let predicted = rv
        .run(&[
            "forget",
            "--keep-last",
            "1",
            "--dry-run",
            "--prune",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(predicted["prune"]["dry_run"], true);
    assert_eq!(rv.snapshots("acme/app").len(), 4);
    rv.run(&["forget", "--keep-last", "1"]).ok();
    let before = pack_files(&rv.store);

    // Phase one: unused data is marked, nothing goes.
    let dry = rv.run(&["prune", "--dry-run", "--json"]).ok().json();
    assert_eq!(dry["dry_run"], true);
    let first = prune(&rv, "1h");
    assert!(
        first["marked"]["packs"].as_u64().unwrap_or(0) >= 1,
        "{first:#}"
    );
    assert_eq!(first["deleted"]["packs"], 0, "{first:#}");
    assert_eq!(
        first["marked"], dry["marked"],
        "the dry run predicted the marks"
    );
    let after_mark = pack_files(&rv.store);
    assert!(
        before.is_subset(&after_mark),
        "a pack was deleted while marking"
    );
    rv.run(&["check", "--read-data"]).ok();

    // Still within the grace: nothing goes, the marks wait.
    let second = prune(&rv, "1h");
    assert_eq!(second["deleted"]["packs"], 0, "{second:#}");
    assert_eq!(
        second["waiting"]["packs"], first["marked"]["packs"],
        "{second:#}"
    );
    // (It may repack a little more: that adds packs and marks the old ones.)
    let after_second = pack_files(&rv.store);
    assert!(
        after_mark.is_subset(&after_second),
        "a pack was deleted within the grace"
    );

    // A dry run past the grace says what would go; then it goes.
    let would = rv
        .run(&["prune", "--dry-run", "--grace", "0s", "--json"])
        .ok()
        .json();
    let marked = first["marked"]["packs"].as_u64().expect("count")
        + second["marked"]["packs"].as_u64().expect("count");
    assert_eq!(
        would["to_delete"]["packs"].as_u64(),
        Some(marked),
        "{would:#}"
    );
    assert_eq!(
        pack_files(&rv.store),
        after_second,
        "a dry run changed something"
    );
    let third = prune(&rv, "0s");
    assert_eq!(
        third["deleted"]["packs"].as_u64(),
        Some(marked),
        "{third:#}"
    );
    assert!(third["deleted"]["bytes"].as_u64().unwrap_or(0) > 0);
    let after_delete = pack_files(&rv.store);
    assert_eq!(
        after_second.difference(&after_delete).count() as u64,
        marked
    );
    rv.run(&["check", "--read-data"]).ok();
    let to = env.root().join("restored");
    rv.restore("acme/app", None, &to).ok();
    assert_restored(&env, &to, &refs_of(&env, &bare), "refs/heads/main");
    let text = rv.run(&["prune", "--grace", "0s"]).ok();
    assert!(text.stdout.contains("deleted now:"), "{}", text.stdout);
}

/// `n` lightweight tags on HEAD: new refs, no new objects.
fn many_tags(env: &TestEnv, bare: &Path, n: usize) {
    let head = env.git(bare, &["rev-parse", "HEAD"]);
    let input: String = (0..n)
        .map(|i| format!("create refs/tags/release-{i:05} {head}\n"))
        .collect();
    git_bytes(env, bare, &["update-ref", "--stdin"], input.as_bytes());
    env.git(bare, &["pack-refs", "--all"]);
}

struct Held<'a> {
    env: &'a TestEnv,
    rv: Rv<'a>,
    x: std::path::PathBuf,
    b: std::path::PathBuf,
    _http: GitHttpServer,
    gate: Gate,
    backup: std::process::Child,
}

/// Repository X backed up three times: its refs gain 20 tags (no new objects, so that
/// snapshot's only new data is its `refs.txt`, alone in a pack) and lose them again. B, a
/// mirror of X with the tags, is served behind a gate; a backup of B has loaded the index and is
/// held at its first request to B's server.
fn backup_held_at_the_gate(env: &TestEnv) -> Held<'_> {
    let repos = env.root().join("repos");
    let x = fixtures::standard(env, &repos, "acme/x");
    let rv = Rv::new(env);
    rv.backup_url(&x);
    many_tags(env, &x, 20);
    rv.backup_url(&x);
    let b = repos.join("acme/b.git");
    env.git(
        &repos,
        &[
            "clone",
            "-q",
            "--mirror",
            x.to_str().expect("utf-8"),
            b.to_str().expect("utf-8"),
        ],
    );
    let tags = env.git(
        &x,
        &[
            "for-each-ref",
            "--format=delete %(refname)",
            "refs/tags/release-*",
        ],
    );
    git_bytes(
        env,
        &x,
        &["update-ref", "--stdin"],
        format!("{tags}\n").as_bytes(),
    );
    env.git(&b, &["pack-refs", "--all"]);
    rv.backup_url(&x);

    let http = GitHttpServer::start(&repos, "backup", "gate-token").expect("http server");
    let gate = Gate::start(http.port()).expect("gate");
    let config = rv.config(&format!(
        "[backup]\nconcurrency = 1\n[[source]]\nname = \"gated\"\nkind = \"git\"\nurls = [\"http://127.0.0.1:{}/acme/b.git\"]\nusername = \"backup\"\ntoken = \"gate-token\"\n",
        gate.port()
    ));
    let backup = rv.spawn_backup(&config);
    assert!(
        gate.wait_for_client(Duration::from_secs(120)),
        "the backup never reached B's server"
    );
    Held {
        env,
        rv,
        x,
        b,
        _http: http,
        gate,
        backup,
    }
}

impl<'a> Held<'a> {
    fn finish_backup(self) -> (Rv<'a>, std::path::PathBuf, std::path::PathBuf) {
        self.gate.open();
        let out = self.backup.wait_with_output().expect("backup ends");
        assert!(
            out.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let _ = self.env;
        (self.rv, self.x, self.b)
    }
}

#[test]
fn a_backup_running_across_forget_and_prune_loses_nothing() {
    let env = TestEnv::new();
    let held = backup_held_at_the_gate(&env);
    // While the backup waits (its index loaded before this), X's first snapshot goes and its
    // data is marked; a second prune within the grace deletes nothing.
    let forgot = held
        .rv
        .run(&[
            "forget",
            "--repo",
            "acme/x",
            "--keep-last",
            "1",
            "--prune",
            "--grace",
            "1h",
            "--json",
        ])
        .ok()
        .json();
    assert!(
        forgot["prune"]["marked"]["packs"].as_u64().unwrap_or(0) >= 1,
        "{forgot:#}"
    );
    let again = prune(&held.rv, "1h");
    assert_eq!(again["deleted"]["packs"], 0, "{again:#}");

    let (rv, x, b) = held.finish_backup();
    // B's snapshot reuses X's first refs.txt, which sits in a marked pack: the next prune
    // puts that pack back into use instead of deleting it, whatever the grace.
    let recovered = prune(&rv, "0s");
    assert!(
        recovered["recovered"]["packs"].as_u64().unwrap_or(0) >= 1,
        "{recovered:#}"
    );
    prune(&rv, "0s");
    prune(&rv, "0s");
    rv.run(&["check", "--read-data"]).ok();
    for (repo, bare) in [("acme/b", &b), ("acme/x", &x)] {
        let to = env
            .root()
            .join(format!("restored-{}", repo.replace('/', "-")));
        rv.restore(repo, None, &to).ok();
        assert_restored(&env, &to, &refs_of(&env, bare), "refs/heads/main");
    }
}

/// The same run without a grace period loses the data the held backup relies on: what the
/// test above shows is the grace period's doing.
#[test]
fn without_the_grace_period_the_same_run_loses_data() {
    let env = TestEnv::new();
    let held = backup_held_at_the_gate(&env);
    held.rv
        .run(&[
            "forget",
            "--repo",
            "acme/x",
            "--keep-last",
            "1",
            "--prune",
            "--grace",
            "0s",
        ])
        .ok();
    let deleted = prune(&held.rv, "0s");
    assert!(
        deleted["deleted"]["packs"].as_u64().unwrap_or(0) >= 1,
        "{deleted:#}"
    );
    let (rv, _x, _b) = held.finish_backup();
    let check = rv.run(&["check", "--json"]);
    assert_eq!(check.code, 1, "{}", check.stdout);
    let to = env.root().join("restored-b");
    assert_ne!(rv.restore("acme/b", None, &to).code, 0);
}
