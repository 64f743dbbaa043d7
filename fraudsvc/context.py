"""Per-request and per-job context in contextvars: the correlation id and the transaction id,
read by the logs (every line carries them), error bodies and the explanation job."""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

CORRELATION_HEADER = "x-correlation-id"
_VALID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)
transaction_id: ContextVar[str | None] = ContextVar("transaction_id", default=None)


def new_correlation_id(offered: str | None) -> str:
    """The caller's X-Correlation-ID when it is a sane token, else a fresh one."""
    if offered and _VALID.match(offered):
        return offered
    return uuid.uuid4().hex


def current_correlation_id() -> str:
    value = correlation_id.get()
    if value is None:
        value = uuid.uuid4().hex
        correlation_id.set(value)
    return value
