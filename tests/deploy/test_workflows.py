"""GitHub Actions workflows and dependabot: linted, schema-valid, pinned, and doing their jobs.

The workflows only run on GitHub; here they are linted (actionlint) and checked against the
schemas check-jsonschema bundles.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.tools import REPO, Manifest, load_yaml, run, tool

WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.y*ml"))
CI = REPO / ".github" / "workflows" / "ci.yml"
DEPENDABOT = REPO / ".github" / "dependabot.yml"
PINNED = re.compile(r"uses: [\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$")


@pytest.fixture(scope="module")
def jobs() -> dict[str, Manifest]:
    found: dict[str, Manifest] = load_yaml(CI)["jobs"]
    return found


def _steps(job: Manifest) -> list[Manifest]:
    steps: list[Manifest] = job["steps"]
    return steps


def _runs(job: Manifest) -> str:
    return "\n".join(str(step.get("run", "")) for step in _steps(job))


def _uses(job: Manifest, action: str) -> list[dict[str, Any]]:
    return [s for s in _steps(job) if str(s.get("uses", "")).startswith(action + "@")]


def test_actionlint_passes() -> None:
    assert CI in WORKFLOWS
    # shellcheck and pyflakes are switched off so that the result is the same on every
    # machine, whichever of them it happens to have; run scripts were checked with shellcheck.
    result = run([tool("actionlint"), "-shellcheck=", "-pyflakes=", *WORKFLOWS])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("schema", "paths"),
    [("vendor.github-workflows", WORKFLOWS), ("vendor.dependabot", [DEPENDABOT])],
    ids=["workflows", "dependabot"],
)
def test_builtin_schemas_accept(schema: str, paths: list[Path]) -> None:
    result = run([tool("check-jsonschema"), "--builtin-schema", schema, *paths])
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_action_is_pinned_by_commit_with_its_version() -> None:
    for workflow in WORKFLOWS:
        for number, line in enumerate(workflow.read_text(encoding="utf-8").splitlines(), 1):
            if "uses:" in line:
                assert PINNED.search(line.strip()), f"{workflow.name}:{number}: {line.strip()}"


def test_the_test_job_runs_make_test_beside_postgres_and_redis(jobs: dict[str, Manifest]) -> None:
    job = jobs["test"]
    services = job["services"]
    assert "5432:5432" in services["postgres"]["ports"]
    assert services["postgres"]["env"]["POSTGRES_HOST_AUTH_METHOD"] == "trust"
    assert "6379:6379" in services["redis"]["ports"]
    commands = _runs(job)
    assert re.search(r"apt-get install [^\n]*\bprometheus\b", commands), "promtool"
    assert re.search(r"apt-get install [^\n]*\bwrk\b", commands)
    assert "make test" in commands


def test_the_train_job_trains_small_and_keeps_the_model(jobs: dict[str, Manifest]) -> None:
    job = jobs["train"]
    commands = _runs(job)
    generate = re.search(r"fraudsvc generate (.*)", commands)
    assert generate is not None
    assert generate.group(1).split() == [
        "--customers",
        "1000",
        "--terminals",
        "2000",
        "--days",
        "100",
    ]
    assert commands.index("fraudsvc generate") < commands.index("fraudsvc train")
    (upload,) = _uses(job, "actions/upload-artifact")
    assert upload["with"]["path"].split() == ["data/mlflow", "data/reports"]
    assert upload["with"]["if-no-files-found"] == "error"


def test_the_image_job_builds_the_containerfile_and_scans_it(jobs: dict[str, Manifest]) -> None:
    job = jobs["image"]
    (build,) = _uses(job, "docker/build-push-action")
    assert build["with"]["file"] == "Containerfile"
    assert build["with"]["load"] is True
    (scan,) = _uses(job, "aquasecurity/trivy-action")
    assert scan["with"]["image-ref"] == build["with"]["tags"]
    assert scan["with"]["exit-code"] == "1"
    steps = [str(s.get("uses") or s.get("run")) for s in _steps(job)]
    assert steps.index(str(scan["uses"])) > steps.index(str(build["uses"]))


def test_workflows_hold_least_privilege_and_time_limits(jobs: dict[str, Manifest]) -> None:
    assert load_yaml(CI)["permissions"] == {"contents": "read"}
    for name, job in jobs.items():
        assert job.get("timeout-minutes"), f"{name} has no time limit"
        for checkout in _uses(job, "actions/checkout"):
            assert checkout["with"]["persist-credentials"] is False, name


def test_dependabot_watches_actions_and_the_uv_lock() -> None:
    ecosystems = {u["package-ecosystem"] for u in load_yaml(DEPENDABOT)["updates"]}
    assert {"github-actions", "uv"} <= ecosystems
