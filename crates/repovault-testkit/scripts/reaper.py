"""Runs a command as a child subreaper, like an init process of a container.

usage: python3 reaper.py PID_FILE COMMAND [ARG...]

Writes the command's PID to PID_FILE, waits for it, then kills (SIGKILL) and reaps every process
it left behind: those are reparented to this process instead of to PID 1, which on some machines
never reaps them. A test can so SIGKILL the command at any moment and know that nothing it
started lives on, as when a container or machine dies. Exits with the command's exit code, or
128 + the signal that ended it.
"""
import ctypes
import os
import signal
import subprocess
import sys

PR_SET_CHILD_SUBREAPER = 36


def children():
    """PIDs whose parent is this process (zombies included)."""
    me = os.getpid()
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 1 and int(fields[1]) == me:
            out.append(int(name))
    return out


def main():
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        sys.exit(f"reaper: prctl(PR_SET_CHILD_SUBREAPER) failed: errno {ctypes.get_errno()}")
    pid_file, cmd = sys.argv[1], sys.argv[2:]
    child = subprocess.Popen(cmd)
    with open(pid_file + ".tmp", "w") as f:
        f.write(str(child.pid))
    os.rename(pid_file + ".tmp", pid_file)
    rc = child.wait()
    # Bounded: each round kills what is there; what they started in the meantime is the next
    # round's.
    for _ in range(1000):
        left = children()
        if not left:
            break
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for pid in left:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
    sys.exit(128 - rc if rc < 0 else rc)


main()
