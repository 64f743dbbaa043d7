"""`logs.event`, the decision log's direct JSON line, writes what loguru's JSON sink writes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime

import pytest
from loguru import logger

from fraudsvc.context import correlation_id
from fraudsvc.telemetry.logs import event, setup_logging

FIELDS = {"transaction_id": "tx-1", "decision": "block", "score": 0.91, "replay": False}


@pytest.fixture
def json_logs() -> Iterator[None]:
    setup_logging("INFO", "json")
    yield
    setup_logging("INFO", "text")


def lines(err: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in err.splitlines() if line.startswith("{")]


def test_the_direct_line_equals_loguru_s_but_for_the_time(
    json_logs: None, capsys: pytest.CaptureFixture[str]
) -> None:
    token = correlation_id.set("corr-1")
    try:
        logger.bind(**FIELDS).info("decision")
        event("INFO", "decision", __name__, **FIELDS)
    finally:
        correlation_id.reset(token)
    through_loguru, direct = lines(capsys.readouterr().err)
    for line in (through_loguru, direct):  # both ISO 8601 with the offset
        assert datetime.fromisoformat(str(line.pop("time"))).tzinfo is not None
    assert direct == through_loguru
    assert direct["correlation_id"] == "corr-1"
    assert list(direct)[:3] == ["level", "message", "logger"]


def test_the_level_setting_applies(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("WARNING", "json")
    try:
        event("INFO", "decision", __name__, **FIELDS)
        event("WARNING", "request failed", __name__, status=503)
    finally:
        setup_logging("INFO", "text")
    written = lines(capsys.readouterr().err)
    assert [line["message"] for line in written] == ["request failed"]
    assert written[0]["level"] == "WARNING"


def test_with_the_text_sink_it_goes_through_loguru(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("INFO", "text")
    event("INFO", "decision", __name__, **FIELDS)
    err = capsys.readouterr().err
    assert "decision" in err
    assert not lines(err)
