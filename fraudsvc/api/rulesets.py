"""/v1/rulesets: numbered, immutable versions of the analysts' rules; one is live. Admin keys
only. A new version is checked (every rule compiled against the served model's features and
the lists that exist) and stored as a draft; publishing it, or an older one (a rollback), is one
call, and every web process follows within a second. `/v1/audit` shows every change.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.di import NamedDependency
from litestar.openapi.spec import Example
from litestar.params import Body, Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from fraudsvc.admin_schemas import AuditOut, BacktestIn, BacktestOut, RulesetIn, RulesetOut
from fraudsvc.api.docs import error_responses
from fraudsvc.api.lists import actor
from fraudsvc.db import audit
from fraudsvc.db import rulesets as db_rulesets
from fraudsvc.errors import NoModel, NotFound
from fraudsvc.features import DECLARATION, Declaration
from fraudsvc.resources import Resources
from fraudsvc.rules_service import backtest, check
from fraudsvc.transaction import FieldProblem

EXAMPLE_RULES = {
    "description": "November: card-testing wave at online shops",
    "rules": [
        {
            "id": "big_amount",
            "expression": "amount > 5000",
            "action": "block",
            "description": "no payment above 5,000 without a person",
        },
        {
            "id": "blocked_customer",
            "expression": "customer_id in @blocked_customers",
            "action": "block",
        },
        {
            "id": "new_device_abroad",
            "expression": 'channel == "ecommerce" and customer_device_nb_tx_30d == 1 '
            "and card_country != merchant_country and amount > 200",
            "action": "review",
            "mode": "shadow",
        },
    ],
}


EXAMPLE = Example(summary="three rules, one in shadow", value=EXAMPLE_RULES)
BACKTEST_EXAMPLE = Example(
    summary="October",
    value={"start": "2026-10-01T00:00:00Z", "end": "2026-11-01T00:00:00Z"},
)


def out(stored: db_rulesets.StoredRuleset) -> RulesetOut:
    return RulesetOut(
        version=stored.version,
        description=stored.description,
        rules=stored.rules,
        created_at=stored.created_at,
        created_by=stored.created_by,
        live=stored.live,
        published_at=stored.published_at,
        published_by=stored.published_by,
    )


def served_declaration(resources: Resources) -> Declaration:
    bundle = resources.models.current
    return bundle.declaration if bundle is not None else DECLARATION


Version = Annotated[int, Parameter(ge=1, description="the ruleset version")]


class RulesetsController(Controller):
    path = "/v1/rulesets"
    tags = ("rules",)
    security = ({"AdminKey": []},)

    @get(
        "/", summary="Ruleset versions, newest first", responses=error_responses(401, 403, 429, 503)
    )
    async def versions(self) -> list[RulesetOut]:
        return [out(s) for s in await db_rulesets.versions()]

    @post(
        "/",
        summary="Check and store a new ruleset version (a draft)",
        description="Every rule is compiled against the served model's features and the lists "
        "that exist: an unknown name or list, a forbidden construct (an attribute access, a "
        "call, an import...) or a type error is a 422 naming the rule and where in its "
        "expression. The new version is not live until published.",
        status_code=HTTP_201_CREATED,
        responses=error_responses(400, 401, 403, 413, 422, 429, 503),
    )
    async def create(
        self,
        request: Request[Any, Any, State],
        resources: NamedDependency[Resources],
        data: Annotated[
            RulesetIn, Body(examples=[Example(summary="three rules", value=EXAMPLE_RULES)])
        ],
    ) -> RulesetOut:
        await check(0, data.rules, served_declaration(resources))
        return out(await db_rulesets.create(data.rules, data.description, actor(request)))

    @get("/live", summary="The live ruleset", responses=error_responses(401, 403, 404, 429, 503))
    async def live(self) -> RulesetOut:
        stored = await db_rulesets.live()
        if stored is None:
            raise NotFound("no ruleset is live: create one and publish it")
        return out(stored)

    @get(
        "/{version:int}",
        summary="A ruleset version",
        responses=error_responses(400, 401, 403, 404, 429, 503),
    )
    async def read(self, version: Version) -> RulesetOut:
        stored = await db_rulesets.get(version)
        if stored is None:
            raise NotFound(f"no ruleset version {version}")
        return out(stored)

    @post(
        "/{version:int}/publish",
        summary="Make a version live (publishing an older one rolls back)",
        description="Checked again first (a list it reads may have gone). Every web process "
        "evaluates it within a second.",
        status_code=HTTP_200_OK,
        responses=error_responses(400, 401, 403, 404, 422, 429, 503),
    )
    async def publish(
        self,
        request: Request[Any, Any, State],
        resources: NamedDependency[Resources],
        version: Version,
    ) -> RulesetOut:
        stored = await db_rulesets.get(version)
        if stored is None:
            raise NotFound(f"no ruleset version {version}")
        await check(version, stored.rules, served_declaration(resources))
        return out(await db_rulesets.publish(version, actor(request)))

    @post(
        "/{version:int}/backtest",
        summary="Backtest a version on stored history with its labels",
        description="Replays the scored transactions of [start, end) with their stored "
        "features, scores and model decisions through the version's rules (lists as they are "
        "now, expiry by each transaction's time), and reports per rule and for the whole: "
        "hits, precision and recall against the labels, fraud amount caught, genuine amount "
        "hit, and the decisions that would change. At most 366 days; for long periods the CLI "
        "(`fraudsvc rules backtest`) runs it outside the service.",
        status_code=HTTP_200_OK,
        responses=error_responses(400, 401, 403, 404, 422, 429, 503),
    )
    async def backtest(
        self,
        resources: NamedDependency[Resources],
        version: Version,
        data: Annotated[BacktestIn, Body(examples=[BACKTEST_EXAMPLE])],
    ) -> BacktestOut:
        if resources.models.current is None:
            raise NoModel("no model is loaded: the rules read the served model's features")
        try:
            return await backtest(version, data.start, data.end, served_declaration(resources))
        except LookupError as exc:
            raise NotFound(str(exc)) from exc
        except ValueError as exc:
            raise FieldProblem("end", str(exc)) from exc


@get(
    "/v1/audit",
    summary="The audit trail of rules, lists and analysts' actions",
    tags=["rules"],
    security=[{"AdminKey": []}],
    responses=error_responses(400, 401, 403, 429, 503),
)
async def audit_trail(
    subject: Annotated[
        str,
        Parameter(
            description="a subject or its start: `list:blocked_customers`, `ruleset:`, `case:`",
            max_length=256,
        ),
    ] = "",
    limit: Annotated[int, Parameter(ge=1, le=1000)] = 100,
) -> list[AuditOut]:
    return [
        AuditOut(e.id, e.at, e.actor, e.action, e.subject, e.details)
        for e in await audit.entries(subject, limit)
    ]
