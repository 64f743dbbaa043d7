"""`POST /v1/transactions` past Litestar's per-request machinery, with the same steps.

At saturation Litestar's routing, parameter and body parsing, signature model, response objects
and the wrappers around each middleware cost the web process about a sixth of its CPU a
scoring request (make bench; tests/bench/FINDINGS.md). This ASGI callable sits in front of the
Litestar app and takes the scoring requests that need none of that:

- the same middleware objects, called in Litestar's order through their `handle`: the server
  span, the correlation id with the decision line and request metrics, the API key with the
  rate limit;
- the body decoded straight into `TransactionIn` (msgspec: the same schema and validation);
- the same scoring step (`api.transactions.score_step`) and, for anything it raises, the same
  exception handlers (`api.errors`) at the two places Litestar calls them (inside the route's
  middlewares for the handler's errors, outside them for the middlewares' own);
- the prediction encoded by msgspec into the bytes Litestar writes, with the same headers.

Everything else goes to Litestar, which stays the definition of the route (its OpenAPI
document, and the oracle that tests/integration/test_fast_scoring.py holds this path to): other
paths and methods, a query string (`?reasons=true`), a body over FRAUDSVC_MAX_BODY_BYTES or one
that does not decode and validate as a transaction (Litestar's 400 and 422 name the field), and
every request when FRAUDSVC_FAST_SCORING=false.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import msgspec
from litestar import Litestar
from litestar.enums import ScopeType
from litestar.types import (
    ASGIApp,
    HTTPRequestEvent,
    HTTPResponseBodyEvent,
    HTTPResponseStartEvent,
    Message,
    Receive,
    ReceiveMessage,
    Scope,
    Send,
)

from fraudsvc.api.errors import answer
from fraudsvc.api.middleware import RequestContextMiddleware
from fraudsvc.api.security import ApiKeyMiddleware
from fraudsvc.api.transactions import REPLAY_HEADER, TransactionsController, score_step
from fraudsvc.schemas import TransactionIn
from fraudsvc.telemetry.server_span import ServerSpanMiddleware

PATH = TransactionsController.path
_DECODER = msgspec.json.Decoder(TransactionIn)
_ENCODER = msgspec.json.Encoder()
_JSON = (b"content-type", b"application/json")
_REPLAY = (REPLAY_HEADER.lower().encode(), b"true")
_CONTENT_LENGTH = b"content-length"
_DATA = "fraudsvc.scoring_request"
"""Scope state key: the request's decoded body, for the scoring step at the chain's end."""
Handle = Callable[[Scope, Receive, Send, ASGIApp], Awaitable[None]]


@dataclass(frozen=True)
class ScoringMiddlewares:
    """The middlewares of the scoring route in Litestar's order, outermost first (the app's,
    then the /v1 router's): the objects the Litestar app runs, not copies."""

    span: ServerSpanMiddleware
    context: RequestContextMiddleware
    keys: ApiKeyMiddleware


class FastScoring:
    def __init__(self, app: Litestar, middlewares: ScoringMiddlewares, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        m = middlewares
        # the route's own exception handling sits between its middlewares and the handler
        inner = _through(m.keys.handle, _errors_answered(self._score))
        self.chain = _through(m.span.handle, _through(m.context.handle, inner))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != ScopeType.HTTP
            or scope["path"] != PATH
            or scope.get("method") != "POST"
            or scope["query_string"]
        ):
            await self.app(scope, receive, send)
            return
        body, complete, within = await _read(receive, self.max_body_bytes)
        data = None
        if complete and within:
            with contextlib.suppress(msgspec.MsgspecError):
                data = _DECODER.decode(body)
        if data is None:  # Litestar answers it, from the same bytes
            await self.app(scope, _replay(body, complete, receive), send)
            return
        scope["litestar_app"] = self.app
        scope["path_template"] = PATH
        scope["path_params"] = {}
        scope.setdefault("state", {})[_DATA] = data
        await _answering_errors(self.chain, scope, _replay(body, True, receive), send)

    async def _score(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = scope["state"]
        result = await score_step(self.app.state.resources, state, state[_DATA], False)
        content = _ENCODER.encode(result.prediction)
        headers = [_JSON, (_CONTENT_LENGTH, str(len(content)).encode())]
        if result.replay:
            headers.append(_REPLAY)
        start: HTTPResponseStartEvent = {
            "type": "http.response.start",
            "status": 200 if result.replay else 201,
            "headers": headers,
        }
        await send(start)
        end: HTTPResponseBodyEvent = {
            "type": "http.response.body",
            "body": content,
            "more_body": False,
        }
        await send(end)


def _through(handle: Handle, next_app: ASGIApp) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await handle(scope, receive, send, next_app)

    return app


def _errors_answered(inner: ASGIApp) -> ASGIApp:
    async def answered(scope: Scope, receive: Receive, send: Send) -> None:
        await _answering_errors(inner, scope, receive, send)

    return answered


async def _answering_errors(inner: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
    """Run `inner`; an exception before the response started is answered by the app's
    exception handlers, as Litestar's own exception middleware does."""
    started = False

    async def watching(message: Message) -> None:
        nonlocal started
        if message["type"] == "http.response.start":
            started = True
        await send(message)

    try:
        await inner(scope, receive, watching)
    except Exception as exc:
        if started:
            raise
        await answer(exc, scope, receive, send)


async def _read(receive: Receive, limit: int) -> tuple[bytes, bool, bool]:
    """The body as far as read, whether that is all of it, and whether it is within `limit`
    (reading stops once it is not: the rest stays to be received)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away
            return b"".join(chunks), False, size <= limit
        chunk = message.get("body", b"")
        chunks.append(chunk)
        size += len(chunk)
        if not message.get("more_body"):
            return b"".join(chunks), True, size <= limit
        if size > limit:
            return b"".join(chunks), False, False


def _replay(body: bytes, complete: bool, receive: Receive) -> Receive:
    """A receive that hands back what was read first, then whatever `receive` has left."""
    pending = True

    async def again() -> ReceiveMessage:
        nonlocal pending
        if pending:
            pending = False
            first: HTTPRequestEvent = {
                "type": "http.request",
                "body": body,
                "more_body": not complete,
            }
            return first
        return await receive()

    return again
