#!/usr/bin/env python3
"""Turns the results directory written by bench/chain.sh into Markdown tables.

  chain_report.py RESULTS_DIR
"""
import json
import os
import sys


def kv(path):
    out = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                k, _, v = line.strip().partition("=")
                if k:
                    out[k] = v
    return out


def mb(n):
    return f"{n / 1e6:,.1f} MB"


def main():
    res = sys.argv[1]
    machine = kv(os.path.join(res, "machine.txt"))
    fixtures = [line.split() for line in open(os.path.join(res, "fixtures.txt")) if line.strip()]
    days = sorted(d for d in os.listdir(res) if d.startswith("day-"))
    rows, events = [], []
    for d in days:
        rd = os.path.join(res, d)
        day = int(d.split("-")[1])
        sizes = {k: int(v) for k, v in kv(os.path.join(rd, "sizes.txt")).items()}
        report = json.load(open(os.path.join(rd, "rv-report.json")))
        m = json.load(open(os.path.join(rd, "rv.json")))
        commits = sum(int(line.split()[1]) for line in open(os.path.join(rd, "commits.txt")))
        bases = []
        for r in report["repos"]:
            if r.get("new_base"):
                bases.append(f'{r["repo"]} ({r["new_base"]["reason"]})')
                events.append((day, r["repo"], r["new_base"]["reason"], r["new_base"]["message"],
                               r["bytes_added"]))
        rows.append(dict(day=day, commits=commits, new=report["totals"]["new_objects"],
                         added=report["totals"]["bytes_added"], failed=report["totals"]["failed"],
                         chain=max(r["chain_length"] for r in report["repos"]),
                         wall=m["wall_s"], bases=bases, **sizes))
    first, last = rows[0], rows[-1]
    print(f"Fixtures: {len(fixtures)} repositories, {first['commits']:,} commits on day 1, "
          f"{mb(sum(int(f[3]) for f in fixtures))} in `objects/` "
          f"({machine.get('nproc')} cores, git {machine.get('git')}, restic {machine.get('restic')}); "
          f"`chain_max_increments_percent`: {machine.get('increments_percent', 'default')}.")
    print()
    ratio_gc = last["rv_store"] / last["gc_mirrors"]
    ratio_restic = last["restic_store"] / last["rv_store"]
    print("| measure | value | target | verdict |")
    print("|---|---|---|---|")
    print(f"| repovault store after {last['day']} daily snapshots | {mb(last['rv_store'])} | | |")
    print(f"| one `git gc`-ed mirror of every repository, day {last['day']} | {mb(last['gc_mirrors'])} | | |")
    print(f"| store / gc-ed mirror | {ratio_gc:.2f}× | ≤ 1.3× | **{'met' if ratio_gc <= 1.3 else 'missed'}** |")
    print(f"| restic store after {last['day']} daily backups of fresh mirror clones | {mb(last['restic_store'])} | | |")
    print(f"| restic / repovault | {ratio_restic:.1f}× | ≥ 5× | **{'met' if ratio_restic >= 5 else 'missed'}** |")
    print(f"| new bases started in {last['day']} days | {len(events)} | | |")
    print(f"| repovault cache (mirrors + staging) on day {last['day']} | {mb(last['rv_cache'])} | | |")
    print(f"| total repovault backup wall time | {sum(r['wall'] for r in rows):,.1f} s | | |")
    print()
    print("| day | commits | new objects | bytes_added | repovault store | gc-ed mirrors | store / mirrors | restic store | restic / repovault | longest chain | new bases | wall |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['day']} | {r['commits']:,} | {r['new']:,} | {r['added']:,} | {mb(r['rv_store'])} | "
              f"{mb(r['gc_mirrors'])} | {r['rv_store'] / r['gc_mirrors']:.2f}× | {mb(r['restic_store'])} | "
              f"{r['restic_store'] / r['rv_store']:.1f}× | {r['chain']} | {', '.join(r['bases']) or '–'} | "
              f"{r['wall']:.1f} s |")
    print()
    if events:
        print("New bases:")
        print()
        print("| day | repository | reason | bytes added by that snapshot | why |")
        print("|---|---|---|---|---|")
        for day, repo, reason, message, added in events:
            print(f"| {day} | {repo} | {reason} | {added:,} | {message} |")
        print()
    v = json.load(open(os.path.join(res, "verify-report.json")))
    firsts = [line.split() for line in open(os.path.join(res, "verify-first.txt")) if line.strip()]
    ok_first = sum(1 for f in firsts if f[1] == "1")
    print(f"`repovault verify --all`: {v['ok']} of {len(v['repos'])} latest snapshots ok; "
          f"the first day's snapshot of each repository: {ok_first} of {len(firsts)} ok.")
    failed = sum(r["failed"] for r in rows)
    if failed:
        print(f"\n**{failed} repository backups failed** (see day-*/rv-report.json).")


if __name__ == "__main__":
    main()
