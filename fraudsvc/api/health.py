"""Liveness and readiness.

/healthz: the process serves requests. /readyz: the database answers and a model is loaded
(503 otherwise, saying why); Redis trouble is reported but does not make the service unready,
because scoring does not need Redis (explanations wait in the database for the sweep).
"""

from __future__ import annotations

import asyncio

from litestar import Response, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE

from fraudsvc.db import queries
from fraudsvc.db.engine import DatabaseUnavailable
from fraudsvc.resources import Resources
from fraudsvc.schemas import CheckOut, LiveOut, ReadyOut

CHECK_TIMEOUT = 2.0


@get("/healthz", summary="Liveness", tags=["health"], include_in_schema=True)
async def healthz() -> LiveOut:
    return LiveOut(status="ok")


async def database_check() -> CheckOut:
    try:
        await asyncio.wait_for(queries.ping(), CHECK_TIMEOUT)
    except (DatabaseUnavailable, TimeoutError) as exc:
        return CheckOut(ok=False, detail=str(exc) or "no answer within 2 s")
    return CheckOut(ok=True, detail="reachable")


@get(
    "/readyz",
    summary="Readiness: database reachable and a model loaded",
    tags=["health"],
    responses={503: ResponseSpec(data_container=ReadyOut, description="not ready; says why")},
)
async def readyz(resources: NamedDependency[Resources]) -> Response[ReadyOut]:
    status = resources.models.status()
    model = CheckOut(
        ok=status.loaded,
        detail=f"{status.name} v{status.version} from the {status.source}"
        if status.loaded
        else str(status.problem),
    )
    checks = {"database": await database_check(), "model": model}
    if resources.queue is not None:
        checks["redis"] = await resources.queue.check()
    ready = checks["database"].ok and checks["model"].ok
    return Response(
        ReadyOut(ready=ready, checks=checks),
        status_code=HTTP_200_OK if ready else HTTP_503_SERVICE_UNAVAILABLE,
    )
