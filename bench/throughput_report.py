#!/usr/bin/env python3
"""Turns the results directory written by bench/throughput.sh into Markdown tables.

  throughput_report.py RESULTS_DIR
"""
import json
import os
import statistics
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


def mbps(n, s):
    return f"{n / 1e6 / s:,.1f} MB/s" if s > 0 else "–"


def main():
    res = sys.argv[1]
    machine = kv(os.path.join(res, "machine.txt"))
    fixtures = [line.split() for line in open(os.path.join(res, "fixtures.txt")) if line.strip()]
    total = sum(int(f[2]) for f in fixtures)
    print(f"Fixtures: {len(fixtures)} repositories, {sum(int(f[1]) for f in fixtures):,} commits, "
          f"{total / 1e6:,.1f} MB in `objects/`; {machine.get('nproc')} cores, git {machine.get('git')}, "
          f"s3s-fs {machine.get('s3s_fs', '?')}, moto {machine.get('moto', '?')}.")
    print()
    print(f"Medians of {machine.get('reps', '?')} repetitions (samples in parentheses).")
    print()
    print("| store | full backup (git + store) | store writes only (warm cache) | restore of all, one process each | restore of the big repository |")
    print("|---|---|---|---|---|")
    rows = {}
    for t in machine.get("targets", "").split():
        reps = sorted(d for d in os.listdir(os.path.join(res, t)) if d.startswith("rep-"))
        full_w, warm_w, rest_w, big_w = [], [], [], []
        full_cpu, warm_cpu = [], []
        stored = warm_stored = r_bytes = big_bytes = 0
        for rep in reps:
            rd = os.path.join(res, t, rep)
            full = json.load(open(os.path.join(rd, "full.json")))
            warm = json.load(open(os.path.join(rd, "warm.json")))
            stored = json.load(open(os.path.join(rd, "full-report.json")))["totals"]["bytes_added"]
            warm_stored = json.load(open(os.path.join(rd, "warm-report.json")))["totals"]["bytes_added"]
            full_w.append(full["wall_s"])
            warm_w.append(warm["wall_s"])
            full_cpu.append(full["user_s"] + full["sys_s"])
            warm_cpu.append(warm["user_s"] + warm["sys_s"])
            total_wall, r_bytes = 0.0, 0
            for name, size in (line.split() for line in open(os.path.join(rd, "restores.txt")) if line.strip()):
                m = json.load(open(os.path.join(rd, f"restore-{name}.json")))
                total_wall += m["wall_s"]
                r_bytes += int(size)
                if name == "big":
                    big_w.append(m["wall_s"])
                    big_bytes = int(size)
            rest_w.append(total_wall)
        med = statistics.median
        rows[t] = (med(full_w), med(warm_w), med(rest_w))
        samples = lambda v: " / ".join(f"{x:.1f}" for x in v)
        big_cell = f"{med(big_w):.1f} s, {mbps(big_bytes, med(big_w))}" if big_w else "–"
        print(f"| {t} | {med(full_w):.1f} s ({samples(full_w)}), {mbps(stored, med(full_w))}, "
              f"CPU {med(full_cpu):.1f} s | {med(warm_w):.1f} s ({samples(warm_w)}), "
              f"{mbps(warm_stored, med(warm_w))}, CPU {med(warm_cpu):.1f} s | "
              f"{med(rest_w):.1f} s ({samples(rest_w)}), {mbps(r_bytes, med(rest_w))} | {big_cell} |")
    print()
    print("MB/s: backups count the bytes added to the store (`totals.bytes_added`, compressed and "
          "encrypted); restores count the restored repositories' `objects/`.")
    if "local" in rows:
        print()
        print("| store | full backup / local | store writes / local | restore / local |")
        print("|---|---|---|---|")
        lf, lw, lr = rows["local"]
        for t, (f, w, r) in rows.items():
            if t != "local":
                print(f"| {t} | {f / lf:.2f}× | {w / lw:.2f}× | {r / lr:.2f}× |")


if __name__ == "__main__":
    main()
