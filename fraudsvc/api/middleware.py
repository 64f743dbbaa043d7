"""Per-request context: correlation id in and out, metrics, and the line an operator greps.

The correlation id comes from X-Correlation-ID when the caller sends a sane one, else it is
generated; it is set in a contextvar (logs, error bodies, the explanation job read it) and echoed
in the response header.

With FRAUDSVC_DECISION_LOG (on by default), each scored transaction writes one INFO line
(`decision`: transaction and correlation ids, trace id, decision, score, model version, who
decided, latency and the part of it in the database, whether it was a replay) and each failed
request one line (`request failed`: status, error class, latency; INFO for 4xx, WARNING for
5xx), so a correlation id from a complaint finds what happened. Other successful requests
log at DEBUG.
"""

from __future__ import annotations

import time
from typing import Any

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from loguru import logger

from fraudsvc.context import CORRELATION_HEADER, correlation_id, new_correlation_id
from fraudsvc.pipeline import Scored
from fraudsvc.telemetry.logs import event
from fraudsvc.telemetry.metrics import WebMetrics

SCORED = "fraudsvc.scored"
"""Scope state key: the scoring handler's result, for the decision line."""
ERROR_CLASS = "fraudsvc.error_class"
"""Scope state key: the class of the exception an error handler answered."""
LOGGED = "fraudsvc.logged"
"""Scope state key: the error handler already wrote the request's line (a 500's traceback)."""


class RequestContextMiddleware(ASGIMiddleware):
    scopes = (ScopeType.HTTP,)

    def __init__(self, metrics: WebMetrics, decision_log: bool = True) -> None:
        self.metrics = metrics
        self.decision_log = decision_log

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        offered = None
        for name, value in scope["headers"]:
            if name == CORRELATION_HEADER.encode():
                offered = value.decode("latin-1")
                break
        cid = new_correlation_id(offered)
        token = correlation_id.set(cid)
        scope.setdefault("state", {})["correlation_id"] = cid
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (CORRELATION_HEADER.encode(), cid.encode()),
                ]
            await send(message)

        route = scope.get("path_template", scope["path"])
        method = str(scope.get("method"))
        try:  # log lines take the correlation id from the contextvar (`telemetry.logs`)
            await next_app(scope, receive, send_with_id)
            elapsed = time.perf_counter() - started
            self._log(scope["state"], method, route, status, elapsed)
        finally:
            correlation_id.reset(token)
        if route != "/metrics":  # scrapes would drown the request rate
            self.metrics.requests.inc({"method": method, "route": route, "status": str(status)})
            self.metrics.request_seconds.observe({"method": method, "route": route}, elapsed)

    def _log(
        self, state: dict[str, Any], method: str, route: str, status: int, elapsed: float
    ) -> None:
        latency_ms = round(elapsed * 1000, 3)
        scored: Scored | None = state.get(SCORED)
        if not self.decision_log:
            pass
        elif status >= 400 and not state.get(LOGGED):
            event(
                "WARNING" if status >= 500 else "INFO",
                "request failed",
                __name__,
                method=method,
                route=route,
                status=status,
                error=state.get(ERROR_CLASS, "HTTPException"),
                latency_ms=latency_ms,
            )
            return
        elif scored is not None and status < 400:
            p = scored.prediction
            t = scored.timings
            event(
                "INFO",
                "decision",
                __name__,
                transaction_id=p.transaction_id,
                decision=p.decision,
                score=round(p.score, 6),
                model_version=p.model.version,
                decided_by=p.decided_by,
                latency_ms=latency_ms,
                # of which the two statements, pool waits included (none for a replay's read)
                database_ms=round((t["history"] + t["persist"]) * 1000, 3) if t else None,
                replay=scored.replay,
                status=status,
            )
            return
        logger.bind(method=method, route=route, status=status, duration_ms=latency_ms).debug(
            "request"
        )
