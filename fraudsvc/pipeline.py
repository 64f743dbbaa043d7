"""The request path of `POST /v1/transactions`, top to bottom.

    validate (msgspec, at the edge; the clock here) -> history (one read: the windows from time
    buckets) -> features -> score -> the model's decision -> rules (every live and shadow rule
    of the live ruleset) -> the final decision (precedence in `fraudsvc.decision`) -> reasons
    (flagged, or on request) -> persist atomically (one write; triggers keep the buckets; a
    review case opens) -> enqueue the explanation after commit

Idempotency: a stored transaction id is answered with its stored prediction and never scored
again; another body under the same id is a conflict. Concurrent duplicates in this process wait
for the first (single flight); across processes the unique key decides and the loser answers
with the winner's stored prediction, so exactly one prediction exists either way.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

import msgspec

from fraudsvc import scoring
from fraudsvc.db import queries
from fraudsvc.db.records import NewPrediction, StoredTransaction
from fraudsvc.decision import combine, decide
from fraudsvc.errors import Conflict, NoModel
from fraudsvc.explain_policy import explain_reason
from fraudsvc.features import Declaration, online_vector
from fraudsvc.model.loader import ModelHolder
from fraudsvc.rulebook import Rulebook
from fraudsvc.rules.ruleset import Hit, context_of, evaluate
from fraudsvc.schemas import (
    ExplanationLink,
    ModelRef,
    PredictionOut,
    ReasonOut,
    RuleHitOut,
    ThresholdsOut,
    TransactionIn,
)
from fraudsvc.settings import Settings
from fraudsvc.telemetry.tracing import annotate, carrier_to_text, current_context_carrier, span
from fraudsvc.transaction import FieldProblem, Transaction

Enqueue = Callable[[str, str], Awaitable[bool]]
"""(transaction_id, correlation_id) -> whether the explanation job was enqueued."""


@dataclass(frozen=True)
class Scored:
    prediction: PredictionOut
    replay: bool
    timings: dict[str, float]
    vector: list[float] | None = None
    explain_reason: str | None = None
    rules_evaluated: bool = False


def opens_case(decision: str, settings: Settings) -> bool:
    """A review decision opens a case in the analysts' queue; a block one when the setting
    asks (blocked payments are refused already; reviewing them finds the false positives)."""
    return decision == "review" or (decision == "block" and settings.review.blocked_cases)


def explanation_url(transaction_id: str) -> str:
    return f"/v1/transactions/{transaction_id}/explanation"


def prediction_out(stored: StoredTransaction) -> PredictionOut | None:
    """A stored prediction as the API shows it (the body of a replay); None if never scored."""
    p = stored.prediction
    if p is None:
        return None
    status = p.explanation_status or "not_requested"
    return PredictionOut(
        transaction_id=stored.body.transaction_id,
        score=p.score,
        decision=p.decision,  # type: ignore[arg-type]
        model_decision=p.model_decision,  # type: ignore[arg-type]
        decided_by=p.decided_by,
        thresholds=ThresholdsOut(review=p.threshold_review, block=p.threshold_block),
        model=ModelRef(name=p.model_name, version=p.model_version),
        reasons=None if p.reasons is None else [ReasonOut(**r) for r in p.reasons],
        rules=[msgspec.convert(h, RuleHitOut) for h in p.rule_hits or []],
        ruleset_version=p.ruleset_version,
        explanation=ExplanationLink(
            status=status,  # type: ignore[arg-type]
            url=None if status == "not_requested" else explanation_url(stored.body.transaction_id),
        ),
        correlation_id=p.correlation_id,
        scored_at=p.created_at,
    )


class Scorer:
    def __init__(
        self,
        settings: Settings,
        models: ModelHolder,
        enqueue: Enqueue | None,
        rulebook: Rulebook | None = None,
    ) -> None:
        self.settings = settings
        self.models = models
        self.enqueue = enqueue
        self.rulebook = rulebook
        self._inflight: dict[str, asyncio.Future[Scored]] = {}
        self.max_skew = timedelta(seconds=settings.api.max_clock_skew_seconds)
        self._buckets_checked: set[str] = set()

    async def score(self, tx: TransactionIn, correlation_id: str, want_reasons: bool) -> Scored:
        body = tx.to_transaction()
        latest = datetime.now(UTC) + self.max_skew
        if body.timestamp > latest:
            raise FieldProblem(
                "timestamp",
                f"not later than now plus the allowed clock skew ({latest.isoformat()}); "
                "a transaction cannot come from the future",
            )
        first = self._inflight.get(body.transaction_id)
        if first is not None:  # a duplicate arrived while the original is being scored
            await asyncio.shield(first)
            return await self._replay(body)
        future: asyncio.Future[Scored] = asyncio.get_running_loop().create_future()
        self._inflight[body.transaction_id] = future
        try:
            with queries.one_budget():  # a hung database ends the request within its timeout
                result = await self._score_new(body, correlation_id, want_reasons)
            future.set_result(result)
            return result
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it, nobody else must
            raise
        finally:
            del self._inflight[body.transaction_id]

    async def _check_buckets(self, decl: Declaration) -> None:
        """The database must keep the buckets of every entity the model's features read; and it
        keeps the declaration, so that every stored vector can be read by name later. Once per
        declaration and process."""
        if decl.hash in self._buckets_checked:
            return
        missing = await queries.missing_bucket_entities(decl)
        if missing:
            raise NoModel(
                f"the model's features read entities whose time buckets this database does not "
                f"keep ({', '.join(missing)}): run `fraudsvc migrate` with this version"
            )
        await queries.record_declaration(decl)
        self._buckets_checked.add(decl.hash)

    async def _score_new(
        self, body: Transaction, correlation_id: str, want_reasons: bool
    ) -> Scored:
        bundle = self.models.current
        if bundle is None:
            raise NoModel(f"no model is loaded: {self.models.problem}")
        decl = bundle.declaration
        await self._check_buckets(decl)
        started = time.perf_counter()

        with span("load history"):
            history = await queries.load_history(body, decl)
        if history.exists:
            return await self._replay(body)
        read = time.perf_counter()

        vector = online_vector(decl, body, history.spans)
        score = scoring.score(bundle, vector)
        thresholds = bundle.thresholds
        model_decision = decide(score, thresholds)
        scored = time.perf_counter()

        live = self.rulebook.current if self.rulebook is not None else None
        hits: list[Hit] = []
        if live is not None and live.ruleset.rules:
            with span("rules", ruleset_version=live.ruleset.version):
                context = context_of(body, decl.names, vector, score, model_decision)
                hits = evaluate(live.ruleset, context, live.lists.at(datetime.now(UTC)))
        decision, decided_by = combine(model_decision, hits)
        annotate(
            **{
                "fraudsvc.model_version": bundle.version,
                "fraudsvc.model_decision": model_decision,
                "fraudsvc.decision": decision,
                "fraudsvc.decided_by": decided_by,
            }
        )
        if decision != "allow" or model_decision != "allow" or want_reasons:
            reasons = scoring.reasons(bundle, vector)
        else:
            reasons = None
        explain = explain_reason(self.settings.explain, body.transaction_id, decision)
        ruled = time.perf_counter()

        with span("persist"):
            created = await queries.insert_prediction(
                NewPrediction(
                    body=body,
                    score=score,
                    decision=decision,
                    threshold_review=thresholds.review,
                    threshold_block=thresholds.block,
                    model_name=bundle.name,
                    model_version=bundle.version,
                    feature_hash=decl.hash,
                    features=vector,
                    reasons=None if reasons is None else [asdict(r) for r in reasons],
                    correlation_id=correlation_id,
                    explain_reason=explain,
                    model_decision=model_decision,
                    decided_by=decided_by,
                    ruleset_version=live.ruleset.version if live and live.ruleset.version else None,
                    rule_hits=[msgspec.to_builtins(h) for h in hits] or None,
                    open_case=opens_case(decision, self.settings),
                    # the sweep re-sends a pending job with the trace it came from
                    trace_context=None
                    if explain is None
                    else carrier_to_text(current_context_carrier()),
                )
            )
        if created is None:  # another process stored this id between our read and write
            return await self._replay(body)
        written = time.perf_counter()

        if explain is not None and self.enqueue is not None:
            # after the commit; if Redis is down the row stays pending and the sweep sends it
            with span("enqueue explanation"):
                await self.enqueue(body.transaction_id, correlation_id)
        done = time.perf_counter()

        prediction = PredictionOut(
            transaction_id=body.transaction_id,
            score=score,
            decision=decision,
            model_decision=model_decision,
            decided_by=decided_by,
            thresholds=ThresholdsOut(review=thresholds.review, block=thresholds.block),
            model=ModelRef(name=bundle.name, version=bundle.version),
            reasons=None
            if reasons is None
            else [ReasonOut(r.feature, r.value, r.contribution) for r in reasons],
            rules=[RuleHitOut(h.id, h.action, h.mode, h.status, h.values, h.error) for h in hits],
            ruleset_version=live.ruleset.version if live and live.ruleset.version else None,
            explanation=ExplanationLink(
                status="pending" if explain else "not_requested",
                url=explanation_url(body.transaction_id) if explain else None,
            ),
            correlation_id=correlation_id,
            scored_at=created,
        )
        timings = {
            "history": read - started,
            "score": scored - read,
            "rules": ruled - scored,
            "persist": written - ruled,
            "enqueue": done - written,
        }
        return Scored(
            prediction=prediction,
            replay=False,
            timings=timings,
            vector=vector,
            explain_reason=explain,
            rules_evaluated=bool(live and live.ruleset.rules),
        )

    async def _replay(self, body: Transaction) -> Scored:
        stored = await queries.fetch_transaction(body.transaction_id, scoring=True)
        if stored is None:  # its key is kept, its month was dropped by retention
            raise Conflict(
                f"transaction_id {body.transaction_id!r} was already used by a transaction older "
                "than the history this service keeps (its month was removed by retention); an "
                "id identifies one transaction and is never scored twice",
                [],
            )
        different = stored.body.differing_fields(body)
        if different:
            raise Conflict(
                f"transaction_id {body.transaction_id!r} was already scored with a different "
                f"body (fields that differ: {', '.join(different)}); an id identifies one "
                "transaction",
                different,
            )
        prediction = prediction_out(stored)
        if prediction is None:
            raise Conflict(
                f"transaction_id {body.transaction_id!r} was imported as history by "
                "`fraudsvc backfill` and is not scored",
                [],
            )
        return Scored(prediction=prediction, replay=True, timings={})
