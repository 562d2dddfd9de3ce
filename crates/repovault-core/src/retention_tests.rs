use std::collections::BTreeSet;

use proptest::prelude::*;

use super::*;

fn snap(n: usize, repo: &str, time: Timestamp, protection: Option<Protection>) -> SnapshotInfo {
    SnapshotInfo {
        id: format!("{n:064x}"),
        time,
        host: "git.example.com".into(),
        tags: vec![format!("repo:{repo}"), "forge:git".into()],
        paths: vec![format!("/{repo}")],
        parent: None,
        summary: None,
        protection,
        original: None,
    }
}

fn at(s: &str) -> Timestamp {
    s.parse().expect("valid test timestamp")
}

fn kept_times(plan: &Plan) -> Vec<String> {
    let mut v: Vec<String> = plan
        .groups
        .iter()
        .flat_map(Group::kept)
        .map(|d| d.time.strftime("%Y-%m-%d %H:%M").to_string())
        .collect();
    v.sort();
    v
}

const NOW: &str = "2026-06-01T00:00:00Z";

#[test]
fn the_deployment_policy_on_a_hundred_daily_snapshots() {
    let start = at("2026-01-01T03:00:00Z");
    let snaps: Vec<_> = (0..100)
        .map(|d| {
            snap(
                d,
                "acme/app",
                start + SignedDuration::from_hours(24 * d as i64),
                None,
            )
        })
        .collect();
    let policy = Policy {
        daily: 7,
        weekly: 4,
        monthly: 12,
        ..Policy::default()
    };
    let plan = plan(&policy, &snaps, at(NOW)).expect("valid");
    let want: Vec<String> = [
        "2026-01-31",
        "2026-02-28",
        "2026-03-22",
        "2026-03-29",
        "2026-03-31",
        "2026-04-04",
        "2026-04-05",
        "2026-04-06",
        "2026-04-07",
        "2026-04-08",
        "2026-04-09",
        "2026-04-10",
    ]
    .iter()
    .map(|d| format!("{d} 03:00"))
    .collect();
    assert_eq!(kept_times(&plan), want);
    let newest = &plan.groups[0].snapshots[0];
    assert_eq!(
        newest.reasons,
        vec![Reason::Daily, Reason::Weekly, Reason::Monthly]
    );
    assert_eq!(plan.to_remove().len(), 88);
}

#[test]
fn weeks_are_iso_weeks_across_new_year() {
    // 2020-12-31 and 2021-01-01 are both in ISO week 53 of 2020 (restic's `yw`).
    let snaps = vec![
        snap(1, "a/b", at("2020-12-31T12:00:00Z"), None),
        snap(2, "a/b", at("2021-01-01T12:00:00Z"), None),
        snap(3, "a/b", at("2020-12-27T12:00:00Z"), None),
    ];
    let policy = Policy {
        weekly: 2,
        ..Policy::default()
    };
    let plan = plan(&policy, &snaps, at(NOW)).expect("valid");
    assert_eq!(
        kept_times(&plan),
        vec!["2020-12-27 12:00".to_owned(), "2021-01-01 12:00".to_owned()]
    );
}

#[test]
fn within_counts_back_from_the_newest_snapshot_not_from_now() {
    let newest = at("2025-03-10T00:00:00Z");
    let snaps: Vec<_> = (0..40)
        .map(|i| {
            snap(
                i,
                "a/b",
                newest - SignedDuration::from_hours(6 * i as i64),
                None,
            )
        })
        .collect();
    let policy = Policy {
        within: Some(Duration::from_secs(2 * 86_400)),
        ..Policy::default()
    };
    // `now` is more than a year later: nothing ages out because backups stopped.
    let plan = plan(&policy, &snaps, at(NOW)).expect("valid");
    let kept: Vec<_> = plan.groups[0].kept().map(|d| d.time).collect();
    assert_eq!(kept.len(), 8, "t, t-6h … t-42h; t-48h is not within");
    assert!(kept
        .iter()
        .all(|t| *t > newest - SignedDuration::from_hours(48)));
}

#[test]
fn protection_keeps_and_ended_protection_removes_but_never_the_newest() {
    let t = |d: i64| at("2026-05-01T00:00:00Z") + SignedDuration::from_hours(24 * d);
    let snaps = vec![
        snap(0, "a/b", t(0), Some(Protection::Forever)),
        snap(
            1,
            "a/b",
            t(1),
            Some(Protection::Until(at("2027-01-01T00:00:00Z"))),
        ),
        snap(
            2,
            "a/b",
            t(2),
            Some(Protection::Until(at("2026-05-20T00:00:00Z"))),
        ),
        snap(3, "a/b", t(3), None),
        snap(
            4,
            "a/b",
            t(4),
            Some(Protection::Until(at("2026-05-21T00:00:00Z"))),
        ),
    ];
    let policy = Policy {
        last: 1,
        ..Policy::default()
    };
    let plan = plan(&policy, &snaps, at(NOW)).expect("valid");
    let by_id = |n: usize| {
        plan.groups[0]
            .snapshots
            .iter()
            .find(|d| d.id == format!("{n:064x}"))
            .expect("present")
            .clone()
    };
    assert_eq!(by_id(0).reasons, vec![Reason::ProtectedForever]);
    assert!(by_id(1).keep);
    assert_eq!(
        by_id(2).reasons,
        vec![Reason::ProtectionEnded(at("2026-05-20T00:00:00Z"))]
    );
    // The newest one's protection ended: it is not counted as `last`, but it stays.
    assert_eq!(by_id(4).reasons, vec![Reason::Newest]);
    assert_eq!(by_id(3).reasons, vec![Reason::Last]);
}

#[test]
fn groups_are_per_repository_and_foreign_snapshots_are_left_alone() {
    let mut snaps = vec![
        snap(1, "a/one", at("2026-01-01T00:00:00Z"), None),
        snap(2, "a/one", at("2026-01-02T00:00:00Z"), None),
        snap(3, "a/two", at("2026-01-01T00:00:00Z"), None),
    ];
    let mut foreign = snap(4, "x/y", at("2026-01-01T00:00:00Z"), None);
    foreign.tags.clear();
    snaps.push(foreign);
    let plan = plan(
        &Policy {
            last: 1,
            ..Policy::default()
        },
        &snaps,
        at(NOW),
    )
    .expect("valid");
    assert_eq!(plan.groups.len(), 2);
    assert_eq!(plan.to_remove(), vec![format!("{:064x}", 1)]);
    assert_eq!(plan.foreign, vec![format!("{:064x}", 4)]);
}

#[test]
fn a_policy_that_keeps_nothing_is_refused() {
    for p in [
        Policy::default(),
        Policy {
            within: Some(Duration::ZERO),
            ..Policy::default()
        },
    ] {
        assert_eq!(plan(&p, &[], at(NOW)), Err(PolicyError::KeepsNothing));
    }
}

// ---- property tests -------------------------------------------------------------------------

/// An independent model of the rules: period names by `strftime`, then "the newest snapshot of
/// each of the N most recent periods", per rule, unioned.
fn model(policy: &Policy, snaps: &[SnapshotInfo], now: Timestamp) -> BTreeSet<String> {
    let mut all: Vec<&SnapshotInfo> = snaps.iter().collect();
    all.sort_by(|a, b| b.time.cmp(&a.time).then_with(|| b.id.cmp(&a.id)));
    let mut keep = BTreeSet::new();
    let Some(newest) = all.first() else {
        return keep;
    };
    keep.insert(newest.id.clone());
    let ended = |s: &SnapshotInfo| matches!(s.protection, Some(Protection::Until(t)) if t <= now);
    let live: Vec<&SnapshotInfo> = all.iter().copied().filter(|s| !ended(s)).collect();
    for s in live.iter().take(policy.last as usize) {
        keep.insert(s.id.clone());
    }
    for (n, fmt) in [
        (policy.hourly, "%Y-%m-%d %H"),
        (policy.daily, "%Y-%m-%d"),
        (policy.weekly, "%G-W%V"),
        (policy.monthly, "%Y-%m"),
        (policy.yearly, "%Y"),
    ] {
        let mut seen = Vec::new();
        for s in &live {
            let name = s.time.to_zoned(TimeZone::UTC).strftime(fmt).to_string();
            if !seen.contains(&name) {
                if seen.len() == n as usize {
                    break;
                }
                seen.push(name);
                keep.insert(s.id.clone());
            }
        }
    }
    if let Some(d) = policy.within.filter(|d| !d.is_zero()) {
        let cutoff = newest.time - SignedDuration::try_from(d).expect("small");
        for s in &live {
            if s.time > cutoff {
                keep.insert(s.id.clone());
            }
        }
    }
    for s in &all {
        match s.protection {
            Some(Protection::Forever) => {
                keep.insert(s.id.clone());
            }
            Some(Protection::Until(t)) if t > now => {
                keep.insert(s.id.clone());
            }
            _ => {}
        }
    }
    keep
}

fn arb_policy() -> impl Strategy<Value = Policy> {
    (
        (0u32..4, 0u32..6, 0u32..10, 0u32..6, 0u32..14, 0u32..4),
        prop_oneof![
            Just(None),
            (0u64..40 * 86_400).prop_map(|s| Some(Duration::from_secs(s)))
        ],
    )
        .prop_map(
            |((last, hourly, daily, weekly, monthly, yearly), within)| Policy {
                last,
                hourly,
                daily,
                weekly,
                monthly,
                yearly,
                within,
            },
        )
}

fn arb_protection() -> impl Strategy<Value = Option<Protection>> {
    // Relative to NOW: ended protections lie before it, live ones after.
    prop_oneof![
        16 => Just(None),
        1 => Just(Some(Protection::Forever)),
        1 => (1i64..400).prop_map(|d| Some(Protection::Until(at(NOW) - SignedDuration::from_hours(24 * d)))),
        1 => (1i64..400).prop_map(|d| Some(Protection::Until(at(NOW) + SignedDuration::from_hours(24 * d)))),
    ]
}

/// Calendars: bursts of snapshots (several per hour/day) spread over up to three years, across
/// year and ISO-week boundaries.
fn arb_snapshots(repo: &'static str, base: usize) -> impl Strategy<Value = Vec<SnapshotInfo>> {
    proptest::collection::vec((0i64..3 * 366 * 24, 0i64..3600, arb_protection()), 1..80).prop_map(
        move |items| {
            let start = at("2023-12-20T00:00:00Z");
            items
                .into_iter()
                .enumerate()
                .map(|(i, (hour, sec, p))| {
                    snap(
                        base + i,
                        repo,
                        start + SignedDuration::from_hours(hour) + SignedDuration::from_secs(sec),
                        p,
                    )
                })
                .collect()
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn keeps_exactly_what_the_model_keeps_and_always_the_newest(
        policy in arb_policy(),
        one in arb_snapshots("acme/one", 0),
        two in arb_snapshots("acme/two", 1000),
    ) {
        let now = at(NOW);
        let all: Vec<SnapshotInfo> = one.iter().chain(&two).cloned().collect();
        let result = plan(&policy, &all, now);
        if policy.validate().is_err() {
            prop_assert_eq!(result, Err(PolicyError::KeepsNothing));
            return Ok(());
        }
        let result = result.expect("valid policy");
        prop_assert_eq!(result.groups.len(), 2);
        for (group, snaps) in result.groups.iter().zip([&one, &two]) {
            let kept: BTreeSet<String> = group.kept().map(|d| d.id.clone()).collect();
            prop_assert_eq!(&kept, &model(&policy, snaps, now));
            // Never the newest snapshot of a repository.
            let newest = snaps.iter().max_by(|a, b| a.time.cmp(&b.time).then_with(|| a.id.cmp(&b.id))).expect("non-empty");
            prop_assert!(kept.contains(&newest.id));
            // Every snapshot is decided once, with a reason.
            prop_assert_eq!(group.snapshots.len(), snaps.len());
            prop_assert!(group.snapshots.iter().all(|d| !d.reasons.is_empty()));
        }
    }

    #[test]
    fn protecting_a_snapshot_keeps_it_and_changes_nothing_else(
        policy in arb_policy(),
        snaps in arb_snapshots("acme/app", 0),
        pick in any::<proptest::sample::Index>(),
    ) {
        prop_assume!(policy.validate().is_ok());
        let now = at(NOW);
        let before = plan(&policy, &snaps, now).expect("valid");
        let kept_before: BTreeSet<String> = before.groups[0].kept().map(|d| d.id.clone()).collect();
        let mut protected = snaps.clone();
        let i = pick.index(protected.len());
        prop_assume!(protected[i].protection.is_none());
        protected[i].protection = Some(Protection::Forever);
        let after = plan(&policy, &protected, now).expect("valid");
        let kept_after: BTreeSet<String> = after.groups[0].kept().map(|d| d.id.clone()).collect();
        let mut want = kept_before;
        want.insert(protected[i].id.clone());
        prop_assert_eq!(kept_after, want);
    }

    #[test]
    fn keep_within_keeps_everything_in_the_window(
        days in 1u64..30,
        snaps in arb_snapshots("acme/app", 0),
    ) {
        let policy = Policy { within: Some(Duration::from_secs(days * 86_400)), ..Policy::default() };
        let now = at(NOW);
        let result = plan(&policy, &snaps, now).expect("valid");
        let newest = snaps.iter().map(|s| s.time).max().expect("non-empty");
        let cutoff = newest - SignedDuration::from_hours(24 * days as i64);
        for d in &result.groups[0].snapshots {
            let s = snaps.iter().find(|s| s.id == d.id).expect("from the input");
            let ended = matches!(s.protection, Some(Protection::Until(t)) if t <= now);
            if s.time > cutoff && !ended {
                prop_assert!(d.keep, "{} is within {} days of the newest", d.time, days);
            }
        }
    }
}
