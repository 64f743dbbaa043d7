"""Analysts' passwords, sessions, CSRF tokens and the sign-in throttle.

- Passwords: argon2id (argon2-cffi's defaults, a memory-hard hash), verified in a worker thread
  because a verification costs tens of milliseconds of CPU; an unknown name is checked against a
  dummy hash so that the answer takes as long as for a known one. Passwords are never logged.
- Sessions: a random token in a cookie (HttpOnly, SameSite=Strict, path /review, Secure over
  https or when FRAUDSVC_REVIEW_SECURE_COOKIE asks); the database keeps its SHA-256 only. The
  cookie opens the review pages and nothing else: the JSON API reads API keys only.
- CSRF: every session has its own token, put in every form and compared in constant time on
  every POST. The sign-in form, which has no session yet, uses a double-submit cookie.
- Throttle: after FRAUDSVC_REVIEW_SIGNIN_ATTEMPTS failures within the window for a name or for a
  client address, sign-ins get 429 until the window ends.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from litestar import Request
from litestar.datastructures import Cookie

from fraudsvc.db import analysts
from fraudsvc.db.analysts import Session, ThrottleScope
from fraudsvc.settings import ReviewSettings

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024
NAME_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"
SESSION_COOKIE = "fraudsvc_review"
SIGNIN_COOKIE = "fraudsvc_signin"
COOKIE_PATH = "/review"


class SignInRequired(Exception):
    """No live session: the page sends the browser to the sign-in form."""


class CsrfRefused(Exception):
    """A POST without the form's CSRF token (or with another one)."""


@lru_cache(maxsize=1)
def _hasher() -> PasswordHasher:
    return PasswordHasher()  # argon2id, RFC 9106's low-memory profile


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _hasher().hash(secrets.token_urlsafe(16))


def password_problem(password: str) -> str | None:
    """Why a new password is refused, or None."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"a password needs at least {MIN_PASSWORD_LENGTH} characters"
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"a password has at most {MAX_PASSWORD_LENGTH} characters"
    return None


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def _verify(stored: str, password: str) -> tuple[bool, bool]:
    """(matches, needs a rehash)."""
    try:
        _hasher().verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False, False
    return True, _hasher().check_needs_rehash(stored)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def same_token(given: str | None, expected: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


def client_address(request: Request) -> str:
    """The peer's address (behind a proxy, the proxy's: the throttle per name still holds)."""
    return request.client.host if request.client else "unknown"


@dataclass(frozen=True)
class SignedIn:
    token: str
    session: Session


SignInOutcome = SignedIn | Literal["wrong", "throttled"]


async def sign_in(
    settings: ReviewSettings, name: str, password: str, address: str
) -> SignInOutcome:
    keys: dict[ThrottleScope, str] = {"name": name[:128], "address": address[:128]}
    if await analysts.throttled(keys, settings.signin_attempts, settings.signin_window_minutes):
        return "throttled"
    found = await analysts.credentials(name)
    stored = found.password_hash if found is not None else _dummy_hash()
    matches, rehash = await asyncio.to_thread(_verify, stored, password[:MAX_PASSWORD_LENGTH])
    if found is None or found.disabled or not matches:
        await analysts.record_failure(keys, settings.signin_window_minutes)
        return "wrong"
    if rehash:
        await analysts.replace_hash(name, await asyncio.to_thread(hash_password, password))
    await analysts.clear_failures(name)
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(24)
    await analysts.open_session(token_hash(token), name, csrf, settings.session_minutes, address)
    session = await analysts.session(token_hash(token))
    assert session is not None
    return SignedIn(token, session)


async def current_session(request: Request) -> Session | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token or len(token) > 128:
        return None
    return await analysts.session(token_hash(token))


def _secure(request: Request, settings: ReviewSettings) -> bool:
    return settings.secure_cookie or request.url.scheme == "https"


def session_cookie(request: Request, settings: ReviewSettings, token: str) -> Cookie:
    return Cookie(
        key=SESSION_COOKIE,
        value=token,
        path=COOKIE_PATH,
        max_age=settings.session_minutes * 60,
        httponly=True,
        samesite="strict",
        secure=_secure(request, settings),
    )


def cleared_session_cookie(request: Request, settings: ReviewSettings) -> Cookie:
    return Cookie(
        key=SESSION_COOKIE,
        value="",
        path=COOKIE_PATH,
        max_age=0,
        httponly=True,
        samesite="strict",
        secure=_secure(request, settings),
    )


def signin_cookie(
    request: Request, settings: ReviewSettings, token: str, max_age: int = 3600
) -> Cookie:
    """The sign-in form's double-submit CSRF token (there is no session to hold one yet)."""
    return Cookie(
        key=SIGNIN_COOKIE,
        value=token,
        path=COOKIE_PATH,
        max_age=max_age,
        httponly=True,
        samesite="strict",
        secure=_secure(request, settings),
    )


def new_csrf_token() -> str:
    return secrets.token_urlsafe(24)
