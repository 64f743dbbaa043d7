"""The Kubernetes overlays render, validate against the API schemas, and hold together.

Built-in kinds go through `kubernetes-validate --strict` (schemas bundled, unknown fields
refused). It has no schema for custom resources, so the KEDA ScaledObject and the Prometheus
operator's ServiceMonitors are checked here against the fields those operators need. Whether a
cluster accepts and runs all of it is only known where a cluster exists (deploy/README.md).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fraudsvc.settings import is_known_variable
from tests.deploy.containerfile import stages
from tests.deploy.kustomize import render
from tests.deploy.tools import REPO, Manifest, dump_documents, load_documents, load_yaml, run, tool

DEPLOY = REPO / "deploy"
OVERLAYS = {"dev": "fraudsvc-dev", "prod": "fraudsvc-prod"}
CUSTOM_KINDS = {"ScaledObject", "ServiceMonitor", "PrometheusRule"}
EXPECTED = {
    ("Namespace", None),
    ("ServiceAccount", "fraudsvc"),
    ("ConfigMap", "fraudsvc-config"),
    ("Job", "fraudsvc-migrate"),
    ("Deployment", "fraudsvc-web"),
    ("Service", "fraudsvc-web"),
    ("HorizontalPodAutoscaler", "fraudsvc-web"),
    ("PodDisruptionBudget", "fraudsvc-web"),
    ("Deployment", "fraudsvc-worker"),
    ("Service", "fraudsvc-worker"),
    ("ScaledObject", "fraudsvc-worker"),
    ("ServiceMonitor", "fraudsvc-web"),
    ("ServiceMonitor", "fraudsvc-worker"),
    ("PrometheusRule", "fraudsvc"),
    ("NetworkPolicy", "fraudsvc-default"),
    ("NetworkPolicy", "fraudsvc-web-ingress"),
    ("NetworkPolicy", "fraudsvc-worker-metrics"),
}
SECRET_EXAMPLE = DEPLOY / "base" / "secret.example.yaml"


@pytest.fixture(scope="module", params=sorted(OVERLAYS))
def overlay(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def rendered(overlay: str) -> list[Manifest]:
    return render(DEPLOY / "overlays" / overlay)


def _one(documents: list[Manifest], kind: str, name: str) -> Manifest:
    found = [d for d in documents if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def _pod_templates(documents: list[Manifest]) -> list[tuple[str, Manifest]]:
    return [
        (d["metadata"]["name"], d["spec"]["template"])
        for d in documents
        if d["kind"] in ("Deployment", "Job")
    ]


def _quantity(value: str | int) -> float:
    """CPU or memory quantity in base units (cores, bytes)."""
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 1e3, "M": 1e6, "G": 1e9}
    match = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(value))
    assert match is not None, f"not a quantity: {value!r}"
    return float(match.group(1)) * units.get(match.group(2), 1.0)


def _image_uid() -> int:
    (user,) = stages(REPO / "Containerfile")[-1].all("USER")
    return int(user.arguments.partition(":")[0])


def test_the_overlay_holds_every_piece(rendered: list[Manifest]) -> None:
    present = {
        (d["kind"], None if d["kind"] == "Namespace" else d["metadata"]["name"]) for d in rendered
    }
    assert present == EXPECTED
    assert len(rendered) == len(EXPECTED), "a resource appears twice"


def test_everything_lands_in_the_overlays_namespace(overlay: str, rendered: list[Manifest]) -> None:
    namespace = _one(rendered, "Namespace", OVERLAYS[overlay])
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    for doc in rendered:
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == OVERLAYS[overlay], doc["metadata"]["name"]


def test_built_in_kinds_validate_strictly(rendered: list[Manifest], tmp_path: Path) -> None:
    builtin = [d for d in rendered if d["kind"] not in CUSTOM_KINDS]
    manifest = tmp_path / "rendered.yaml"
    manifest.write_text(dump_documents(builtin), encoding="utf-8")
    result = run([tool("kubernetes-validate"), "--strict", manifest])
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert output.count("passed for resource") == len(builtin), output


def test_no_secret_is_rendered(rendered: list[Manifest]) -> None:
    kinds = {d["kind"] for d in rendered}
    assert "Secret" not in kinds, "secrets are created out of band, never kept in the overlays"


def test_the_alert_rules_are_the_ones_compose_runs(rendered: list[Manifest]) -> None:
    rule = next(d for d in rendered if d["kind"] == "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    source = load_yaml(REPO / "observability" / "prometheus" / "alerts.yml")
    assert rule["spec"]["groups"] == source["groups"], "run `make rules` after editing alerts.yml"
    alerts = [r for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r]
    assert alerts
    assert all(r["labels"]["severity"] in ("critical", "warning") for r in alerts)


def test_pods_run_locked_down(rendered: list[Manifest]) -> None:
    uid = _image_uid()
    for name, template in _pod_templates(rendered):
        pod = template["spec"]
        security = pod["securityContext"]
        assert security["runAsNonRoot"] is True, name
        assert security["runAsUser"] == uid, f"{name}: not the image's UID {uid}"
        assert security["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert pod["automountServiceAccountToken"] is False, name
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["capabilities"] == {"drop": ["ALL"]}, name


def test_every_container_has_requests_within_limits(rendered: list[Manifest]) -> None:
    for name, template in _pod_templates(rendered):
        for container in template["spec"]["containers"]:
            resources = container["resources"]
            for resource in ("cpu", "memory"):
                request = _quantity(resources["requests"][resource])
                limit = _quantity(resources["limits"][resource])
                assert 0 < request <= limit, f"{name}: {resource} request above its limit"


def test_writable_paths_are_empty_dirs(rendered: list[Manifest]) -> None:
    env = stages(REPO / "Containerfile")[-1].env()
    writable = {env["FRAUDSVC_DATA_DIR"], env["TMPDIR"]}
    for name, template in _pod_templates(rendered):
        pod = template["spec"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        for container in pod["containers"]:
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            assert writable <= set(mounts), f"{name}: {writable - set(mounts)} not mounted"
            for path in writable:
                assert "emptyDir" in volumes[mounts[path]], f"{name}: {path} is not an emptyDir"


def _container(rendered: list[Manifest], deployment: str) -> Manifest:
    pod = _one(rendered, "Deployment", deployment)["spec"]["template"]["spec"]
    containers: list[Manifest] = pod["containers"]
    assert len(containers) == 1, f"{deployment}: one container per pod"
    return containers[0]


def _probe_port(container: Manifest, probe: str) -> int:
    port = container[probe]["httpGet"]["port"]
    if isinstance(port, int):
        return port
    named = {p["name"]: p["containerPort"] for p in container["ports"]}
    return int(named[port])


def test_web_probes_and_command(rendered: list[Manifest]) -> None:
    web = _container(rendered, "fraudsvc-web")
    assert web["command"] == ["fraudsvc", "web"], "one uvicorn process per pod"
    assert web["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert web["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert _probe_port(web, probe) == 8000
    assert {"name": "OTEL_SERVICE_NAME", "value": "fraudsvc-web"} in web["env"]


def test_worker_probes_and_command(rendered: list[Manifest]) -> None:
    worker = _container(rendered, "fraudsvc-worker")
    assert worker["command"] == ["fraudsvc", "worker"]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert worker[probe]["httpGet"]["path"] == "/healthz"
        assert _probe_port(worker, probe) == 9101
    env = {e["name"]: e["value"] for e in worker["env"]}
    assert env["OTEL_SERVICE_NAME"] == "fraudsvc-worker"
    # the LIME pool must not outgrow the CPU limit (os.cpu_count() sees the whole node)
    assert int(env["FRAUDSVC_EXPLAIN_PROCESSES"]) <= _quantity(worker["resources"]["limits"]["cpu"])


def test_migrations_run_as_a_job(rendered: list[Manifest]) -> None:
    job = _one(rendered, "Job", "fraudsvc-migrate")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["fraudsvc", "migrate"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] in ("OnFailure", "Never")


def test_overlays_set_the_image(overlay: str, rendered: list[Manifest]) -> None:
    images = {c["image"] for _, t in _pod_templates(rendered) for c in t["spec"]["containers"]}
    assert len(images) == 1, "every role runs the same image"
    (image,) = images
    assert image != "fraudsvc", "the overlay must choose the image"
    assert re.fullmatch(r"[\w./:-]+(:[\w.-]+|@sha256:[0-9a-f]{64})", image), image
    if overlay == "dev":
        assert image == "fraudsvc:local"


def _environment_names(rendered: list[Manifest]) -> set[str]:
    names = set(_one(rendered, "ConfigMap", "fraudsvc-config")["data"])
    for _, template in _pod_templates(rendered):
        for container in template["spec"]["containers"]:
            names |= {e["name"] for e in container.get("env", [])}
    return names


def test_every_variable_given_to_the_pods_is_read_by_the_code(rendered: list[Manifest]) -> None:
    names = _environment_names(rendered) | set(load_yaml(SECRET_EXAMPLE)["stringData"])
    unknown = sorted(n for n in names if not is_known_variable(n))
    assert not unknown, f"read by nothing in fraudsvc: {unknown}"


def test_pods_read_the_configmap_and_the_secret_they_name(rendered: list[Manifest]) -> None:
    secret_name = load_yaml(SECRET_EXAMPLE)["metadata"]["name"]
    for name, template in _pod_templates(rendered):
        for container in template["spec"]["containers"]:
            sources = container["envFrom"]
            assert {"configMapRef": {"name": "fraudsvc-config"}} in sources, name
            assert {"secretRef": {"name": secret_name}} in sources, name


def test_the_secret_example_is_valid_fake_and_left_out() -> None:
    result = run([tool("kubernetes-validate"), "--strict", SECRET_EXAMPLE])
    assert result.returncode == 0, result.stdout + result.stderr
    secret = load_yaml(SECRET_EXAMPLE)
    assert set(secret["stringData"]) == {"DATABASE_URL", "REDIS_URL", "FRAUDSVC_API_KEYS"}
    for value in secret["stringData"].values():
        assert "EXAMPLE" in value
    for kustomization in DEPLOY.rglob("kustomization.yaml"):
        assert "secret.example.yaml" not in load_yaml(kustomization).get("resources", [])


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def test_services_hpa_and_pdb_select_the_right_pods(rendered: list[Manifest]) -> None:
    for role in ("web", "worker"):
        deployment = _one(rendered, "Deployment", f"fraudsvc-{role}")
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert _selects(deployment["spec"]["selector"]["matchLabels"], labels)
        service = _one(rendered, "Service", f"fraudsvc-{role}")
        assert _selects(service["spec"]["selector"], labels)
        ports = {
            p["name"] for p in deployment["spec"]["template"]["spec"]["containers"][0]["ports"]
        }
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= ports
    web_labels = _one(rendered, "Deployment", "fraudsvc-web")["spec"]["template"]["metadata"][
        "labels"
    ]
    pdb = _one(rendered, "PodDisruptionBudget", "fraudsvc-web")
    assert _selects(pdb["spec"]["selector"]["matchLabels"], web_labels)
    hpa = _one(rendered, "HorizontalPodAutoscaler", "fraudsvc-web")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "fraudsvc-web",
    }
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    assert "replicas" not in _one(rendered, "Deployment", "fraudsvc-web")["spec"], (
        "the HPA owns the web replica count"
    )
    assert "replicas" not in _one(rendered, "Deployment", "fraudsvc-worker")["spec"], (
        "KEDA owns the worker replica count"
    )


def test_network_policies_open_the_served_ports(rendered: list[Manifest]) -> None:
    policies = [d for d in rendered if d["kind"] == "NetworkPolicy"]
    for role, port in (("web", 8000), ("worker", 9101)):
        labels = _one(rendered, "Deployment", f"fraudsvc-{role}")["spec"]["template"]["metadata"][
            "labels"
        ]
        opened = {
            p["port"]
            for policy in policies
            if _selects(policy["spec"]["podSelector"]["matchLabels"], labels)
            for rule in policy["spec"].get("ingress", [])
            for p in rule.get("ports", [])
        }
        assert port in opened, f"no NetworkPolicy lets traffic reach {role}:{port}"


def test_keda_scales_the_worker_on_the_queue_depth(overlay: str, rendered: list[Manifest]) -> None:
    scaled = _one(rendered, "ScaledObject", "fraudsvc-worker")
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    spec = scaled["spec"]
    target = spec["scaleTargetRef"]
    assert target.get("kind", "Deployment") == "Deployment"
    assert target.get("apiVersion", "apps/v1") == "apps/v1"
    _one(rendered, "Deployment", target["name"])
    assert target["name"] == "fraudsvc-worker"
    # the workers export the gauge themselves: at least one must stay up
    assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "prometheus", "arq's queue is a sorted set: no Redis list trigger"
    metadata = trigger["metadata"]
    assert all(isinstance(v, str) for v in metadata.values()), "KEDA metadata values are strings"
    assert metadata["serverAddress"].startswith(("http://", "https://"))
    assert float(metadata["threshold"]) > 0
    query = metadata["query"]
    assert "fraudsvc_explain_queue_depth" in query
    assert query.startswith("max("), "each worker reports the whole queue: max, not sum"
    assert f'namespace="{OVERLAYS[overlay]}"' in query, "the query reads another namespace"


def test_service_monitors_scrape_web_and_worker(rendered: list[Manifest]) -> None:
    monitors = [d for d in rendered if d["kind"] == "ServiceMonitor"]
    scraped: set[str] = set()
    for monitor in monitors:
        assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
        selector = monitor["spec"]["selector"]["matchLabels"]
        services = [
            d
            for d in rendered
            if d["kind"] == "Service"
            and d["metadata"]["namespace"] == monitor["metadata"]["namespace"]
            and _selects(selector, d["metadata"]["labels"])
        ]
        assert len(services) == 1, f"{monitor['metadata']['name']} selects {len(services)}"
        port_names = {p["name"] for p in services[0]["spec"]["ports"]}
        assert monitor["spec"]["endpoints"]
        for endpoint in monitor["spec"]["endpoints"]:
            assert endpoint["port"] in port_names
            assert endpoint["path"] == "/metrics"
        scraped.add(services[0]["metadata"]["name"])
    assert scraped == {"fraudsvc-web", "fraudsvc-worker"}


def test_base_manifests_are_all_listed() -> None:
    base = DEPLOY / "base"
    listed = set(load_yaml(base / "kustomization.yaml")["resources"])
    on_disk = {p.name for p in base.glob("*.yaml")} - {"kustomization.yaml"}
    assert on_disk - listed == {"secret.example.yaml"}, "a manifest is not in the base"
    for name in listed:
        assert load_documents(base / name), f"{name} is empty"
