"""A small kustomize renderer, enough to build deploy/overlays/* with no kustomize binary.

kustomize is neither on PyPI nor in Debian, so the tests render the overlays with this module
and validate what comes out. It implements only the subset the overlays use, and refuses
everything else instead of ignoring it (UnsupportedKustomization), so an overlay that grows
past the subset fails the tests rather than rendering wrongly.

The subset, with kustomize 5's semantics:
- `resources`: YAML files (several documents allowed) and directories with a kustomization.yaml,
  rendered first with their own kustomization.
- `patches`: entries with a `path` only; the file holds one strategic-merge patch, matched to
  exactly one resource by apiVersion, kind and name. Mappings merge key by key and `null`
  deletes a key. Lists of built-in kinds listed in MERGE_KEYS merge by their key, the patch's
  items first (merged into their match) then the remaining original items, the order kustomize
  prints; every other list, and every list of a custom resource (KEDA, Prometheus operator),
  is replaced whole, because kustomize has no schema for them.
- `namespace`: set on every resource except the cluster-scoped kinds in CLUSTER_SCOPED.
- `images`: `name` with `newName`, `newTag` and/or `digest`, applied to the image of every
  `containers` and `initContainers` entry at any depth.
Transformers run in kustomize's order: patches, then namespace, then images.

Not supported (raises): namePrefix/nameSuffix, labels/commonLabels/commonAnnotations,
configMapGenerator/secretGenerator, components, replicas, replacements, patch `target`s,
JSON 6902 patches, `$patch` directives, remote resources, and kinds whose references the
namespace transformer would have to rewrite (RoleBinding, ClusterRoleBinding).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from tests.deploy.tools import Manifest, load_documents, load_yaml

SUPPORTED_FIELDS = frozenset({"apiVersion", "kind", "resources", "namespace", "images", "patches"})
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")

# patchMergeKey of the built-in list fields the overlays may patch (from the Kubernetes API).
# `ports` is a container's port list (containerPort) or a Service's (port).
MERGE_KEYS: dict[str, tuple[str, ...]] = {
    "containers": ("name",),
    "initContainers": ("name",),
    "ephemeralContainers": ("name",),
    "env": ("name",),
    "volumes": ("name",),
    "volumeMounts": ("mountPath",),
    "imagePullSecrets": ("name",),
    "ports": ("containerPort", "port"),
    "topologySpreadConstraints": ("topologyKey",),
}

CLUSTER_SCOPED = frozenset(
    {
        "Namespace",
        "ClusterRole",
        "CustomResourceDefinition",
        "PersistentVolume",
        "PriorityClass",
        "StorageClass",
        "IngressClass",
        "MutatingWebhookConfiguration",
        "ValidatingWebhookConfiguration",
    }
)
REFUSED_KINDS = frozenset({"RoleBinding", "ClusterRoleBinding"})


class UnsupportedKustomization(ValueError):
    """The kustomization uses something this renderer does not implement."""


def render(directory: Path) -> list[Manifest]:
    """The resources `kustomize build directory` would print (order aside)."""
    kustomization = _load_kustomization(directory)
    resources: list[Manifest] = []
    for entry in kustomization.get("resources", []):
        resources.extend(_load_resource(directory, entry))
    for entry in kustomization.get("patches", []):
        _apply_patch(resources, directory, entry)
    if "namespace" in kustomization:
        _set_namespace(resources, str(kustomization["namespace"]))
    for image in kustomization.get("images", []):
        _set_image(resources, image)
    return resources


def _load_kustomization(directory: Path) -> Manifest:
    for name in KUSTOMIZATION_FILES:
        path = directory / name
        if path.is_file():
            kustomization = load_yaml(path)
            break
    else:
        raise UnsupportedKustomization(f"{directory}: no kustomization file")
    if not isinstance(kustomization, dict):
        raise UnsupportedKustomization(f"{path}: not a mapping")
    unknown = set(kustomization) - SUPPORTED_FIELDS
    if unknown:
        raise UnsupportedKustomization(f"{path}: fields not supported here: {sorted(unknown)}")
    return kustomization


def _load_resource(directory: Path, entry: object) -> list[Manifest]:
    if not isinstance(entry, str) or "://" in entry or entry.startswith("github.com/"):
        raise UnsupportedKustomization(f"{directory}: resource {entry!r} is not a local path")
    path = (directory / entry).resolve()
    if path.is_dir():
        return render(path)
    documents = load_documents(path)
    for doc in documents:
        if doc.get("kind") in REFUSED_KINDS:
            raise UnsupportedKustomization(f"{path}: kind {doc['kind']} is not supported")
    return documents


def _identity(doc: Manifest) -> tuple[str, str, str]:
    return (str(doc.get("apiVersion")), str(doc.get("kind")), str(doc["metadata"]["name"]))


def _apply_patch(resources: list[Manifest], directory: Path, entry: object) -> None:
    if not isinstance(entry, dict) or set(entry) != {"path"}:
        raise UnsupportedKustomization(f"{directory}: patch {entry!r}: only `path` is supported")
    path = directory / str(entry["path"])
    documents = load_documents(path)
    if len(documents) != 1:
        raise UnsupportedKustomization(f"{path}: one patch document per file")
    patch = documents[0]
    matches = [i for i, doc in enumerate(resources) if _identity(doc) == _identity(patch)]
    if len(matches) != 1:
        raise UnsupportedKustomization(
            f"{path}: patch matches {len(matches)} resources, not one: {_identity(patch)}"
        )
    index = matches[0]
    builtin = _is_builtin(str(patch["apiVersion"]))
    resources[index] = _merge_map(resources[index], patch, builtin, str(path))


def _is_builtin(api_version: str) -> bool:
    """Core and k8s.io groups have schemas (and so merge keys); custom resources do not."""
    group = api_version.rpartition("/")[0]
    return "." not in group or group.endswith(".k8s.io")


def _merge_map(original: Manifest, patch: Manifest, builtin: bool, where: str) -> Manifest:
    merged = copy.deepcopy(original)
    for key, value in patch.items():
        if key.startswith("$"):
            raise UnsupportedKustomization(f"{where}: directive {key} is not supported")
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge_map(merged[key], value, builtin, where)
        elif isinstance(value, list) and isinstance(merged.get(key), list):
            merged[key] = _merge_list(key, merged[key], value, builtin, where)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _merge_list(
    field: str, original: list[Any], patch: list[Any], builtin: bool, where: str
) -> list[Any]:
    key = _merge_key(field, original + patch) if builtin else None
    if key is None:
        return copy.deepcopy(patch)
    by_key = {item[key]: item for item in original}
    patched_keys = {item[key] for item in patch}
    result = [
        _merge_map(by_key[item[key]], item, builtin, where) if item[key] in by_key else item
        for item in copy.deepcopy(patch)
    ]
    result.extend(copy.deepcopy(item) for item in original if item[key] not in patched_keys)
    return result


def _merge_key(field: str, items: list[Any]) -> str | None:
    if not items or not all(isinstance(item, dict) for item in items):
        return None
    for key in MERGE_KEYS.get(field, ()):
        if all(key in item for item in items):
            return key
    return None


def _set_namespace(resources: list[Manifest], namespace: str) -> None:
    for doc in resources:
        if doc.get("kind") not in CLUSTER_SCOPED:
            doc["metadata"]["namespace"] = namespace


def _split_image(image: str) -> tuple[str, str | None, str | None]:
    """name, tag, digest of an image reference (a registry port is not a tag)."""
    name, _, digest = image.partition("@")
    repository, colon, tag = name.rpartition(":")
    if colon and "/" not in tag:
        return repository, tag, digest or None
    return name, None, digest or None


def _set_image(resources: list[Manifest], image: object) -> None:
    if not isinstance(image, dict) or "name" not in image:
        raise UnsupportedKustomization(f"images entry {image!r} needs a name")
    unknown = set(image) - {"name", "newName", "newTag", "digest"}
    if unknown:
        raise UnsupportedKustomization(f"images entry {image!r}: {sorted(unknown)}")
    for container in _containers(resources):
        name, tag, digest = _split_image(str(container.get("image", "")))
        if name != image["name"]:
            continue
        name = str(image.get("newName", name))
        if "digest" in image:
            container["image"] = f"{name}@{image['digest']}"
        elif "newTag" in image:
            container["image"] = f"{name}:{image['newTag']}"
        else:
            suffix = f"@{digest}" if digest else (f":{tag}" if tag else "")
            container["image"] = name + suffix


def _containers(node: object) -> list[Manifest]:
    """Every entry of a `containers` or `initContainers` list, at any depth."""
    found: list[Manifest] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("containers", "initContainers") and isinstance(value, list):
                found.extend(item for item in value if isinstance(item, dict))
            else:
                found.extend(_containers(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(_containers(item))
    return found
