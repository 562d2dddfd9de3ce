#!/usr/bin/env bash
# Installs the real servers and tools repovault's integration tests start (see
# crates/repovault-testkit). Idempotent: does nothing but print versions when all are present.
# Runs unattended (CI has no stdin); uses sudo only when not root.
set -euo pipefail

packages=(nginx fcgiwrap apache2-utils openssh-server git-lfs restic)

# nginx, fcgiwrap and sshd live in sbin, which a non-root PATH may lack.
have() {
    command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]
}

missing=()
for tool in nginx fcgiwrap htpasswd sshd ssh ssh-keygen git-lfs restic; do
    have "$tool" || missing+=("$tool")
done

if [ "${#missing[@]}" -gt 0 ]; then
    echo "test-deps: missing ${missing[*]}; installing ${packages[*]}" >&2
    if [ "$(id -u)" -eq 0 ]; then
        sudo=()
    elif command -v sudo >/dev/null 2>&1; then
        # -n: fail instead of prompting for a password nobody can type in CI.
        sudo=(sudo -n)
    else
        echo "test-deps: not root and no sudo; install as root: apt-get install ${packages[*]}" >&2
        exit 1
    fi
    "${sudo[@]}" apt-get update -q </dev/null
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends "${packages[@]}" </dev/null
fi

# S3-compatible servers for the object-store tests (pinned: their behaviour is what tests rely on).
if ! python3 -c 'import moto.server' >/dev/null 2>&1; then
    echo "test-deps: installing moto" >&2
    python3 -m pip install --quiet --disable-pip-version-check 'moto[server]==5.2.1' </dev/null
fi
# A third-party GitHub client that backs up the forge simulator's fixtures (pinned: its
# requests are what the simulator's compatibility test checks).
github_backup_version=0.65.1
if [ "$(python3 -m pip show github-backup 2>/dev/null | awk '/^Version/ {print $2}')" != "$github_backup_version" ]; then
    echo "test-deps: installing github-backup $github_backup_version" >&2
    python3 -m pip install --quiet --disable-pip-version-check "github-backup==$github_backup_version" </dev/null
fi
# Offline checks of the deployment artefacts (scripts/validate-deploy.py): Kubernetes schemas,
# Helm's template engine and linter without a helm binary, yamllint.
deploy_tools=(kubernetes-validate==1.37.0 yamllint==1.38.0 helm-python-sdk==0.2.2)
if ! python3 - "${deploy_tools[@]}" <<'PY' >/dev/null 2>&1
import sys
from importlib.metadata import version
sys.exit(any(version(n) != v for n, v in (a.split("==") for a in sys.argv[1:])))
PY
then
    echo "test-deps: installing ${deploy_tools[*]}" >&2
    python3 -m pip install --quiet --disable-pip-version-check "${deploy_tools[@]}" </dev/null
fi
if ! command -v s3s-fs >/dev/null 2>&1 && [ ! -x "${CARGO_HOME:-$HOME/.cargo}/bin/s3s-fs" ]; then
    echo "test-deps: installing s3s-fs (cargo install, a few minutes)" >&2
    cargo install --quiet s3s-fs --version 0.14.1 --features binary --locked </dev/null
fi

# Versions as the packages report them: fcgiwrap and htpasswd have no version flag.
pkg_version() {
    dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo "?"
}
sbin() {
    command -v "$1" 2>/dev/null || { [ -x "/usr/sbin/$1" ] && echo "/usr/sbin/$1"; } || echo "$1"
}
nginx_v=$("$(sbin nginx)" -v 2>&1 | sed 's|.*nginx/||')
ssh_v=$(ssh -V 2>&1 | cut -d, -f1)
lfs_v=$(git-lfs version 2>/dev/null | awk '{print $1}' | sed 's|git-lfs/||')
restic_v=$(restic version 2>/dev/null | awk '{print $2}')
git_v=$(git --version | awk '{print $3}')
echo "test-deps: nginx ${nginx_v}, fcgiwrap $(pkg_version fcgiwrap), apache2-utils $(pkg_version apache2-utils)," \
    "${ssh_v}, git-lfs ${lfs_v}, restic ${restic_v}, git ${git_v}," \
    "moto $(python3 -m pip show moto 2>/dev/null | awk '/^Version/ {print $2}'), $("${CARGO_HOME:-$HOME/.cargo}/bin/s3s-fs" --version 2>/dev/null || echo "s3s-fs ?")," \
    "github-backup $(python3 -m pip show github-backup 2>/dev/null | awk '/^Version/ {print $2}')," \
    "${deploy_tools[*]}"
