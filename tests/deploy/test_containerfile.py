"""The Containerfile: hadolint, and the properties the deployments rely on.

Building the image needs a Docker engine, which this machine does not have; CI's image job
builds it, runs it and scans it. These checks read the file.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest

from fraudsvc.settings import is_known_variable
from tests.deploy.containerfile import Stage, stages
from tests.deploy.tools import REPO, run, tool

CONTAINERFILE = REPO / "Containerfile"
LOCKED_SYNC = "uv sync --locked --no-dev --no-editable --extra mlflow-server"
BUILD_TOOLS = ("gcc", "g++", "build-essential", "make", "clang", "cmake", "git")


@pytest.fixture(scope="module")
def all_stages() -> list[Stage]:
    return stages(CONTAINERFILE)


@pytest.fixture(scope="module")
def runtime(all_stages: list[Stage]) -> Stage:
    return all_stages[-1]


def test_hadolint_passes() -> None:
    result = run([tool("hadolint"), CONTAINERFILE])
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_hadolint_ignore_gives_its_reason() -> None:
    lines = CONTAINERFILE.read_text(encoding="utf-8").splitlines()
    ignores = [(n, line) for n, line in enumerate(lines) if "hadolint ignore=" in line]
    for number, line in ignores:
        rules = line.split("hadolint ignore=", 1)[1].split(",")
        reason = " ".join(lines[max(0, number - 4) : number])
        for rule in rules:
            assert rule.strip() in reason, f"line {number + 1}: say why {rule.strip()} is ignored"


def test_uv_is_pinned_to_the_makefiles_version(all_stages: list[Stage]) -> None:
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    match = re.search(r"^UV_VERSION\s*:=\s*(\S+)", makefile, re.MULTILINE)
    assert match is not None
    uv_images = [s.base for s in all_stages if s.base.startswith("ghcr.io/astral-sh/uv:")]
    assert uv_images == [f"ghcr.io/astral-sh/uv:{match.group(1)}"]


def test_the_build_installs_exactly_the_lock_without_dev_tools(all_stages: list[Stage]) -> None:
    build = next(s for s in all_stages if s.name == "build")
    runs = [i.arguments for i in build.all("RUN")]
    assert LOCKED_SYNC in runs, runs
    assert all(r.startswith(LOCKED_SYNC) for r in runs if r.startswith("uv "))


def test_build_and_runtime_share_one_base(all_stages: list[Stage], runtime: Stage) -> None:
    # the venv's interpreter is a link into the base image: both stages need the same Python
    build = next(s for s in all_stages if s.name == "build")
    assert build.base == runtime.base
    assert re.fullmatch(r"python:3\.\d+-slim(-\w+)?", runtime.base), runtime.base


def test_runtime_runs_as_a_numeric_non_root_user(runtime: Stage) -> None:
    users = runtime.all("USER")
    assert len(users) == 1
    uid, _, gid = users[0].arguments.partition(":")
    assert uid.isdigit(), "USER must be numeric: runAsNonRoot cannot check a name"
    assert gid.isdigit()
    assert int(uid) > 0
    assert int(gid) > 0


def test_runtime_stage_carries_no_build_tools(runtime: Stage) -> None:
    installs = " ".join(i.arguments for i in runtime.all("RUN"))
    assert "libgomp1" in installs, "LightGBM needs the OpenMP runtime"
    packages = re.findall(r"apt-get install [^&;]*", installs)
    for command in packages:
        for name in BUILD_TOOLS:
            assert name not in command.split(), f"{name} installed in the runtime stage"
    copies = [i.arguments for i in runtime.all("COPY")]
    assert not any("--from=uv" in c for c in copies), "uv does not belong in the runtime image"


def test_runtime_ships_the_venv_and_the_migrations(runtime: Stage) -> None:
    copies = [i.arguments.split() for i in runtime.all("COPY")]
    assert ["--from=build", "/app/.venv", "/app/.venv"] in copies
    assert ["migrations", "/app/migrations"] in copies
    assert runtime.env()["FRAUDSVC_MIGRATIONS_DIR"] == "/app/migrations"


def test_runtime_environment_suits_a_read_only_root(runtime: Stage) -> None:
    env = runtime.env()
    assert env["FRAUDSVC_DATA_DIR"] == "/var/lib/fraudsvc"
    assert env["FRAUDSVC_HOST"] == "0.0.0.0"
    assert env["FRAUDSVC_WORKER_METRICS_HOST"] == "0.0.0.0"
    assert env["TMPDIR"] == "/tmp"
    assert env["MPLCONFIGDIR"].startswith("/tmp/")
    assert env["HOME"] == "/tmp"
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PATH"].startswith("/app/.venv/bin:")


def test_every_fraudsvc_variable_in_the_image_is_read_by_the_code(runtime: Stage) -> None:
    ours = [k for k in runtime.env() if k.startswith(("FRAUDSVC_", "MLFLOW_", "OTEL_"))]
    assert ours
    unknown = [k for k in ours if not is_known_variable(k)]
    assert not unknown, f"set in the image but read by nothing: {unknown}"


def test_healthcheck_asks_healthz_with_python_not_curl(runtime: Stage) -> None:
    checks = runtime.all("HEALTHCHECK")
    assert len(checks) == 1
    command = json.loads(checks[0].arguments.split("CMD", 1)[1])
    assert command[:2] == ["python", "-c"]
    assert "urllib.request.urlopen" in command[2]
    assert "/healthz" in command[2]
    compile(command[2], "HEALTHCHECK", "exec")  # the one-liner is valid Python


def test_default_command_is_the_web_role(runtime: Stage) -> None:
    (cmd,) = runtime.all("CMD")
    assert json.loads(cmd.arguments) == ["fraudsvc", "web"]
    exposed = {p for i in runtime.all("EXPOSE") for p in i.arguments.split()}
    assert exposed == {"8000", "9101"}


def _glob_regex(glob: str) -> re.Pattern[str]:
    """A .dockerignore pattern as a regex: `*` and `?` stay within one path segment,
    `**` crosses segments (Go's filepath.Match plus Docker's `**`)."""
    out, i = "", 0
    while i < len(glob):
        if glob.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif glob.startswith("**", i):
            out, i = out + ".*", i + 2
        elif glob[i] in "*?":
            out, i = out + ("[^/]*" if glob[i] == "*" else "[^/]"), i + 1
        else:
            out, i = out + re.escape(glob[i]), i + 1
    return re.compile(out)


def _ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins, `!` re-includes, and a pattern that
    matches a folder covers everything inside it."""
    parts = Path(path).parts
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    ignored = False
    for pattern in patterns:
        regex = _glob_regex(pattern.removeprefix("!").rstrip("/"))
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            ignored = not pattern.startswith("!")
    return ignored


def test_dockerignore_sends_only_what_the_build_copies(all_stages: list[Stage]) -> None:
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    sources = [
        word
        for stage in all_stages
        for i in stage.all("COPY")
        if not i.arguments.startswith("--from")
        for word in i.arguments.split()[:-1]
    ]
    assert sources
    for source in sources:
        assert (REPO / source).exists(), f"COPY {source}: no such path"
        assert not _ignored(source, patterns), f"COPY {source} is excluded by .dockerignore"
    for heavy in (
        "data/transactions.parquet",
        ".venv/bin/python",
        ".git/HEAD",
        "tests/__init__.py",
    ):
        assert _ignored(heavy, patterns), f"{heavy} would be sent to the build"


def _context_files(source: str, patterns: list[str]) -> list[str]:
    """Files of the build context under a COPY source, as the build would receive them."""
    path = REPO / source
    found = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    relative = [p.relative_to(REPO).as_posix() for p in found]
    return [r for r in relative if not _ignored(r, patterns)]


def _dockerignore() -> list[str]:
    lines = (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_the_image_copies_no_test_code(all_stages: list[Stage]) -> None:
    # the benchmark and drill harnesses live in tests/: nothing that only measures ships
    patterns = _dockerignore()
    copied = [
        file
        for stage in all_stages
        for i in stage.all("COPY")
        if not i.arguments.startswith("--from")
        for source in i.arguments.split()[:-1]
        for file in _context_files(source, patterns)
    ]
    assert "fraudsvc/app.py" in copied
    assert "migrations/__init__.py" in copied
    test_code = [
        f
        for f in copied
        if f.startswith("tests/")
        or Path(f).name.startswith("test_")
        or Path(f).name == "conftest.py"
        or {"bench", "drills"} & set(Path(f).parts)
    ]
    assert not test_code, f"the image would carry test code: {test_code[:5]}"
    for harness in ("tests/bench/__main__.py", "tests/drills/__main__.py"):
        assert _ignored(harness, patterns), f"{harness} would be sent to the build"


def test_the_installed_wheel_holds_only_the_package() -> None:
    # `uv sync --no-editable` builds the project's wheel: its contents are what site-packages gets
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"] == ["fraudsvc"]
