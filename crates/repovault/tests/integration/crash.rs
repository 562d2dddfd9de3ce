//! Crash safety: `repovault backup` killed with SIGKILL at seeded random moments — during git
//! transfers, bundle writes, new bases and store writes. After every kill the store passes a
//! full check, and the next backup completes and restores every repository exactly.
//!
//! Each run is started under the testkit's reaper, so the git processes a killed backup leaves
//! behind die with it, as in a crashed container or machine.

use std::time::{Duration, Instant};

use repovault_testkit::{fixtures, upstream, Reaped, ReapedExit, TestEnv};

use crate::common::*;
use crate::support::*;

/// Runs actually interrupted by the kill (the rest finished before it came).
const KILLS: usize = 20;
/// Bound on attempts to get them.
const MAX_ATTEMPTS: usize = 40;
const SEED: u64 = 0x5eed_c4a5;
/// What `backup -v` logs once the store is open and the work begins.
const MARKER: &str = "backing up 3 repositories";

/// Uniform fractions in [0, 1) from a fixed seed (xorshift64*).
struct Offsets(u64);

impl Offsets {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d);
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[test]
fn sigkill_at_random_points_never_breaks_the_store() {
    let started = Instant::now();
    let env = TestEnv::new();
    let root = env.root().join("repos");
    let big = fixtures::many_commits(&env, &root, "acme/big", 300);
    upstream::commit(&env, &big, "main", "blob.bin", &noise(1, 1_000_000), "blob");
    let app = fixtures::standard(&env, &root, "acme/app");
    let lib = fixtures::standard(&env, &root, "acme/lib");
    let repos = [("acme/big", &big), ("acme/app", &app), ("acme/lib", &lib)];
    let rv = Rv::new(&env);
    let config = rv.config("[backup]\nconcurrency = 2\nchain_max_links = 6\n");
    let mut args: Vec<String> = [
        "backup",
        "--config",
        config.to_str().expect("utf-8"),
        "--json",
    ]
    .map(String::from)
    .to_vec();
    for (_, path) in &repos {
        args.extend(["--url".to_owned(), path.display().to_string()]);
    }
    let argv = |extra: &[&str]| -> Vec<String> {
        let mut a = args.clone();
        a.extend(extra.iter().map(|s| (*s).to_owned()));
        a
    };

    // Kill offsets are spread over the work of a run: from the moment it has opened the store
    // and starts on the repositories (it logs that with -v) to its end, as the previous complete
    // run took.
    let start = |extra: &[&str]| {
        let mut cmd = rv.command();
        cmd.arg("-v").args(argv(extra));
        let mut run = Reaped::spawn(&cmd).expect("start the backup under the reaper");
        let working = run
            .wait_for_stderr(MARKER, Duration::from_secs(120))
            .expect("reading its stderr");
        (run, working)
    };
    let complete_run = |what: &str| {
        let (run, working) = start(&[]);
        assert!(working, "{what}: the backup did not start its work");
        let t = Instant::now();
        let out = run.wait().expect("the backup ended");
        let work = t.elapsed();
        assert_eq!(
            out.exit,
            ReapedExit::Code(0),
            "{what}:\n{}\n{}",
            out.stdout,
            out.stderr
        );
        let report: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON report");
        assert_eq!(report["totals"]["ok"], 3, "{what}: {report:#}");
        work
    };
    let mut work = complete_run("the first backup");

    let mut offsets = Offsets(SEED);
    let (mut kills, mut finished, mut attempts) = (0, 0, 0);
    let mut log = Vec::new();
    while kills < KILLS && attempts < MAX_ATTEMPTS {
        attempts += 1;
        let i = attempts;
        // Work for the run to be killed in: new commits everywhere, now and then a large blob,
        // a force-push, or a new base for every chain.
        upstream::commit(
            &env,
            &app,
            "main",
            "n.txt",
            format!("{i}\n").as_bytes(),
            "n",
        );
        upstream::commit(
            &env,
            &big,
            "main",
            "c.txt",
            format!("{i}\n").as_bytes(),
            "c",
        );
        if i % 2 == 0 {
            upstream::commit(
                &env,
                &lib,
                "feature",
                "f.txt",
                format!("{i}\n").as_bytes(),
                "f",
            );
        }
        if i % 3 == 0 {
            let blob = noise(100 + i as u64, 600_000);
            upstream::commit(&env, &big, "main", &format!("b{i}.bin"), &blob, "b");
        }
        if i % 5 == 0 {
            upstream::force_push_rewrite(&env, &lib, "main");
        }
        let extra: &[&str] = if i % 6 == 0 { &["--new-base"] } else { &[] };

        let offset = work.mul_f64(offsets.next());
        let (mut run, working) = start(extra);
        if working {
            std::thread::sleep(offset);
            run.kill().expect("kill");
        }
        let out = run.wait().expect("the backup and its children ended");
        match out.exit {
            ReapedExit::Signal(9) => kills += 1,
            ReapedExit::Code(0) => finished += 1,
            other => panic!("run {i}: {other:?}\n{}\n{}", out.stdout, out.stderr),
        }
        log.push(format!("{}:{}ms", i, offset.as_millis()));

        assert_store_intact(&rv);
        work = complete_run(&format!("the backup after run {i}"));
        // Three restores at once: each is mostly the store's key derivation, on its own core.
        std::thread::scope(|scope| {
            for (name, upstream) in &repos {
                let (rv, env) = (&rv, &env);
                scope.spawn(move || {
                    let to = env
                        .root()
                        .join(format!("restore-{i}-{}", name.replace('/', "-")));
                    // `restore` itself fails unless `git fsck --full` passes on the result.
                    rv.restore(name, None, &to).ok();
                    assert_eq!(
                        refs_of(env, &to),
                        refs_of(env, upstream),
                        "{name} after run {i}"
                    );
                    assert_eq!(head_of(env, &to), "refs/heads/main");
                    std::fs::remove_dir_all(&to).expect("clean up");
                });
            }
        });
    }
    eprintln!(
        "crash test: {kills} runs killed, {finished} finished before the kill, in {attempts} attempts ({}); {:.0?} in all",
        log.join(" "),
        started.elapsed()
    );
    assert!(
        kills >= KILLS,
        "only {kills} of {attempts} runs were interrupted"
    );
    assert_store_intact(&rv);
}
