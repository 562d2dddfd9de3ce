#!/usr/bin/env bash
# repovault's store over time: 30 simulated days of a changing set of git repositories. Every day
# repovault backs them up into one store; for comparison the day's state is cloned afresh
# (`git clone --mirror`) and backed up by restic into a restic repository, and the same fresh
# mirrors after `git gc` are the size reference. Prints Markdown tables; what each number means is
# in docs/BENCHMARKS.md ("Storage over 30 days").
#
# Usage: bash bench/chain.sh
# Environment (all optional):
#   BENCH_DIR        parent of the run's temp dir (default /tmp/repovault-bench)
#   BENCH_DAYS       simulated days, >= 14 (default 30)
#   BENCH_INCREMENTS backup.chain_max_increments_percent for the run (default: repovault's default)
#   BENCH_KEEP=1     keep repositories and stores (default: only results/ is kept)
#   REPOVAULT_BIN    the binary to measure (default target/release/repovault, built if missing)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
rv=${REPOVAULT_BIN:-$root/target/release/repovault}
days=${BENCH_DAYS:-30}
base=${BENCH_DIR:-/tmp/repovault-bench}
[ "$days" -ge 14 ] || { echo "chain.sh: BENCH_DAYS must be at least 14" >&2; exit 2; }
for tool in git restic python3; do
  command -v "$tool" >/dev/null || { echo "chain.sh: $tool is required" >&2; exit 2; }
done
if [ ! -x "$rv" ]; then
  (cd "$root" && cargo build --release -p repovault --locked)
fi

mkdir -p "$base"
work=$(mktemp -d "$base/chain.XXXXXX")
res="$work/results"
mkdir -p "$res" "$work/srv" "$work/home" "$work/secrets"
log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
cleanup() {
  local status=$?
  if [ "${BENCH_KEEP:-0}" != 1 ]; then
    rm -rf "$work/srv" "$work/mirrors" "$work/rv-store" "$work/rv-cache" "$work/restic-store" \
      "$work/restic-cache" "$work/verify-tmp" "$work/secrets"
  fi
  if [ "$status" -ne 0 ]; then log "failed (exit $status); logs and results in $work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export HOME="$work/home" GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL="$work/home/gitconfig"
: > "$GIT_CONFIG_GLOBAL"
export LC_ALL=C
bytes() { du -sb "$1" 2>/dev/null | cut -f1 || echo 0; }
measure() { local out=$1; shift; python3 "$here/measure.py" "$out" "$@"; }

{
  echo "nproc=$(nproc)"
  echo "mem_kib=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)"
  echo "cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
  echo "kernel=$(uname -r)"
  echo "git=$(git --version | awk '{print $3}')"
  echo "restic=$(restic version | awk '{print $2}')"
  echo "repovault=$("$rv" --version | awk '{print $2}')"
  echo "fs=$(df -T "$work" | awk 'NR==2 {print $2}')"
  echo "days=$days"
  echo "increments_percent=${BENCH_INCREMENTS:-default}"
} > "$res/machine.txt"

# ---------------------------------------------------------------------------------------------
# Fixtures: 10 small, 4 medium, 1 big repository (profiles in genrepo.py), served as local paths.
specs=()
for i in $(seq 1 10); do specs+=("$(printf 'small-%02d' "$i") small $i"); done
for i in $(seq 1 4); do specs+=("medium-$i medium $((100 + i))"); done
specs+=("big big 201")
log "generating ${#specs[@]} repositories"
printf '%s\n' "${specs[@]}" | awk -v d="$work/srv" '{print d "/" $1 ".git", $2, $3}' |
  xargs -P "$(nproc)" -L 1 bash "$here/mkrepo.sh"
for s in "${specs[@]}"; do
  set -- $s
  d="$work/srv/$1.git"
  printf '%s %s %s %s\n' "$1" "$2" "$(git --git-dir="$d" rev-list --all --count)" "$(bytes "$d/objects")"
done > "$res/fixtures.txt"   # name profile commits objects-bytes

printf 'pw-%s\n' "$(date +%s%N)" > "$work/secrets/password"
chmod 600 "$work/secrets/password"
export REPOVAULT_PASSWORD_FILE="$work/secrets/password" RESTIC_PASSWORD_FILE="$work/secrets/password"
export RESTIC_REPOSITORY="$work/restic-store" RESTIC_CACHE_DIR="$work/restic-cache"
cfg="$work/repovault.toml"
{
  echo '[store]'
  echo "url = \"$work/rv-store\""
  echo "cache_dir = \"$work/rv-cache\""
  echo '[backup]'
  echo 'concurrency = 4'
  if [ -n "${BENCH_INCREMENTS:-}" ]; then echo "chain_max_increments_percent = $BENCH_INCREMENTS"; fi
  echo '[[source]]'
  echo 'name = "bench"'
  echo 'kind = "git"'
  echo 'urls = ['
  for s in "${specs[@]}"; do set -- $s; echo "  \"$work/srv/$1.git\","; done
  echo ']'
} > "$cfg"
"$rv" init --config "$cfg" > "$res/rv-init.txt"
restic init --quiet > /dev/null

# ---------------------------------------------------------------------------------------------
# What changes upstream on day D (D >= 2), the same on every invocation:
# - every day about 1% new commits: each medium repository 1% of its commit count, the big one a
#   commit with new incompressible bytes of 1% of its pack size, every third small one 2 commits;
# - a topic branch on one medium repository from day 2 of each week, squash-merged into main and
#   deleted on day 5 (its commits become unreachable);
# - day 12 an accidental 3 MB file pushed to small-01, force-pushed away on day 13;
# - day 20 the last 5 commits of medium-1's main rewritten (force-push).
append() { # DIR SEED ROUND COMMITS [BINARY_BYTES] [REF]
  python3 "$here/genrepo.py" append --git-dir "$1" --seed "$2" --round "$3" --commits "$4" \
    --binary-bytes "${5:-0}" --ref "${6:-refs/heads/main}" | git --git-dir="$1" fast-import --quiet
}
change_day() { # DAY
  local d=$1 name profile seed dir n topic_repo
  topic_repo="medium-$(( (d / 7) % 4 + 1 ))"
  for s in "${specs[@]}"; do
    set -- $s
    name=$1 profile=$2 seed=$3 dir="$work/srv/$1.git"
    case $profile in
      small) [ $(( (seed + d) % 3 )) -eq 0 ] && append "$dir" "$seed" "$d" 2 ;;
      medium)
        n=$(( ($(git --git-dir="$dir" rev-list --count refs/heads/main) + 50) / 100 ))
        append "$dir" "$seed" "$d" "$n" ;;
      big) append "$dir" "$seed" "$d" 1 $(( $(bytes "$dir/objects/pack") / 100 )) ;;
    esac
    if [ "$name" = "$topic_repo" ]; then
      case $(( d % 7 )) in
        2) append "$dir" "$seed" $(( 1000 + d )) 6 0 refs/heads/topic ;;
        5) if git --git-dir="$dir" rev-parse -q --verify refs/heads/topic >/dev/null; then
             append "$dir" "$seed" $(( 2000 + d )) 1
             git --git-dir="$dir" update-ref -d refs/heads/topic
           fi ;;
      esac
    fi
  done
  if [ "$d" -eq 12 ]; then append "$work/srv/small-01.git" 1 1012 1 3000000; fi
  if [ "$d" -eq 13 ]; then
    git --git-dir="$work/srv/small-01.git" update-ref refs/heads/main refs/heads/main~1
    append "$work/srv/small-01.git" 1 1013 1
  fi
  if [ "$d" -eq 20 ]; then
    git --git-dir="$work/srv/medium-1.git" update-ref refs/heads/main refs/heads/main~5
    append "$work/srv/medium-1.git" 101 1020 5
  fi
}

# ---------------------------------------------------------------------------------------------
for d in $(seq 1 "$days"); do
  rd="$res/day-$(printf '%02d' "$d")"
  mkdir -p "$rd"
  if [ "$d" -gt 1 ]; then change_day "$d"; fi
  for s in "${specs[@]}"; do
    set -- $s
    echo "$1 $(git --git-dir="$work/srv/$1.git" rev-list --all --count)"
  done > "$rd/commits.txt"
  log "day $d: repovault backup"
  sync
  measure "$rd/rv.json" -- "$rv" backup --config "$cfg" --json > "$rd/rv-report.json" 2> "$rd/rv.stderr"
  echo "rv_store=$(bytes "$work/rv-store")" >> "$rd/sizes.txt"
  echo "rv_cache=$(bytes "$work/rv-cache")" >> "$rd/sizes.txt"
  log "day $d: fresh mirrors, restic, git gc"
  rm -rf "$work/mirrors"
  mkdir -p "$work/mirrors"
  for s in "${specs[@]}"; do
    set -- $s
    # --no-local: a real pack as from a server, not hard links to the fixture's files.
    git clone --quiet --mirror --no-local "$work/srv/$1.git" "$work/mirrors/$1.git"
  done
  echo "mirrors=$(bytes "$work/mirrors")" >> "$rd/sizes.txt"
  sync
  measure "$rd/restic.json" -- restic backup --quiet --host bench "$work/mirrors" > /dev/null
  echo "restic_store=$(bytes "$work/restic-store")" >> "$rd/sizes.txt"
  for s in "${specs[@]}"; do
    set -- $s
    git --git-dir="$work/mirrors/$1.git" gc --quiet --prune=now
  done
  echo "gc_mirrors=$(bytes "$work/mirrors")" >> "$rd/sizes.txt"
done

# Every repository's latest snapshot restores and passes fsck, and so does the first day's
# snapshot of each (its chain may since have been replaced by a new base).
log "verifying every repository's latest and first snapshot"
measure "$res/verify.json" -- "$rv" verify --config "$cfg" --all --tmp-dir "$work/verify-tmp" --json \
  > "$res/verify-report.json" 2> "$res/verify.stderr"
"$rv" snapshots --config "$cfg" --json > "$res/snapshots.json"
python3 - "$res/snapshots.json" > "$work/first-ids.txt" <<'PY'
import json, sys
seen = {}
for s in json.load(open(sys.argv[1])):
    seen.setdefault((s["host"], s["repo"]), s["id"])
print("\n".join(seen.values()))
PY
: > "$res/verify-first.txt"
while read -r id; do
  "$rv" verify --config "$cfg" --snapshot "$id" --tmp-dir "$work/verify-tmp" --json \
    > "$work/verify-one.json" 2>> "$res/verify.stderr" || true
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["repos"][0]["repo"], r["ok"])' \
    "$work/verify-one.json" >> "$res/verify-first.txt"
done < "$work/first-ids.txt"

log "done; results in $res"
python3 "$here/chain_report.py" "$res" | tee "$res/results.md"
