#!/usr/bin/env python3
"""Runs one command and measures it; writes the numbers as JSON.

  measure.py OUT.json [--server-root PID]... -- COMMAND [ARGS...]

wall_s          wall-clock time from start to exit
user_s, sys_s   CPU time of the command and every descendant it waited for
maxrss_kib      largest resident set of any single process in the tree (getrusage, like GNU time)
self_hwm_kib    peak resident set (VmHWM) of the command's own process, read from /proc every
                0.1 s; VmHWM is a high-water mark, so only growth in the last 0.1 s can be missed
tree_rss_peak_kib  largest sum of VmRSS over the process and its descendants seen in a sample
self_cpu_s      CPU time of the command's own process (all its threads, no children), from the last
                /proc sample before it exited
server_cpu_s    with --server-root: CPU time used meanwhile by those processes and their descendants
                (own plus reaped children's time: nginx workers, fcgiwrap, git http-backend,
                upload-pack, pack-objects), the difference between before and after
exit            the exit status (the measurement is written whatever it is)
The command's stdin/stdout/stderr are inherited; measure.py exits with the command's status.
"""
import json
import os
import subprocess
import sys
import time


def read_kib(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return None


def self_cpu(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_map():
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(d))
    return children


def tree_cpu(roots):
    """Own + reaped children's CPU seconds of every process in the trees under roots."""
    children, total, todo = children_map(), 0.0, list(roots)
    while todo:
        pid = todo.pop()
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        total += sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")
        todo.extend(children.get(pid, []))
    return total


def tree_rss(root):
    children = children_map()
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += read_kib(pid, "VmRSS") or 0
        todo.extend(children.get(pid, []))
    return total


def main():
    out, args, roots = sys.argv[1], sys.argv[2:], []
    while args and args[0] == "--server-root":
        roots.append(int(args[1]))
        args = args[2:]
    assert args and args[0] == "--" and len(args) > 1, __doc__
    cmd = args[1:]
    server0 = tree_cpu(roots) if roots else None
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd)
    hwm, tree_peak, cpu = 0, 0, 0.0
    while True:
        pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        hwm = max(hwm, read_kib(proc.pid, "VmHWM") or 0)
        tree_peak = max(tree_peak, tree_rss(proc.pid))
        cpu = max(cpu, self_cpu(proc.pid) or 0.0)
        time.sleep(0.1)
    wall = time.monotonic() - t0
    code = os.waitstatus_to_exitcode(status)
    server = round(tree_cpu(roots) - server0, 2) if roots else None
    with open(out, "w") as f:
        json.dump({"cmd": cmd[0], "wall_s": round(wall, 3), "user_s": round(ru.ru_utime, 3),
                   "sys_s": round(ru.ru_stime, 3), "maxrss_kib": ru.ru_maxrss,
                   "self_hwm_kib": hwm, "tree_rss_peak_kib": tree_peak,
                   "self_cpu_s": round(cpu, 2), "server_cpu_s": server, "exit": code}, f)
        f.write("\n")
    sys.exit(code if code >= 0 else 128 - code)


if __name__ == "__main__":
    main()
