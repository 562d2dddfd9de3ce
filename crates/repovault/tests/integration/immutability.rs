//! Immutability on S3: a backup only ever creates objects (moto's own request log shows every
//! request it made), and on a bucket with Object Lock backups work, forget and prune keep what
//! the bucket still locks and say so, and locked data survives a delete.

use std::collections::BTreeSet;

use repovault_testkit::{upstream, S3Kind, S3Request, S3Server, TestEnv};

use crate::support::*;

const BUCKET: &str = "backups";
const PREFIX: &str = "team/store";

fn s3_rv<'a>(env: &'a TestEnv, s3: &S3Server) -> Rv<'a> {
    let mut rv = Rv::uninitialised(env);
    rv.store = s3.store_url(BUCKET, PREFIX).into();
    rv.extra_env = s3.client_env();
    rv
}

fn writes_and_deletes(requests: &[S3Request]) -> (Vec<&S3Request>, Vec<&S3Request>) {
    let deletes = requests
        .iter()
        .filter(|r| r.method == "DELETE" || (r.method == "POST" && r.query.contains("delete")))
        .collect();
    let writes = requests.iter().filter(|r| r.method == "PUT").collect();
    (writes, deletes)
}

#[test]
fn a_backup_only_creates_objects() {
    let env = TestEnv::new();
    let s3 = S3Server::start(S3Kind::Moto).expect("S3 server");
    s3.create_bucket(BUCKET).expect("bucket");
    let bare = repovault_testkit::fixtures::standard(&env, &env.root().join("repos"), "acme/app");
    let rv = s3_rv(&env, &s3);
    rv.run(&["init"]).ok();
    rv.backup_url(&bare);
    upstream::commit(&env, &bare, "main", "more.txt", b"more", "more");

    let existing: BTreeSet<String> = s3
        .list_keys(BUCKET, PREFIX)
        .expect("list")
        .into_iter()
        .map(|k| format!("/{BUCKET}/{k}"))
        .collect();
    let seen = s3.requests().len();
    rv.backup_url(&bare);
    rv.backup_url(&bare); // unchanged: a snapshot and nothing else
    let requests = s3.requests().split_off(seen);
    let (writes, deletes) = writes_and_deletes(&requests);
    assert!(deletes.is_empty(), "a backup deleted: {deletes:#?}");
    let allowed = ["GET", "HEAD", "PUT"];
    let odd: Vec<_> = requests
        .iter()
        .filter(|r| !allowed.contains(&r.method.as_str()))
        .collect();
    assert!(odd.is_empty(), "unexpected requests: {odd:#?}");
    assert!(writes.len() >= 4, "packs, index and snapshots: {writes:#?}");
    let mut written = BTreeSet::new();
    for w in &writes {
        assert_eq!(w.status, 200, "{w:?}");
        assert!(!existing.contains(&w.path), "overwrote {}", w.path);
        assert!(written.insert(w.path.clone()), "wrote {} twice", w.path);
        let key = w.path.trim_start_matches(&format!("/{BUCKET}/{PREFIX}/"));
        assert!(
            key.starts_with("data/") || key.starts_with("index/") || key.starts_with("snapshots/"),
            "a backup wrote {key}"
        );
    }

    // The log sees deletions when there are some: maintenance makes them.
    let seen = s3.requests().len();
    rv.run(&["forget", "--keep-last", "1", "--prune", "--grace", "0s"])
        .ok();
    rv.run(&["prune", "--grace", "0s"]).ok();
    let after = s3.requests().split_off(seen);
    let (_, deletes) = writes_and_deletes(&after);
    assert!(!deletes.is_empty(), "forget and prune deleted nothing");
}

/// Object keys of a store's pack files (current versions).
fn pack_keys(s3: &S3Server) -> Vec<String> {
    s3.list_keys(BUCKET, &format!("{PREFIX}/data/"))
        .expect("list")
        .into_iter()
        .filter(|k| !k.ends_with('/'))
        .collect()
}

#[test]
fn object_lock_keeps_data_and_maintenance_reports_it() {
    let env = TestEnv::new();
    let s3 = S3Server::start(S3Kind::Moto).expect("S3 server");
    // Every object written is locked (COMPLIANCE) for a day.
    s3.create_locked_bucket(BUCKET, Some(1))
        .expect("locked bucket");
    let bare = repovault_testkit::fixtures::standard(&env, &env.root().join("repos"), "acme/app");
    let rv = s3_rv(&env, &s3);
    rv.run(&["init"]).ok();
    let first = rv.backup_url(&bare).json();
    assert_eq!(repo_report(&first, "acme/app")["status"], "ok");
    upstream::commit(&env, &bare, "main", "locked.txt", b"locked", "locked");
    rv.backup_url(&bare);
    assert_eq!(rv.snapshots("acme/app").len(), 2);

    // forget: the old snapshot is locked, so it stays, reported, and the run succeeds.
    let forgot = rv
        .run(&["forget", "--keep-last", "1", "--json"])
        .ok()
        .json();
    let kept = forgot["forgotten"]["kept_locked"]
        .as_array()
        .expect("kept")
        .clone();
    assert_eq!(kept.len(), 1, "{forgot:#}");
    assert_eq!(kept[0]["kind"], "snapshot");
    assert!(
        kept[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("COMPLIANCE retention until")),
        "{forgot:#}"
    );
    assert_eq!(
        forgot["forgotten"]["removed"].as_array().map(Vec::len),
        Some(0)
    );
    assert_eq!(rv.snapshots("acme/app").len(), 2);
    let text = rv.run(&["forget", "--keep-last", "1"]).ok();
    assert!(text.stdout.contains("kept snapshot"), "{}", text.stdout);

    // A pack no index lists (as an interrupted backup leaves one), locked like everything.
    let stray = format!("{PREFIX}/data/ab/ab{}", "0".repeat(62));
    assert_eq!(
        s3.put_object(BUCKET, &stray, b"leftover").expect("put"),
        200
    );
    let marked = rv.run(&["prune", "--grace", "0s", "--json"]).ok().json();
    assert!(
        marked["marked"]["packs"].as_u64().unwrap_or(0) >= 1,
        "{marked:#}"
    );
    // Its grace is over, but the bucket keeps the old index files that list it, so it must
    // stay too: prune keeps both, says why, and succeeds.
    let pruned = rv.run(&["prune", "--grace", "0s", "--json"]).ok().json();
    let kept: Vec<&serde_json::Value> = pruned["kept_locked"]
        .as_array()
        .expect("kept")
        .iter()
        .filter(|k| k["kind"] == "pack")
        .collect();
    assert!(
        kept.iter()
            .any(|k| stray.ends_with(k["id"].as_str().unwrap_or("-"))),
        "{pruned:#}"
    );
    assert_eq!(pruned["deleted"]["packs"], 0, "{pruned:#}");
    assert!(
        pruned["kept_locked"]
            .as_array()
            .expect("kept")
            .iter()
            .any(|k| k["kind"] == "index"),
        "{pruned:#}"
    );
    assert!(pack_keys(&s3).contains(&stray));
    let text = rv.run(&["prune", "--grace", "0s"]).ok();
    assert!(text.stdout.contains("locks them"), "{}", text.stdout);

    // Locked data survives a delete: a version delete is refused; a plain delete only hides
    // the object behind a delete marker, and the version is still there.
    let pack = pack_keys(&s3)
        .into_iter()
        .find(|k| *k != stray)
        .expect("a real pack");
    let versions = s3.object_versions(BUCKET, &pack).expect("versions");
    assert_eq!(versions.len(), 1);
    assert_eq!(
        s3.delete_version(BUCKET, &pack, &versions[0].1)
            .expect("delete"),
        403
    );
    assert_eq!(s3.delete_object(BUCKET, &stray).expect("delete"), 204);
    assert!(
        !pack_keys(&s3).contains(&stray),
        "hidden by a delete marker"
    );
    assert_eq!(
        s3.object_versions(BUCKET, &stray).expect("versions").len(),
        1,
        "but still there"
    );

    // The stray pack was marked for deletion and is now hidden: harmless, a warning.
    let check = rv.run(&["check", "--read-data", "--json"]).ok().json();
    assert!(
        check["warnings"]
            .as_array()
            .expect("warnings")
            .iter()
            .any(|w| w["problem"] == "marked_pack_gone"),
        "{check:#}"
    );
    let to = env.root().join("restored");
    rv.restore("acme/app", None, &to).ok();
    assert_restored(&env, &to, &refs_of(&env, &bare), "refs/heads/main");
}

#[test]
fn prune_deletes_what_it_may_and_keeps_a_locked_pack() {
    let env = TestEnv::new();
    let s3 = S3Server::start(S3Kind::Moto).expect("S3 server");
    // Object Lock on, but no default retention: only what is locked explicitly is.
    s3.create_locked_bucket(BUCKET, None)
        .expect("locked bucket");
    let bare = repovault_testkit::fixtures::standard(&env, &env.root().join("repos"), "acme/app");
    let rv = s3_rv(&env, &s3);
    rv.run(&["init"]).ok();
    for i in 0..3 {
        upstream::commit(
            &env,
            &bare,
            "main",
            &format!("f{i}.txt"),
            &[b'f'; 2000],
            "f",
        );
        rv.backup_url(&bare);
    }
    let stray = format!("{PREFIX}/data/cd/cd{}", "1".repeat(62));
    assert_eq!(
        s3.put_object(BUCKET, &stray, b"leftover").expect("put"),
        200
    );
    let until = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24)).to_string();
    assert_eq!(s3.lock_object(BUCKET, &stray, &until).expect("lock"), 200);

    rv.run(&["forget", "--keep-last", "1", "--prune", "--grace", "0s"])
        .ok();
    let pruned = rv.run(&["prune", "--grace", "0s", "--json"]).ok().json();
    assert!(
        pruned["deleted"]["packs"].as_u64().unwrap_or(0) >= 1,
        "{pruned:#}"
    );
    let kept = pruned["kept_locked"].as_array().expect("kept");
    assert_eq!(kept.len(), 1, "{pruned:#}");
    assert!(
        stray.ends_with(kept[0]["id"].as_str().unwrap_or("-")),
        "{pruned:#}"
    );
    assert!(
        kept[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("COMPLIANCE retention until")),
        "{pruned:#}"
    );
    assert!(
        pack_keys(&s3).contains(&stray),
        "the locked pack is still there"
    );
    rv.run(&["check", "--read-data"]).ok();
    let to = env.root().join("restored");
    rv.restore("acme/app", None, &to).ok();
    assert_restored(&env, &to, &refs_of(&env, &bare), "refs/heads/main");
}
