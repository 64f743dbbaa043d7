"""The analysts' pages: sign-in and sign-out, the queue, a case, claim and verdict.

Plain HTML forms and redirects (POST, then 303 to a page), no script at all, so the pages work
in any browser with no internet access. Every response carries a Content-Security-Policy that
allows nothing but the app's own stylesheet and forms posting back to the app; every POST checks
its CSRF token; every page but the sign-in form needs an analyst's session, and the session
cookie opens nothing outside /review.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from litestar import Request, Response, Router, get, post
from litestar.datastructures import Cookie
from litestar.di import NamedDependency, Provide
from litestar.enums import MediaType
from litestar.params import FromPath, FromQuery
from litestar.static_files import create_static_files_router

from fraudsvc.db import analysts, cases
from fraudsvc.db.analysts import Session
from fraudsvc.review import auth
from fraudsvc.review.case import case_page
from fraudsvc.review.queue import amount_text, filters_from, queue_page
from fraudsvc.settings import ReviewSettings
from fraudsvc.transaction import ID_PATTERN

HERE = Path(__file__).resolve().parent
STATIC_PREFIX = "/review/static"
CSP = (
    "default-src 'self'; script-src 'none'; style-src 'self'; img-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
MAX_NOTE = 2000
MAX_REASON = 500
_ID = re.compile(ID_PATTERN)
# what a redirect may ask the next page to say: fixed texts, never text from the request
MESSAGES = {
    "claimed": "Claimed: the case is yours until the time shown.",
    "held": "Another analyst holds this case: pick another one.",
    "closed": "This case is closed already.",
    "claim_first": "Claim the case before giving a verdict (or your claim expired).",
    "done": "Verdict recorded; here is the next case.",
    "done_last": "Verdict recorded. The queue is empty.",
    "no_value": "This transaction has no value of that list's kind.",
    "bad_list": "That list does not exist any more, or the value does not fit it.",
    "bad_verdict": "Choose fraud or genuine.",
    "signed_out": "Signed out.",
}


@lru_cache(maxsize=1)
def templates() -> Environment:
    """The pages' templates, every value autoescaped (also in templates loaded from strings)."""
    environment = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["amount"] = amount_text
    return environment


def page(
    template: str, status_code: int = 200, cookies: list[Cookie] | None = None, **context: Any
) -> Response[str]:
    context.setdefault("message", None)
    html = templates().get_template(template).render(static=STATIC_PREFIX, **context)
    return Response(
        html,
        status_code=status_code,
        media_type=MediaType.HTML,
        headers=SECURITY_HEADERS,
        cookies=cookies,
    )


def redirect(location: str, cookies: list[Cookie] | None = None) -> Response[str]:
    return Response(
        "",
        status_code=303,
        headers={**SECURITY_HEADERS, "Location": location},
        cookies=cookies,
        media_type=MediaType.TEXT,
    )


def case_url(transaction_id: str, message: str | None = None) -> str:
    url = f"/review/{quote(transaction_id, safe='')}"
    return f"{url}?msg={message}" if message else url


async def _session(request: Request) -> Session:
    session = await auth.current_session(request)
    if session is None:
        raise auth.SignInRequired
    return session


async def _form(request: Request, session: Session | None) -> dict[str, str]:
    """The posted form, once its CSRF token matched the session's (or the sign-in cookie's)."""
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    expected = session.csrf_token if session else request.cookies.get(auth.SIGNIN_COOKIE, "")
    if not expected or not auth.same_token(values.get("csrf_token"), expected):
        raise auth.CsrfRefused
    return values


def _sign_in_form(
    request: Request, settings: ReviewSettings, status_code: int = 200, **context: Any
) -> Response[str]:
    token = auth.new_csrf_token()
    context.setdefault("error", None)
    context.setdefault("name", "")
    context.setdefault("message", None)
    return page(
        "sign_in.html",
        status_code,
        cookies=[auth.signin_cookie(request, settings, token)],
        csrf_token=token,
        analyst=None,
        **context,
    )


@get("/sign-in", name="review-sign-in")
async def sign_in_form(
    request: Request,
    review_settings: NamedDependency[ReviewSettings],
    msg: FromQuery[str | None] = None,
) -> Response[str]:
    if await auth.current_session(request) is not None:
        return redirect("/review")
    return _sign_in_form(request, review_settings, message=MESSAGES.get(msg or ""))


@post("/sign-in", status_code=303)
async def sign_in(
    request: Request, review_settings: NamedDependency[ReviewSettings]
) -> Response[str]:
    form = await _form(request, None)
    name = form.get("name", "").strip()[:64]
    outcome = await auth.sign_in(
        review_settings, name, form.get("password", ""), auth.client_address(request)
    )
    if outcome == "throttled":
        minutes = review_settings.signin_window_minutes
        return _sign_in_form(
            request,
            review_settings,
            429,
            name=name,
            error=f"Too many failed sign-ins. Wait up to {minutes} minutes and try again.",
        )
    if outcome == "wrong":
        return _sign_in_form(
            request, review_settings, 401, name=name, error="Wrong name or password."
        )
    return redirect(
        "/review",
        cookies=[
            auth.session_cookie(request, review_settings, outcome.token),
            auth.signin_cookie(request, review_settings, "", max_age=0),
        ],
    )


@post("/sign-out", status_code=303)
async def sign_out(
    request: Request,
    review_settings: NamedDependency[ReviewSettings],
    analyst: NamedDependency[Session],
) -> Response[str]:
    await _form(request, analyst)
    token = request.cookies.get(auth.SESSION_COOKIE, "")
    await analysts.close_session(auth.token_hash(token))
    return redirect(
        "/review/sign-in?msg=signed_out",
        cookies=[auth.cleared_session_cookie(request, review_settings)],
    )


@get("/")
async def queue(
    analyst: NamedDependency[Session],
    decision: FromQuery[str | None] = None,
    rule: FromQuery[str | None] = None,
    terminal: FromQuery[str | None] = None,
    msg: FromQuery[str | None] = None,
) -> Response[str]:
    data = await queue_page(filters_from(decision, rule, terminal))
    return page("queue.html", analyst=analyst, q=data, message=MESSAGES.get(msg or ""))


@get("/{transaction_id:str}")
async def case(
    analyst: NamedDependency[Session],
    transaction_id: FromPath[str],
    msg: FromQuery[str | None] = None,
) -> Response[str]:
    data = await case_page(transaction_id) if _ID.match(transaction_id) else None
    if data is None:
        return page(
            "message.html",
            404,
            analyst=analyst,
            title="No such case",
            text="There is no review case for this transaction.",
        )
    return page(
        "case.html",
        analyst=analyst,
        c=data,
        message=MESSAGES.get(msg or ""),
        mine=data.state.claimed_by == analyst.analyst,
    )


@post("/{transaction_id:str}/claim", status_code=303)
async def claim(
    request: Request,
    review_settings: NamedDependency[ReviewSettings],
    analyst: NamedDependency[Session],
    transaction_id: FromPath[str],
) -> Response[str]:
    await _form(request, analyst)
    if not _ID.match(transaction_id):
        return redirect("/review")
    outcome = await cases.claim(transaction_id, analyst.analyst, review_settings.claim_minutes)
    if outcome == "unknown":
        return redirect("/review")
    return redirect(case_url(transaction_id, outcome))


def _list_value(kind: str, tx: dict[str, str | None]) -> str | None:
    return tx.get(f"{kind}_id")


@post("/{transaction_id:str}/verdict", status_code=303)
async def verdict(
    request: Request, analyst: NamedDependency[Session], transaction_id: FromPath[str]
) -> Response[str]:
    form = await _form(request, analyst)
    if not _ID.match(transaction_id):
        return redirect("/review")
    outcome = form.get("verdict")
    if outcome not in ("fraud", "genuine"):
        return redirect(case_url(transaction_id, "bad_verdict"))
    addition = None
    list_name = form.get("list", "")
    if list_name:
        data = await case_page(transaction_id)
        if data is None:
            return redirect("/review")
        kinds = {c.name: c.kind for c in data.lists}
        if list_name not in kinds:
            return redirect(case_url(transaction_id, "bad_list"))
        values = {
            "customer_id": data.customer_id,
            "terminal_id": data.terminal_id,
            "device_id": data.device_id,
        }
        value = _list_value(kinds[list_name], values)
        if not value:
            return redirect(case_url(transaction_id, "no_value"))
        reason = form.get("reason", "").strip()[:MAX_REASON] or f"review verdict: {outcome}"
        addition = cases.ListAddition(list_name, value, reason)
    try:
        closed = await cases.close(
            transaction_id,
            analyst.analyst,
            outcome,  # type: ignore[arg-type]
            form.get("note", "").strip()[:MAX_NOTE],
            addition,
        )
    except (LookupError, ValueError):
        return redirect(case_url(transaction_id, "bad_list"))
    if not closed:
        return redirect(case_url(transaction_id, "claim_first"))
    following = await cases.next_case(analyst.analyst)
    if following is None:
        return redirect("/review?msg=done_last")
    return redirect(case_url(following, "done"))


def _to_sign_in(request: Request, exc: Exception) -> Response[str]:
    return redirect("/review/sign-in")


def _csrf_refused(request: Request, exc: Exception) -> Response[str]:
    return page(
        "message.html",
        403,
        analyst=None,
        title="Form refused",
        text="This form was not sent from a page of this service (or it expired): "
        "open the page again and repeat.",
    )


def review_router(settings: ReviewSettings) -> Router:
    """The pages, their static files, and the session and settings they depend on."""

    def review_settings() -> ReviewSettings:
        return settings

    pages = Router(
        path="/review",
        route_handlers=[sign_in_form, sign_in, sign_out, queue, case, claim, verdict],
        dependencies={
            "analyst": Provide(_session),
            "review_settings": Provide(review_settings, sync_to_thread=False),
        },
        exception_handlers={
            auth.SignInRequired: _to_sign_in,
            auth.CsrfRefused: _csrf_refused,
        },
        include_in_schema=False,
    )
    static = create_static_files_router(
        path=STATIC_PREFIX,
        directories=[HERE / "static"],
        name="review-static",
        include_in_schema=False,
    )
    return Router(path="/", route_handlers=[pages, static], include_in_schema=False)
