"""wrk for the benchmark: reading its output, the pacing arithmetic, and the Lua scripts."""

from __future__ import annotations

import json
import math
import shutil
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from tests.bench import wrk

OUTPUT = """Running 10s test @ http://127.0.0.1:41231
  1 threads and 15 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     3.62ms    2.81ms  47.39ms   93.14%
    Req/Sec   301.65     25.14   360.00     72.00%
  Latency Distribution
     50%    2.91ms
     75%    3.88ms
     90%  812.00us
     99%    1.52s
  2997 requests in 10.00s, 1.62MB read
  Non-2xx or 3xx responses: 3
Requests/sec:    299.67
Transfer/sec:    165.47KB
BENCH-RESULT {"requests": 2997, "duration_us": 10001000, "p50_us": 2910, "p90_us": 4812, \
"p99_us": 15201, "p999_us": 40100, "max_us": 47390, "mean_us": 3620.5, \
"statuses": {"201": 2994, "503": 3}, "errors": {"connect": 0, "read": 0, "write": 0, \
"status": 3, "timeout": 0}}
""".replace("\\\n", "")


def test_parse_reads_rate_percentiles_and_errors() -> None:
    result = wrk.parse_output(OUTPUT)
    assert result.requests == 2997
    assert result.seconds == pytest.approx(10.0)
    assert result.rate == pytest.approx(299.67)
    assert result.p50_ms == pytest.approx(2.91)
    assert result.latency_ms[90.0] == pytest.approx(0.812)
    assert result.p99_ms == pytest.approx(1520.0)
    assert result.non_2xx == 3
    assert result.statuses == {201: 2994, 503: 3}
    assert result.extra["p999_ms"] == pytest.approx(40.1)
    assert result.errors == 3


def test_parse_counts_socket_errors_and_redirects() -> None:
    text = (
        OUTPUT.replace("  Non-2xx or 3xx responses: 3\n", "")
        .replace('"201": 2994, "503": 3', '"201": 2990, "302": 7')
        .replace(
            "Requests/sec:",
            "  Socket errors: connect 0, read 2, write 0, timeout 5\nRequests/sec:",
        )
    )
    result = wrk.parse_output(text)
    assert result.socket_errors == {"connect": 0, "read": 2, "write": 0, "timeout": 5}
    assert result.non_2xx == 7  # wrk counts only status >= 400; the script saw the 3xx
    assert result.errors == 14


def test_parse_without_the_script_line_still_works() -> None:
    text = "\n".join(line for line in OUTPUT.splitlines() if "BENCH-RESULT" not in line)
    result = wrk.parse_output(text)
    assert result.statuses == {}
    assert result.p50_ms == pytest.approx(2.91)


def test_parse_refuses_output_without_a_latency_distribution() -> None:
    with pytest.raises(ValueError, match="latency distribution"):
        wrk.parse_output("unable to connect to 127.0.0.1:1 Connection refused\n")


@pytest.mark.parametrize(
    ("text", "ms"),
    [("812.00us", 0.812), ("1.52ms", 1.52), ("2.01s", 2010.0), ("1.00m", 60_000.0)],
)
def test_durations_in_wrk_notation(text: str, ms: float) -> None:
    assert wrk.duration_ms(text) == pytest.approx(ms)


def test_pacing_sizes_connections_for_the_headroom() -> None:
    assert wrk.pacing_for(100.0).connections == 5  # 100/s x 50 ms
    assert wrk.pacing_for(300.0).connections == 15
    assert wrk.pacing_for(400.0).connections == 20
    assert wrk.pacing_for(20.0).connections == wrk.MIN_CONNECTIONS
    assert wrk.pacing_for(None).connections == wrk.SATURATION_CONNECTIONS


def test_pacing_slots_and_connection_periods() -> None:
    pacing = wrk.pacing_for(300.0)
    assert pacing.slot_ms == pytest.approx(1000 / 300)  # one send slot per 1/R
    assert pacing.connection_period_ms == pytest.approx(15 * 1000 / 300)  # each conn: C/R
    assert pacing.max_lag_ms == pytest.approx(15 * 1000 / 300)  # one round of connections
    # closed loop: C connections at latency L reach at most C / L
    assert pacing.ceiling(latency_ms=10.0) == pytest.approx(1500.0)
    assert pacing.ceiling(latency_ms=0.0) == math.inf


def test_pacing_per_thread_schedules_add_up_to_the_rate() -> None:
    pacing = wrk.pacing_for(400.0, threads=2)
    assert pacing.slot_ms == pytest.approx(5.0)  # each of 2 threads sends every 5 ms
    assert pacing.max_lag_ms == pytest.approx(5.0 * pacing.connections / 2)


def test_saturation_has_no_schedule() -> None:
    pacing = wrk.pacing_for(None)
    assert pacing.slot_ms == 0.0
    script = wrk.render_script("invocations", pacing, {"pool": "/p.lua", "path": "/x", "seed": 1})
    assert '["slot_ms"] = 0.0' in script


def test_pacing_refuses_a_rate_that_is_not_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        wrk.pacing_for(0.0)


def test_lua_literals_escape_strings_and_nest() -> None:
    assert wrk.lua_literal('a"b\\c\n') == '"a\\"b\\\\c\\n"'
    assert wrk.lua_literal(["C1", "T2", 3.5]) == '{"C1", "T2", 3.5}'
    assert wrk.lua_literal({"x": 1, "y": True}) == '{["x"] = 1, ["y"] = true}'
    with pytest.raises(ValueError, match="no Lua literal"):
        wrk.lua_literal(math.nan)


def test_long_strings_outgrow_their_content() -> None:
    body = '{"data": [[1.0, 2.0]]}]==]'
    literal = wrk.long_string(body)
    assert literal.startswith("[===[")
    assert literal.endswith("]===]")
    assert body in literal


# --------------------------------------------------------------------------- with wrk itself


class _Recorder(BaseHTTPRequestHandler):
    bodies: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self.bodies.append(self.rfile.read(length))
        self.send_response(201)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, list[bytes]]]:
    bodies: list[bytes] = []
    handler = type("Recorder", (_Recorder,), {"bodies": bodies})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", bodies
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_score_script_paces_wrk_and_sends_new_transactions(
    server: tuple[str, list[bytes]], tmp_path: Path
) -> None:
    url, bodies = server
    pool = tmp_path / "pool.lua"
    attributes = ', "channel": "ecommerce", "device_id": "D1"'
    pool.write_text(wrk.score_pool([("C1", "T1", 12.5, attributes), ("C2", "T9", 7.0, "")]))
    pacing = wrk.pacing_for(100.0)
    base = datetime(2026, 5, 1, tzinfo=UTC).timestamp()
    script = tmp_path / "score.lua"
    script.write_text(
        wrk.render_script(
            "score",
            pacing,
            {
                "pool": str(pool),
                "prefix": "t-",
                "base": base,
                "step": 10.5,
                "api_key": "k",
                "path": "/v1/transactions",
                "seed": 1,
            },
        )
    )
    result, _ = wrk.run(url, script, pacing, seconds=2)
    assert result.statuses.keys() == {201}
    assert result.rate == pytest.approx(100.0, rel=0.15)  # the schedule, not the server, decides
    sent = [json.loads(b) for b in bodies]
    ids = [s["transaction_id"] for s in sent]
    assert len(set(ids)) == len(ids)
    # the n-th request of the run is stamped base + n x step (wrk builds request 0 only to
    # check the script, without sending it)
    for body in sent:
        n = int(body["transaction_id"].removeprefix("t-"))
        stamp = datetime.fromisoformat(body["timestamp"]).timestamp()
        assert stamp == pytest.approx(base + n * 10.5, abs=1e-3)
    assert min(int(i.removeprefix("t-")) for i in ids) <= 1
    assert {(s["customer_id"], s["terminal_id"], s["amount"]) for s in sent} <= {
        ("C1", "T1", 12.5),
        ("C2", "T9", 7.0),
    }
    for body in sent:  # the payment attributes travel with their row
        if body["customer_id"] == "C1":
            assert (body["channel"], body["device_id"]) == ("ecommerce", "D1")
        else:
            assert "channel" not in body
