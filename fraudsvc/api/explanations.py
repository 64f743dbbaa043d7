"""/v1/transactions/{id}/explanation: request a LIME explanation, read it."""

from __future__ import annotations

from litestar import Controller, Response, get, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED

from fraudsvc.api.docs import error_responses
from fraudsvc.api.transactions import TransactionId
from fraudsvc.context import current_correlation_id
from fraudsvc.context import transaction_id as transaction_context
from fraudsvc.db import explanations, queries
from fraudsvc.db.explanations import ExplanationRecord
from fraudsvc.errors import Conflict, NotFound
from fraudsvc.jobs.payloads import ExplainJob
from fraudsvc.pipeline import explanation_url
from fraudsvc.resources import Resources
from fraudsvc.schemas import (
    ExplanationOut,
    ExplanationParameters,
    ExplanationRequested,
    ExplanationWeight,
    ModelRef,
)
from fraudsvc.telemetry.tracing import carrier_to_text, current_context_carrier


def explanation_out(r: ExplanationRecord) -> ExplanationOut:
    done = r.status == "done"
    return ExplanationOut(
        transaction_id=r.transaction_id,
        status=r.status,  # type: ignore[arg-type]
        reason=r.reason,
        method=r.method,
        attempts=r.attempts,
        model=ModelRef(name=r.model_name, version=r.model_version)
        if r.model_name and r.model_version
        else None,
        score=r.score,
        target=r.target,  # type: ignore[arg-type]
        model_output=r.model_output,
        parameters=_parameters(r) if done else None,
        weights=[ExplanationWeight(**w) for w in r.weights] if done and r.weights else None,
        local_prediction=r.local_prediction,
        local_error=r.local_prediction - r.model_output
        if r.local_prediction is not None and r.model_output is not None
        else None,
        intercept=r.intercept,
        local_fit_r2=r.local_fit_r2,
        stability=r.stability,
        held_missing=r.held_missing,
        requested_at=r.requested_at,
        started_at=r.started_at,
        finished_at=r.finished_at,
        duration_ms=r.duration_ms,
        predict_ms=r.predict_ms,
        error=r.error,
    )


def _parameters(r: ExplanationRecord) -> ExplanationParameters | None:
    if (
        r.num_samples is None
        or r.num_features is None
        or r.seed is None
        or r.discretizer is None
        or r.sample_around_instance is None
        or r.kernel_width_factor is None
        or r.stability_seeds is None
    ):
        return None
    return ExplanationParameters(
        num_samples=r.num_samples,
        num_features=r.num_features,
        seed=r.seed,
        discretizer=r.discretizer,  # type: ignore[arg-type]
        sample_around_instance=r.sample_around_instance,
        kernel_width_factor=r.kernel_width_factor,
        stability_seeds=r.stability_seeds,
    )


class ExplanationsController(Controller):
    path = "/v1/transactions/{transaction_id:str}/explanation"
    tags = ("explanations",)
    security = ({"ApiKey": []},)

    @post(
        "/",
        summary="Request a LIME explanation of a stored prediction",
        description=(
            "Queues a LIME explanation of the transaction's stored feature vector with the model "
            "version that scored it, and answers 202 with the explanation's status and URL. "
            "Idempotent: asking again changes nothing while it is pending, running or done; a "
            "failed explanation is tried again."
        ),
        status_code=HTTP_202_ACCEPTED,
        responses=error_responses(400, 401, 404, 409, 429, 503),
    )
    async def request(
        self, transaction_id: TransactionId, resources: NamedDependency[Resources]
    ) -> ExplanationRequested:
        correlation_id = current_correlation_id()
        transaction_context.set(transaction_id)
        carrier = current_context_carrier()
        outcome = await explanations.request(
            transaction_id, correlation_id, carrier_to_text(carrier)
        )
        if outcome == "unknown":
            raise NotFound(f"unknown transaction {transaction_id!r}")
        if outcome == "not_scored":
            raise Conflict(
                f"transaction {transaction_id!r} was imported as history and never scored: "
                "there is no prediction to explain",
                [],
            )
        record = await explanations.read(transaction_id)
        assert record is not None
        if outcome in ("created", "retrying") and resources.queue is not None:
            await resources.queue.enqueue(ExplainJob(transaction_id, correlation_id, carrier))
        return ExplanationRequested(
            transaction_id=transaction_id,
            status=record.status,  # type: ignore[arg-type]
            url=explanation_url(transaction_id),
        )

    @get(
        "/",
        summary="Read a transaction's explanation",
        description=(
            "202 with the status while the explanation is pending or running; 200 when it is "
            "done or failed (with the error). Done: the weights of LIME's local model on the "
            "scale named by `target` (log-odds by default, beside the model's own `model_output` "
            "on that scale), each with the feature's value and condition, LIME's local fit (R²), "
            "its stability across seeds, and the options it ran with. 404 when the transaction "
            "is unknown, or when no explanation was requested for it: the message says which."
        ),
        responses={
            HTTP_202_ACCEPTED: ResponseSpec(
                data_container=ExplanationOut,
                description="Pending or running: the status, no weights yet",
            ),
            **error_responses(400, 401, 404, 429, 503),
        },
    )
    async def read(self, transaction_id: TransactionId) -> Response[ExplanationOut]:
        record = await explanations.read(transaction_id)
        if record is None:
            if await queries.fetch_transaction(transaction_id) is None:
                raise NotFound(f"unknown transaction {transaction_id!r}")
            raise NotFound(
                f"no explanation was requested for transaction {transaction_id!r}; "
                f"POST {explanation_url(transaction_id)} to request one"
            )
        status = HTTP_202_ACCEPTED if record.status in explanations.OPEN else HTTP_200_OK
        return Response(explanation_out(record), status_code=status)
