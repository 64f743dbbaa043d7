"""Every error is JSON (`ErrorBody`): a code, a message a person can act on, the field at fault.

- malformed JSON or a body that is not an object: 400; a field that breaks a rule: 422
- no or wrong API key: 401; too many requests: 429 with Retry-After; body too large: 413
- same transaction id with another body: 409
- database down or no model loaded: 503 with the reason
- anything else: 500 with the correlation id to find it in the logs (never the exception text)
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from litestar import MediaType, Request, Response
from litestar.datastructures import State
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import (
    HTTP_400_BAD_REQUEST,
    HTTP_409_CONFLICT,
    HTTP_413_REQUEST_ENTITY_TOO_LARGE,
    HTTP_422_UNPROCESSABLE_ENTITY,
    HTTP_500_INTERNAL_SERVER_ERROR,
    HTTP_503_SERVICE_UNAVAILABLE,
)
from litestar.types import Receive, Scope, Send
from loguru import logger

from fraudsvc.api.middleware import ERROR_CLASS, LOGGED
from fraudsvc.context import current_correlation_id
from fraudsvc.db.engine import DatabaseUnavailable
from fraudsvc.errors import Conflict, NoModel, NotFound
from fraudsvc.rules.ruleset import RulesetRefused
from fraudsvc.schemas import ErrorBody, FieldError, encode
from fraudsvc.transaction import FieldProblem

AnyRequest = Request[Any, Any, State]
HTTP_ERROR_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    503: "unavailable",
}
_BACKTICKED = re.compile(r"`([^`]+)`")


def error_response(
    status: int,
    error: str,
    message: str,
    field: str | None = None,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[bytes]:
    body = ErrorBody(
        error=error,
        message=message,
        field=field,
        errors=errors,
        correlation_id=current_correlation_id(),
    )
    return Response(
        content=encode(body), status_code=status, media_type=MediaType.JSON, headers=headers
    )


def _field_error(item: dict[str, object]) -> FieldError:
    message = str(item.get("message", "invalid value"))
    key = item.get("key")
    field = str(key) if key is not None else None
    if field in (None, "data"):
        # object-level errors name the field in the message: "Object missing required field `x`"
        named = _BACKTICKED.search(message)
        field = named.group(1) if named and "field" in message else None
    return FieldError(field=field, rule=message, source=str(item.get("source") or "body"))


MALFORMED_MARKERS = ("JSON is malformed", "Number out of range", "Input data was truncated")


def on_validation(_: AnyRequest, exc: ValidationException) -> Response[bytes]:
    extra = exc.extra if isinstance(exc.extra, list) else []
    errors = [_field_error(item) for item in extra if isinstance(item, dict)]
    if any(e.rule == "'data'" for e in errors):  # Litestar's way of saying "no body at all"
        return error_response(
            HTTP_400_BAD_REQUEST, "malformed_body", "the request body is empty; send a JSON object"
        )
    if not errors:  # the body could not be decoded at all
        return error_response(
            HTTP_400_BAD_REQUEST,
            "malformed_body",
            f"the request body is not valid JSON for this route: {exc.detail}",
        )
    first = errors[0]
    if first.field is None and "Expected `object`" in first.rule:
        return error_response(
            HTTP_400_BAD_REQUEST,
            "malformed_body",
            f"the request body must be a JSON object: {first.rule}",
        )
    where = f"{first.field}: " if first.field else ""
    return error_response(
        HTTP_422_UNPROCESSABLE_ENTITY,
        "validation_failed",
        f"{where}{first.rule}",
        field=first.field,
        errors=errors,
    )


UNMATCHED_ROUTE = "unmatched"


def _count_unrouted(request: AnyRequest, status: int) -> None:
    """Requests that match no route never reach the per-route middleware: count them here."""
    metrics = getattr(request.app.state, "metrics", None)
    if metrics is not None and not request.scope.get("path_template"):
        metrics.requests.inc(
            {"method": request.method, "route": UNMATCHED_ROUTE, "status": str(status)}
        )


def on_http(request: AnyRequest, exc: HTTPException) -> Response[bytes]:
    status = exc.status_code
    _count_unrouted(request, status)
    headers = dict(exc.headers or {})
    if status == HTTP_400_BAD_REQUEST and any(m in str(exc.detail) for m in MALFORMED_MARKERS):
        return error_response(
            status, "malformed_body", f"the request body is not valid JSON: {exc.detail}"
        )
    message = str(exc.detail)
    if status == HTTP_413_REQUEST_ENTITY_TOO_LARGE:  # Litestar's own detail names no limit
        limit = request.app.request_max_body_size
        message = f"the request body is larger than {limit} bytes (FRAUDSVC_MAX_BODY_BYTES)"
    return error_response(
        status, HTTP_ERROR_CODES.get(status, "error"), message, headers=headers or None
    )


def on_database(request: AnyRequest, exc: DatabaseUnavailable) -> Response[bytes]:
    # one line for the request, with the cause (the middleware's would only say 503)
    request.scope.setdefault("state", {})[LOGGED] = True
    logger.bind(
        method=request.method,
        route=request.scope.get("path_template", "?"),
        status=503,
        error=type(exc).__name__,
    ).warning("request failed: {}", exc)
    metrics = getattr(request.app.state, "metrics", None)
    if metrics is not None:
        metrics.db_errors.inc({"source": "api"})
    return error_response(
        HTTP_503_SERVICE_UNAVAILABLE,
        "database_unavailable",
        "the database is unavailable, so the request could not be completed; retry later "
        "(a repeated transaction is answered idempotently, never scored twice)",
        headers={"Retry-After": "1"},
    )


def on_no_model(_: AnyRequest, exc: NoModel) -> Response[bytes]:
    return error_response(HTTP_503_SERVICE_UNAVAILABLE, "no_model", str(exc))


def on_conflict(_: AnyRequest, exc: Conflict) -> Response[bytes]:
    return error_response(
        HTTP_409_CONFLICT,
        "conflict",
        str(exc),
        field=exc.fields[0] if exc.fields else None,
        errors=[
            FieldError(field=f, rule="differs from the stored transaction", source="body")
            for f in exc.fields
        ],
    )


def on_field_problem(_: AnyRequest, exc: FieldProblem) -> Response[bytes]:
    """A value that passed the schema but breaks a rule only the service can check (the
    clock)."""
    return error_response(
        HTTP_422_UNPROCESSABLE_ENTITY,
        "validation_failed",
        f"{exc.field}: {exc}",
        field=exc.field,
        errors=[FieldError(field=exc.field, rule=str(exc), source="body")],
    )


def on_rules_refused(_: AnyRequest, exc: RulesetRefused) -> Response[bytes]:
    """A ruleset with rules that cannot be compiled: every one is named, with where."""
    errors = [
        FieldError(
            field=f"rules.{p.rule}",
            rule=p.message,
            source="body",
        )
        for p in exc.problems
    ]
    first = exc.problems[0]
    return error_response(
        HTTP_422_UNPROCESSABLE_ENTITY,
        "rule_refused",
        f"rule {first.rule}: {first.message}"
        + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""),
        field=f"rules.{first.rule}",
        errors=errors,
    )


def on_not_found(_: AnyRequest, exc: NotFound) -> Response[bytes]:
    return error_response(404, "not_found", str(exc))


def on_unexpected(request: AnyRequest, exc: Exception) -> Response[bytes]:
    request.scope.setdefault("state", {})[LOGGED] = True
    logger.opt(exception=exc).bind(status=500, error=type(exc).__name__).error(
        "unhandled error on {} {}", request.method, request.scope.get("path_template", "?")
    )
    return error_response(
        HTTP_500_INTERNAL_SERVER_ERROR,
        "internal_error",
        "an unexpected error occurred; the correlation id finds it in the logs",
    )


Handler = Callable[[AnyRequest, Any], Response[bytes]]


def _noting_class(handler: Handler) -> Handler:
    """The handler, noting the exception's class for the request's log line."""

    def noted(request: AnyRequest, exc: Any) -> Response[bytes]:
        request.scope.setdefault("state", {})[ERROR_CLASS] = type(exc).__name__
        return handler(request, exc)

    return noted


_HANDLERS: dict[type[Exception], Handler] = {
    ValidationException: on_validation,
    HTTPException: on_http,
    DatabaseUnavailable: on_database,
    NoModel: on_no_model,
    Conflict: on_conflict,
    NotFound: on_not_found,
    FieldProblem: on_field_problem,
    RulesetRefused: on_rules_refused,
    Exception: on_unexpected,
}
EXCEPTION_HANDLERS = {exc: _noting_class(handler) for exc, handler in _HANDLERS.items()}


async def answer(exc: Exception, scope: Scope, receive: Receive, send: Send) -> None:
    """Answer `exc` with the handler Litestar's exception middleware would pick, for code
    that answers it itself: the API key's refusals (inside the request's context, so they
    carry the caller's correlation id and have their log line) and the scoring fast path."""
    handler = next(EXCEPTION_HANDLERS[k] for k in type(exc).__mro__ if k in EXCEPTION_HANDLERS)
    request: AnyRequest = Request(scope, receive, send)
    await handler(request, exc).to_asgi_response(app=None, request=request)(scope, receive, send)
