#!/usr/bin/env python3
"""Offline checks of the deployment artefacts (deploy/): the Helm chart, the plain manifests, the
Dockerfile and the systemd units. No cluster, no Docker engine, no network.

- `helm lint --strict` (helm-python-sdk) with the default values and every deploy/helm/repovault/ci/*.yaml;
- every mode rendered with the defaults and with each value set, each document validated with
  `kubernetes-validate -k 1.33 --strict`, plus repovault's own rules (non-root, read-only root,
  secrets as files, shard index wiring, probes, labels, ...);
- values the schema must refuse are refused;
- yamllint (config: .yamllint.yaml) over deploy/ and the rendered output;
- deploy/kubernetes/*.yaml equal a fresh render (deploy/render.py);
- the Dockerfile read for the properties the chart relies on;
- `systemd-analyze verify` of deploy/systemd when systemd-analyze is present;
- every config the chart ships (each value set's `config`) and every examples/*.toml accepted by
  the real binary (`repovault config validate`; target/release/repovault or $REPOVAULT_BIN).

Prints one line per check and closes with "deploy: N passed, N failed"; exits 1 on any failure.
Usage: python3 scripts/validate-deploy.py
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any, Callable

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "deploy"))
import render  # noqa: E402  (deploy/render.py)
from helm_python.chart import Chart, lint  # noqa: E402
from helm_python.errors import HelmError  # noqa: E402

K8S_VERSION = "1.33"
CHART = render.CHART
RECOMMENDED_LABELS = [
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/managed-by",
    "helm.sh/chart",
]
SHARD_ANNOTATION = "metadata.annotations['batch.kubernetes.io/job-completion-index']"


class Checks:
    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0

    def run(self, name: str, fn: Callable[[], list[str] | None]) -> None:
        try:
            problems = fn() or []
        except Exception as e:  # a crash in a check is that check's failure, not the run's
            problems = [f"{type(e).__name__}: {e}"]
        if problems:
            self.failed += 1
            print(f"FAIL {name}")
            for p in problems:
                print(f"     {p}")
        else:
            self.passed += 1
            print(f"ok   {name}")


def value_sets() -> dict[str, dict[str, Any]]:
    """Name -> values: the defaults in every mode, the plain-manifest sets, and ci/*.yaml."""
    sets: dict[str, dict[str, Any]] = {}
    for mode in ("cronjob", "daemon", "sharded"):
        sets[f"defaults, mode={mode}"] = {"mode": mode}
        sets[f"plain {mode}"] = render.PLAIN_VALUES[mode]
    for f in sorted((CHART / "ci").glob("*.yaml")):
        sets[f"ci/{f.name}"] = yaml.safe_load(f.read_text())
    return sets


def merged(values: dict[str, Any]) -> dict[str, Any]:
    with Chart.load(CHART) as chart:
        return chart.merge_values(values)


def pod_specs(doc: dict[str, Any]) -> list[dict[str, Any]]:
    kind = doc.get("kind")
    spec = doc.get("spec", {})
    if kind == "CronJob":
        return [spec["jobTemplate"]["spec"]["template"]["spec"]]
    if kind in ("Job", "StatefulSet", "Deployment"):
        return [spec["template"]["spec"]]
    return []


def job_specs(doc: dict[str, Any]) -> list[dict[str, Any]]:
    if doc.get("kind") == "CronJob":
        return [doc["spec"]["jobTemplate"]["spec"]]
    if doc.get("kind") == "Job":
        return [doc["spec"]]
    return []


def dockerfile_uid() -> int:
    users = [ln.split()[1] for ln in final_stage() if ln.upper().startswith("USER ")]
    return int(users[-1].split(":")[0])


def pod_rules(doc: dict[str, Any], vals: dict[str, Any]) -> list[str]:
    """What every repovault pod must satisfy, whatever the values."""
    problems = []
    name = f"{doc['kind']}/{doc['metadata']['name']}"
    uid = dockerfile_uid()
    for spec in pod_specs(doc):
        psc = spec.get("securityContext", {})
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for t in doc.get("spec", {}).get("volumeClaimTemplates", []):
            volumes[t["metadata"]["name"]] = {"persistentVolumeClaim": t["spec"]}
        if spec.get("automountServiceAccountToken") is not False:
            problems.append(f"{name}: the service account token is mounted")
        for c in spec["containers"]:
            sc = c.get("securityContext", {})
            want = {
                "runAsNonRoot": True,
                "readOnlyRootFilesystem": True,
                "allowPrivilegeEscalation": False,
            }
            for k, v in want.items():
                if sc.get(k, psc.get(k)) != v:
                    problems.append(f"{name}: securityContext.{k} is not {v}")
            if sc.get("runAsUser", psc.get("runAsUser")) != uid:
                problems.append(f"{name}: runAsUser is not the image's uid {uid}")
            if sc.get("capabilities", {}).get("drop") != ["ALL"]:
                problems.append(f"{name}: capabilities do not drop ALL")
            if sc.get("seccompProfile", psc.get("seccompProfile", {})).get("type") != "RuntimeDefault":
                problems.append(f"{name}: seccompProfile is not RuntimeDefault")
            if not c.get("resources", {}).get("requests"):
                problems.append(f"{name}: no resource requests")
            mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
            for m in mounts.values():
                if m["name"] not in volumes:
                    problems.append(f"{name}: mount {m['mountPath']} names no volume")
            # The root file system is read-only: everything written must be on a volume.
            for path in ("/tmp", "/var/cache/repovault", "/etc/repovault"):
                if path not in mounts:
                    problems.append(f"{name}: nothing mounted at {path}")
            remote = re.match(r"(s3|opendal):", vals["store"]["url"] or "")
            if vals["store"]["url"] and not remote and "/var/lib/repovault" not in mounts:
                problems.append(f"{name}: a local store but no store volume at /var/lib/repovault")
            if remote and "/var/lib/repovault" in mounts:
                problems.append(f"{name}: a store volume mounted for a remote store")
            if "/tmp" in mounts and "emptyDir" not in volumes.get(mounts["/tmp"]["name"], {}):
                problems.append(f"{name}: /tmp is not an emptyDir")
            env = {e["name"]: e for e in c.get("env", [])}
            if env.get("REPOVAULT_CACHE_DIR", {}).get("value") != "/var/cache/repovault":
                problems.append(f"{name}: REPOVAULT_CACHE_DIR does not point at the cache volume")
            if env.get("REPOVAULT_CONFIG", {}).get("value") != "/etc/repovault/repovault.toml":
                problems.append(f"{name}: REPOVAULT_CONFIG is not the mounted config")
            for banned in ("REPOVAULT_PASSWORD", "AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID"):
                if banned in env:
                    problems.append(f"{name}: {banned} in the environment (secrets are files)")
            secret_name = vals["secret"]["existingSecret"] or (
                render_fullname(vals) if vals["secret"]["create"] else ""
            )
            pw = env.get("REPOVAULT_PASSWORD_FILE", {}).get("value")
            if secret_name:
                sec_mounts = [
                    p for p, m in mounts.items()
                    if volumes.get(m["name"], {}).get("secret", {}).get("secretName") == secret_name
                ]
                if not pw or not any(pw == f"{p}/{vals['secret']['passwordKey']}" for p in sec_mounts):
                    problems.append(f"{name}: REPOVAULT_PASSWORD_FILE is not a file of Secret {secret_name}")
                for p in sec_mounts:
                    if not mounts[p].get("readOnly"):
                        problems.append(f"{name}: the secret mount {p} is writable")
            args = [str(a) for a in c.get("args", [])]
            for secret in (vals["secret"]["password"], vals["secret"]["forgeToken"],
                           vals["secret"]["s3"]["secretAccessKey"]):
                if secret and any(secret in a for a in args):
                    problems.append(f"{name}: a secret value is in the arguments")
            if "--log-format" not in args or args[args.index("--log-format") + 1] != vals["logFormat"]:
                problems.append(f"{name}: --log-format {vals['logFormat']} missing")
    return problems


def render_fullname(vals: dict[str, Any]) -> str:
    return vals.get("fullnameOverride") or render.RELEASE


def mode_rules(docs: list[dict[str, Any]], vals: dict[str, Any]) -> list[str]:
    problems = []
    mode = vals["mode"]
    kinds = [d["kind"] for d in docs]
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
        labels = d["metadata"].get("labels", {})
        missing = [k for k in RECOMMENDED_LABELS if k not in labels]
        if missing:
            problems.append(f"{d['kind']}/{d['metadata']['name']}: labels missing {missing}")
    for cj in by_kind.get("CronJob", []):
        if cj["spec"].get("concurrencyPolicy") != "Forbid":
            problems.append(f"CronJob/{cj['metadata']['name']}: concurrencyPolicy is not Forbid")
    commands = []
    for d in docs:
        for spec in pod_specs(d):
            args = [str(a) for a in spec["containers"][0]["args"]]
            commands.append(next(a for a in args if not a.startswith("-") and a != vals["logFormat"]))
    maintenance = vals["maintenance"]["enabled"] and mode != "daemon"
    if maintenance and vals["maintenance"]["args"][0] not in commands:
        problems.append("no forget/prune CronJob")
    if mode == "cronjob":
        if "StatefulSet" in kinds or commands.count("backup") != 1:
            problems.append(f"cronjob mode renders {kinds}")
    elif mode == "daemon":
        sts = by_kind.get("StatefulSet", [])
        if len(sts) != 1 or "CronJob" in kinds:
            return problems + [f"daemon mode renders {kinds}"]
        s = sts[0]
        spec = s["spec"]["template"]["spec"]
        c = spec["containers"][0]
        if s["spec"]["replicas"] != 1:
            problems.append("daemon replicas != 1 (the schedule would run twice)")
        args = [str(a) for a in c["args"]]
        if "daemon" not in args or f"0.0.0.0:{vals['daemon']['port']}" not in args:
            problems.append(f"daemon does not listen on all interfaces: {args}")
        if c.get("livenessProbe", {}).get("httpGet", {}).get("path") != "/healthz":
            problems.append("liveness probe is not /healthz")
        if c.get("readinessProbe", {}).get("httpGet", {}).get("path") != "/readyz":
            problems.append("readiness probe is not /readyz")
        ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
        if ports.get("http") != vals["daemon"]["port"]:
            problems.append(f"container port http is {ports.get('http')}")
        if vals["cache"]["persistence"]["enabled"] and not vals["cache"]["persistence"]["existingClaim"]:
            vct = [t["metadata"]["name"] for t in s["spec"].get("volumeClaimTemplates", [])]
            if vct != ["cache"] or any(v["name"] == "cache" for v in spec["volumes"]):
                problems.append(f"the cache is not a volumeClaimTemplate: {vct}")
        pod_labels = s["spec"]["template"]["metadata"]["labels"]
        sel = s["spec"]["selector"]["matchLabels"]
        if any(pod_labels.get(k) != v for k, v in sel.items()):
            problems.append("StatefulSet selector does not match its pods")
        svcs = by_kind.get("Service", [])
        if len(svcs) != 1:
            return problems + ["no Service"]
        svc = svcs[0]
        if any(pod_labels.get(k) != v for k, v in svc["spec"]["selector"].items()):
            problems.append("Service selector does not match the daemon pod")
        if not any(p.get("targetPort") in ("http", ports.get("http")) for p in svc["spec"]["ports"]):
            problems.append("Service does not target the http port")
        if s["spec"]["serviceName"] != svc["metadata"]["name"]:
            problems.append("StatefulSet serviceName is not the Service")
        sms = by_kind.get("ServiceMonitor", [])
        if bool(sms) != vals["daemon"]["serviceMonitor"]["enabled"]:
            problems.append("ServiceMonitor rendered against daemon.serviceMonitor.enabled")
        for sm in sms:
            labels = svc["metadata"]["labels"]
            if any(labels.get(k) != v for k, v in sm["spec"]["selector"]["matchLabels"].items()):
                problems.append("ServiceMonitor selects no Service")
            svc_ports = {p["name"] for p in svc["spec"]["ports"]}
            for ep in sm["spec"]["endpoints"]:
                if ep.get("port") not in svc_ports or ep.get("path") != "/metrics":
                    problems.append(f"ServiceMonitor endpoint {ep} is not the Service's /metrics")
    elif mode == "sharded":
        n = vals["sharded"]["shards"]
        shard_jobs = [j for d in docs for j in job_specs(d) if j.get("completionMode") == "Indexed"]
        if len(shard_jobs) != 1:
            return problems + [f"sharded mode renders {len(shard_jobs)} Indexed Jobs"]
        j = shard_jobs[0]
        if not (j["completions"] == j["parallelism"] == n):
            problems.append(f"completions/parallelism {j['completions']}/{j['parallelism']} != shards {n}")
        c = j["template"]["spec"]["containers"][0]
        args = [str(a) for a in c["args"]]
        if "--shard" not in args:
            return problems + ["no --shard argument"]
        shard = args[args.index("--shard") + 1]
        m = re.fullmatch(r"\$\(([A-Z_][A-Z0-9_]*)\)/(\d+)", shard)
        if not m or int(m.group(2)) != n:
            return problems + [f"--shard {shard} is not $(VAR)/{n}"]
        env = {e["name"]: e for e in c["env"]}
        ref = env.get(m.group(1), {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
        if ref != SHARD_ANNOTATION:
            problems.append(f"${m.group(1)} is not the job completion index (it is {ref})")
        # $(VAR) only expands when VAR is declared before use; env order does not matter for args,
        # but an undeclared name is passed through literally.
        kinds_expected = "CronJob" if vals["sharded"]["schedule"] else "Job"
        owner = [d for d in docs if job_specs(d) and job_specs(d)[0] is j][0]
        if owner["kind"] != kinds_expected:
            problems.append(f"the shards are a {owner['kind']}, expected {kinds_expected}")
    return problems


def kubernetes_validate(path: Path) -> list[str]:
    exe = shutil.which("kubernetes-validate")
    cmd = [exe] if exe else [sys.executable, "-m", "kubernetes_validate"]
    r = subprocess.run(cmd + ["-k", K8S_VERSION, "--strict", "--no-warn", "--quiet", str(path)],
                       capture_output=True, text=True)
    out = (r.stdout + r.stderr).strip()
    return [] if r.returncode == 0 else (out.splitlines() or [f"exit {r.returncode}"])


def yamllint_paths(*paths: Path) -> list[str]:
    # Relative paths: the config's ignore patterns are matched against them.
    shown = [str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p) for p in paths]
    r = subprocess.run([sys.executable, "-m", "yamllint", "-s", "-f", "parsable",
                        "-c", str(ROOT / ".yamllint.yaml"), *shown],
                       capture_output=True, text=True, cwd=ROOT)
    return [] if r.returncode == 0 else ((r.stdout + r.stderr).strip().splitlines() or ["yamllint failed"])


def check_value_set(name: str, values: dict[str, Any], tmp: Path, checks: Checks) -> None:
    vals = merged(values)
    rendered: dict[str, str] = {}

    def do_lint() -> list[str]:
        report = lint(CHART, values, strict=True, kube_version=f"v{K8S_VERSION}.0")
        msgs = [f"{m['path']}: {m['error']}" for m in report["messages"] if m["severity"] >= 2]
        return msgs + report.get("errors", [])

    checks.run(f"helm lint --strict [{name}]", do_lint)

    def do_render() -> list[str]:
        rendered.update(render.render(values))
        return [] if render.documents(rendered) else ["nothing rendered"]

    checks.run(f"render [{name}]", do_render)
    if not rendered:
        return
    docs = render.documents(rendered)
    out = tmp / (re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") + ".yaml")
    out.write_text("".join(f"---\n# Source: {s}\n{b}\n" for s, b, _ in docs))
    checks.run(f"kubernetes-validate -k {K8S_VERSION} --strict [{name}]", lambda: kubernetes_validate(out))
    checks.run(f"yamllint rendered [{name}]", lambda: yamllint_paths(out))
    parsed = [d for _, _, d in docs]

    def do_pods() -> list[str]:
        problems = []
        for d in parsed:
            problems += pod_rules(d, vals)
        return problems

    checks.run(f"pod security, secrets as files, volumes [{name}]", do_pods)
    checks.run(f"mode {vals['mode']} wiring [{name}]", lambda: mode_rules(parsed, vals))

    def do_config() -> list[str]:
        cms = [d for d in parsed if d["kind"] == "ConfigMap"]
        if vals["existingConfigMap"]:
            return [] if not cms else ["a ConfigMap is rendered despite existingConfigMap"]
        if len(cms) != 1:
            return [f"{len(cms)} ConfigMaps"]
        text = cms[0]["data"]["repovault.toml"]
        tomllib.loads(text)
        if text.strip() != vals["config"].strip():
            return ["the ConfigMap's repovault.toml differs from values.config"]
        return []

    checks.run(f"config is the values' TOML and parses [{name}]", do_config)

    def do_secret() -> list[str]:
        secrets = [d for d in parsed if d["kind"] == "Secret"]
        want = vals["secret"]["create"] and not vals["secret"]["existingSecret"]
        if bool(secrets) != bool(want):
            return [f"{len(secrets)} Secrets rendered, secret.create={vals['secret']['create']}"]
        import base64
        problems = []
        for s in secrets:
            data = {k: base64.b64decode(v).decode() for k, v in (s.get("data") or {}).items()}
            sec = vals["secret"]
            if sec["password"] and data.get(sec["passwordKey"]) != sec["password"]:
                problems.append("the password key does not hold secret.password")
            if sec["s3"]["accessKeyId"]:
                creds = data.get(sec["awsCredentialsKey"], "")
                if f"aws_access_key_id = {sec['s3']['accessKeyId']}" not in creds or "[default]" not in creds:
                    problems.append("the AWS credentials file is malformed")
        return problems

    checks.run(f"Secret matches secret.* [{name}]", do_secret)


def repovault_binary() -> Path:
    return Path(os.environ.get("REPOVAULT_BIN") or ROOT / "target" / "release" / "repovault")


def validate_config(text: str, tmp: Path) -> list[str]:
    exe = repovault_binary()
    if not exe.exists():
        return [f"{exe} is not built: run `cargo build --release` first (scripts/test.sh does)"]

    def run(t: str) -> subprocess.CompletedProcess[str]:
        f = tmp / "repovault.toml"
        f.write_text(t)
        env = {k: v for k, v in os.environ.items() if not k.startswith("REPOVAULT_")}
        return subprocess.run([str(exe), "--config", str(f), "config", "validate"],
                              capture_output=True, text=True, env=env)

    done = run(text)
    if done.returncode == 0:
        return []
    return done.stderr.strip().splitlines() or [f"exit {done.returncode}"]


def check_configs(checks: Checks) -> None:
    seen: dict[str, str] = {}
    for name, values in value_sets().items():
        text = merged(values)["config"]
        if text in seen:
            continue
        seen[text] = name
    for example in sorted((ROOT / "examples").glob("*.toml")):
        seen[example.read_text()] = f"examples/{example.name}"
    for text, name in seen.items():
        def one(text: str = text) -> list[str]:
            with tempfile.TemporaryDirectory() as d:
                return validate_config(text, Path(d))

        checks.run(f"repovault config validate accepts the config [{name}]", one)


def check_schema_refusals(checks: Checks) -> None:
    bad = {
        "unknown mode": {"mode": "deployment"},
        "zero shards": {"mode": "sharded", "sharded": {"shards": 0}},
        "misspelt top-level key": {"schedule": "0 3 * * *"},
        "cron with four fields": {"backup": {"schedule": "0 3 * *"}},
        "bad log format": {"logFormat": "xml"},
        "secret values without secret.create": {"secret": {"create": False, "password": "x"}},
        "a local store without its volume": {"store": {"persistence": {"enabled": False}}},
        "a local store outside the volume": {"store": {"url": "/data/store"}},
    }
    for label, values in bad.items():
        def refused(values: dict[str, Any] = values) -> list[str]:
            try:
                render.render(values)
            except HelmError:
                return []
            return ["rendered although the schema should refuse it"]

        checks.run(f"values.schema.json refuses: {label}", refused)


def final_stage() -> list[str]:
    """The Dockerfile's last stage as logical lines (continuations joined, comments dropped)."""
    text = (ROOT / "deploy" / "Dockerfile").read_text()
    lines: list[str] = []
    buf = ""
    for raw in text.splitlines():
        if raw.lstrip().startswith("#"):
            continue
        if raw.rstrip().endswith("\\"):
            buf += raw.rstrip()[:-1] + " "
            continue
        buf += raw
        if buf.strip():
            lines.append(buf.strip())
        buf = ""
    starts = [i for i, ln in enumerate(lines) if ln.upper().startswith("FROM ")]
    return lines[starts[-1]:]


def check_dockerfile(checks: Checks) -> None:
    df = ROOT / "deploy" / "Dockerfile"
    text = df.read_text()

    def builder() -> list[str]:
        problems = []
        stages = [ln for ln in text.splitlines() if ln.upper().startswith("FROM ")]
        if len(stages) < 2:
            problems.append("not multi-stage")
        if not re.search(r"cargo build --release --locked -p repovault\b", text):
            problems.append("no `cargo build --release --locked -p repovault`")
        if not re.search(r"COPY --from=\S+ \S*repovault \S+", "\n".join(final_stage())):
            problems.append("the runtime stage does not copy the binary from the builder")
        return problems

    def runtime() -> list[str]:
        problems = []
        stage = final_stage()
        users = [ln.split()[1] for ln in stage if ln.upper().startswith("USER ")]
        if not users:
            return ["the final stage has no USER"]
        user = users[-1].split(":")[0]
        if not user.isdigit() or int(user) == 0:
            problems.append(f"USER {users[-1]} is not a numeric non-root uid (runAsNonRoot needs a number)")
        if int(user or 0) != render_values_uid():
            problems.append(f"USER {user} differs from the chart's runAsUser {render_values_uid()}")
        entry = [ln for ln in stage if ln.upper().startswith("ENTRYPOINT ")]
        if not entry:
            return problems + ["no ENTRYPOINT"]
        import json
        argv = json.loads(entry[-1].split(None, 1)[1])
        if not Path(argv[-1]).name == "repovault":
            problems.append(f"ENTRYPOINT {argv} does not end in repovault")
        if "tini" in argv[0] and "--" not in argv:
            problems.append("tini without --: flags would be read by tini")
        installs = " ".join(ln for ln in stage if "apt-get install" in ln)
        for pkg in ("git", "git-lfs", "ca-certificates", "tini"):
            if not re.search(rf"(?<![-\w]){re.escape(pkg)}(?![-\w])", installs):
                problems.append(f"runtime does not install {pkg}")
        envs = " ".join(ln for ln in stage if ln.upper().startswith("ENV "))
        if "REPOVAULT_CACHE_DIR=/var/cache/repovault" not in envs:
            problems.append("REPOVAULT_CACHE_DIR is not set to the cache volume")
        vols = " ".join(ln for ln in stage if ln.upper().startswith("VOLUME "))
        for v in ("/var/cache/repovault", "/var/lib/repovault"):
            if v not in vols:
                problems.append(f"no VOLUME {v}")
        return problems

    def no_secrets() -> list[str]:
        problems = []
        for ln in text.splitlines():
            s = ln.strip()
            if s.startswith("#"):
                continue
            m = re.match(r"(ENV|ARG)\s+(.*)", s, re.I)
            if m:
                for word in shlex.split(m.group(2).replace("\\", " ")):
                    key = word.split("=", 1)[0]
                    if re.search(r"PASSWORD|TOKEN|SECRET|ACCESS_KEY|PRIVATE_KEY", key, re.I):
                        problems.append(f"{m.group(1)} {key}: secrets must not be baked into the image")
            if re.match(r"(COPY|ADD)\b", s, re.I) and re.search(r"\.(pem|key|env)\b|password|token|secret", s, re.I):
                problems.append(f"copies a secret-looking file: {s}")
        ignore = (ROOT / ".dockerignore").read_text().splitlines()
        if "*" not in [ln.strip() for ln in ignore]:
            problems.append(".dockerignore does not start from excluding everything")
        for must_be_out in ("target", ".git", ".demo"):
            if any(ln.strip().lstrip("!").rstrip("/") == must_be_out for ln in ignore if ln.startswith("!")):
                problems.append(f".dockerignore lets {must_be_out} into the build context")
        return problems

    def healthcheck() -> list[str]:
        # The image also runs one-shot commands; a HEALTHCHECK would need the daemon's port.
        hc = [ln for ln in final_stage() if ln.upper().startswith("HEALTHCHECK ") and "NONE" not in ln.upper()]
        if hc and "/healthz" not in hc[0]:
            return [f"HEALTHCHECK does not probe /healthz: {hc[0]}"]
        return []

    checks.run("Dockerfile: multi-stage, locked release build of repovault", builder)
    checks.run("Dockerfile: non-root numeric USER, repovault ENTRYPOINT, git/git-lfs/tini, volumes", runtime)
    checks.run("Dockerfile/.dockerignore: no secrets baked in, small build context", no_secrets)
    checks.run("Dockerfile: no HEALTHCHECK other than the daemon's /healthz", healthcheck)


def render_values_uid() -> int:
    return int(merged({})["securityContext"]["runAsUser"])


def check_systemd(checks: Checks) -> None:
    units = sorted((ROOT / "deploy" / "systemd").glob("*.*"))

    def pairs() -> list[str]:
        problems = []
        names = {u.name for u in units}
        for u in units:
            if u.suffix == ".timer" and u.with_suffix(".service").name not in names:
                problems.append(f"{u.name} has no service")
            text = u.read_text()
            if u.suffix == ".service":
                if "REPOVAULT_PASSWORD=" in text:
                    problems.append(f"{u.name}: a password in the unit")
                if not re.search(r"^User=", text, re.M) and not re.search(r"^DynamicUser=yes", text, re.M):
                    problems.append(f"{u.name}: runs as root")
        return problems if units else ["no units"]

    checks.run("systemd units: every timer has its service, no root, no inline password", pairs)
    analyze = shutil.which("systemd-analyze")
    if analyze:
        def verify() -> list[str]:
            with tempfile.TemporaryDirectory() as d:
                # The units name /usr/local/bin/repovault; verify checks ExecStart exists.
                fake = Path(d) / "repovault"
                fake.write_text("#!/bin/sh\n")
                fake.chmod(0o755)
                copies = []
                for u in units:
                    dst = Path(d) / u.name
                    dst.write_text(u.read_text().replace("/usr/local/bin/repovault", str(fake)))
                    copies.append(str(dst))
                r = subprocess.run([analyze, "verify", "--man=no", *copies], capture_output=True, text=True,
                                   env={"SYSTEMD_LOG_LEVEL": "warning", "PATH": "/usr/bin:/bin"})
                lines = [ln for ln in (r.stdout + r.stderr).splitlines()
                         if d in ln or "repovault" in ln]
                return lines if (r.returncode != 0 or lines) else []

        checks.run("systemd-analyze verify deploy/systemd/*", verify)
    else:
        print("skip systemd-analyze verify (systemd-analyze not installed)")


def main() -> int:
    checks = Checks()
    with tempfile.TemporaryDirectory(prefix="repovault-deploy-") as t:
        tmp = Path(t)
        for name, values in value_sets().items():
            check_value_set(name, values, tmp, checks)
    check_schema_refusals(checks)
    check_configs(checks)

    def fresh() -> list[str]:
        stale = []
        for mode in render.PLAIN_VALUES:
            path = render.PLAIN / f"{mode}.yaml"
            if not path.exists() or path.read_text() != render.plain_manifest(mode):
                stale.append(f"{path.relative_to(ROOT)} differs from a fresh render: run python3 deploy/render.py")
        extra = {p.name for p in render.PLAIN.glob("*.yaml")} - {f"{m}.yaml" for m in render.PLAIN_VALUES}
        return stale + [f"deploy/kubernetes/{e} is not rendered by deploy/render.py" for e in sorted(extra)]

    checks.run("deploy/kubernetes/*.yaml equal a fresh render of the chart", fresh)
    kubectl = shutil.which("kubectl")
    if kubectl:
        def kustomize() -> list[str]:
            # A plain manifest used as a kustomize base, the usual way to patch it per cluster.
            problems = []
            for mode in render.PLAIN_VALUES:
                with tempfile.TemporaryDirectory() as d:
                    shutil.copy(render.PLAIN / f"{mode}.yaml", Path(d) / "repovault.yaml")
                    (Path(d) / "kustomization.yaml").write_text(
                        "resources: [repovault.yaml]\nnamespace: backup\n")
                    r = subprocess.run([kubectl, "kustomize", d], capture_output=True, text=True)
                    if r.returncode != 0:
                        problems.append(f"{mode}: {r.stderr.strip()}")
                    elif len(list(yaml.safe_load_all(r.stdout))) != len(render.documents(
                            render.render(render.PLAIN_VALUES[mode]))):
                        problems.append(f"{mode}: kustomize lost or added documents")
            return problems

        checks.run("kubectl kustomize builds each plain manifest", kustomize)
    else:
        print("skip kubectl kustomize (kubectl not installed)")
    checks.run("yamllint deploy/ .yamllint.yaml", lambda: yamllint_paths(ROOT / "deploy", ROOT / ".yamllint.yaml"))
    check_dockerfile(checks)
    check_systemd(checks)
    print(f"deploy: {checks.passed} passed, {checks.failed} failed")
    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit(main())
