"""`python -m tests.bench.profiled OUT ROLE [ARGS...]`: a fraudsvc role under cProfile, profiling
only between SIGUSR1 (start) and SIGUSR2 (stop, write OUT), so the numbers cover the load and not
the startup. cProfile sees the main thread only, which is where uvicorn's event loop runs the
whole request path; it slows Python code down (about 2x here), so read its shares, not its times.

Written for the benchmark: no profiler needs to be installed.
"""

from __future__ import annotations

import cProfile
import pstats
import signal
import sys
from collections import defaultdict
from pathlib import Path
from types import FrameType

# own time of these C functions is the event loop waiting for work, not work
IDLE = ("run_until_complete", "run_forever", "select.epoll", "'poll'", "_run_once")
AREAS = (
    ("asyncpg", "asyncpg (PostgreSQL client, its protocol in C)"),
    ("opentelemetry", "OpenTelemetry (spans, context, instrumentations)"),
    ("fraudsvc/telemetry/server_span", "OpenTelemetry (spans, context, instrumentations)"),
    ("fraudsvc/telemetry/tracing", "OpenTelemetry (spans, context, instrumentations)"),
    ("litestar", "Litestar (routing, DI, validation, serialisation)"),
    ("msgspec", "Litestar (routing, DI, validation, serialisation)"),
    ("uvicorn", "uvicorn + httptools (HTTP protocol)"),
    ("httptools", "uvicorn + httptools (HTTP protocol)"),
    ("lightgbm", "LightGBM + NumPy (score, reasons)"),
    ("numpy", "LightGBM + NumPy (score, reasons)"),
    ("fraudsvc/model/fast_predict", "LightGBM + NumPy (score, reasons)"),
    ("loguru", "logging (stdlib records, loguru)"),
    ("logging", "logging (stdlib records, loguru)"),
    ("fraudsvc/telemetry/logs", "logging (stdlib records, loguru)"),
    ("aioprometheus", "Prometheus metrics"),
    ("redis", "Redis client (enqueue)"),
    ("arq", "Redis client (enqueue)"),
    ("asyncio", "asyncio / uvloop"),
    ("uvloop", "asyncio / uvloop"),
    ("piccolo", "Piccolo"),
    ("fraudsvc", "fraudsvc's own code"),
)
Key = tuple[str, int, str]


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: python -m tests.bench.profiled OUT ROLE [ARGS...]", file=sys.stderr)
        return 2
    out, role_args = argv[0], argv[1:]
    profiler = cProfile.Profile()

    def start(signum: int, frame: FrameType | None) -> None:
        profiler.enable()

    def stop(signum: int, frame: FrameType | None) -> None:
        profiler.disable()
        profiler.dump_stats(out)

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)
    from fraudsvc.cli import main as fraudsvc_main

    return fraudsvc_main(role_args)


def area(filename: str) -> str | None:
    """The area a function's source file belongs to; None for C functions (no file)."""
    if filename == "~" or filename.startswith("<"):
        return None
    path = filename.replace("\\", "/")
    if "/site-packages/" in path:
        where = path.split("/site-packages/", 1)[1]
    elif "/fraudsvc/" in path:
        where = "fraudsvc/" + path.rsplit("/fraudsvc/", 1)[1]
    else:
        parts = path.split("/")
        stdlib = next((i for i, p in enumerate(parts) if p.startswith("python3")), None)
        where = "/".join(parts[stdlib + 1 :]) if stdlib is not None else path
    for prefix, name in AREAS:
        if where.startswith(prefix):
            return name
    return "other (stdlib, other packages)"


def summarize(path: Path, top: int = 25) -> tuple[list[tuple[str, float]], list[dict[str, object]]]:
    """Own CPU time per area (largest first) and the top functions by own time."""
    stats = pstats.Stats(str(path)).stats  # type: ignore[attr-defined]
    totals: dict[str, float] = defaultdict(float)
    functions: list[dict[str, object]] = []
    for key, (_, calls, own, _, callers) in stats.items():
        filename, line, name = key
        if filename == "~" and any(idle in name for idle in IDLE):
            continue
        where = area(filename)
        if where is None:  # a C function: its time goes to its callers' areas
            spread = sum(c[2] for c in callers.values()) or 1.0
            for caller, caller_stats in callers.items():
                totals[area(caller[0]) or "other (stdlib, other packages)"] += (
                    own * caller_stats[2] / spread if callers else own
                )
            if not callers:
                totals["other (stdlib, other packages)"] += own
            where = "C function"
        else:
            totals[where] += own
        functions.append(
            {"function": f"{filename}:{line}({name})", "area": where, "calls": calls, "own_s": own}
        )
    functions.sort(key=lambda f: -float(f["own_s"]))  # type: ignore[arg-type]
    ranked = sorted(totals.items(), key=lambda item: -item[1])
    return ranked, functions[:top]


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
