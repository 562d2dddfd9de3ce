#!/usr/bin/env bash
# repovault backup and restore throughput to a local disk and to S3-compatible servers on
# loopback (s3s-fs, which keeps objects as files, and moto, in memory). The same repositories
# are backed up into a new store on each: once from nothing (git fetch, bundles, store writes)
# and once with a warm cache (only the store writes), then every repository is restored from
# each store. Prints Markdown tables; docs/BENCHMARKS.md ("Throughput") explains them.
#
# Usage: bash bench/throughput.sh
# Environment (all optional):
#   BENCH_DIR        parent of the run's temp dir (default /tmp/repovault-bench)
#   BENCH_TARGETS    which stores, any of "local s3s-fs moto" (default all three)
#   BENCH_REPS       repetitions of each measurement, medians reported (default 3)
#   BENCH_KEEP=1     keep repositories and stores (default: only results/ is kept)
#   REPOVAULT_BIN    the binary to measure (default target/release/repovault, built if missing)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
rv=${REPOVAULT_BIN:-$root/target/release/repovault}
base=${BENCH_DIR:-/tmp/repovault-bench}
targets=${BENCH_TARGETS:-local s3s-fs moto}
reps=${BENCH_REPS:-3}
for tool in git python3; do
  command -v "$tool" >/dev/null || { echo "throughput.sh: $tool is required" >&2; exit 2; }
done
s3s_bin=$(command -v s3s-fs || echo "${CARGO_HOME:-$HOME/.cargo}/bin/s3s-fs")
case " $targets " in *" s3s-fs "*) [ -x "$s3s_bin" ] || { echo "throughput.sh: s3s-fs is required (scripts/test-deps.sh)" >&2; exit 2; } ;; esac
case " $targets " in *" moto "*) python3 -c 'import moto.server' 2>/dev/null || { echo "throughput.sh: moto is required (scripts/test-deps.sh)" >&2; exit 2; } ;; esac
if [ ! -x "$rv" ]; then
  (cd "$root" && cargo build --release -p repovault --locked)
fi

mkdir -p "$base"
work=$(mktemp -d "$base/throughput.XXXXXX")
res="$work/results"
mkdir -p "$res" "$work/srv" "$work/home" "$work/secrets"
log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
server_pids=()
cleanup() {
  local status=$? pid
  # Only the servers this script started, by PID.
  for pid in "${server_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  if [ "${BENCH_KEEP:-0}" != 1 ]; then
    rm -rf "$work/srv" "$work/stores" "$work/caches" "$work/restores" "$work/s3data" "$work/secrets"
  fi
  if [ "$status" -ne 0 ]; then log "failed (exit $status); logs and results in $work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export HOME_ORIG=$HOME HOME="$work/home" GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL="$work/home/gitconfig"
: > "$GIT_CONFIG_GLOBAL"
export LC_ALL=C
bytes() { du -sb "$1" 2>/dev/null | cut -f1 || echo 0; }
measure() { local out=$1; shift; python3 "$here/measure.py" "$out" "$@"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() { # PORT PID
  for _ in $(seq 1 300); do
    python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' "$1" 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

{
  echo "nproc=$(nproc)"
  echo "mem_kib=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)"
  echo "cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
  echo "kernel=$(uname -r)"
  echo "git=$(git --version | awk '{print $3}')"
  echo "repovault=$("$rv" --version | awk '{print $2}')"
  echo "fs=$(df -T "$work" | awk 'NR==2 {print $2}')"
  [ -x "$s3s_bin" ] && echo "s3s_fs=$("$s3s_bin" --version 2>/dev/null | awk '{print $2}')"
  echo "moto=$(HOME=$HOME_ORIG python3 -m pip show moto 2>/dev/null | awk '/^Version/ {print $2}')"
  echo "targets=$targets"
  echo "reps=$reps"
} > "$res/machine.txt"

# Fixtures: 4 medium repositories and the big one (profiles in genrepo.py), as local paths.
specs=()
for i in $(seq 1 4); do specs+=("medium-$i medium $((100 + i))"); done
specs+=("big big 201")
log "generating ${#specs[@]} repositories"
printf '%s\n' "${specs[@]}" | awk -v d="$work/srv" '{print d "/" $1 ".git", $2, $3}' |
  xargs -P "$(nproc)" -L 1 bash "$here/mkrepo.sh"
for s in "${specs[@]}"; do
  set -- $s
  printf '%s %s %s\n' "$1" "$(git --git-dir="$work/srv/$1.git" rev-list --all --count)" "$(bytes "$work/srv/$1.git/objects")"
done > "$res/fixtures.txt"

printf 'pw-%s\n' "$(date +%s%N)" > "$work/secrets/password"
chmod 600 "$work/secrets/password"
export REPOVAULT_PASSWORD_FILE="$work/secrets/password"
urls=()
for s in "${specs[@]}"; do set -- $s; urls+=(--url "$work/srv/$1.git"); done

export AWS_ACCESS_KEY_ID=benchaccesskey AWS_SECRET_ACCESS_KEY=benchsecretkey0123456789 AWS_REGION=us-east-1
store_url() { # TARGET NAME
  case $1 in
    local) echo "$work/stores/$2" ;;
    s3s-fs) echo "s3:http://127.0.0.1:$s3s_port/bench/$2" ;;
    moto) echo "s3:http://127.0.0.1:$moto_port/bench/$2" ;;
  esac
}
for t in $targets; do
  case $t in
    s3s-fs)
      mkdir -p "$work/s3data/bench"
      s3s_port=$(free_port)
      "$s3s_bin" --host 127.0.0.1 --port "$s3s_port" --access-key "$AWS_ACCESS_KEY_ID" \
        --secret-key "$AWS_SECRET_ACCESS_KEY" "$work/s3data" > "$work/s3s.log" 2>&1 &
      server_pids+=($!)
      wait_port "$s3s_port" "$!" || { log "s3s-fs did not start"; cat "$work/s3s.log" >&2; exit 1; }
      ;;
    moto)
      moto_port=$(free_port)
      HOME=$HOME_ORIG python3 -m moto.server -H 127.0.0.1 -p "$moto_port" > "$work/moto.log" 2>&1 &
      server_pids+=($!)
      wait_port "$moto_port" "$!" || { log "moto did not start"; cat "$work/moto.log" >&2; exit 1; }
      python3 -c 'import http.client,sys; c=http.client.HTTPConnection("127.0.0.1", int(sys.argv[1])); c.request("PUT", "/bench"); r=c.getresponse(); sys.exit(r.status != 200)' "$moto_port"
      ;;
    local) ;;
    *) echo "throughput.sh: unknown target $t" >&2; exit 2 ;;
  esac
done

mkdir -p "$work/stores" "$work/caches" "$work/restores"
for rep in $(seq 1 "$reps"); do
for t in $targets; do
  rd="$res/$t/rep-$rep"
  mkdir -p "$rd"
  url=$(store_url "$t" "store-$rep")
  log "$t, repetition $rep: full backup (empty store, empty cache)"
  "$rv" init --store "$url" > /dev/null
  sync
  measure "$rd/full.json" -- "$rv" backup --store "$url" --cache-dir "$work/caches/$t-$rep-full" "${urls[@]}" --json \
    > "$rd/full-report.json" 2> "$rd/full.stderr"

  # The same chains into another new store, from a warm cache: the mirrors and bundles are
  # there, only the store writes remain. The cache is per store id, so it is copied under the
  # new store's id with its snapshot markers removed (the staging trees are then taken as is).
  log "$t, repetition $rep: store-only backup (empty store, warm cache)"
  url2=$(store_url "$t" "warm-$rep")
  id=$("$rv" init --store "$url2" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  mkdir -p "$work/caches/$t-$rep-warm"
  cp -a "$work/caches/$t-$rep-full/"* "$work/caches/$t-$rep-warm/$id"
  find "$work/caches/$t-$rep-warm/$id" -name snapshot-id -delete
  sync
  measure "$rd/warm.json" -- "$rv" backup --store "$url2" --cache-dir "$work/caches/$t-$rep-warm" "${urls[@]}" --json \
    > "$rd/warm-report.json" 2> "$rd/warm.stderr"
  rm -rf "$work/caches/$t-$rep-full" "$work/caches/$t-$rep-warm"

  log "$t, repetition $rep: restore every repository"
  : > "$rd/restores.txt"
  for s in "${specs[@]}"; do
    set -- $s
    to="$work/restores/$t/$1"
    sync
    measure "$rd/restore-$1.json" -- "$rv" restore "srv/$1" --store "$url" --to "$to" --json \
      > "$rd/restore-$1-report.json" 2>> "$rd/restore.stderr"
    echo "$1 $(bytes "$to/objects")" >> "$rd/restores.txt"
    rm -rf "$to"
  done
done
done

log "done; results in $res"
python3 "$here/throughput_report.py" "$res" | tee "$res/results.md"
