#!/usr/bin/env python3
"""A pool of fcgiwrap workers for the benchmark's git HTTP server.

Binds one unix socket and starts N fcgiwrap processes that all accept on it (the socket is their
stdin, the FastCGI convention), so git http-backend can serve N requests at once. fcgiwrap's own
`-c N` pre-forking leaves grandchildren behind on SIGTERM; here every worker is a direct child
that this process stops when it receives SIGTERM or SIGINT (stop the pool by its PID), or when
any worker dies.

  fcgi_pool.py SOCKET WORKERS LOGDIR -- ENV=VALUE...
Prints "ready" on stdout once all workers run.
"""
import os
import signal
import socket
import subprocess
import sys
import time


def main():
    sock_path, workers, logdir = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    env = {}
    for kv in sys.argv[5:] if len(sys.argv) > 4 and sys.argv[4] == "--" else []:
        k, _, v = kv.partition("=")
        env[k] = v
    env.setdefault("PATH", os.environ.get("PATH", "/usr/bin:/bin"))
    if os.path.exists(sock_path):
        os.unlink(sock_path)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(sock_path)
    listener.listen(64)
    fcgiwrap = next((p for p in ("/usr/sbin/fcgiwrap", "/usr/local/sbin/fcgiwrap") if os.path.exists(p)),
                    "fcgiwrap")
    children = []
    stopping = False

    def stop(_sig=None, _frame=None):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for i in range(workers):
        log = open(os.path.join(logdir, f"fcgiwrap-{i}.log"), "ab")
        children.append(subprocess.Popen([fcgiwrap], stdin=listener.fileno(), stdout=log, stderr=log,
                                         env=env, close_fds=True))
    print("ready", flush=True)
    while not stopping and all(c.poll() is None for c in children):
        time.sleep(0.2)
    for c in children:
        if c.poll() is None:
            c.terminate()
    deadline = time.monotonic() + 10
    for c in children:
        try:
            c.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            c.kill()
            c.wait()
    listener.close()
    os.unlink(sock_path)


if __name__ == "__main__":
    main()
