"""API keys and the per-key rate limit, as a middleware of the /v1 routers.

Two kinds of key: scoring keys (FRAUDSVC_API_KEYS) open scoring, reads, labels and
explanations; admin keys (FRAUDSVC_ADMIN_KEYS) open those and the rules, lists and audit routes,
where a scoring key gets 403. Keys are held as SHA-256 digests (the variables may even hold only
digests); an incoming key is hashed and compared with every stored digest in constant time, so
neither the key nor which key matched leaks through timing. Keys never reach logs or error
messages; the audit trail names an admin key by the start of its digest (`key:1a2b3c4d`).

A refusal (401, 403, 429) is answered by the middleware itself, through the app's exception
handlers, inside the request's context: like every failed request it carries the caller's
correlation id (header and body), writes its log line and is counted.

It is a router middleware rather than a Litestar guard: Litestar hands each guard a shallow copy
of the route handler (`copy(handler)` on every request), which cost more than the check itself
(about 4 % of the web process's CPU at saturation, py-spy).

The rate limit is a token bucket per key, in this process: FRAUDSVC_RATE_LIMIT_PER_SECOND tokens
a second, FRAUDSVC_RATE_LIMIT_BURST at most. With several replicas each enforces its own share;
a shared limit would cost a Redis round trip on every request.
"""

from __future__ import annotations

import hmac
import math
import time
from dataclasses import dataclass

from litestar.enums import ScopeType
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    PermissionDeniedException,
    TooManyRequestsException,
)
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from fraudsvc.api.errors import answer
from fraudsvc.settings import ApiSettings, hash_api_key

API_KEY_HEADER = "x-api-key"
_HEADER = API_KEY_HEADER.encode()


@dataclass
class _Bucket:
    tokens: float
    updated: float


def actor_of(digest: str) -> str:
    """How the audit trail names a key: never the key, a prefix of its digest."""
    return f"key:{digest[:8]}"


class ApiKeyMiddleware(ASGIMiddleware):
    """Any key opens the router's routes (scoring or admin); `admin=True`: admin keys only."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, settings: ApiSettings, admin: bool = False) -> None:
        self.scoring = settings.api_key_hashes
        self.admin_digests = settings.admin_key_hashes
        self.admin = admin
        self.rate = settings.rate_limit_per_second
        self.burst = float(settings.rate_limit_burst)
        self.buckets: dict[str, _Bucket] = {}

    def authenticate(self, offered: str | None) -> tuple[str, bool]:
        """The matching key's digest and whether it is an admin key; raises 401 otherwise."""
        if not offered:
            raise NotAuthorizedException("missing X-API-Key header")
        digest = hash_api_key(offered)
        matched, is_admin = None, False
        for stored in self.scoring:
            if hmac.compare_digest(digest, stored):
                matched = stored
        for stored in self.admin_digests:
            if hmac.compare_digest(digest, stored):
                matched, is_admin = stored, True
        if matched is None:
            raise NotAuthorizedException("invalid API key")
        return matched, is_admin

    def take(self, digest: str) -> None:
        """Spend one token of the key's bucket; raises 429 with Retry-After when empty."""
        if self.rate <= 0:
            return
        now = time.monotonic()
        bucket = self.buckets.get(digest)
        if bucket is None:
            bucket = self.buckets[digest] = _Bucket(tokens=self.burst, updated=now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return
        wait = math.ceil((1.0 - bucket.tokens) / self.rate)
        raise TooManyRequestsException(
            f"rate limit of {self.rate:g} requests/s per API key exceeded; retry in {wait} s",
            headers={"Retry-After": str(max(1, wait))},
        )

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        offered = None
        for name, value in scope["headers"]:
            if name == _HEADER:
                offered = value.decode("latin-1")
                break
        try:
            digest, is_admin = self.authenticate(offered)
            if self.admin and not is_admin:
                raise PermissionDeniedException(
                    "this key may score, read and label, but rules and lists need an admin key "
                    "(FRAUDSVC_ADMIN_KEYS)"
                )
            self.take(digest)
        except HTTPException as refused:
            # answered here, inside the request's context: raised, it was answered outside,
            # without the caller's correlation id, a log line or a count
            await answer(refused, scope, receive, send)
            return
        scope.setdefault("state", {})["actor"] = actor_of(digest)
        await next_app(scope, receive, send)
