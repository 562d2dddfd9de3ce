#!/usr/bin/env python3
"""Deterministic git histories for the benchmark, written as a `git fast-import` stream.

Everything comes from a seeded PRNG (random.Random), so the same arguments always give the same
objects and the same commit ids.

  genrepo.py create --seed S --profile small|medium|big      | git fast-import --quiet
  genrepo.py append --seed S --round R --git-dir D --commits N [--binary-bytes B] [--ref REF]
                                                                 | git fast-import --quiet

`create` makes a history on refs/heads/main (text files edited a few lines at a time, binary
files of incompressible bytes for the medium and big profiles), a few feature branches and
annotated tags. `append` adds N commits on top of refs/heads/main (or --ref, which is created from
main when it does not exist) of an existing repository: line edits of existing text files (read
back with `git cat-file`) plus, when --binary-bytes is given, one new incompressible binary file
of that size spread over the commits.
"""

import argparse
import random
import subprocess
import sys

WORDS = (
    "fn let mut return if else match struct impl pub use self Some None Ok Err vec map iter "
    "into clone len push insert remove value key index count total buffer reader writer path "
    "config error result option string bytes hash state cache store mirror bundle chain ref "
    "commit tree blob tag snapshot backup restore fetch remote local token auth retry timeout"
).split()
OPS = ["=", "+=", "==", "!=", "->", "=>", "&&", "||", "+", "-", "*", "::", "."]

BASE_TIME = 1_600_000_000  # fixed epoch, so commit ids are reproducible


def text_line(rng):
    indent = "    " * rng.randrange(0, 4)
    n = rng.randrange(2, 10)
    parts = []
    for _ in range(n):
        parts.append(rng.choice(WORDS))
        if rng.random() < 0.4:
            parts.append(rng.choice(OPS))
    if rng.random() < 0.3:
        parts.append(str(rng.randrange(0, 100000)))
    return indent + " ".join(parts) + (";" if rng.random() < 0.7 else "")


def text_file(rng, nlines):
    return [text_line(rng) for _ in range(nlines)]


def edit_lines(rng, lines):
    """A small change: a few lines replaced, some inserted, now and then some deleted."""
    lines = list(lines)
    for _ in range(rng.randrange(1, 4)):
        if lines:
            lines[rng.randrange(len(lines))] = text_line(rng)
    if rng.random() < 0.6:
        at = rng.randrange(len(lines) + 1)
        lines[at:at] = [text_line(rng) for _ in range(rng.randrange(1, 6))]
    if rng.random() < 0.2 and len(lines) > 20:
        at = rng.randrange(len(lines) - 3)
        del lines[at : at + rng.randrange(1, 3)]
    return lines


class Stream:
    def __init__(self, out):
        self.out = out
        self.mark = 0

    def w(self, s):
        self.out.write(s.encode() if isinstance(s, str) else s)

    def data(self, payload):
        if isinstance(payload, str):
            payload = payload.encode()
        self.w(f"data {len(payload)}\n")
        self.w(payload)
        self.w("\n")

    def commit(self, ref, when, message, files, parent=None):
        """files: list of (path, bytes). Returns the commit's mark."""
        self.mark += 1
        self.w(f"commit {ref}\nmark :{self.mark}\n")
        self.w(f"author Bench Author <author@bench.invalid> {when} +0000\n")
        self.w(f"committer Bench Committer <committer@bench.invalid> {when} +0000\n")
        self.data(message)
        if parent is not None:
            self.w(f"from {parent}\n")
        for path, content in files:
            self.w(f"M 100644 inline {path}\n")
            self.data(content)
        self.w("\n")
        return self.mark

    def tag(self, name, target_mark, when, message):
        self.w(f"tag {name}\nfrom :{target_mark}\n")
        self.w(f"tagger Bench Tagger <tagger@bench.invalid> {when} +0000\n")
        self.data(message)


PROFILES = {
    # commits, text files, lines per file, binary every N commits (0: never), binary size range,
    # binary paths (a binary is written to one of them, replacing the old one), feature branches,
    # tag every N commits
    "small": dict(commits=(10, 200), files=(3, 10), lines=(30, 150), bin_every=0,
                  bin_size=(0, 0), bin_paths=0, branches=(0, 2), tag_every=50),
    "medium": dict(commits=(1000, 5000), files=(20, 40), lines=(80, 300), bin_every=60,
                   bin_size=(16_000, 160_000), bin_paths=8, branches=(2, 4), tag_every=250),
    "big": dict(commits=(560, 560), files=(30, 30), lines=(100, 300), bin_every=1,
                bin_size=(60_000, 140_000), bin_paths=40, branches=(3, 3), tag_every=50),
}


def create(args):
    p = PROFILES[args.profile]
    rng = random.Random(f"create:{args.profile}:{args.seed}")
    ncommits = rng.randint(*p["commits"])
    nfiles = rng.randint(*p["files"])
    files = {f"src/mod_{i:03d}.rs": text_file(rng, rng.randint(*p["lines"])) for i in range(nfiles)}
    s = Stream(sys.stdout.buffer)
    nbranches = rng.randint(*p["branches"])
    branch_at = sorted(rng.sample(range(1, ncommits), nbranches)) if nbranches and ncommits > 2 else []
    main_marks = []
    when = BASE_TIME + args.seed * 1000
    for i in range(ncommits):
        when += rng.randrange(60, 86400)
        if i == 0:
            changed = sorted(files)
        else:
            changed = sorted(rng.sample(sorted(files), min(len(files), rng.randrange(1, 4))))
            for path in changed:
                files[path] = edit_lines(rng, files[path])
            if rng.random() < 0.02:
                path = f"src/mod_{len(files):03d}.rs"
                files[path] = text_file(rng, rng.randint(*p["lines"]))
                changed.append(path)
        out = [(path, "\n".join(files[path]) + "\n") for path in changed]
        if p["bin_every"] and i % p["bin_every"] == 0:
            path = f"assets/blob_{rng.randrange(p['bin_paths']):02d}.bin"
            out.append((path, rng.randbytes(rng.randint(*p["bin_size"]))))
        mark = s.commit("refs/heads/main", when, f"change {i}: {' '.join(changed)}\n", out)
        main_marks.append(mark)
        if p["tag_every"] and i % p["tag_every"] == p["tag_every"] - 1:
            s.tag(f"v{i // p['tag_every'] + 1}.0", mark, when, f"release {i}\n")
    for b, at in enumerate(branch_at):
        ref = f"refs/heads/feature-{b}"
        parent = f":{main_marks[at]}"
        notes = text_file(rng, 20)
        for j in range(rng.randrange(1, 12)):
            when += rng.randrange(60, 3600)
            notes = edit_lines(rng, notes)
            s.commit(ref, when, f"feature {b} step {j}\n",
                     [(f"feature-{b}/notes.md", "\n".join(notes) + "\n")], parent=parent)
            parent = None
    s.w("checkpoint\n")


def git(git_dir, *args, input=None):
    return subprocess.run(["git", "--git-dir", git_dir, *args], input=input,
                          check=True, stdout=subprocess.PIPE).stdout


def ref_exists(git_dir, ref):
    return subprocess.run(["git", "--git-dir", git_dir, "rev-parse", "-q", "--verify", ref],
                          stdout=subprocess.DEVNULL).returncode == 0


def append(args):
    rng = random.Random(f"append:{args.seed}:{args.round}")
    ref = args.ref
    base = ref if ref_exists(args.git_dir, ref) else "refs/heads/main"
    tip_time = int(git(args.git_dir, "log", "-1", "--format=%ct", base).strip())
    paths = [p for p in git(args.git_dir, "ls-tree", "-r", "--name-only", base)
             .decode().splitlines() if p.endswith(".rs")]
    files = {}
    for path in paths:
        files[path] = git(args.git_dir, "cat-file", "blob", f"{base}:{path}").decode().splitlines()
    s = Stream(sys.stdout.buffer)
    when = tip_time
    binary_left = args.binary_bytes
    for i in range(args.commits):
        when += rng.randrange(60, 7200)
        changed = sorted(rng.sample(sorted(files), min(len(files), rng.randrange(1, 4))))
        for path in changed:
            files[path] = edit_lines(rng, files[path])
        out = [(path, "\n".join(files[path]) + "\n") for path in changed]
        if binary_left > 0:
            size = binary_left if i == args.commits - 1 else min(binary_left, args.binary_bytes // args.commits + 1)
            out.append((f"assets/r{args.round:02d}_{i:03d}.bin", rng.randbytes(size)))
            binary_left -= size
        s.commit(ref, when, f"round {args.round} change {i}\n", out,
                 parent=f"{base}^0" if i == 0 else None)
    s.w("checkpoint\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("create")
    c.add_argument("--seed", type=int, required=True)
    c.add_argument("--profile", choices=sorted(PROFILES), required=True)
    a = sub.add_parser("append")
    a.add_argument("--seed", type=int, required=True)
    a.add_argument("--round", type=int, required=True)
    a.add_argument("--git-dir", required=True)
    a.add_argument("--commits", type=int, required=True)
    a.add_argument("--binary-bytes", type=int, default=0)
    a.add_argument("--ref", default="refs/heads/main")
    args = ap.parse_args()
    create(args) if args.cmd == "create" else append(args)


if __name__ == "__main__":
    main()
