"""create_app(settings) -> Litestar: routes, middleware, error handlers, docs, lifespan; serve_app
(settings): what `fraudsvc web` serves, the app behind the scoring fast path."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar, Router
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.types import ASGIApp

from fraudsvc import __version__
from fraudsvc.api.docs import COMPONENTS
from fraudsvc.api.errors import EXCEPTION_HANDLERS
from fraudsvc.api.explanations import ExplanationsController
from fraudsvc.api.fast_scoring import FastScoring, ScoringMiddlewares
from fraudsvc.api.health import healthz, readyz
from fraudsvc.api.lists import ListsController
from fraudsvc.api.middleware import RequestContextMiddleware
from fraudsvc.api.openapi import StrictStructSchemaPlugin
from fraudsvc.api.rulesets import RulesetsController, audit_trail
from fraudsvc.api.security import ApiKeyMiddleware
from fraudsvc.api.swagger import SwaggerAssets, render_plugin, static_router
from fraudsvc.api.transactions import TransactionsController
from fraudsvc.pipeline import Scorer
from fraudsvc.resources import Resources, open_resources
from fraudsvc.review import review_router
from fraudsvc.settings import Settings, SettingsError
from fraudsvc.telemetry.metrics import WebMetrics
from fraudsvc.telemetry.server_span import ServerSpanMiddleware
from fraudsvc.telemetry.web import metrics_route

DESCRIPTION = """Real-time fraud scoring. `POST /v1/transactions` answers within milliseconds
with a fraud score, a decision (allow / review / block) with the thresholds used, the model
version and, for flagged transactions, the features that drove the score. Every `/v1` route
needs an `X-API-Key`. Errors are JSON with `error`, `message` and the `field` at fault."""


def _resources(state: State) -> Resources:
    resources: Resources = state.resources
    return resources


def _scorer(state: State) -> Scorer:
    return _resources(state).scorer


def serve_app(settings: Settings, with_worker: bool = False) -> ASGIApp:
    """What `fraudsvc web` serves: the app, with plain scoring requests taken past Litestar's
    per-request machinery by the same steps (`fraudsvc.api.fast_scoring`) unless
    FRAUDSVC_FAST_SCORING=false."""
    app, middlewares = _build(settings, with_worker)
    if not settings.api.fast_scoring:
        return app
    return FastScoring(app, middlewares, settings.api.max_body_bytes)


def create_app(settings: Settings, with_worker: bool = False) -> Litestar:
    """The web app; with `with_worker` the arq worker runs in the same process and loop."""
    return _build(settings, with_worker)[0]


def _build(settings: Settings, with_worker: bool) -> tuple[Litestar, ScoringMiddlewares]:
    if not settings.api.api_key_hashes:
        raise SettingsError(
            [
                "FRAUDSVC_API_KEYS: set at least one API key (comma-separated, 8+ characters, "
                "or sha256:<hex digest>) before starting the web service"
            ]
        )

    metrics = WebMetrics()
    swagger = SwaggerAssets.vendored()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        app.state.metrics = metrics
        async with open_resources(settings, metrics) as resources:
            app.state.resources = resources
            if not with_worker:
                yield
                return
            from fraudsvc.jobs.service import probe_app, serving
            from fraudsvc.jobs.worker import running_worker

            w = settings.worker
            async with (
                running_worker(settings, resources.models) as running,
                serving(probe_app(running), w.metrics_host, w.metrics_port),
            ):
                yield

    scoring_keys = ApiKeyMiddleware(settings.api)
    middlewares = ScoringMiddlewares(
        span=ServerSpanMiddleware(),
        context=RequestContextMiddleware(metrics, settings.api.decision_log),
        keys=scoring_keys,
    )
    admin_keys = ApiKeyMiddleware(settings.api, admin=True)
    admin_keys.buckets = scoring_keys.buckets  # one rate limit per key across routes
    v1 = Router(
        path="/",
        route_handlers=[TransactionsController, ExplanationsController],
        middleware=[scoring_keys],
    )
    admin = Router(
        path="/",
        route_handlers=[ListsController, RulesetsController, audit_trail],
        middleware=[admin_keys],
    )
    app = Litestar(
        route_handlers=[
            v1,
            admin,
            review_router(settings.review),
            healthz,
            readyz,
            metrics_route,
            static_router(swagger),
        ],
        lifespan=[lifespan],
        dependencies={
            "resources": Provide(_resources, sync_to_thread=False),
            "scorer": Provide(_scorer, sync_to_thread=False),
        },
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        # the span outermost: the request's log lines carry its trace id
        middleware=[middlewares.span, middlewares.context],
        openapi_config=OpenAPIConfig(
            title="fraudsvc",
            version=__version__,
            description=DESCRIPTION,
            path="/docs",
            render_plugins=[render_plugin(swagger), JsonRenderPlugin(path="/openapi.json")],
            components=COMPONENTS,
        ),
        plugins=[StrictStructSchemaPlugin()],
        request_max_body_size=settings.api.max_body_bytes,
        logging_config=None,
        debug=False,
    )
    return app, middlewares
