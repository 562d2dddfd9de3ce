#!/usr/bin/env bash
# repovault vs python-github-backup on the same simulated GitHub organization, all on 127.0.0.1:
# the forge simulator (crates/repovault-testkit, `forge-sim`) serves `org:N` (N repositories with
# issues and pull requests) over HTTPS with its own CA; both tools back it up twice (a first run
# and a no-change re-run). Wall time comes from this script, API requests from the simulator's
# request log (`/_sim/requests/summary`): all API requests, and those counted against the
# rate-limit budget (a 304 is not counted). Prints a Markdown table; see docs/BENCHMARKS.md.
#
# Usage: bash bench/github.sh
# Environment (all optional):
#   BENCH_REPOS        repositories in the org (default 100)
#   BENCH_ISSUES       issues per repository (default 20)
#   BENCH_PULLS        pull requests per repository (default 5)
#   BENCH_DIR          parent of the run's temp dir (default /tmp/repovault-bench)
#   BENCH_CONCURRENCY  repovault --concurrency (default 4)
#   BENCH_RATE_WINDOW  seconds of the simulator's rate-limit window of 5,000 requests (default 60;
#                      GitHub's is 3600, which would make a client that runs out wait an hour)
#   GHB_VERSION        python-github-backup version installed into a venv (default 0.65.1)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
repos=${BENCH_REPOS:-100}
issues=${BENCH_ISSUES:-20}
pulls=${BENCH_PULLS:-5}
conc=${BENCH_CONCURRENCY:-4}
window=${BENCH_RATE_WINDOW:-60}
base=${BENCH_DIR:-/tmp/repovault-bench}
ghb_version=${GHB_VERSION:-0.65.1}
rv=$root/target/release/repovault
sim_bin=$root/target/release/forge-sim

for tool in git git-lfs python3 curl; do
  command -v "$tool" >/dev/null || { echo "github.sh: $tool is required" >&2; exit 2; }
done
(cd "$root" && cargo build --release --locked -p repovault -p repovault-testkit --bin repovault --bin forge-sim)

mkdir -p "$base"
work=$(mktemp -d "$base/github.XXXXXX")
res="$work/results"
mkdir -p "$res" "$work/home"
log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }

sim_pid=''
cleanup() {
  local status=$?
  # Only the simulator this script started, by PID; it stops its git server on TERM.
  if [ -n "$sim_pid" ]; then kill -TERM "$sim_pid" 2>/dev/null || true; wait "$sim_pid" 2>/dev/null || true; fi
  rm -rf "$work/rv-store" "$work/rv-cache" "$work/ghb" "$work/venv"
  if [ "$status" -ne 0 ]; then log "failed (exit $status); logs in $work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export HOME="$work/home" GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL="$work/home/gitconfig" LC_ALL=C
: > "$GIT_CONFIG_GLOBAL"

log "installing python-github-backup $ghb_version into a venv"
python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q "github-backup==$ghb_version"

log "starting forge-sim with org:$repos:$issues:$pulls"
"$sim_bin" --fixture "org:$repos:$issues:$pulls" --listen 127.0.0.1:0 --rate-window-secs "$window" --json > "$work/sim.json" 2> "$work/sim.log" &
sim_pid=$!
for _ in $(seq 1 600); do
  [ -s "$work/sim.json" ] && break
  kill -0 "$sim_pid" 2>/dev/null || { cat "$work/sim.log" >&2; exit 1; }
  sleep 0.5
done
field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$work/sim.json" "$1"; }
api=$(field api_url)
ca=$(field ca_path)
host=${api#https://}
host=${host%/}
export BENCH_GH_TOKEN
BENCH_GH_TOKEN=$(field token)

admin() { curl -fsS --cacert "$ca" -X "$1" "$api/_sim/$2"; }
mark() { admin POST requests/mark | python3 -c 'import json,sys; v=json.load(sys.stdin); print(v["mark"] if isinstance(v, dict) else v)'; }
summary() { admin GET "requests/summary?since=$1"; }
now() { date +%s.%N; }

# repovault
export REPOVAULT_PASSWORD=bench REPOVAULT_STORE="$work/rv-store" REPOVAULT_CACHE_DIR="$work/rv-cache"
cat > "$work/repovault.toml" <<TOML
[backup]
concurrency = $conc
[[source]]
name = "bench"
kind = "github"
api_url = "$api"
ca_bundle = "$ca"
token_env = "BENCH_GH_TOKEN"
orgs = ["bench"]
TOML
"$rv" init --json > /dev/null
for run in first rerun; do
  m=$(mark); t0=$(now)
  "$rv" backup --config "$work/repovault.toml" --json > "$res/repovault-$run.json" 2> "$work/repovault-$run.log"
  t1=$(now)
  summary "$m" > "$res/repovault-$run-requests.json"
  echo "$t0 $t1" > "$res/repovault-$run-time"
  log "repovault $run: $(python3 -c "print(round($t1-$t0,1))") s"
  sleep "$window"   # the next measurement starts with a fresh budget
done

# python-github-backup: the same org (private repositories and forks included, as repovault
# does), everything --all includes, with its incremental mode.
export SSL_CERT_FILE="$ca" GIT_SSL_CAINFO="$ca" REQUESTS_CA_BUNDLE="$ca"
for run in first rerun; do
  m=$(mark); t0=$(now)
  "$work/venv/bin/github-backup" bench --organization --private --fork -t "$BENCH_GH_TOKEN" -H "$host" --all --incremental \
    -o "$work/ghb" > "$work/ghb-$run.log" 2>&1
  t1=$(now)
  summary "$m" > "$res/ghb-$run-requests.json"
  echo "$t0 $t1" > "$res/ghb-$run-time"
  log "python-github-backup $run: $(python3 -c "print(round($t1-$t0,1))") s"
  [ "$run" = rerun ] || sleep "$window"
done
if grep -q "$BENCH_GH_TOKEN" "$work"/repovault-*.log "$res"/repovault-*.json; then
  echo "github.sh: the token appeared in repovault's output" >&2; exit 1
fi

BENCH_RATE_WINDOW=$window python3 - "$res" "$repos" "$issues" "$pulls" <<'PY'
import json, sys, os
res, repos, issues, pulls = sys.argv[1], *sys.argv[2:]
def t(name):
    a, b = open(os.path.join(res, name + "-time")).read().split()
    return float(b) - float(a)
def s(name):
    return json.load(open(os.path.join(res, name + "-requests.json")))
rows = []
for run in ["first", "rerun"]:
    r, g = s(f"repovault-{run}"), s(f"ghb-{run}")
    tr, tg = t(f"repovault-{run}"), t(f"ghb-{run}")
    rows.append((run, tr, tg, r, g))
print(f"org:{repos}:{issues}:{pulls}, rate-limit window {os.environ.get('BENCH_RATE_WINDOW', '60')} s\n")
print("| run | tool | wall time (s) | API requests | of them 304 | counted against the budget | git requests |")
print("|---|---|---:|---:|---:|---:|---:|")
for run, tr, tg, r, g in rows:
    name = "first run" if run == "first" else "no-change re-run"
    print(f"| {name} | repovault | {tr:.1f} | {r['api']} | {r['not_modified']} | {r['counted']} | {r['git']} |")
    print(f"| {name} | python-github-backup | {tg:.1f} | {g['api']} | {g['not_modified']} | {g['counted']} | {g['git']} |")
first, rerun = rows
print()
print(f"first run: repovault {first[2] / first[1]:.1f}x faster")
rc, gc = rerun[3]["counted"], rerun[4]["counted"]
print(f"re-run: counted requests {rc} vs {gc}" + (f" ({gc / rc:.0f}x fewer)" if rc else " (repovault: none)"))
PY
