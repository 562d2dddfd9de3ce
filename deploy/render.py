#!/usr/bin/env python3
"""Renders the Helm chart into the plain manifests under deploy/kubernetes/ (one file per mode).

    python3 deploy/render.py          # rewrite deploy/kubernetes/*.yaml
    python3 deploy/render.py --check  # exit 1 (with a diff) when the committed files are stale

Rendering uses helm-python-sdk (Helm's own template engine, offline), the same as `helm template`.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path
from typing import Any

import yaml
from helm_python.chart import Chart

DEPLOY = Path(__file__).resolve().parent
CHART = DEPLOY / "helm" / "repovault"
PLAIN = DEPLOY / "kubernetes"
RELEASE = "repovault"
NAMESPACE = "repovault"

# Helm's install order, so that `kubectl apply -f` creates what a pod needs before the pod.
KIND_ORDER = [
    "ServiceAccount",
    "Secret",
    "ConfigMap",
    "PersistentVolumeClaim",
    "Service",
    "StatefulSet",
    "Job",
    "CronJob",
    "ServiceMonitor",
]

DAEMON_CONFIG = """\
[backup]
concurrency = 4

[retention]
keep_last = 1
keep_daily = 7
keep_weekly = 4
keep_monthly = 12

[prune]
grace = "24h"

[[schedule]]
job = "backup"
cron = "0 3 * * *"
jitter = "15m"

[[schedule]]
job = "forget"
cron = "30 5 * * 0"

[[schedule]]
job = "prune"
cron = "30 6 * * 0"

[[schedule]]
job = "check"
cron = "0 12 * * 6"

[[source]]
name = "example"
kind = "git"
urls = ["https://git.example.com/org/app.git"]
token_file = "/run/secrets/repovault/forge-token"
"""

# The plain manifests never carry a Secret: they mount one named "repovault" that the user creates
# (kubectl create secret generic repovault --from-file=password=...), see docs/DEPLOYMENT.md.
_COMMON: dict[str, Any] = {"secret": {"create": False, "existingSecret": "repovault"}}

PLAIN_VALUES: dict[str, dict[str, Any]] = {
    "cronjob": {**_COMMON, "mode": "cronjob"},
    "daemon": {**_COMMON, "mode": "daemon", "config": DAEMON_CONFIG},
    # Shards on several nodes reach one store: S3 (edit the URL), or a ReadWriteMany claim.
    "sharded": {**_COMMON, "mode": "sharded", "store": {"url": "s3:https://s3.example.com/backups/repovault"}},
}


def render(values: dict[str, Any], name: str = RELEASE, namespace: str = NAMESPACE) -> dict[str, str]:
    """Template path -> rendered text, like `helm template` (NOTES.txt included)."""
    with Chart.load(CHART) as chart:
        return chart.render(values, name=name, namespace=namespace)


def documents(rendered: dict[str, str]) -> list[tuple[str, str, dict[str, Any]]]:
    """Every non-empty manifest as (template path, text, parsed), in install order."""
    docs = []
    for source, text in rendered.items():
        if source.endswith("NOTES.txt"):
            continue
        chunk: list[str] = []
        for line in text.splitlines() + ["---"]:
            if line.strip() == "---":
                body = "\n".join(chunk).strip("\n")
                chunk = []
                parsed = yaml.safe_load(body) if body.strip() else None
                if parsed:
                    docs.append((source, body, parsed))
            else:
                chunk.append(line.rstrip())

    def key(doc: tuple[str, str, dict[str, Any]]) -> tuple[int, str, str]:
        kind = doc[2].get("kind", "")
        rank = KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER)
        return (rank, doc[2].get("metadata", {}).get("name", ""), doc[0])

    return sorted(docs, key=key)


def plain_manifest(mode: str) -> str:
    docs = documents(render(PLAIN_VALUES[mode]))
    header = (
        f"# repovault, mode {mode}: rendered from deploy/helm/repovault by deploy/render.py.\n"
        "# Do not edit: change the chart (or PLAIN_VALUES in render.py) and run python3 deploy/render.py.\n"
        '# Needs a Secret "repovault" with the key "password" (see docs/DEPLOYMENT.md).\n'
        + ("# Edit REPOVAULT_STORE; S3 credentials go into the Secret as aws-credentials.\n" if mode == "sharded" else "")
    )
    parts = [f"---\n# Source: {source}\n{body}\n" for source, body, _ in docs]
    return header + "".join(parts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args()
    stale = 0
    for mode in PLAIN_VALUES:
        path = PLAIN / f"{mode}.yaml"
        fresh = plain_manifest(mode)
        if args.check:
            current = path.read_text() if path.exists() else ""
            if current != fresh:
                stale += 1
                sys.stdout.writelines(
                    difflib.unified_diff(
                        current.splitlines(keepends=True),
                        fresh.splitlines(keepends=True),
                        f"{path.relative_to(DEPLOY.parent)} (committed)",
                        f"{path.relative_to(DEPLOY.parent)} (fresh render)",
                    )
                )
        else:
            path.write_text(fresh)
            print(f"wrote {path.relative_to(DEPLOY.parent)}")
    if stale:
        print(f"render: {stale} manifest(s) differ from the chart; run python3 deploy/render.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
