#!/usr/bin/env bash
# repovault benchmarks, all on 127.0.0.1: 50 deterministic git repositories served by nginx +
# fcgiwrap + git http-backend, backed up by repovault and, for comparison, cloned with
# `git clone --mirror` (the baseline) and stored with restic. Prints a Markdown table; what each
# number means is in docs/BENCHMARKS.md.
#
# Usage: bash bench/run.sh
# Environment (all optional):
#   BENCH_DIR          parent of the run's temp dir (default /tmp/repovault-bench)
#   BENCH_RUNS         backup runs for the store-size comparison, >= 3 (default 10)
#   BENCH_CONCURRENCY  repovault --concurrency and xargs -P of the baseline (default 4)
#   BENCH_KEEP=1       keep repositories, stores and caches (default: only results/ is kept)
#   REPOVAULT_BIN      the binary to measure (default target/release/repovault, built if missing)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
rv=${REPOVAULT_BIN:-$root/target/release/repovault}
runs=${BENCH_RUNS:-10}
conc=${BENCH_CONCURRENCY:-4}
base=${BENCH_DIR:-/tmp/repovault-bench}
[ "$runs" -ge 3 ] || { echo "run.sh: BENCH_RUNS must be at least 3" >&2; exit 2; }

for tool in git restic python3 htpasswd openssl; do
  command -v "$tool" >/dev/null || { echo "run.sh: $tool is required" >&2; exit 2; }
done
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
[ -x "$nginx_bin" ] || { echo "run.sh: nginx is required" >&2; exit 2; }
[ -x /usr/sbin/fcgiwrap ] || command -v fcgiwrap >/dev/null || { echo "run.sh: fcgiwrap is required" >&2; exit 2; }
if [ ! -x "$rv" ]; then
  (cd "$root" && cargo build --release -p repovault --locked)
fi

mkdir -p "$base"
work=$(mktemp -d "$base/run.XXXXXX")
res="$work/results"
mkdir -p "$res" "$work/srv/bench" "$work/server" "$work/home" "$work/secrets" "$work/tips"

log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }

nginx_pid='' pool_pid=''
cleanup() {
  local status=$?
  # Only the processes this script started, by PID: nginx's master stops its workers on QUIT,
  # the pool stops its fcgiwrap children on TERM.
  if [ -n "$nginx_pid" ]; then kill -QUIT "$nginx_pid" 2>/dev/null || true; wait "$nginx_pid" 2>/dev/null || true; fi
  if [ -n "$pool_pid" ]; then kill -TERM "$pool_pid" 2>/dev/null || true; wait "$pool_pid" 2>/dev/null || true; fi
  if [ "${BENCH_KEEP:-0}" != 1 ]; then
    rm -rf "$work/srv" "$work/mirrors" "$work/rv-store" "$work/rv-cache" "$work/restic-store" \
      "$work/restic-cache" "$work"/rep?-store "$work"/rep?-cache "$work"/prof-store "$work"/prof-cache \
      "$work/prof-restic" "$work/secrets"
  fi
  if [ "$status" -ne 0 ]; then log "failed (exit $status); logs and results in $work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A clean, reproducible git environment for every client (repovault's git, the baseline, the
# fixture tools): no user or system config.
export HOME="$work/home" GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL="$work/home/gitconfig"
: > "$GIT_CONFIG_GLOBAL"
export LC_ALL=C

bytes() { du -sb "$1" 2>/dev/null | cut -f1 || echo 0; }
srv_roots=()   # --server-root PID for nginx and the fcgiwrap pool, once they run
measure() { local out=$1; shift; python3 "$here/measure.py" "$out" "${srv_roots[@]}" "$@"; }

# ---------------------------------------------------------------------------------------------
# Machine
{
  echo "nproc=$(nproc)"
  echo "mem_kib=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)"
  echo "cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
  echo "kernel=$(uname -r)"
  echo "git=$(git --version | awk '{print $3}')"
  echo "restic=$(restic version | awk '{print $2}')"
  echo "nginx=$("$nginx_bin" -v 2>&1 | sed 's/.*nginx\///')"
  echo "repovault=$("$rv" --version | awk '{print $2}')"
  echo "fs=$(df -T "$work" | awk 'NR==2 {print $2}')"
  echo "concurrency=$conc"
  echo "runs=$runs"
} > "$res/machine.txt"

# ---------------------------------------------------------------------------------------------
# Fixtures: 40 small, 9 medium, 1 big repository (see genrepo.py for the profiles)
names=()
specs=()
for i in $(seq 1 40); do n=$(printf 'small-%02d' "$i"); names+=("$n"); specs+=("$n small $i"); done
for i in $(seq 1 9); do n="medium-$i"; names+=("$n"); specs+=("$n medium $((100 + i))"); done
names+=("big"); specs+=("big big 201")
printf '%s\n' "${names[@]}" > "$work/names.txt"

log "generating 50 repositories in $work/srv"
t0=$(date +%s%N)
printf '%s\n' "${specs[@]}" | awk -v d="$work/srv/bench" '{print d "/" $1 ".git", $2, $3}' |
  xargs -P "$(nproc)" -L 1 bash "$here/mkrepo.sh"
echo "fixture_gen_ms=$(( ($(date +%s%N) - t0) / 1000000 ))" >> "$res/machine.txt"
for s in "${specs[@]}"; do
  set -- $s
  d="$work/srv/bench/$1.git"
  printf '%s %s %s %s %s\n' "$1" "$2" "$(git --git-dir="$d" rev-list --all --count)" \
    "$(git --git-dir="$d" for-each-ref | wc -l)" "$(bytes "$d/objects")"
done > "$res/fixtures.txt"   # name profile commits refs objects-bytes (packs, indexes, bitmaps)

# ---------------------------------------------------------------------------------------------
# Server: nginx (basic auth) -> fcgiwrap pool -> git http-backend
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
srvd="$work/server"
user=bench
token=$(openssl rand -hex 16)
printf '%s\n' "$token" > "$work/secrets/token"
openssl rand -hex 24 > "$work/secrets/password"
chmod 600 "$work/secrets/"*
htpasswd -nbm "$user" "$token" > "$srvd/htpasswd" 2>/dev/null
printf '[gc]\n\tauto = 0\n[safe]\n\tdirectory = *\n[uploadpack]\n\tallowFilter = true\n' > "$srvd/gitconfig"
backend="$(git --exec-path)/git-http-backend"
user_line=''
[ "$(id -u)" = 0 ] && user_line='user root;'

python3 "$here/fcgi_pool.py" "$srvd/fcgi.sock" 8 "$srvd" -- "PATH=$PATH" "HOME=$srvd" \
  GIT_CONFIG_NOSYSTEM=1 "GIT_CONFIG_GLOBAL=$srvd/gitconfig" > "$srvd/pool.out" 2> "$srvd/pool.err" &
pool_pid=$!
for _ in $(seq 1 100); do grep -q ready "$srvd/pool.out" 2>/dev/null && break; sleep 0.1; done
grep -q ready "$srvd/pool.out" || { log "fcgiwrap pool did not start"; cat "$srvd/pool.err" >&2; exit 1; }

port=$(free_port)
cat > "$srvd/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes 2;
$user_line
pid "$srvd/nginx.pid";
error_log "$srvd/error.log" notice;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path "$srvd/client_body_temp";
    proxy_temp_path "$srvd/proxy_temp";
    fastcgi_temp_path "$srvd/fastcgi_temp";
    uwsgi_temp_path "$srvd/uwsgi_temp";
    scgi_temp_path "$srvd/scgi_temp";
    server {
        listen 127.0.0.1:$port;
        client_max_body_size 0;
        auth_basic "bench";
        auth_basic_user_file "$srvd/htpasswd";
        location / {
            fastcgi_pass "unix:$srvd/fcgi.sock";
            fastcgi_buffering off;
            fastcgi_read_timeout 600s;
            fastcgi_param SCRIPT_FILENAME "$backend";
            fastcgi_param GIT_PROJECT_ROOT "$work/srv";
            fastcgi_param GIT_HTTP_EXPORT_ALL "";
            fastcgi_param GIT_PROTOCOL \$http_git_protocol;
            fastcgi_param GIT_CONFIG_NOSYSTEM 1;
            fastcgi_param GIT_CONFIG_GLOBAL "$srvd/gitconfig";
            fastcgi_param HOME "$srvd";
            fastcgi_param REMOTE_USER \$remote_user;
            fastcgi_param PATH_INFO \$uri;
            fastcgi_param QUERY_STRING \$query_string;
            fastcgi_param REQUEST_METHOD \$request_method;
            fastcgi_param CONTENT_TYPE \$content_type;
            fastcgi_param CONTENT_LENGTH \$content_length;
            fastcgi_param SERVER_PROTOCOL \$server_protocol;
            fastcgi_param GATEWAY_INTERFACE CGI/1.1;
        }
    }
}
EOF
"$nginx_bin" -p "$srvd/" -e "$srvd/error.log" -c "$srvd/nginx.conf" &
nginx_pid=$!
url="http://127.0.0.1:$port"
auth_header="Authorization: Basic $(printf '%s:%s' "$user" "$token" | base64 -w0)"
# The baseline's credentials: the same basic auth, as an http.extraHeader from the environment.
git_auth=(env GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=http.extraHeader "GIT_CONFIG_VALUE_0=$auth_header")
up=0
for _ in $(seq 1 100); do
  if "${git_auth[@]}" git ls-remote "$url/bench/small-01.git" >/dev/null 2>&1; then up=1; break; fi
  kill -0 "$nginx_pid" 2>/dev/null || break
  sleep 0.1
done
[ "$up" = 1 ] || { log "git HTTP server did not come up"; cat "$srvd/error.log" >&2; exit 1; }
srv_roots=(--server-root "$nginx_pid" --server-root "$pool_pid")
log "serving on $url"

# ---------------------------------------------------------------------------------------------
# repovault and restic setup
export REPOVAULT_PASSWORD_FILE="$work/secrets/password"
cfg="$work/repovault.toml"
{
  echo '[store]'
  echo "url = \"$work/rv-store\""
  echo "password_file = \"$work/secrets/password\""
  echo "cache_dir = \"$work/rv-cache\""
  echo '[backup]'
  echo "concurrency = $conc"
  echo '[[source]]'
  echo 'name = "bench"'
  echo 'kind = "git"'
  echo 'urls = ['
  for n in "${names[@]}"; do echo "  \"$url/bench/$n.git\","; done
  echo ']'
  echo "username = \"$user\""
  echo "token_file = \"$work/secrets/token\""
} > "$cfg"
"$rv" init --store "$work/rv-store" > "$res/rv-init.txt"

export RESTIC_REPOSITORY="$work/restic-store" RESTIC_PASSWORD_FILE="$work/secrets/password"
export RESTIC_CACHE_DIR="$work/restic-cache"
restic init --quiet > "$res/restic-init.txt"

awk -v u="$url/bench" '{print u "/" $1 ".git", $1 ".git"}' "$work/names.txt" > "$work/clone-args.txt"

# repovault backup, measured: rv_backup OUT_PREFIX [CONFIG]
rv_backup() {
  local out=$1 config=${2:-$cfg}
  sync
  measure "$out.json" -- "$rv" backup --config "$config" --concurrency "$conc" --json \
    > "$out-report.json" 2> "$out.stderr"
}
record_rv_sizes() { # RESULT_DIR
  echo "rv_store=$(bytes "$work/rv-store")" >> "$1/sizes.txt"
  echo "rv_cache=$(bytes "$work/rv-cache")" >> "$1/sizes.txt"
}

# The baseline: a parallel `git clone --mirror` of all 50 into a fresh directory.
clone_all() { # RESULT_JSON
  rm -rf "$work/mirrors"
  mkdir -p "$work/mirrors/bench"
  sync
  (cd "$work/mirrors/bench" && "${git_auth[@]}" python3 "$here/measure.py" "$1" "${srv_roots[@]}" -- \
     xargs -P "$conc" -L 1 -a "$work/clone-args.txt" git clone --mirror --quiet)
}

restic_backup() { # RESULT_DIR
  sync
  measure "$1/restic.json" -- restic backup --quiet --host bench "$work/mirrors" > "$1/restic.stdout"
  echo "mirrors=$(bytes "$work/mirrors")" >> "$1/sizes.txt"
  echo "restic_store=$(bytes "$work/restic-store")" >> "$1/sizes.txt"
  echo "restic_cache=$(bytes "$work/restic-cache")" >> "$1/sizes.txt"
}

# A config like $cfg with another store and cache, for the repetitions and the profiling run.
scratch_config() { # NAME
  sed -e "s|$work/rv-store|$work/$1-store|" -e "s|$work/rv-cache|$work/$1-cache|" "$cfg" > "$work/$1.toml"
  "$rv" init --store "$work/$1-store" > /dev/null
}

# ---------------------------------------------------------------------------------------------
# New commits for run R: ~1% of all commits, with new content. The big repository gets 6 commits
# carrying 1% of the size of its objects/pack directory in new incompressible bytes, each medium one 1% of its commit
# count in line edits (one of them also a 100 kB binary), and a rotating quarter of the small
# ones 2 commits each. The tips before are kept to measure git's own pack of the new objects.
add_commits() { # RUN
  local r=$1 name profile seed commits bin d s
  for s in "${specs[@]}"; do
    set -- $s
    name=$1 profile=$2 seed=$3
    d="$work/srv/bench/$name.git"
    git --git-dir="$d" for-each-ref --format='%(objectname)' > "$work/tips/$name.old"
    commits=0 bin=0
    case $profile in
      big) commits=6; bin=$(( $(bytes "$d/objects/pack") / 100 )) ;;
      medium)
        commits=$(( ($(git --git-dir="$d" rev-list --count refs/heads/main) + 50) / 100 ))
        [ $(( (seed + r) % 9 )) -eq 0 ] && bin=100000 ;;
      small) [ $(( (seed + r) % 4 )) -eq 0 ] && commits=2 ;;
    esac
    [ "$commits" -gt 0 ] || continue
    python3 "$here/genrepo.py" append --seed "$seed" --round "$r" --git-dir "$d" \
      --commits "$commits" --binary-bytes "$bin" | git --git-dir="$d" fast-import --quiet
    echo "$name $commits"
  done > "$res/run-$r/commits.txt"
}

# git's own pack of exactly the new objects, per changed repository: a plain (self-contained)
# pack and a thin one (deltas against objects the receiver has, what `git fetch` transfers).
# Bitmaps are off: with the server's bitmap index pack-objects skips the edge walk and cannot
# make thin deltas.
git_pack_of_new() { # RUN
  local r=$1 name d plain thin objs
  while read -r name _; do
    d="$work/srv/bench/$name.git"
    revs() { git --git-dir="$d" for-each-ref --format='%(objectname)'; sed 's/^/^/' "$work/tips/$name.old"; }
    plain=$(revs | git -c pack.useBitmaps=false --git-dir="$d" pack-objects --stdout --revs -q | wc -c)
    thin=$(revs | git -c pack.useBitmaps=false --git-dir="$d" pack-objects --stdout --revs --thin -q | wc -c)
    objs=$(revs | git --git-dir="$d" rev-list --objects --stdin | wc -l)
    echo "$name $objs $plain $thin"
  done < "$res/run-$r/commits.txt" > "$res/run-$r/gitpack.txt"   # name objects plain thin
}

# ---------------------------------------------------------------------------------------------
# Repetitions of (a) and (b) on scratch stores, so the full-backup and no-change numbers are a
# median of 3 (the third is run 1 / run 2 below), then one profiling run with every git call
# timed. The scratch stores and caches are deleted afterwards.
rep=$res/reps
mkdir -p "$rep"
for k in 1 2; do
  log "repetition $k: baseline clone, repovault full backup, repovault no-change"
  clone_all "$rep/clone-$k.json"
  rm -rf "$work/mirrors"
  scratch_config "rep$k"
  rv_backup "$rep/rv-full-$k" "$work/rep$k.toml"
  rv_backup "$rep/rv-nochange-$k" "$work/rep$k.toml"
  rm -rf "$work/rep$k-store" "$work/rep$k-cache"
done

log "profiling run: baseline clone, repovault full backup and no-change with every git call timed"
real_git=$(command -v git)
shim_env=(env "PATH=$here/gitshim:$PATH" "BENCH_REAL_GIT=$real_git")
scratch_config prof
rm -rf "$work/mirrors"
mkdir -p "$work/mirrors/bench"
: > "$rep/git-clone.log"
sync
t_start=$(date +%s%N)
(cd "$work/mirrors/bench" && "${git_auth[@]}" "${shim_env[@]}" "BENCH_GIT_LOG=$rep/git-clone.log" \
   xargs -P "$conc" -L 1 -a "$work/clone-args.txt" git clone --mirror --quiet)
t_end=$(date +%s%N)
python3 "$here/gitprofile.py" "$rep/git-clone.log" "$t_start" "$t_end" "$rep/profile-clone.json"
rm -rf "$work/mirrors"
for phase in full nochange; do
  : > "$rep/git-$phase.log"
  sync
  t_start=$(date +%s%N)
  "${shim_env[@]}" "BENCH_GIT_LOG=$rep/git-$phase.log" \
    "$rv" backup --config "$work/prof.toml" --concurrency "$conc" --json \
    > "$rep/prof-$phase-report.json" 2> "$rep/prof-$phase.stderr"
  t_end=$(date +%s%N)
  python3 "$here/gitprofile.py" "$rep/git-$phase.log" "$t_start" "$t_end" "$rep/profile-$phase.json"
done
rm -f "$rep"/git-*.log.times.*
# The same no-change run once more, one repository at a time: wall time against CPU time shows
# how much of it is spent waiting rather than working.
measure "$rep/rv-nochange-serial.json" -- "$rv" backup --config "$work/prof.toml" --concurrency 1 --json \
  > "$rep/rv-nochange-serial-report.json" 2> /dev/null
# What the store step costs by itself: restic backing up the same bundle chains (cache snap/
# directories) into a fresh restic repository, and how long reading them takes.
mkdir -p "$work/prof-restic"
sync
RESTIC_REPOSITORY="$work/prof-restic" restic init --quiet >/dev/null
(cd "$work/prof-cache" && find . -type d -name snap > "$work/prof-snap-dirs.txt" &&
   measure "$rep/restic-of-bundles.json" -- env RESTIC_REPOSITORY="$work/prof-restic" \
     restic backup --quiet --host bench --files-from "$work/prof-snap-dirs.txt" > /dev/null)
echo "bundle_bytes=$(find "$work/prof-cache" -path '*/snap/*' -name '*.bundle' -printf '%s\n' | awk '{s+=$1} END {print s}')" \
  > "$rep/prof-sizes.txt"
rm -rf "$work/prof-store" "$work/prof-cache" "$work/prof-restic"

# ---------------------------------------------------------------------------------------------
# The main sequence: $runs backup runs into one repovault store and one restic repository.
for r in $(seq 1 "$runs"); do
  rd="$res/run-$r"
  mkdir -p "$rd"
  case $r in
    1)
      log "run 1: baseline parallel git clone --mirror"
      clone_all "$rd/clone-before.json"
      rm -rf "$work/mirrors"
      log "run 1: repovault full backup"
      rv_backup "$rd/rv"
      ;;
    2)
      log "run 2: repovault, nothing changed"
      rv_backup "$rd/rv"
      log "run 2: reference: parallel git ls-remote"
      sync
      (cd "$work" && "${git_auth[@]}" python3 "$here/measure.py" "$rd/lsremote.json" "${srv_roots[@]}" -- \
         xargs -P "$conc" -L 1 -a "$work/clone-args.txt" sh -c 'git ls-remote "$0" >/dev/null')
      ;;
    *)
      log "run $r: adding commits"
      add_commits "$r"
      git_pack_of_new "$r"
      log "run $r: repovault incremental backup"
      rv_backup "$rd/rv"
      ;;
  esac
  record_rv_sizes "$rd"
  log "run $r: git clone --mirror + restic backup"
  clone_all "$rd/clone.json"
  restic_backup "$rd"
  rm -rf "$work/mirrors"
done

log "done; results in $res"
python3 "$here/report.py" "$res" | tee "$res/results.md"
