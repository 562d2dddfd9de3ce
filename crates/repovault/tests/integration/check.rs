//! `repovault check`: a damaged and a missing pack file are found, named, traced to the files
//! whose data they hold, and fail the command.

use std::path::{Path, PathBuf};

use repovault_testkit::TestEnv;

use crate::support::*;

/// Pack files of a local store, largest first.
fn packs(store: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(store.join("data"))
        .expect("data dir")
        .flat_map(|d| std::fs::read_dir(d.expect("entry").path()).expect("subdir"))
        .map(|e| e.expect("entry").path())
        .collect();
    out.sort_by_key(|p| std::cmp::Reverse(p.metadata().expect("meta").len()));
    out
}

fn name(p: &Path) -> String {
    p.file_name().expect("name").to_string_lossy().into_owned()
}

fn findings<'v>(report: &'v serde_json::Value, pack: &str) -> Vec<&'v serde_json::Value> {
    report["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter(|f| f["pack"] == pack)
        .collect()
}

#[test]
fn a_clean_store_passes_structure_and_data_checks() {
    let env = TestEnv::new();
    let (_bare, rv) = backed_up_standard(&env);
    let run = rv.run(&["check", "--read-data", "--json"]).ok();
    let report = run.json();
    assert_eq!(report["ok"], true, "{report:#}");
    assert_eq!(report["read_data"], "all");
    for subset in [
        "--read-data=1/2",
        "--read-data=50%",
        "--read-data-subset=1MiB",
    ] {
        rv.run(&["check", subset]).ok();
    }
    let bad = rv.run(&["check", "--read-data=1/0"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
}

#[test]
fn a_flipped_byte_in_a_pack_is_found_by_reading_the_data() {
    let env = TestEnv::new();
    let (_bare, rv) = backed_up_standard(&env);
    let pack = packs(&rv.store).into_iter().next().expect("a pack");
    let mut bytes = std::fs::read(&pack).expect("read pack");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&pack, &bytes).expect("write pack");

    let run = rv.run(&["check", "--read-data", "--json"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let report = run.json();
    assert_eq!(report["ok"], false);
    let found = findings(&report, &name(&pack));
    assert_eq!(found.len(), 1, "{report:#}");
    assert_eq!(found[0]["problem"], "pack_damaged", "{report:#}");
    // The damaged pack holds the bundle: the report names the repository and the file.
    let affected = found[0]["affected"].as_array().expect("affected");
    assert!(
        affected.iter().any(|a| a["repo"] == "acme/app"
            && a["path"]
                .as_str()
                .is_some_and(|p| p.starts_with("acme/app/git/chain/"))),
        "{report:#}"
    );
    let text = rv.run(&["check", "--read-data"]);
    assert_eq!(text.code, 1);
    assert!(text.stdout.contains(&name(&pack)), "{}", text.stdout);
    assert!(text.stdout.contains("affects acme/app"), "{}", text.stdout);
    assert!(!text.stderr.contains("Backtrace"), "{}", text.stderr);

    // Undo, and damage the smallest pack (directory trees) instead: reading the trees is part
    // of every check, so this is found even without --read-data.
    bytes[mid] ^= 0x40;
    std::fs::write(&pack, &bytes).expect("restore pack");
    rv.run(&["check", "--read-data"]).ok();
    let tree_pack = packs(&rv.store).into_iter().last().expect("a pack");
    let mut tree = std::fs::read(&tree_pack).expect("read pack");
    tree[10] ^= 0x01;
    std::fs::write(&tree_pack, &tree).expect("write pack");
    let run = rv.run(&["check", "--json"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let report = run.json();
    let found = findings(&report, &name(&tree_pack));
    assert_eq!(found.len(), 1, "{report:#}");
    assert_eq!(found[0]["problem"], "pack_damaged", "{report:#}");
}

#[test]
fn a_deleted_pack_is_reported_with_what_it_held() {
    let env = TestEnv::new();
    let (_bare, rv) = backed_up_standard(&env);
    let pack = packs(&rv.store).into_iter().next().expect("a pack");
    std::fs::remove_file(&pack).expect("delete pack");

    // Found without reading any data: the index lists a pack that is not there.
    let run = rv.run(&["check", "--json"]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let report = run.json();
    let found = findings(&report, &name(&pack));
    assert_eq!(found.len(), 1, "{report:#}");
    assert_eq!(found[0]["problem"], "pack_missing");
    assert!(
        found[0]["affected_total"].as_u64().unwrap_or(0) >= 1,
        "{report:#}"
    );
    let text = rv.run(&["check"]);
    assert_eq!(text.code, 1);
    assert!(
        text.stdout
            .contains(&format!("pack {} is missing", name(&pack))),
        "{}",
        text.stdout
    );
}
