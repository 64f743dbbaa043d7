"""Job payloads: msgspec Structs, serialised as JSON (arq's default would be pickle)."""

from __future__ import annotations

from typing import Any

import msgspec


class ExplainJob(msgspec.Struct, frozen=True):
    transaction_id: str
    correlation_id: str
    trace_context: dict[str, str] = {}


EXPLAIN_FUNCTION = "explain"


def job_id(transaction_id: str) -> str:
    """Deterministic: arq refuses a second job with the same id while one is queued or running."""
    return f"explain:{transaction_id}"


def serialize(job: dict[str, Any]) -> bytes:
    return msgspec.json.encode(job)


def deserialize(data: bytes) -> dict[str, Any]:
    decoded: dict[str, Any] = msgspec.json.decode(data)
    return decoded
