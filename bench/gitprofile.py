#!/usr/bin/env python3
"""Summarises the git timing log of bench/run.sh's profiling run (see gitshim/git).

  gitprofile.py LOG START_NS END_NS OUT.json

Per git subcommand: invocations, summed wall time and summed CPU time (over all workers, so the sums can exceed
the run's wall time); per repository: when its first git call started (seconds into the run),
its git calls' span and per-subcommand sums. Also how much of the run's wall time had at least one git process running,
and how much had none (time repovault spent on its own: start-up, reading the store, writing
snapshots).
"""
import json
import re
import sys

CLOCK = re.compile(r"(\d+)m([\d.]+)s")


def seconds(t):
    m = CLOCK.fullmatch(t)
    return int(m.group(1)) * 60 + float(m.group(2)) if m else 0.0


REPO = re.compile(r"/bench/([A-Za-z0-9_-]+?)(?:\.git\b|/)")


def main():
    log, start, end, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    calls = []
    with open(log) as f:
        for line in f:
            s, e, rc, cu, cs, sub, *rest = line.rstrip("\n").split(" ", 6)
            m = REPO.search(rest[0] if rest else "")
            calls.append((int(s), int(e), int(rc), sub, m.group(1) if m else None,
                          seconds(cu) + seconds(cs)))
    by_sub = {}
    repos = {}
    for s, e, _, sub, repo, c in calls:
        n, t, tc = by_sub.get(sub, (0, 0.0, 0.0))
        by_sub[sub] = (n + 1, t + (e - s) / 1e9, tc + c)
        if repo:
            r = repos.setdefault(repo, {"first": s, "last": e, "by_sub": {}})
            r["first"], r["last"] = min(r["first"], s), max(r["last"], e)
            r["by_sub"][sub] = round(r["by_sub"].get(sub, 0.0) + (e - s) / 1e9, 3)
    busy, cur_s, cur_e = 0, None, None
    for s, e, *_ in sorted(calls):
        if cur_e is None or s > cur_e:
            if cur_e is not None:
                busy += cur_e - cur_s
            cur_s, cur_e = s, e
        else:
            cur_e = max(cur_e, e)
    if cur_e is not None:
        busy += cur_e - cur_s
    wall = (end - start) / 1e9
    last_git_end = max((c[1] for c in calls), default=start)
    first_git_start = min((c[0] for c in calls), default=end)
    result = {
        "wall_s": round(wall, 2),
        "git_busy_s": round(busy / 1e9, 2),
        "no_git_s": round(wall - busy / 1e9, 2),
        "before_first_git_s": round((first_git_start - start) / 1e9, 2),
        "after_last_git_s": round((end - last_git_end) / 1e9, 2),
        "failed_calls": sum(1 for c in calls if c[2] != 0),
        "by_subcommand": {k: {"calls": n, "sum_s": round(t, 2), "cpu_s": round(tc, 2)} for k, (n, t, tc) in
                          sorted(by_sub.items(), key=lambda kv: -kv[1][1])},
        "repos": {k: {"start_s": round((r["first"] - start) / 1e9, 2),
                      "end_s": round((r["last"] - start) / 1e9, 2),
                      "by_sub": r["by_sub"]} for k, r in sorted(repos.items())},
    }
    with open(out, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
