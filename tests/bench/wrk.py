"""HTTP load with wrk: the Lua scripts, their pacing arithmetic, running wrk and reading its output.

wrk has no fixed-rate mode, so the scripts pace it with Lua's `delay()` hook, which wrk calls
before every request of a connection (the first one included) and which returns how many
milliseconds that connection waits before sending. With a target rate R and C connections:

- each connection is meant to send every C / R seconds; the thread keeps one schedule of send
  slots, one every 1 / R seconds (per wrk thread: threads / R), and `delay()` hands the next
  slot to whichever connection asks, as the time left until it on a monotonic clock
  (clock_gettime through LuaJIT's ffi). The schedule is absolute, so rounding to whole
  milliseconds never accumulates;
- it is still a closed loop: a connection waits for its response before it asks for the next
  slot, so at most C requests are in flight and the rate cannot exceed C / latency. When the
  server falls behind, the missed slots are sent at once, but never more than one round of the
  connections (C slots) late: past that the schedule slips and the achieved rate drops below
  the target, which is why the report gives the achieved rate beside the target;
- latency is measured by wrk from the moment a request is actually sent, not from its slot, so
  time a request spent waiting for a free connection is not counted (coordinated omission):
  the percentiles are honest only while the achieved rate matches the target.

At saturation there is no `delay()`: C connections send back to back.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

HEADROOM_SECONDS = 0.05
"""Connections are sized so that the target rate holds up to this latency (C = R x headroom)."""
MIN_CONNECTIONS = 4
SATURATION_CONNECTIONS = 16
RESULT_MARKER = "BENCH-RESULT "

LuaValue = str | int | float | bool


@dataclass(frozen=True)
class Pacing:
    """How a target rate is spread over wrk's threads and connections."""

    rate: float | None
    """Target requests per second; None sends as fast as the server answers (saturation)."""
    connections: int
    threads: int = 1

    @property
    def slot_ms(self) -> float:
        """Milliseconds between two send slots of one wrk thread (0 at saturation)."""
        if self.rate is None:
            return 0.0
        return 1000.0 * self.threads / self.rate

    @property
    def connection_period_ms(self) -> float:
        """Mean milliseconds between two requests of one connection at the target rate."""
        if self.rate is None:
            return 0.0
        return 1000.0 * self.connections / self.rate

    @property
    def max_lag_ms(self) -> float:
        """How far behind its schedule a thread may fall before it lets the schedule slip: one
        round of its connections."""
        return self.slot_ms * self.connections / self.threads

    def ceiling(self, latency_ms: float) -> float:
        """The highest rate this many connections can reach when every response takes
        `latency_ms` (closed loop: one request in flight per connection)."""
        if latency_ms <= 0:
            return math.inf
        return 1000.0 * self.connections / latency_ms


def pacing_for(
    rate: float | None,
    threads: int = 1,
    headroom_seconds: float = HEADROOM_SECONDS,
    saturation_connections: int = SATURATION_CONNECTIONS,
) -> Pacing:
    """Enough connections to hold `rate` while responses take up to `headroom_seconds`."""
    if rate is None:
        connections = saturation_connections
    else:
        if rate <= 0:
            raise ValueError(f"rate must be positive, not {rate}")
        connections = max(MIN_CONNECTIONS, math.ceil(rate * headroom_seconds))
    connections = max(connections, threads)  # wrk needs a connection per thread at least
    return Pacing(rate=rate, connections=connections, threads=threads)


# --------------------------------------------------------------------------- Lua


def lua_literal(value: LuaValue | Sequence[LuaValue] | Mapping[str, LuaValue]) -> str:
    """A Python value as a Lua literal (strings, numbers, booleans, lists, string-keyed maps)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value} has no Lua literal")
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON string escapes are valid Lua escapes for these
    if isinstance(value, Mapping):
        items = ", ".join(f"[{lua_literal(k)}] = {lua_literal(v)}" for k, v in value.items())
        return "{" + items + "}"
    return "{" + ", ".join(lua_literal(v) for v in value) + "}"


def long_string(text: str) -> str:
    """A Lua long-bracket string holding `text` verbatim."""
    level = 2
    while f"]{'=' * level}]" in text:
        level += 1
    eq = "=" * level
    return f"[{eq}[{text}]{eq}]"


LUA_COMMON = r"""
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock_id, bench_timespec *tp);
]]
local clock = ffi.new("bench_timespec")
local function now_ms()
  ffi.C.clock_gettime(1, clock) -- CLOCK_MONOTONIC
  return tonumber(clock.tv_sec) * 1000 + tonumber(clock.tv_nsec) / 1e6
end

local threads = {}
function setup(thread)
  thread:set("index", #threads)
  table.insert(threads, thread)
end

statuses = {}
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

if CONFIG.slot_ms > 0 then
  local next_slot = nil
  function delay()
    local now = now_ms()
    if next_slot == nil then
      next_slot = now
    else
      next_slot = next_slot + CONFIG.slot_ms
      if next_slot < now - CONFIG.max_lag_ms then
        next_slot = now - CONFIG.max_lag_ms
      end
    end
    local wait = next_slot - now
    if wait <= 0 then return 0 end
    return math.floor(wait)
  end
end

function done(summary, latency, requests)
  local codes = {}
  for _, t in ipairs(threads) do
    local counted = t:get("statuses")
    for code, n in pairs(counted) do
      codes[code] = (codes[code] or 0) + n
    end
  end
  local parts = {}
  for code, n in pairs(codes) do
    table.insert(parts, string.format('"%d": %d', code, n))
  end
  local e = summary.errors
  io.write(string.format(
    '%s{"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, ' ..
    '"p999_us": %d, "max_us": %d, "mean_us": %.1f, "statuses": {%s}, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}}\n',
    CONFIG.marker, summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max, latency.mean, table.concat(parts, ", "),
    e.connect, e.read, e.write, e.status, e.timeout))
end
"""

LUA_SCORE = r"""
local pool
local counter = 0
local headers = {["Content-Type"] = "application/json", ["X-API-Key"] = CONFIG.api_key}

function init(args)
  pool = dofile(CONFIG.pool)
  math.randomseed(CONFIG.seed + index)
end

-- one new transaction per request: a unique id, a (customer, terminal, amount, payment
-- attributes) of the backfilled population, and a timestamp on a clock that starts just
-- after the history and advances at the history's own pace
function request()
  local n = counter * CONFIG.threads + index
  counter = counter + 1
  local row = pool[math.random(#pool)]
  local at = CONFIG.base + n * CONFIG.step
  local seconds = math.floor(at)
  local millis = math.floor((at - seconds) * 1000)
  local body = string.format(
    '{"transaction_id": "%s%d", "timestamp": "%s.%03dZ", "customer_id": "%s", ' ..
    '"terminal_id": "%s", "amount": %.2f%s}',
    CONFIG.prefix, n, os.date("!%Y-%m-%dT%H:%M:%S", seconds), millis, row[1], row[2], row[3],
    row[4])
  return wrk.format("POST", CONFIG.path, headers, body)
end
"""

LUA_INVOCATIONS = r"""
local pool
local headers = {["Content-Type"] = "application/json"}

function init(args)
  pool = dofile(CONFIG.pool)
  math.randomseed(CONFIG.seed + index)
end

-- one precomputed feature row per request, as MLflow's dataframe_split JSON
function request()
  return wrk.format("POST", CONFIG.path, headers, pool[math.random(#pool)])
end
"""


def render_script(kind: str, pacing: Pacing, config: Mapping[str, LuaValue]) -> str:
    """The Lua script of one wrk run: `kind` is "score" (fraudsvc) or "invocations" (MLflow)."""
    body = {"score": LUA_SCORE, "invocations": LUA_INVOCATIONS}[kind]
    full = {
        **config,
        "slot_ms": pacing.slot_ms,
        "max_lag_ms": pacing.max_lag_ms,
        "threads": pacing.threads,
        "marker": RESULT_MARKER,
    }
    return "-- generated by tests.bench.wrk\nCONFIG = " + lua_literal(full) + LUA_COMMON + body


def score_pool(rows: Sequence[tuple[str, str, float, str]]) -> str:
    """A Lua chunk returning the (customer, terminal, amount, attributes) rows that requests
    draw from; attributes are the optional fields as JSON members (`, "channel": "pos"`)."""
    return "return {\n" + ",\n".join(lua_literal(list(r)) for r in rows) + "\n}\n"


def invocation_pool(bodies: Sequence[str]) -> str:
    """A Lua chunk returning request bodies (JSON text) verbatim."""
    return "return {\n" + ",\n".join(long_string(b) for b in bodies) + "\n}\n"


# --------------------------------------------------------------------------- output


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    rate: float
    """Achieved requests per second (wrk's Requests/sec)."""
    latency_ms: dict[float, float]
    """wrk --latency's distribution: percentile -> milliseconds (50, 75, 90, 99)."""
    non_2xx: int
    """wrk's 'Non-2xx or 3xx responses' (status >= 400 in fact) plus any 3xx seen."""
    socket_errors: dict[str, int]
    statuses: dict[int, int] = field(default_factory=dict)
    """Status codes counted by the script's response() hook."""
    extra: dict[str, float] = field(default_factory=dict)
    """From the script's done() line: p99.9, max and mean latency (ms)."""

    @property
    def p50_ms(self) -> float:
        return self.latency_ms[50.0]

    @property
    def p99_ms(self) -> float:
        return self.latency_ms[99.0]

    @property
    def errors(self) -> int:
        """Responses that were not 2xx plus requests that got no response."""
        return self.non_2xx + sum(self.socket_errors.values())


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}
_DURATION = re.compile(r"^([\d.]+)(us|ms|s|m|h)$")
_SECONDS_TOTAL = re.compile(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h),")
_PERCENTILE = re.compile(r"^\s*([\d.]+)%\s+([\d.]+(?:us|ms|s|m|h))\s*$")
_RATE = re.compile(r"^Requests/sec:\s+([\d.]+)")
_NON_2XX = re.compile(r"^\s*Non-2xx or 3xx responses:\s+(\d+)")
_SOCKET = re.compile(r"^\s*Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")


def duration_ms(text: str) -> float:
    """wrk's duration notation (`812.00us`, `1.52ms`, `2.01s`, `1.00m`) in milliseconds."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match.group(1)) * UNITS[match.group(2)]


def parse_output(text: str) -> WrkResult:
    """Read wrk's --latency report (and the script's done() line, when present)."""
    requests: int | None = None
    seconds = math.nan
    rate: float | None = None
    latency: dict[float, float] = {}
    non_2xx = 0
    socket = {"connect": 0, "read": 0, "write": 0, "timeout": 0}
    extra: dict[str, float] = {}
    statuses: dict[int, int] = {}
    in_distribution = False
    for line in text.splitlines():
        if line.startswith(RESULT_MARKER):
            data = json.loads(line.removeprefix(RESULT_MARKER))
            statuses = {int(k): int(v) for k, v in data["statuses"].items()}
            extra = {
                "p999_ms": data["p999_us"] / 1000.0,
                "max_ms": data["max_us"] / 1000.0,
                "mean_ms": data["mean_us"] / 1000.0,
            }
            continue
        if "Latency Distribution" in line:
            in_distribution = True
            continue
        if in_distribution:
            match = _PERCENTILE.match(line)
            if match:
                latency[float(match.group(1))] = duration_ms(match.group(2))
                continue
            in_distribution = False
        if (match := _SECONDS_TOTAL.match(line)) is not None:
            requests = int(match.group(1))
            seconds = float(match.group(2)) * UNITS[match.group(3)] / 1000.0
        elif (match := _RATE.match(line)) is not None:
            rate = float(match.group(1))
        elif (match := _NON_2XX.match(line)) is not None:
            non_2xx = int(match.group(1))
        elif (match := _SOCKET.match(line)) is not None:
            socket = dict(
                zip(("connect", "read", "write", "timeout"), map(int, match.groups()), strict=True)
            )
    if requests is None or rate is None or 50.0 not in latency or 99.0 not in latency:
        raise ValueError("wrk output without a request count, rate or latency distribution")
    redirects = sum(n for code, n in statuses.items() if 300 <= code < 400)
    return WrkResult(
        requests=requests,
        seconds=seconds,
        rate=rate,
        latency_ms=latency,
        non_2xx=non_2xx + redirects,
        socket_errors=socket,
        statuses=statuses,
        extra=extra,
    )


# --------------------------------------------------------------------------- running


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise FileNotFoundError("wrk is not installed (Debian: apt-get install wrk)")
    return found


def run(
    url: str, script: Path, pacing: Pacing, seconds: float, timeout_seconds: float = 5.0
) -> tuple[WrkResult, str]:
    """One wrk run; returns the parsed result and wrk's own output."""
    argv = [
        wrk_binary(),
        f"-t{pacing.threads}",
        f"-c{pacing.connections}",
        f"-d{max(1, round(seconds))}s",
        f"--timeout={max(1, round(timeout_seconds))}s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip()[:500]}")
    return parse_output(done.stdout), done.stdout
