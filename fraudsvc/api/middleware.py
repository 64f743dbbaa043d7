"""Per-request context: correlation id in and out, and one log line per request.

The correlation id comes from X-Correlation-ID when the caller sends a sane one, else it is
generated; it is set in a contextvar (logs, error bodies, the explanation job read it) and echoed
in the response header.
"""

from __future__ import annotations

import time

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from loguru import logger

from fraudsvc.context import CORRELATION_HEADER, correlation_id, new_correlation_id
from fraudsvc.telemetry.metrics import WebMetrics


class RequestContextMiddleware(ASGIMiddleware):
    scopes = (ScopeType.HTTP,)

    def __init__(self, metrics: WebMetrics) -> None:
        self.metrics = metrics

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
        try:
            with logger.contextualize(correlation_id=cid):
                await next_app(scope, receive, send_with_id)
                elapsed = time.perf_counter() - started
                logger.bind(
                    method=method, route=route, status=status, duration_ms=round(elapsed * 1000, 3)
                ).debug("request")
        finally:
            correlation_id.reset(token)
        if route != "/metrics":  # scrapes would drown the request rate
            self.metrics.requests.inc({"method": method, "route": route, "status": str(status)})
            self.metrics.request_seconds.observe({"method": method, "route": route}, elapsed)
