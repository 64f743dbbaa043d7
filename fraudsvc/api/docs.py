"""OpenAPI pieces shared by the routes: the documented error responses and the key scheme."""

from __future__ import annotations

from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Components, SecurityScheme

from fraudsvc.schemas import ErrorBody

DESCRIPTIONS = {
    400: "The body is not JSON, or not a JSON object",
    401: "Missing or invalid X-API-Key",
    403: "A scoring key on a route that needs an admin key (rules, lists, audit)",
    404: "Unknown transaction, list or ruleset (the message says what is missing)",
    409: "The transaction id was already used for a different transaction",
    413: "The request body is larger than FRAUDSVC_MAX_BODY_BYTES",
    422: "A field breaks a rule; `field` names it and `errors` lists every problem",
    429: "Rate limit of this API key exceeded; see Retry-After",
    503: "The database is unavailable or no model is loaded; the message says which",
}


def error_responses(*codes: int) -> dict[int, ResponseSpec]:
    return {
        code: ResponseSpec(data_container=ErrorBody, description=DESCRIPTIONS[code])
        for code in codes
    }


COMPONENTS = Components(
    security_schemes={
        "ApiKey": SecurityScheme(
            type="apiKey",
            name="X-API-Key",
            security_scheme_in="header",
            description="One of the keys in FRAUDSVC_API_KEYS (or FRAUDSVC_ADMIN_KEYS)",
        ),
        "AdminKey": SecurityScheme(
            type="apiKey",
            name="X-API-Key",
            security_scheme_in="header",
            description="One of the keys in FRAUDSVC_ADMIN_KEYS",
        ),
    }
)
