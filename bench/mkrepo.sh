#!/usr/bin/env bash
# Creates one deterministic bare fixture repository: mkrepo.sh DIR PROFILE SEED
# (PROFILE: small | medium | big, see genrepo.py), then repacks it the way a server would hold it.
set -euo pipefail
dir=$1 profile=$2 seed=$3
here=$(cd "$(dirname "$0")" && pwd)
git init --quiet --bare -b main "$dir"
python3 "$here/genrepo.py" create --seed "$seed" --profile "$profile" | git --git-dir="$dir" fast-import --quiet
git --git-dir="$dir" repack -a -d -f -q
git --git-dir="$dir" symbolic-ref HEAD refs/heads/main
