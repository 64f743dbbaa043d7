"""The offline kustomize renderer (tests/deploy/kustomize.py) does what kustomize does.

The unit tests pin each piece of the subset; the last test builds the real overlays with a real
kustomize (`kustomize build`, or `kubectl kustomize`) when the machine has one and demands the
same resources, field for field.
"""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from tests.deploy.kustomize import UnsupportedKustomization, render
from tests.deploy.tools import REPO, Manifest, parse_documents, run

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
  labels: {tier: web, team: fraud}
spec:
  selector: {matchLabels: {app: x}}
  template:
    metadata: {labels: {app: x}}
    spec:
      containers:
        - name: main
          image: fraudsvc
          env: [{name: A, value: "1"}, {name: B, value: "2"}, {name: C, value: "3"}]
          ports: [{name: http, containerPort: 8000}]
        - name: side
          image: registry.local:5000/side:1.0
      volumes: [{name: v1, emptyDir: {}}, {name: v2, emptyDir: {}}]
"""

SCALED_OBJECT = """\
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: app}
spec:
  scaleTargetRef: {name: app}
  triggers:
    - type: prometheus
      metadata: {serverAddress: "http://p:9090", query: q1, threshold: "5"}
"""

NAMESPACE = """\
apiVersion: v1
kind: Namespace
metadata: {name: space}
"""


def _write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(textwrap.dedent(text), encoding="utf-8")
    return folder


def _overlay(tmp_path: Path, kustomization: str, patch: str | None = None) -> Path:
    _write(
        tmp_path / "base",
        {
            "kustomization.yaml": "resources: [deployment.yaml, scaledobject.yaml]\n",
            "deployment.yaml": DEPLOYMENT,
            "scaledobject.yaml": SCALED_OBJECT,
        },
    )
    files = {"kustomization.yaml": kustomization, "namespace.yaml": NAMESPACE}
    if patch is not None:
        files["patch.yaml"] = patch
    return _write(tmp_path / "overlay", files)


def _by_kind(documents: list[Manifest]) -> dict[str, Manifest]:
    return {doc["kind"]: doc for doc in documents}


DEPLOYMENT_PATCH = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
  labels: {team: null, tier: api}
spec:
  template:
    spec:
      containers:
        - name: new
          image: busybox
        - name: main
          env: [{name: D, value: "4"}, {name: B, value: "22"}]
      volumes: [{name: v3, emptyDir: {}}]
"""


def test_a_patch_merges_maps_deletes_nulls_and_merges_lists_by_key(tmp_path: Path) -> None:
    overlay = _overlay(
        tmp_path, "resources: [../base]\npatches:\n  - path: patch.yaml\n", DEPLOYMENT_PATCH
    )
    deployment = _by_kind(render(overlay))["Deployment"]
    assert deployment["metadata"]["labels"] == {"tier": "api"}
    pod = deployment["spec"]["template"]["spec"]
    # kustomize's order: the patch's items first, then the untouched originals
    assert [c["name"] for c in pod["containers"]] == ["new", "main", "side"]
    main = pod["containers"][1]
    assert main["image"] == "fraudsvc"
    assert main["ports"] == [{"name": "http", "containerPort": 8000}]
    assert main["env"] == [
        {"name": "D", "value": "4"},
        {"name": "B", "value": "22"},
        {"name": "A", "value": "1"},
        {"name": "C", "value": "3"},
    ]
    assert [v["name"] for v in pod["volumes"]] == ["v3", "v1", "v2"]


def test_a_custom_resources_lists_are_replaced_whole(tmp_path: Path) -> None:
    patch = """\
    apiVersion: keda.sh/v1alpha1
    kind: ScaledObject
    metadata: {name: app}
    spec:
      triggers:
        - type: prometheus
          metadata: {query: q2}
    """
    overlay = _overlay(tmp_path, "resources: [../base]\npatches:\n  - path: patch.yaml\n", patch)
    triggers = _by_kind(render(overlay))["ScaledObject"]["spec"]["triggers"]
    assert triggers == [{"type": "prometheus", "metadata": {"query": "q2"}}]


def test_namespace_goes_on_namespaced_resources_only(tmp_path: Path) -> None:
    overlay = _overlay(tmp_path, "namespace: space\nresources: [namespace.yaml, ../base]\n")
    documents = _by_kind(render(overlay))
    assert "namespace" not in documents["Namespace"]["metadata"]
    assert documents["Deployment"]["metadata"]["namespace"] == "space"
    assert documents["ScaledObject"]["metadata"]["namespace"] == "space"


def test_images_are_renamed_retagged_or_pinned_by_digest(tmp_path: Path) -> None:
    overlay = _overlay(
        tmp_path,
        """\
        resources: [../base]
        images:
          - {name: fraudsvc, newName: ghcr.io/o/fraudsvc, newTag: "1.2"}
          - {name: registry.local:5000/side, digest: "sha256:abc"}
        """,
    )
    containers = _by_kind(render(overlay))["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert [c["image"] for c in containers] == [
        "ghcr.io/o/fraudsvc:1.2",
        "registry.local:5000/side@sha256:abc",
    ]


@pytest.mark.parametrize(
    ("kustomization", "patch"),
    [
        ("resources: [../base]\nnamePrefix: x-\n", None),
        ("resources: [../base]\ncommonLabels: {a: b}\n", None),
        ("resources: [../base]\npatches:\n  - path: patch.yaml\n    target: {kind: X}\n", ""),
        ("resources: [https://example.invalid/base]\n", None),
        (
            "resources: [../base]\npatches:\n  - path: patch.yaml\n",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: missing}\n",
        ),
        (
            "resources: [../base]\npatches:\n  - path: patch.yaml\n",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: app}\n$patch: delete\n",
        ),
    ],
    ids=["namePrefix", "commonLabels", "patch-target", "remote", "no-match", "directive"],
)
def test_anything_outside_the_subset_is_refused(
    tmp_path: Path, kustomization: str, patch: str | None
) -> None:
    overlay = _overlay(tmp_path, kustomization, patch)
    with pytest.raises(UnsupportedKustomization):
        render(overlay)


def _real_kustomize() -> list[str] | None:
    if kustomize := shutil.which("kustomize"):
        return [kustomize, "build"]
    if kubectl := shutil.which("kubectl"):
        return [kubectl, "kustomize"]
    return None


def _keyed(documents: list[Manifest]) -> dict[tuple[str, str, str, str], Manifest]:
    return {
        (d["apiVersion"], d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"]): d
        for d in documents
    }


@pytest.mark.parametrize("folder", ["deploy/base", "deploy/overlays/dev", "deploy/overlays/prod"])
def test_the_renderer_agrees_with_a_real_kustomize(folder: str) -> None:
    command = _real_kustomize()
    if command is None:
        pytest.skip("no kustomize or kubectl on PATH to compare with")
    result = run([*command, REPO / folder])
    assert result.returncode == 0, result.stderr
    theirs = _keyed(parse_documents(result.stdout))
    ours = _keyed(render(REPO / folder))
    assert sorted(ours) == sorted(theirs)
    for key, document in ours.items():
        assert document == theirs[key], f"{key} differs from kustomize's rendering"
