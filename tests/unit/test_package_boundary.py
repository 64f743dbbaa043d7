"""The package holds the service: nothing in `fraudsvc/` reaches into the test tree, where the
benchmark and drill harnesses live, and the package holds no test code of its own.

Read with `ast`, so an import inside a function, or a `python -m tests....` argv, is caught as
well as one at the top of a module. The image side (what the Containerfile copies) is checked in
tests/deploy/test_containerfile.py.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "fraudsvc"
MODULES = sorted(PACKAGE.rglob("*.py"))
TEST_MODULE_NAME = re.compile(r"tests(\.\w+)*")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(path: Path, tree: ast.Module) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import statement in a module."""
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolved against the module's own package
                base = package[: len(package) - node.level + 1]
                name = ".".join([*base, *([node.module] if node.module else [])])
            else:
                name = node.module or ""
            found.append((node.lineno, name))
    return found


def _is_tests(name: str) -> bool:
    return name == "tests" or name.startswith("tests.")


def test_the_walk_sees_every_module_and_their_imports() -> None:
    # guards the test itself: an empty walk would pass anything
    assert len(MODULES) > 50
    app = PACKAGE / "app.py"
    names = {name for _, name in _imported(app, ast.parse(app.read_text(encoding="utf-8")))}
    assert {"litestar", "fraudsvc.settings"} <= names
    init = PACKAGE / "api" / "__init__.py"
    relative = ast.parse("from . import errors\nfrom ..jobs import queue\n")
    assert {name for _, name in _imported(init, relative)} == {"fraudsvc.api", "fraudsvc.jobs"}


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE.parent)))
def test_package_module_imports_nothing_from_the_test_tree(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    offending = [f"line {line}: {name}" for line, name in _imported(path, tree) if _is_tests(name)]
    assert not offending, f"{path.name} imports test code: {offending}"
    # `importlib.import_module("tests.x")` or `[python, "-m", "tests.bench..."]` run it too
    named = [
        f"line {node.lineno}: {node.value!r}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and TEST_MODULE_NAME.fullmatch(node.value)
    ]
    assert not named, f"{path.name} names a test module: {named}"


def test_package_holds_no_test_or_harness_modules() -> None:
    names = {p.name for p in MODULES}
    assert not {n for n in names if n.startswith("test_") or n == "conftest.py"}
    folders = {p.parent.name for p in MODULES}
    assert not folders & {"bench", "drills", "tests"}, "harnesses belong in tests/"


# The customer's dependencies that carry a risk stay behind the modules that contain them (the
# README's "Dependencies' health" says why), so replacing one is a change to those files alone.
CONTAINED = {
    "arq": {"fraudsvc.jobs.queue", "fraudsvc.jobs.worker", "fraudsvc.jobs.explain_job"},
    "lime": {"fraudsvc.explain"},
    "aioprometheus": {
        "fraudsvc.telemetry.metrics",
        "fraudsvc.telemetry.collectors",
        "fraudsvc.telemetry",
    },
}


@pytest.mark.parametrize("library", sorted(CONTAINED))
def test_a_risky_dependency_is_imported_only_where_it_is_contained(library: str) -> None:
    importers = set()
    for path in MODULES:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        if any(n == library or n.startswith(library + ".") for _, n in _imported(path, tree)):
            importers.add(_module_name(path))
    assert importers, f"nothing imports {library}: the walk is wrong"
    assert importers <= CONTAINED[library], f"{library} leaks into {importers - CONTAINED[library]}"
