#!/usr/bin/env python3
"""Asserts what the gha-auth Kubernetes manifests promise, on the output of `kubectl kustomize`.

    check_manifests.py OVERLAY RENDERED.yaml [--config-out FILE] [--env-out FILE]

OVERLAY is "dev" or "production" (their own rules on top of the common ones). Prints every
broken rule and exits 1 if there is one. --config-out writes the gha-auth.toml the Deployment
mounts and --env-out its literal GHA_AUTH_* variables (NAME=value lines, without GHA_AUTH_CONFIG),
for `gha-auth config check`. Needs PyYAML; Python 3.11+ (tomllib).
"""

import argparse
import re
import sys
import tomllib

import yaml

HEALTH_PATH = "/HealthCheck"
LIVE_PATH = "/HealthCheck/live"
# Measured footprint (docs/operations.md): under 40 MB idle, under 150 MB under load.
MIN_MEMORY_REQUEST_MI = 40
MIN_MEMORY_LIMIT_MI = 150
# Liveness must ride out a dependency outage: at least this long of failures before a restart.
MIN_LIVENESS_TOLERANCE_S = 30
UNITS = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024, "K": 1e3 / 2**20, "M": 1e6 / 2**20, "G": 1e9 / 2**20}


def mebibytes(quantity):
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([KMG]i?)?", str(quantity))
    if not match:
        return None
    number, unit = match.groups()
    return float(number) * (UNITS[unit] if unit else 1 / 2**20)


class Checker:
    def __init__(self, docs):
        self.docs = docs
        self.problems = []

    def expect(self, condition, message):
        if not condition:
            self.problems.append(message)
        return condition

    def of_kind(self, kind):
        return [d for d in self.docs if d.get("kind") == kind]

    def one(self, kind):
        found = self.of_kind(kind)
        self.expect(len(found) == 1, f"expected one {kind}, found {len(found)}")
        return found[0] if found else {}


def check_pod(c, deployment):
    spec = deployment["spec"]["template"]["spec"]
    pod_sc = spec.get("securityContext", {})
    c.expect(pod_sc.get("runAsNonRoot") is True, "pod securityContext.runAsNonRoot must be true")
    c.expect(pod_sc.get("runAsUser", 0) != 0, "pod securityContext.runAsUser must not be 0")
    c.expect(
        pod_sc.get("seccompProfile", {}).get("type") == "RuntimeDefault",
        "pod seccompProfile must be RuntimeDefault",
    )
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        c.expect(not spec.get(field), f"pod {field} must be off")
    c.expect(spec.get("automountServiceAccountToken") is False, "automountServiceAccountToken must be false")
    c.expect(
        not any("hostPath" in v for v in spec.get("volumes", [])), "no hostPath volumes"
    )
    containers = spec.get("containers", [])
    c.expect(len(containers) == 1, "one container")
    for container in containers + spec.get("initContainers", []):
        check_container(c, container)
    return spec


def check_container(c, container):
    name = container.get("name")
    sc = container.get("securityContext", {})
    c.expect(sc.get("allowPrivilegeEscalation") is False, f"{name}: allowPrivilegeEscalation must be false")
    c.expect(sc.get("readOnlyRootFilesystem") is True, f"{name}: readOnlyRootFilesystem must be true")
    c.expect(sc.get("privileged") is not True, f"{name}: must not be privileged")
    caps = sc.get("capabilities", {})
    c.expect(caps.get("drop") == ["ALL"], f"{name}: capabilities.drop must be [ALL]")
    c.expect(not caps.get("add"), f"{name}: no capabilities added")
    c.expect(
        sc.get("seccompProfile", {}).get("type", "RuntimeDefault") == "RuntimeDefault",
        f"{name}: seccompProfile must be RuntimeDefault",
    )
    image = container.get("image", "")
    c.expect(":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest"), f"{name}: image {image!r} needs a fixed tag")

    resources = container.get("resources", {})
    for kind in ("requests", "limits"):
        for resource in ("cpu", "memory"):
            c.expect(resource in resources.get(kind, {}), f"{name}: resources.{kind}.{resource} missing")
    request = mebibytes(resources.get("requests", {}).get("memory"))
    limit = mebibytes(resources.get("limits", {}).get("memory"))
    c.expect(request is not None and request >= MIN_MEMORY_REQUEST_MI, f"{name}: memory request below {MIN_MEMORY_REQUEST_MI}Mi")
    c.expect(limit is not None and limit >= MIN_MEMORY_LIMIT_MI, f"{name}: memory limit below {MIN_MEMORY_LIMIT_MI}Mi")

    readiness = container.get("readinessProbe", {})
    c.expect(readiness.get("httpGet", {}).get("path") == HEALTH_PATH, f"{name}: readinessProbe must GET {HEALTH_PATH}")
    startup = container.get("startupProbe", {})
    c.expect(startup.get("httpGet", {}).get("path") == HEALTH_PATH, f"{name}: startupProbe must GET {HEALTH_PATH}")
    liveness = container.get("livenessProbe", {})
    live_path = liveness.get("httpGet", {}).get("path")
    c.expect(
        "tcpSocket" in liveness or live_path in (LIVE_PATH, HEALTH_PATH),
        f"{name}: livenessProbe must be a TCP check or GET {LIVE_PATH}",
    )
    tolerance = liveness.get("failureThreshold", 3) * liveness.get("periodSeconds", 10)
    c.expect(tolerance >= MIN_LIVENESS_TOLERANCE_S, f"{name}: livenessProbe restarts after {tolerance}s of failures (< {MIN_LIVENESS_TOLERANCE_S}s)")
    c.expect(
        [p.get("containerPort") for p in container.get("ports", [])] == [8700],
        f"{name}: one containerPort, 8700",
    )


def check_config(c, deployment, spec):
    """The ConfigMap the pod mounts at /etc/gha-auth holds gha-auth.toml, named by GHA_AUTH_CONFIG."""
    container = spec["containers"][0]
    env = {e["name"]: e for e in container.get("env", [])}
    path = env.get("GHA_AUTH_CONFIG", {}).get("value", "")
    c.expect(path == "/etc/gha-auth/gha-auth.toml", "GHA_AUTH_CONFIG must name /etc/gha-auth/gha-auth.toml")
    mounts = {m["mountPath"]: m for m in container.get("volumeMounts", [])}
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    mount = mounts.get("/etc/gha-auth")
    if not c.expect(mount is not None, "no volume mounted at /etc/gha-auth"):
        return None
    cm_name = volumes.get(mount["name"], {}).get("configMap", {}).get("name")
    maps = [m for m in c.of_kind("ConfigMap") if m["metadata"]["name"] == cm_name]
    if not c.expect(len(maps) == 1, f"ConfigMap {cm_name} is not in the output"):
        return None
    text = maps[0].get("data", {}).get("gha-auth.toml")
    if not c.expect(text is not None, f"ConfigMap {cm_name} has no gha-auth.toml"):
        return None
    config = tomllib.loads(text)
    c.expect(config.get("listen", "").endswith(":8700"), "config listen must use port 8700")
    c.expect(config.get("data_dir") == "/data", "config data_dir must be /data")
    c.expect(
        "/data" in mounts and not mounts["/data"].get("readOnly"), "/data must be a writable mount"
    )
    c.expect("/tmp" in mounts, "/tmp must be a mount (read-only root file system)")
    c.expect(config.get("log", {}).get("format") == "json", "logs must be JSON")
    store_url = config.get("store", {}).get("url", "")
    c.expect(not re.search(r"://[^/@]*:[^/@]*@", store_url), "no password in the store URL of the ConfigMap")
    for var in container.get("env", []):
        c.expect(
            not (var["name"] == "GHA_AUTH_STORE_URL" and "value" in var),
            "GHA_AUTH_STORE_URL must come from a Secret (valueFrom), not a literal",
        )
    return text, config


def check_scraping(c, deployment):
    annotations = deployment["spec"]["template"]["metadata"].get("annotations", {})
    c.expect(annotations.get("prometheus.io/scrape") == "true", "pod annotation prometheus.io/scrape=true")
    c.expect(annotations.get("prometheus.io/port") == "8700", "pod annotation prometheus.io/port=8700")
    c.expect(annotations.get("prometheus.io/path") == "/metrics", "pod annotation prometheus.io/path=/metrics")


def selects(selector, labels):
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def check_policies(c, deployment):
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    pdbs = [p for p in c.of_kind("PodDisruptionBudget") if selects(p["spec"]["selector"], labels)]
    c.expect(len(pdbs) == 1, "one PodDisruptionBudget selects the pods")
    policies = [p for p in c.of_kind("NetworkPolicy") if selects(p["spec"]["podSelector"], labels)]
    if not c.expect(policies, "no NetworkPolicy selects the pods"):
        return
    for policy in policies:
        name = policy["metadata"]["name"]
        c.expect(policy["spec"].get("policyTypes") == ["Ingress", "Egress"], f"NetworkPolicy {name}: policyTypes Ingress and Egress")
        for rule in policy["spec"].get("ingress", []):
            c.expect(rule.get("from") and rule.get("ports"), f"NetworkPolicy {name}: an ingress rule open to everyone or every port")
        for rule in policy["spec"].get("egress", []):
            c.expect(rule.get("to") and rule.get("ports"), f"NetworkPolicy {name}: an egress rule open to everyone or every port")
    egress_ports = {p.get("port") for pol in policies for r in pol["spec"].get("egress", []) for p in r.get("ports", [])}
    c.expect(53 in egress_ports, "egress to DNS (53) is allowed")
    return egress_ports


def check_dev(c, deployment, spec, config, egress_ports):
    c.expect(deployment["spec"].get("replicas") == 1, "dev: one replica")
    c.expect(deployment["spec"].get("strategy", {}).get("type") == "Recreate", "dev: Recreate (one SQLite writer)")
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    mounts = {m["mountPath"]: m["name"] for m in spec["containers"][0].get("volumeMounts", [])}
    claim = volumes.get(mounts.get("/data"), {}).get("persistentVolumeClaim", {}).get("claimName")
    c.expect(
        claim in [p["metadata"]["name"] for p in c.of_kind("PersistentVolumeClaim")],
        "dev: /data is a PersistentVolumeClaim of the overlay",
    )
    c.expect(not config.get("store", {}).get("url", "").startswith("postgres"), "dev: SQLite store")


def check_production(c, deployment, spec, config, egress_ports):
    c.expect(deployment["spec"].get("replicas", 1) >= 2, "production: two or more replicas")
    rolling = deployment["spec"].get("strategy", {}).get("rollingUpdate", {})
    c.expect(rolling.get("maxUnavailable") == 0, "production: rolling updates keep every replica until its successor is Ready")
    env = {e["name"]: e for e in spec["containers"][0].get("env", [])}
    c.expect(
        "secretKeyRef" in env.get("GHA_AUTH_STORE_URL", {}).get("valueFrom", {}),
        "production: PostgreSQL URL from a Secret",
    )
    vault = config.get("vault", {})
    c.expect(vault.get("address", "").startswith("https://"), "production: Vault over https")
    c.expect(vault.get("kubernetes_role"), "production: Vault Kubernetes auth (vault.kubernetes_role)")
    c.expect(config.get("keys", {}).get("backend") == "vault", "production: signing keys and pepper in Vault")
    volumes = spec.get("volumes", [])
    tokens = [
        s["serviceAccountToken"]
        for v in volumes
        for s in v.get("projected", {}).get("sources", [])
        if "serviceAccountToken" in s
    ]
    c.expect(
        len(tokens) == 1 and tokens[0].get("audience") and tokens[0].get("expirationSeconds", 0) <= 3600,
        "production: one projected service-account token with an audience, at most 1 h",
    )
    c.expect({5432, 8200} <= egress_ports, "production: egress to PostgreSQL (5432) and Vault (8200)")
    c.expect(not c.of_kind("PersistentVolumeClaim"), "production: no PersistentVolumeClaim (state lives in PostgreSQL and Vault)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("overlay", choices=["dev", "production"])
    parser.add_argument("rendered")
    parser.add_argument("--config-out")
    parser.add_argument("--env-out")
    args = parser.parse_args()
    with open(args.rendered, encoding="utf-8") as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    c = Checker(docs)
    c.expect(not c.of_kind("Secret"), "no Secret in the manifests (created outside git)")
    deployment = c.one("Deployment")
    if deployment:
        spec = check_pod(c, deployment)
        check_scraping(c, deployment)
        egress_ports = check_policies(c, deployment) or set()
        loaded = check_config(c, deployment, spec)
        if loaded:
            text, config = loaded
            overlay_check = check_dev if args.overlay == "dev" else check_production
            overlay_check(c, deployment, spec, config, egress_ports)
            if args.config_out:
                with open(args.config_out, "w", encoding="utf-8") as f:
                    f.write(text)
            if args.env_out:
                env = spec["containers"][0].get("env", [])
                with open(args.env_out, "w", encoding="utf-8") as f:
                    for var in env:
                        if var["name"].startswith("GHA_AUTH_") and var["name"] != "GHA_AUTH_CONFIG" and "value" in var:
                            f.write(f"{var['name']}={var['value']}\n")
    for problem in c.problems:
        print(f"FAIL {args.overlay}: {problem}")
    if c.problems:
        return 1
    print(f"ok   {args.overlay}: {len(docs)} resources, security and probe rules hold")
    return 0


if __name__ == "__main__":
    sys.exit(main())
