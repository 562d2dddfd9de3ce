#!/usr/bin/env python3
"""Turns the results directory written by bench/run.sh into Markdown tables.

  report.py RESULTS_DIR
"""
import json
import os
import statistics
import sys

MIB = 1024 * 1024


def load_json(path):
    with open(path) as f:
        return json.load(f)


def kv(path):
    out = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                k, _, v = line.strip().partition("=")
                if k:
                    out[k] = v
    return out


def rows(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [line.split() for line in f if line.strip()]


def mb(n):
    return f"{n / 1e6:,.1f} MB"


def secs(s):
    return f"{s:,.1f} s"


def samples(values):
    return " / ".join(f"{v:.1f}" for v in values) + " s"


def report_span_ms(report):
    """finished - started of a run report, in ms (timestamps have up to 9 fractional digits)."""
    from datetime import datetime

    def parse(t):
        head, _, frac = t.rstrip("Z").partition(".")
        return datetime.fromisoformat(head + "." + (frac + "000000")[:6] + "+00:00")

    return round((parse(report["finished"]) - parse(report["started"])).total_seconds() * 1000)


def verdict(ok):
    return "**met**" if ok else "**missed**"


def cpu(m):
    return m["user_s"] + m["sys_s"]


def main():
    res = sys.argv[1]
    rep = os.path.join(res, "reps")
    machine = kv(os.path.join(res, "machine.txt"))
    runs = int(machine["runs"])
    conc = machine["concurrency"]
    fixtures = rows(os.path.join(res, "fixtures.txt"))
    run = []
    for r in range(1, runs + 1):
        d = os.path.join(res, f"run-{r}")
        run.append({
            "rv": load_json(os.path.join(d, "rv.json")),
            "report": load_json(os.path.join(d, "rv-report.json")),
            "clone": load_json(os.path.join(d, "clone.json")),
            "restic": load_json(os.path.join(d, "restic.json")),
            "sizes": {k: int(v) for k, v in kv(os.path.join(d, "sizes.txt")).items()},
            "commits": sum(int(c) for _, c in rows(os.path.join(d, "commits.txt"))),
            "gitpack": rows(os.path.join(d, "gitpack.txt")),
        })
    r1, r2, r3 = run[0], run[1], run[2]

    clone_runs = [load_json(os.path.join(rep, f"clone-{k}.json")) for k in (1, 2)]
    clone_runs += [load_json(os.path.join(res, "run-1", "clone-before.json")), r1["clone"]]
    full_runs = [load_json(os.path.join(rep, f"rv-full-{k}.json")) for k in (1, 2)] + [r1["rv"]]
    noch_runs = [load_json(os.path.join(rep, f"rv-nochange-{k}.json")) for k in (1, 2)] + [r2["rv"]]
    lsremote = load_json(os.path.join(res, "run-2", "lsremote.json"))
    prof_full = load_json(os.path.join(rep, "profile-full.json"))
    prof_noch = load_json(os.path.join(rep, "profile-nochange.json"))
    prof_clone = load_json(os.path.join(rep, "profile-clone.json"))
    prof_full_report = load_json(os.path.join(rep, "prof-full-report.json"))
    prof_noch_report = load_json(os.path.join(rep, "prof-nochange-report.json"))
    serial = load_json(os.path.join(rep, "rv-nochange-serial.json"))
    restic_bundles = load_json(os.path.join(rep, "restic-of-bundles.json"))
    bundle_bytes = int(kv(os.path.join(rep, "prof-sizes.txt"))["bundle_bytes"])

    baseline = statistics.median(m["wall_s"] for m in clone_runs)
    full = statistics.median(m["wall_s"] for m in full_runs)
    nochange = statistics.median(m["wall_s"] for m in noch_runs)
    rss_self = max(m["self_hwm_kib"] for m in full_runs + noch_runs) * 1024
    rss_any = max(m["maxrss_kib"] for m in full_runs + noch_runs) * 1024
    rss_tree = max(m["tree_rss_peak_kib"] for m in full_runs + noch_runs) * 1024

    total_commits = sum(int(f[2]) for f in fixtures)
    total_pack = sum(int(f[4]) for f in fixtures)
    big = next(f for f in fixtures if f[1] == "big")
    by_profile = {}
    for f in fixtures:
        by_profile.setdefault(f[1], []).append(int(f[2]))

    def incr(e, prev):
        return dict(
            plain=sum(int(g[2]) for g in e["gitpack"]),
            thin=sum(int(g[3]) for g in e["gitpack"]),
            objs=sum(int(g[1]) for g in e["gitpack"]),
            added=e["report"]["totals"]["bytes_added"],
            bundles=sum(x["bundle_bytes"] for x in e["report"]["repos"]),
            du=e["sizes"]["rv_store"] - prev["sizes"]["rv_store"],
        )

    incs = [incr(run[i], run[i - 1]) for i in range(2, runs)]
    i3 = incs[0]
    r_plain = [x["added"] / x["plain"] for x in incs]
    r_thin = [x["added"] / x["thin"] for x in incs]
    r_du = [x["du"] / x["plain"] for x in incs]

    rv_total = sum(e["rv"]["wall_s"] for e in run)
    clone_total = sum(e["clone"]["wall_s"] for e in run)
    restic_total = sum(e["restic"]["wall_s"] for e in run)
    last = run[-1]["sizes"]

    out = []
    p = out.append
    p(f"Machine: {machine['nproc']} cores ({machine['cpu']}), {int(machine['mem_kib']) / 1024 / 1024:.1f} GiB RAM, "
      f"{machine['fs']} file system; git {machine['git']}, restic {machine['restic']}, nginx {machine['nginx']}, "
      f"repovault {machine['repovault']}; concurrency {conc}.")
    p("")
    p(f"Fixtures: 50 repositories, {total_commits:,} commits, {mb(total_pack)} in `objects/` "
      f"(40 small: {min(by_profile['small'])}–{max(by_profile['small'])} commits; "
      f"9 medium: {min(by_profile['medium']):,}–{max(by_profile['medium']):,} commits; "
      f"big: {int(big[2]):,} commits, {mb(int(big[4]))}); generated in {int(machine['fixture_gen_ms']) / 1000:.0f} s.")
    p("")
    p("| # | measure | value | target | verdict |")
    p("|---|---|---|---|---|")
    p(f"| a | baseline: parallel `git clone --mirror` of the 50 (xargs -P {conc}), median of 4 | {secs(baseline)} "
      f"(samples {samples([m['wall_s'] for m in clone_runs])}); CPU {cpu(clone_runs[-1]):.1f} s | | |")
    p(f"| a | repovault full backup, `--concurrency {conc}`, median of 3 | {secs(full)} "
      f"(samples {samples([m['wall_s'] for m in full_runs])}); CPU {cpu(r1['rv']):.1f} s, "
      f"of which repovault itself {r1['rv']['self_cpu_s']:.1f} s | | |")
    p(f"| a | full backup / baseline | {full / baseline:.2f}× | ≤ 1.2× | {verdict(full <= 1.2 * baseline)} |")
    p(f"| a | peak RSS of the repovault process (VmHWM), max of 6 runs | {rss_self / MIB:.0f} MiB | ≤ 256 MiB | "
      f"{verdict(rss_self <= 256 * MIB)} |")
    p(f"| a | peak RSS of any single process in its tree, incl. git (getrusage) | {rss_any / MIB:.0f} MiB | | |")
    p(f"| a | peak RSS summed over repovault + git children (sampled every 0.1 s) | {rss_tree / MIB:.0f} MiB | | |")
    p(f"| a | store after the full backup | {mb(r1['sizes']['rv_store'])} | | |")
    p(f"| a | repovault cache after the full backup | {mb(r1['sizes']['rv_cache'])} | | |")
    p(f"| a | the `git clone --mirror` directories | {mb(r1['sizes']['mirrors'])} | | |")
    p(f"| b | repovault, nothing changed, median of 3 | {secs(nochange)} "
      f"(samples {samples([m['wall_s'] for m in noch_runs])}); CPU {cpu(r2['rv']):.1f} s | | |")
    p(f"| b | no-change run / full run | {nochange / full:.2f}× | ≤ 0.2× | {verdict(nochange <= 0.2 * full)} |")
    p(f"| b | reference: parallel `git ls-remote` of the 50 | {secs(lsremote['wall_s'])} | | |")
    p(f"| b | store growth of the no-change run (du) | {r2['sizes']['rv_store'] - r1['sizes']['rv_store']:,} B | | |")
    p(f"| c | run 3: new commits / new objects | {r3['commits']} / {i3['objs']:,} "
      f"({100 * r3['commits'] / total_commits:.2f}% of all commits) | | |")
    p(f"| c | git's pack of exactly the new objects: plain / thin | {i3['plain']:,} B / {i3['thin']:,} B | | |")
    p(f"| c | repovault bundles written (sum of `bundle_bytes`) | {i3['bundles']:,} B | | |")
    p(f"| c | repovault `totals.bytes_added` | {i3['added']:,} B | | |")
    p(f"| c | bytes_added / plain git pack | {r_plain[0]:.2f}× (runs 3–{runs}: {min(r_plain):.2f}–{max(r_plain):.2f}×) "
      f"| ≤ 1.2× | {verdict(max(r_plain) <= 1.2)} |")
    p(f"| c | bytes_added / thin git pack | {r_thin[0]:.2f}× (runs 3–{runs}: {min(r_thin):.2f}–{max(r_thin):.2f}×) "
      f"| (≤ 1.2×) | {verdict(max(r_thin) <= 1.2)} |")
    p(f"| c | store growth (du) / plain git pack | {r_du[0]:.2f}× (runs 3–{runs}: {min(r_du):.2f}–{max(r_du):.2f}×) "
      f"| | |")
    p(f"| c | run 3 wall time | {secs(r3['rv']['wall_s'])} | | |")
    p(f"| d | repovault store after {runs} runs | {mb(last['rv_store'])} (cache {mb(last['rv_cache'])}) | | |")
    p(f"| d | restic store after {runs} runs of fresh mirrors | {mb(last['restic_store'])} "
      f"(restic cache {mb(last['restic_cache'])}) | | |")
    p(f"| d | store size, repovault / restic | {last['rv_store'] / last['restic_store']:.2f}× | | |")
    p(f"| d | total wall time, repovault ({runs} runs) | {secs(rv_total)} | | |")
    p(f"| d | total wall time, clone + restic ({runs} runs) | {secs(clone_total + restic_total)} "
      f"(clone {secs(clone_total)} + restic {secs(restic_total)}) | | |")
    p("")
    p("Per run of the main sequence:")
    p("")
    p("| run | commits added | git pack plain / thin (B) | repovault bytes_added (B) | repovault store (du) | "
      "repovault wall | report `duration_ms` / its `finished − started` (ms) | clone wall | restic wall | restic store (du) |")
    p("|---|---|---|---|---|---|---|---|---|---|")
    for r, e in enumerate(run, 1):
        plain = sum(int(g[2]) for g in e["gitpack"])
        thin = sum(int(g[3]) for g in e["gitpack"])
        p(f"| {r} | {e['commits']} | {plain:,} / {thin:,} | {e['report']['totals']['bytes_added']:,} | "
          f"{mb(e['sizes']['rv_store'])} | {secs(e['rv']['wall_s'])} | {e['report']['duration_ms']:,} / {report_span_ms(e['report']):,} | "
          f"{secs(e['clone']['wall_s'])} | {secs(e['restic']['wall_s'])} | {mb(e['sizes']['restic_store'])} |")
    p("")
    p(f"CPU seconds per phase (client: the measured command and its children; server: nginx, fcgiwrap, "
      f"git http-backend and what it runs; {machine['nproc']} cores, so the machine has "
      f"{machine['nproc']} CPU-seconds per second of wall time):")
    p("")
    p("| phase | wall | client CPU | of which the repovault process | server CPU | total CPU | total CPU / "
      "(cores × wall) |")
    p("|---|---|---|---|---|---|---|")
    nproc = int(machine["nproc"])
    for name, m in [("baseline `git clone --mirror` (run 1)", r1["clone"]),
                    ("repovault full backup (run 1)", r1["rv"]),
                    ("repovault no-change (run 2)", r2["rv"]),
                    ("parallel `git ls-remote` (run 2)", lsremote),
                    ("repovault incremental (run 3)", r3["rv"]),
                    ("restic backup of the mirrors (run 1)", r1["restic"])]:
        server = m.get("server_cpu_s") or 0.0
        own = f"{m['self_cpu_s']:.1f} s" if m["cmd"].endswith("repovault") else ""
        total = cpu(m) + server
        p(f"| {name} | {secs(m['wall_s'])} | {cpu(m):.1f} s | {own} | {server:.1f} s | {total:.1f} s | "
          f"{total / (nproc * m['wall_s']):.0%} |")
    p("")
    p("Where the time goes (profiling run: every git call timed by a wrapper, which adds a few ms per call; "
      f"sums are over {conc} parallel workers, so they can exceed the wall time):")
    p("")
    p("| phase | baseline clone | repovault full backup | repovault no-change |")
    p("|---|---|---|---|")
    profs = [prof_clone, prof_full, prof_noch]
    p("| wall time (with the wrapper) | " + " | ".join(secs(x["wall_s"]) for x in profs) + " |")
    p("| git invocations / their summed wall time / their summed CPU | " + " | ".join(
        f"{sum(b['calls'] for b in x['by_subcommand'].values())} / "
        f"{secs(sum(b['sum_s'] for b in x['by_subcommand'].values()))} / "
        f"{sum(b['cpu_s'] for b in x['by_subcommand'].values()):.1f} s" for x in profs) + " |")
    p("| wall time with at least one git process running | " + " | ".join(secs(x["git_busy_s"]) for x in profs) + " |")
    p("| wall time with no git process running | " + " | ".join(secs(x["no_git_s"]) for x in profs) + " |")
    p("| … of which before the first git call / after the last | " +
      " | ".join(f"{secs(x['before_first_git_s'])} / {secs(x['after_last_git_s'])}" for x in profs) + " |")
    cells = ["–"]
    for x, rpt in ((prof_full, prof_full_report), (prof_noch, prof_noch_report)):
        calls = sum(b["calls"] for b in x["by_subcommand"].values())
        outside = sum(r["duration_ms"] for r in rpt["repos"]) / 1000 - sum(b["sum_s"] for b in x["by_subcommand"].values())
        cells.append(f"{secs(outside)} ({1000 * outside / calls:.0f} ms per git call)")
    p("| worker time outside git calls: sum of per-repository `duration_ms` − summed git wall time | "
      + " | ".join(cells) + " |")
    subs = list(dict.fromkeys(k for x in profs for k in x["by_subcommand"]))
    for sub in subs:
        cells = []
        for x in profs:
            b = x["by_subcommand"].get(sub)
            cells.append(f"{b['calls']} calls, {secs(b['sum_s'])} (CPU {b['cpu_s']:.1f} s)" if b else "–")
        p(f"| `git {sub}` | " + " | ".join(cells) + " |")
    bigc, bigf = prof_clone["repos"].get("big"), prof_full["repos"].get("big")
    big_ms = next(x["duration_ms"] for x in prof_full_report["repos"] if x["repo"].endswith("/big"))
    if bigc and bigf:
        p(f"| the big repository: git calls from → to (s into the run) | {bigc['start_s']:.1f} → {bigc['end_s']:.1f} | "
          f"{bigf['start_s']:.1f} → {bigf['end_s']:.1f} (report `duration_ms` {big_ms:,}; "
          + ", ".join(f"{k} {v:.1f} s" for k, v in bigf["by_sub"].items() if v >= 0.05) + ") | |")
    noch_calls = sum(b["calls"] for b in prof_noch["by_subcommand"].values())
    p(f"| the no-change run again with `--concurrency 1` | | | {secs(serial['wall_s'])} wall, "
      f"{cpu(serial):.1f} s CPU (client) for {noch_calls} git calls: "
      f"{1000 * (serial['wall_s'] - cpu(serial)) / noch_calls:.0f} ms idle per call |")
    p(f"| reference: `restic backup` of the same bundle chains ({mb(bundle_bytes)}) into a new restic repository "
      f"| | {secs(restic_bundles['wall_s'])} (CPU {cpu(restic_bundles):.1f} s) | |")
    print("\n".join(out))


if __name__ == "__main__":
    main()
