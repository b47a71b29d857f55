#!/usr/bin/env python3
"""Checks the Docker side without a Docker engine: docker/compose.yaml, the Grafana
provisioning and dashboard, and what the Dockerfiles promise. `docker compose config` and
`docker build` cannot run here; hadolint lints the Dockerfiles beside this (see .ci/run).
Also checks that every relative link in the documentation resolves, so the repository stands
on its own. Prints one line per problem and exits 1 if there is any."""
import json
import re
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
DOCKER = ROOT / "docker"
problems = []


def check(ok, message):
    if not ok:
        problems.append(message)


def compose():
    text = (DOCKER / "compose.yaml").read_text()
    doc = yaml.safe_load(text)
    services = doc.get("services", {})
    check({"inverter-monitor", "mosquitto"} <= set(services), "compose: needs inverter-monitor and mosquitto")
    for name, profile in [("influxdb", "influxdb"), ("grafana", "grafana")]:
        check(services.get(name, {}).get("profiles") == [profile], f"compose: {name} must be in profile {profile}")
    app = services.get("inverter-monitor", {})
    build = app.get("build", {})
    check((DOCKER / build.get("context", "") / build.get("dockerfile", "")).is_file(), "compose: build file missing")
    deps = app.get("depends_on", {})
    check(deps.get("mosquitto", {}).get("condition") == "service_healthy", "compose: wait for a healthy broker")
    for name, service in services.items():
        check("image" in service, f"compose: {name} has no image")
        check(":" in service.get("image", ":") and not service.get("image", "").endswith(":latest"),
              f"compose: {name} image is not pinned")
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                check((DOCKER / source).exists(), f"compose: {name} mounts {source}, which does not exist")
            else:
                check(source in doc.get("volumes", {}), f"compose: {name} uses undeclared volume {source}")
        for secret in service.get("secrets", []):
            check(secret in doc.get("secrets", {}), f"compose: {name} uses undeclared secret {secret}")
        for port in service.get("ports", []):
            check(re.fullmatch(r"\d+:\d+", str(port)) is not None, f"compose: {name} port {port} is not HOST:CONTAINER")
    for name in ["mosquitto", "influxdb"]:
        test = services.get(name, {}).get("healthcheck", {}).get("test", [])
        check(test[:1] == ["CMD"], f"compose: {name} needs an exec-form healthcheck")
    for key in app.get("environment", {}):
        check(key == "TZ" or key.startswith("INVERTER_MONITOR__"), f"compose: {key} is not a setting")
    example = (DOCKER / ".env.example").read_text()
    for var in set(re.findall(r"\$\{([A-Z_]+)", text)):
        check(re.search(rf"^{var}=", example, re.M) is not None, f"compose: ${{{var}}} is not in .env.example")


def grafana():
    datasources = yaml.safe_load((DOCKER / "grafana/provisioning/datasources/influxdb.yaml").read_text())
    uids = {d["uid"] for d in datasources["datasources"]}
    dashboard = json.loads((DOCKER / "grafana/dashboards/inverter-monitor.json").read_text())
    keys = set()
    for profile in (ROOT / "config/profiles").glob("*.toml"):
        keys |= {r["key"] for r in tomllib.loads(profile.read_text()).get("reading", [])}
    titles = []
    for panel in dashboard["panels"]:
        titles.append(panel["title"].lower())
        check(panel["datasource"]["uid"] in uids, f"grafana: panel {panel['title']} uses an unknown datasource")
        for target in panel["targets"]:
            for field in re.findall(r'r\._field == "([a-z0-9_]+)"', target["query"]):
                check(field in keys, f"grafana: panel {panel['title']} reads {field}, which no profile has")
    for want in ["power flow", "battery soc", "daily energy"]:
        check(any(want in t for t in titles), f"grafana: no panel for {want}")


def dockerfiles():
    for path, user in [(DOCKER / "Dockerfile", "65532"), (ROOT / "ha/inverter_monitor/Dockerfile", None)]:
        text = path.read_text()
        name = path.relative_to(ROOT)
        check(re.search(r'^HEALTHCHECK .*\n?.*CMD \["/usr/local/bin/inverter-monitor", "healthcheck"\]', text, re.M)
              is not None, f"{name}: HEALTHCHECK must run the binary's healthcheck in exec form")
        check("BUILD_FROM" not in text, f"{name}: BUILD_FROM is no longer passed by the Supervisor")
        check(len(re.findall(r"^FROM ", text, re.M)) >= 2, f"{name}: must be multi-stage")
        stages = re.findall(r"^FROM .*? AS (\S+)$", text, re.M)
        for image in re.findall(r"^FROM (?:--platform=\S+ )?(\S+)", text, re.M):
            local = image == "scratch" or any(image.replace("${TARGETARCH}", "") in s for s in stages)
            check(local or re.search(r":[^/]+@sha256:[0-9a-f]{64}$", image) is not None,
                  f"{name}: base image {image} is not pinned as tag@sha256:digest")
        last_user = re.findall(r"^USER (\S+)", text, re.M)
        if user:
            check(last_user[-1:] == [f"{user}:{user}"], f"{name}: must run as {user}")
        else:
            check(not last_user, f"{name}: the add-on runs as root (the Supervisor's options.json)")


DOC_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def anchor(heading):
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path):
    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.M | re.S)
    return {anchor(m) for m in re.findall(r"^#+ (.*)$", text, re.M)}


def doc_links():
    """Every relative link in README.md, CONTRIBUTING.md, docs/ and the add-on's DOCS.md names a
    file or folder of this repository, and a `#fragment` names one of its headings."""
    pages = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", ROOT / "ha/inverter_monitor/DOCS.md"]
    pages += sorted((ROOT / "docs").glob("*.md"))
    for page in pages:
        text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.M | re.S)
        for target in DOC_LINK.findall(text):
            if re.match(r"[a-z]+:", target):
                continue
            file, _, fragment = target.partition("#")
            dest = (page.parent / file).resolve() if file else page
            name = page.relative_to(ROOT)
            check(dest.exists() and ROOT in dest.parents, f"{name}: link to {target}: no such file here")
            if fragment and dest.is_file() and dest.suffix == ".md":
                check(fragment in anchors(dest), f"{name}: link to {target}: no such heading")


CITATION = re.compile(r"docs/(style|protocol)\.md((?:[ ,]+(?:and )?(?:§[0-9.]+(?:–[0-9.]+)?|Q[0-9]+(?:–Q[0-9]+)?))+)")


def sections(page):
    """The section numbers a page's headings carry: `§9` in style.md, `2.6` or `Q11` in protocol.md."""
    text = re.sub(r"^```.*?^```", "", (ROOT / "docs" / page).read_text(), flags=re.M | re.S)
    return set(re.findall(r"^#+ §?((?:Q?[0-9]+)(?:\.[0-9]+)?) ", text, re.M))


def citations():
    """Every `docs/style.md §n` and `docs/protocol.md §x.y` or `Qn` in code, config and docs names
    a section that exists."""
    known = {"style": sections("style.md"), "protocol": sections("protocol.md")}
    files = [f for d in ["src", "tests", "benches", "fuzz", "config", "docs"] for f in (ROOT / d).rglob("*")
             if f.suffix in {".rs", ".toml", ".md"} and "target" not in f.parts]
    for file in files + [ROOT / "README.md", ROOT / "CONTRIBUTING.md"]:
        text = file.read_text()
        if file.suffix == ".rs":
            for old in re.findall(r"STYLE [0-9]+|(?<![/`])protocol\.md (?:§|Q)[0-9.]+", text):
                check(False, f"{file.relative_to(ROOT)}: cites `{old}`; write docs/style.md §n or docs/protocol.md §x")
        for page, refs in CITATION.findall(text):
            for ref in re.findall(r"§([0-9.]+)(?:–([0-9.]+))?|(Q[0-9]+)(?:–(Q[0-9]+))?", refs):
                for part in filter(None, ref):
                    check(part.rstrip(".") in known[page],
                          f"{file.relative_to(ROOT)}: cites docs/{page}.md {part}, which has no such section")


def addon_arches():
    """Each architecture config.yaml offers has a final stage that labels it with the
    Supervisor's name for it, which a multi-platform build picks by Docker's name."""
    manifest = yaml.safe_load((ROOT / "ha/inverter_monitor/config.yaml").read_text())
    text = (ROOT / "ha/inverter_monitor/Dockerfile").read_text()
    docker_names = {"aarch64": "arm64", "amd64": "amd64"}
    for arch in manifest.get("arch", []):
        docker = docker_names.get(arch)
        check(docker is not None, f"config.yaml: arch {arch} has no Docker platform here")
        stage = re.search(rf"^FROM \S+ AS run-{docker}\nLABEL io\.hass\.arch=\"{arch}\"$", text, re.M)
        check(stage is not None, f"ha/inverter_monitor/Dockerfile: no run-{docker} stage labelled {arch}")


def kubernetes():
    """What the schema cannot see in deploy/kubernetes/statefulset.yaml: the shard count is the
    replica count, the index is the pod's, the ConfigMap is mounted where the image reads its
    config, and the probes ask the port the image serves."""
    docs = {d["kind"]: d for d in yaml.safe_load_all((ROOT / "deploy/kubernetes/statefulset.yaml").read_text()) if d}
    check({"ConfigMap", "Service", "StatefulSet"} <= set(docs), "kubernetes: needs a ConfigMap, a Service, a StatefulSet")
    spec = docs.get("StatefulSet", {}).get("spec", {})
    check(docs.get("Service", {}).get("spec", {}).get("clusterIP") == "None", "kubernetes: the Service must be headless")
    check(spec.get("serviceName") == docs.get("Service", {}).get("metadata", {}).get("name"),
          "kubernetes: serviceName must name the headless Service")
    pod = spec.get("template", {}).get("spec", {})
    container = (pod.get("containers") or [{}])[0]
    env = {e["name"]: e for e in container.get("env", [])}
    check(env.get("INVERTER_MONITOR_SHARD", {}).get("value") == f"$(POD_INDEX)/{spec.get('replicas')}",
          "kubernetes: INVERTER_MONITOR_SHARD must be $(POD_INDEX)/<replicas>")
    index = env.get("POD_INDEX", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
    check(index == "metadata.labels['apps.kubernetes.io/pod-index']", "kubernetes: POD_INDEX must be the pod-index label")
    names = list(env)
    check("POD_INDEX" in names and "INVERTER_MONITOR_SHARD" in names
          and names.index("POD_INDEX") < names.index("INVERTER_MONITOR_SHARD"),
          "kubernetes: $(POD_INDEX) expands only when POD_INDEX is defined before it")
    image_config = re.search(r"INVERTER_MONITOR_CONFIG=(\S+)", (DOCKER / "Dockerfile").read_text())
    mounts = {m["name"]: m["mountPath"] for m in container.get("volumeMounts", [])}
    check(image_config is not None and image_config.group(1) == f"{mounts.get('config')}/inverter-monitor.toml",
          "kubernetes: the ConfigMap must be mounted where the image reads its config")
    check(mounts.get("data") == "/data", "kubernetes: data must be mounted on the image's data_dir, /data")
    claims = [c["metadata"]["name"] for c in spec.get("volumeClaimTemplates", [])]
    check("data" in claims, "kubernetes: data_dir needs a volumeClaimTemplate per pod")
    for probe in ["readinessProbe", "livenessProbe"]:
        check(container.get(probe, {}).get("httpGet", {}).get("port") == "http", f"kubernetes: {probe} must ask port http")


compose()
grafana()
dockerfiles()
doc_links()
citations()
addon_arches()
kubernetes()
for problem in problems:
    print(problem)
print(f"docker/, deploy/ and doc links: {'ok' if not problems else f'{len(problems)} problem(s)'}")
sys.exit(1 if problems else 0)
