"""Section `memory`: peak resident memory (VmHWM) of the stack's processes after the load."""

from __future__ import annotations

from tests.bench import procstat
from tests.bench.environment import Bench
from tests.bench.load import fraudsvc_target, pools_for, run_level
from tests.bench.report import Figure, Report

SECTION = "memory: peak resident memory after the load"


def run(bench: Bench, report: Report, loaded: bool) -> None:
    """`loaded`: the http or explain section ran; otherwise a short load runs first."""
    web = bench.web()
    if not loaded:
        bench.start_worker()
        run_level(fraudsvc_target(bench, pools_for(bench)), 300.0, bench.plan.load_seconds, -1)
    rows: list[list[str]] = []
    services = [("fraudsvc web", web.web), ("fraudsvc worker", web.worker)]
    services.append(("mlflow models serve", bench.mlflow_service))
    for name, service in services:
        if service is None or not service.alive():
            continue
        # the report's data keeps the process and its direct children; the table shows the
        # whole tree and names each process by its role
        direct = procstat.direct_memory(service.pid, name)
        for role, pid, mib in procstat.tree_memory(service.pid, name):
            rows.append([role, str(pid), f"{mib:,.0f}"])
            report.add(SECTION, Figure(f"{role} (pid {pid})", "MiB", [mib], "VmHWM, one reading"))
        report.data.setdefault("memory", {})[name] = direct
    report.table(
        SECTION,
        "Peak resident memory (VmHWM) per process",
        ["process", "pid", "MiB"],
        rows,
        "Read from /proc/<pid>/status after the sections' load; a peak, so one reading per "
        "process. The LIME pool processes are started with `spawn` and import LIME, LightGBM "
        "and the model themselves.",
    )
