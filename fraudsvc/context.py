"""Per-request context (correlation id) carried in a contextvar, so logs and jobs can read it."""

from __future__ import annotations

import re
import uuid
from contextvars import ContextVar

CORRELATION_HEADER = "x-correlation-id"
_VALID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")

correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)


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
