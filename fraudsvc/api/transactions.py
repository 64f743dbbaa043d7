"""/v1/transactions: score, read, label. Thin: the work is in `fraudsvc.pipeline`."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example
from litestar.params import Body, Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from fraudsvc.api.docs import error_responses
from fraudsvc.api.middleware import SCORED
from fraudsvc.context import current_correlation_id
from fraudsvc.context import transaction_id as transaction_context
from fraudsvc.db import queries
from fraudsvc.errors import NotFound
from fraudsvc.pipeline import Scored, prediction_out
from fraudsvc.resources import Resources
from fraudsvc.schemas import (
    LabelIn,
    LabelOut,
    LabelView,
    PredictionOut,
    TransactionDetail,
    TransactionIn,
    TransactionView,
)
from fraudsvc.telemetry.web import observe_scored
from fraudsvc.transaction import ID_PATTERN

REPLAY_HEADER = "X-Idempotent-Replay"
TransactionId = Annotated[
    str,
    Parameter(description="the transaction's id", pattern=ID_PATTERN, min_length=1, max_length=64),
]
SCORE_EXAMPLE = Example(
    summary="a card payment",
    value={
        "transaction_id": "tx-20260302-000123",
        "timestamp": "2026-03-02T12:30:00Z",
        "customer_id": "C000042",
        "terminal_id": "T001337",
        "amount": 57.90,
    },
)
SCORE_V2_EXAMPLE = Example(
    summary="an online payment with the attributes payments carry",
    value={
        "transaction_id": "tx-20260302-000124",
        "timestamp": "2026-03-02T12:31:05Z",
        "customer_id": "C000042",
        "terminal_id": "T020304",
        "amount": "249.00",
        "currency": "USD",
        "merchant_category": "5732",
        "merchant_country": "US",
        "card_country": "FR",
        "channel": "ecommerce",
        "device_id": "dev-8f3a21c4",
        "ip": "203.0.113.24",
        "attributes": {"wallet": "none", "three_ds": False, "basket_items": 3},
    },
)
LABEL_EXAMPLE = Example(summary="a chargeback", value={"is_fraud": True, "source": "chargeback"})


async def score_step(
    resources: Resources, state: dict[str, Any], data: TransactionIn, reasons: bool
) -> Scored:
    """What the scoring route does with a valid request, whichever way it came in (this
    route, or `fraudsvc.api.fast_scoring`): score, note the result for the decision's log
    line, count it, feed the drift monitor."""
    transaction_context.set(data.transaction_id)
    result = await resources.scorer.score(data, current_correlation_id(), want_reasons=reasons)
    state[SCORED] = result  # the decision's log line
    observe_scored(resources.metrics, result)
    if result.vector is not None:
        resources.drift.record(
            result.vector, result.prediction.score, result.prediction.model.version
        )
    return result


class TransactionsController(Controller):
    path = "/v1/transactions"
    tags = ("transactions",)
    security = ({"ApiKey": []},)

    @post(
        "/",
        summary="Score a transaction",
        description=(
            "Scores the transaction with the champion model from its stored history, decides "
            "allow / review / block, stores transaction and prediction atomically and answers "
            "201. A repeat of the same transaction answers the stored prediction with 200 and "
            f"`{REPLAY_HEADER}: true` (it is never scored twice); the same id with another body "
            "is a 409. `reasons` (LightGBM's per-feature contributions to the log-odds) are "
            "computed for review and block decisions, or for any decision with "
            "`?reasons=true`: they cost about 1 ms a row against 0.02 ms for the score. "
            "`explanation.status` says whether a LIME explanation is coming."
        ),
        status_code=HTTP_201_CREATED,
        responses={
            HTTP_200_OK: ResponseSpec(
                data_container=PredictionOut,
                description=f"A repeat: the stored prediction, with `{REPLAY_HEADER}: true`",
            ),
            **error_responses(400, 401, 409, 413, 422, 429, 503),
        },
    )
    async def score(
        self,
        request: Request[Any, Any, Any],
        data: Annotated[TransactionIn, Body(examples=[SCORE_EXAMPLE, SCORE_V2_EXAMPLE])],
        reasons: Annotated[
            bool, Parameter(description="compute reasons for every decision, not only flagged")
        ] = False,
    ) -> Response[PredictionOut]:
        # read from the app's state, not injected: this route runs a thousand times a second
        # and Litestar's dependency resolution cost 12-20 µs of it (a two-route app, timed)
        resources: Resources = request.app.state.resources
        result = await score_step(resources, request.scope["state"], data, reasons)
        if result.replay:
            return Response(
                result.prediction, status_code=HTTP_200_OK, headers={REPLAY_HEADER: "true"}
            )
        return Response(result.prediction, status_code=HTTP_201_CREATED)

    @get(
        "/{transaction_id:str}",
        summary="Read a stored transaction",
        description=(
            "The transaction, its prediction with the exact feature vector it was scored on, "
            "and its label. `prediction` and `features` are null for history imported by "
            "`fraudsvc backfill`."
        ),
        responses=error_responses(400, 401, 404, 422, 429, 503),
    )
    async def read(self, transaction_id: TransactionId) -> TransactionDetail:
        transaction_context.set(transaction_id)
        stored = await queries.fetch_transaction(transaction_id)
        if stored is None:
            raise NotFound(f"unknown transaction {transaction_id!r}")
        p = stored.prediction
        features = (
            None
            if p is None or p.feature_names is None
            else dict(zip(p.feature_names, p.features, strict=True))
        )
        return TransactionDetail(
            transaction=TransactionView.of(stored.body, stored.received_at),
            prediction=prediction_out(stored),
            features=features,
            label=None
            if stored.label is None
            else LabelView(
                is_fraud=stored.label.is_fraud,
                source=stored.label.source,
                labelled_at=stored.label.labelled_at,
                updated_at=stored.label.updated_at,
            ),
        )

    @post(
        "/{transaction_id:str}/label",
        summary="Record a label (chargeback, analyst verdict...)",
        description=(
            "Idempotent: the same label again changes nothing (200, status `unchanged`); a "
            "different verdict corrects the stored one (200, `updated`); the first is 201. "
            "Labels feed the terminal-risk features of later transactions (once they are older "
            "than the label delay) and `fraudsvc train --from-db`."
        ),
        status_code=HTTP_201_CREATED,
        responses={
            HTTP_200_OK: ResponseSpec(
                data_container=LabelOut,
                description="The label was already recorded (unchanged) or was corrected",
            ),
            **error_responses(400, 401, 404, 413, 422, 429, 503),
        },
    )
    async def label(
        self,
        transaction_id: TransactionId,
        data: Annotated[LabelIn, Body(examples=[LABEL_EXAMPLE])],
    ) -> Response[LabelOut]:
        transaction_context.set(transaction_id)
        outcome = await queries.upsert_label(transaction_id, bool(data.is_fraud), data.source)
        if outcome is None:
            raise NotFound(f"unknown transaction {transaction_id!r}: score it before labelling it")
        stored = await queries.fetch_transaction(transaction_id)
        assert stored is not None and stored.label is not None
        body = LabelOut(
            transaction_id=transaction_id,
            is_fraud=stored.label.is_fraud,
            source=stored.label.source,
            status=outcome,
            labelled_at=stored.label.labelled_at,
            updated_at=stored.label.updated_at,
        )
        return Response(body, status_code=HTTP_201_CREATED if outcome == "created" else HTTP_200_OK)
