"""What the kernel says about a process: CPU time, children, command line, peak memory.

Linux only (/proc), like the rest of the benchmark. A process that is gone reads as nothing
rather than raising: the benchmark measures processes that may stop at any time.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/PID/stat's fields after the command name (the state first), or None when gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces; the fields after it are space separated
    return stat[stat.rindex(")") + 2 :].split()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads); 0 when it is gone."""
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


def running(pid: int) -> bool:
    """Whether the process exists and has not exited (a zombie has)."""
    fields = _stat_fields(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def total_cpu_seconds(pids: Iterable[int]) -> float:
    return sum(cpu_seconds(pid) for pid in pids)


def machine_cpu_seconds() -> tuple[float, float, float]:
    """The whole machine's busy CPU seconds so far (all cores: user, nice, system, irq,
    softirq), the seconds the hypervisor stole from it, and its idle seconds (idle and
    iowait, summed over the cores), from /proc/stat's first line."""
    try:
        first = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return 0.0, 0.0, 0.0
    user, nice, system, idle, iowait, irq, softirq, steal = (int(v) for v in first[:8])
    return (user + nice + system + irq + softirq) / TICKS, steal / TICKS, (idle + iowait) / TICKS


def named(command: str) -> list[int]:
    """Every process whose command name (/proc/PID/comm) is `command`: `postgres` gives the
    server's backends and its background processes (checkpointer, WAL writer, autovacuum)."""
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() == command:
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def children(pid: int) -> list[int]:
    """Direct children of a process (of all its threads)."""
    found: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return sorted(set(found))


def descendants(pid: int) -> list[int]:
    out: list[int] = []
    pending = children(pid)
    while pending:
        child = pending.pop(0)
        out.append(child)
        pending += children(child)
    return out


def peak_rss_mib(pid: int) -> float:
    """VmHWM (peak resident memory) of a process, in MiB; 0 when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def direct_memory(pid: int, name: str) -> dict[str, float]:
    """Peak resident memory (MiB) of a process and of each direct child it has now."""
    out = {name: peak_rss_mib(pid)}
    for i, child in enumerate(children(pid)):
        out[f"{name} child {i + 1}"] = peak_rss_mib(child)
    return out


def command_line(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def role_of(command: str) -> str:
    """A readable name for a process of the stack, from its command line."""
    if "resource_tracker" in command:
        return "multiprocessing resource tracker"
    if "spawn_main" in command or "multiprocessing-fork" in command:
        return "LIME pool process"
    if "uvicorn" in command and "mlflow" in command:
        return "MLflow scoring server (uvicorn)"
    if "mlflow" in command:
        return "mlflow models serve (launcher)"
    return command.split(" ", 1)[0].rsplit("/", 1)[-1] or "process"


def tree_memory(pid: int, name: str) -> list[tuple[str, int, float]]:
    """(role, pid, VmHWM MiB) of a process and every descendant it has now."""
    rows = [(name, pid, peak_rss_mib(pid))]
    for child in descendants(pid):
        rows.append((role_of(command_line(child)), child, peak_rss_mib(child)))
    return rows
