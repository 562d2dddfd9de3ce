#!/usr/bin/env python3
"""Turns the results directory written by bench/throughput.sh into Markdown tables.

  throughput_report.py RESULTS_DIR
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
    print("| store | full backup (git + store) | store writes only (warm cache) | restore of all | restore of the big repository |")
    print("|---|---|---|---|---|")
    rows = {}
    for t in machine.get("targets", "").split():
        rd = os.path.join(res, t)
        full = json.load(open(os.path.join(rd, "full.json")))
        full_r = json.load(open(os.path.join(rd, "full-report.json")))
        warm = json.load(open(os.path.join(rd, "warm.json")))
        warm_r = json.load(open(os.path.join(rd, "warm-report.json")))
        stored = full_r["totals"]["bytes_added"]
        warm_stored = warm_r["totals"]["bytes_added"]
        restores = [line.split() for line in open(os.path.join(rd, "restores.txt")) if line.strip()]
        r_wall = 0.0
        r_bytes = 0
        big = None
        for name, size in restores:
            m = json.load(open(os.path.join(rd, f"restore-{name}.json")))
            r_wall += m["wall_s"]
            r_bytes += int(size)
            if name == "big":
                big = (m["wall_s"], int(size))
        rows[t] = (full["wall_s"], warm["wall_s"], r_wall)
        big_cell = f"{big[0]:.1f} s, {mbps(big[1], big[0])}" if big else "–"
        print(f"| {t} | {full['wall_s']:.1f} s, {mbps(stored, full['wall_s'])} "
              f"(CPU {full['user_s'] + full['sys_s']:.1f} s) | {warm['wall_s']:.1f} s, "
              f"{mbps(warm_stored, warm['wall_s'])} (CPU {warm['user_s'] + warm['sys_s']:.1f} s) | "
              f"{r_wall:.1f} s, {mbps(r_bytes, r_wall)} | {big_cell} |")
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
