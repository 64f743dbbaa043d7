"""OpenAPI pieces shared by the routes: the documented error responses and the key scheme."""

from __future__ import annotations

from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Components, Example, SecurityScheme

from fraudsvc.schemas import ErrorBody
from fraudsvc.transaction import RULES

DESCRIPTIONS = {
    400: "The body is not JSON or not a JSON object, or a query parameter is malformed",
    401: "Missing or invalid X-API-Key",
    403: "A scoring key on a route that needs an admin key (rules, lists, audit)",
    404: "Unknown transaction, list or ruleset (the message says what is missing)",
    409: "The transaction id was already used for a different transaction",
    413: "The request body is larger than FRAUDSVC_MAX_BODY_BYTES",
    422: "A field breaks a rule; `field` names it and `errors` lists every problem",
    429: "Rate limit of this API key exceeded; see Retry-After",
    503: "The database is unavailable or no model is loaded; the message says which",
}


_CARD_COUNTRY = f"field `card_country` must be {RULES['card_country']}"
CORRELATION = "5d0c2a7e9b1f4c3a8e6d2b7f0a9c1e34"
# what the service really sends for each status (the handlers in fraudsvc.api.errors)
EXAMPLES: dict[int, dict[str, object]] = {
    400: {
        "error": "malformed_body",
        "message": "the request body is not valid JSON: JSON is malformed: invalid character "
        "(byte 11)",
    },
    401: {"error": "unauthorized", "message": "invalid API key"},
    403: {
        "error": "forbidden",
        "message": "this key may score, read and label, but rules and lists need an admin key "
        "(FRAUDSVC_ADMIN_KEYS)",
    },
    404: {"error": "not_found", "message": "unknown transaction 'tx-20260302-000123'"},
    409: {
        "error": "conflict",
        "message": "transaction_id 'tx-20260302-000123' was already scored with a different "
        "body (fields that differ: amount); an id identifies one transaction",
        "field": "amount",
        "errors": [
            {"field": "amount", "rule": "differs from the stored transaction", "source": "body"}
        ],
    },
    413: {
        "error": "payload_too_large",
        "message": "the request body is larger than 16384 bytes (FRAUDSVC_MAX_BODY_BYTES)",
    },
    422: {
        "error": "validation_failed",
        "message": f"card_country: {_CARD_COUNTRY}",
        "field": "card_country",
        "errors": [{"field": "card_country", "rule": _CARD_COUNTRY, "source": "body"}],
    },
    429: {
        "error": "rate_limited",
        "message": "rate limit of 1000 requests/s per API key exceeded; retry in 1 s",
    },
    503: {
        "error": "database_unavailable",
        "message": "the database is unavailable, so the request could not be completed; retry "
        "later (a repeated transaction is answered idempotently, never scored twice)",
    },
}


def error_responses(*codes: int) -> dict[int, ResponseSpec]:
    """The documented error responses of a route: every one is an `ErrorBody`, with an example."""
    return {
        code: ResponseSpec(
            data_container=ErrorBody,
            description=DESCRIPTIONS[code],
            generate_examples=False,
            examples=[
                Example(
                    summary=DESCRIPTIONS[code],
                    value={**EXAMPLES[code], "correlation_id": CORRELATION},
                )
            ],
        )
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
