#!/usr/bin/env bash
# The whole test suite: installs the real test servers' packages, checks formatting and lints,
# builds once (release profile, shared by tests, the demo and the benchmarks) and runs every test.
# Usage: bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo >/dev/null || { echo "test.sh: Rust (cargo, via rustup) is required" >&2; exit 2; }
bash scripts/test-deps.sh

log=$(mktemp)
deploy_log=$(mktemp)
trap 'rm -f "$log" "$deploy_log"' EXIT

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo build (release, all targets)"
cargo build --release --workspace --all-targets --locked
# Offline: chart lint and render, Kubernetes schema validation, yamllint, Dockerfile and systemd
# units, and every shipped config through the binary just built. A failure here fails the run,
# after the Rust tests have run too.
echo "== deployment artefacts (Helm chart, manifests, Dockerfile, systemd units, configs)"
set +e
python3 scripts/validate-deploy.py 2>&1 | tee "$deploy_log"
deploy_status=${PIPESTATUS[0]}
set -e
echo "== cargo clippy"
cargo clippy --release --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
set +e
cargo test --release --workspace --locked --no-fail-fast 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# cargo ends on the last crate's doc-tests (often 0 of them); close on the whole suite's count,
# the deployment checks' "deploy: N passed, N failed" included.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     /^deploy: [0-9]+ passed, [0-9]+ failed$/ { p += $2; f += $4 }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$deploy_log" "$log"
if [ "$status" -eq 0 ] && [ "$deploy_status" -ne 0 ]; then
    status=$deploy_status
fi
exit "$status"
