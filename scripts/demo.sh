#!/usr/bin/env bash
# The main job on an embedded default: back up this project's own git repository into a new
# local store, list the snapshot, restore it and prove the restored copy with git fsck and a
# ref-by-ref comparison, then check the store (every byte read back) and let repovault verify
# the snapshot itself. Everything lands in ./.demo (or $DEMO_DIR).
# Usage: bash scripts/demo.sh [GIT_URL_OR_PATH]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
source_repo=${1:-$root}

command -v cargo >/dev/null || { echo "demo.sh: Rust (cargo, via rustup) is required" >&2; exit 2; }
bash scripts/test-deps.sh
cargo build --release -p repovault --locked

demo=${DEMO_DIR:-$root/.demo}
rm -rf "$demo"
mkdir -p "$demo"
umask 077
head -c 24 /dev/urandom | base64 > "$demo/password"
export REPOVAULT_PASSWORD_FILE="$demo/password"
export REPOVAULT_STORE="$demo/store"
export REPOVAULT_CACHE_DIR="$demo/cache"
rv="$root/target/release/repovault"

set -x
"$rv" init
"$rv" backup --url "$source_repo"
"$rv" snapshots
name=$("$rv" snapshots --json | sed -n 's/.*"repo": "\(.*\)".*/\1/p' | tail -1)
"$rv" restore "$name" --to "$demo/restored"
git -C "$demo/restored" fsck --full
"$rv" check --read-data
"$rv" verify --all
set +x

# The restored repository must have exactly the refs of the source.
diff <(git -C "$source_repo" for-each-ref --format='%(objectname) %(refname)') \
     <(git -C "$demo/restored" for-each-ref --format='%(objectname) %(refname)')
echo "demo: restored $name from $REPOVAULT_STORE into $demo/restored; refs identical, fsck clean, store check and verify clean"
