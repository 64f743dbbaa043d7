"""/v1/lists: named, typed lists that rules look up with `@name`. Admin keys only.

Changes reach every web process within a second (the database notifies them); every change is
in the audit trail (`GET /v1/audit?subject=list:<name>`).
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, post, put
from litestar.datastructures import State
from litestar.openapi.spec import Example
from litestar.params import Body, Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED, HTTP_204_NO_CONTENT

from fraudsvc.admin_schemas import (
    EntriesAdded,
    EntriesIn,
    EntryOut,
    ListDetail,
    ListIn,
    ListName,
    ListOut,
    ListReplaced,
)
from fraudsvc.api.docs import error_responses
from fraudsvc.db import lists as db_lists
from fraudsvc.errors import NotFound
from fraudsvc.rules.values import ListValueError
from fraudsvc.transaction import FieldProblem

Name = Annotated[ListName, Parameter(description="the list's name")]
EXAMPLES = 20


def actor(request: Request[Any, Any, State]) -> str:
    return str(request.state.get("actor", "unknown"))


def list_out(info: db_lists.ListInfo) -> ListOut:
    return ListOut(
        name=info.name,
        kind=info.kind,
        description=info.description,
        entries=info.entries,
        created_at=info.created_at,
        created_by=info.created_by,
        updated_at=info.updated_at,
    )


class ListsController(Controller):
    path = "/v1/lists"
    tags = ("lists",)
    security = ({"AdminKey": []},)

    @get("/", summary="All lists", responses=error_responses(401, 403, 429, 503))
    async def all(self) -> list[ListOut]:
        return [list_out(info) for info in await db_lists.all_lists()]

    @put(
        "/{name:str}",
        summary="Create a list, or change its description",
        description="201 when created, 200 otherwise. A list's kind cannot change.",
        status_code=HTTP_201_CREATED,
        responses=error_responses(400, 401, 403, 409, 422, 429, 503),
    )
    async def define(
        self,
        request: Request[Any, Any, State],
        name: Name,
        data: Annotated[
            ListIn,
            Body(
                examples=[
                    Example(
                        summary="customers to block",
                        value={"kind": "customer", "description": "confirmed stolen cards"},
                    )
                ]
            ),
        ],
    ) -> Response[ListOut]:
        try:
            outcome = await db_lists.define(name, data.kind, data.description, actor(request))
        except ValueError as exc:
            raise FieldProblem("kind", str(exc)) from exc
        info = await db_lists.info(name)
        assert info is not None
        status = HTTP_201_CREATED if outcome == "created" else HTTP_200_OK
        return Response(list_out(info), status_code=status)

    @get(
        "/{name:str}",
        summary="A list and its entries (paged by value)",
        responses=error_responses(400, 401, 403, 404, 429, 503),
    )
    async def read(
        self,
        name: Name,
        after: Annotated[str, Parameter(description="the last value of the previous page")] = "",
        limit: Annotated[int, Parameter(ge=1, le=10_000)] = 1000,
    ) -> ListDetail:
        info = await db_lists.info(name)
        if info is None:
            raise NotFound(f"no list @{name}")
        entries = await db_lists.entries_of(name, limit=limit, after=after)
        return ListDetail(
            definition=list_out(info),
            entries=[
                EntryOut(e.value, e.reason, e.source, e.added_by, e.added_at, e.expires_at)
                for e in entries
            ],
            next_after=entries[-1].value if len(entries) == limit else None,
        )

    @post(
        "/{name:str}/entries",
        summary="Add entries (or change their reason and expiry)",
        status_code=HTTP_200_OK,
        responses=error_responses(400, 401, 403, 404, 413, 422, 429, 503),
    )
    async def add(
        self,
        request: Request[Any, Any, State],
        name: Name,
        data: Annotated[
            EntriesIn,
            Body(
                examples=[
                    Example(
                        summary="a stolen card, until the end of the month",
                        value={
                            "entries": [
                                {
                                    "value": "C000042",
                                    "reason": "chargeback 2026-11-03",
                                    "expires_at": "2026-12-01T00:00:00Z",
                                }
                            ]
                        },
                    )
                ]
            ),
        ],
    ) -> EntriesAdded:
        entries = [db_lists.NewEntry(e.value, e.reason, e.expires_at) for e in data.entries]
        try:
            added, changed = await db_lists.add(name, entries, data.source, actor(request))
        except LookupError as exc:
            raise NotFound(str(exc)) from exc
        except ListValueError as exc:
            raise FieldProblem("entries.value", str(exc)) from exc
        return EntriesAdded(added=added, changed=changed)

    @put(
        "/{name:str}/entries",
        summary="Replace the list's content (an import)",
        description="The body is the list's whole new content: values absent from it are "
        "removed, new ones added, others get the reason and expiry given. One transaction and "
        "one audit record. With `?dry_run=true` nothing changes and the answer says what would.",
        status_code=HTTP_200_OK,
        responses=error_responses(400, 401, 403, 404, 413, 422, 429, 503),
    )
    async def replace(
        self,
        request: Request[Any, Any, State],
        name: Name,
        data: Annotated[
            EntriesIn,
            Body(
                description="the list's whole new content",
                examples=[
                    Example(
                        summary="this week's compromised terminals, from the skimming report",
                        value={
                            "entries": [
                                {
                                    "value": "T004711",
                                    "reason": "skimmer found 2026-11-24",
                                    "expires_at": "2026-12-24T00:00:00Z",
                                },
                                {"value": "T000815", "reason": "two confirmed frauds"},
                            ]
                        },
                    )
                ],
            ),
        ],
        dry_run: Annotated[bool, Parameter(description="only say what would change")] = False,
    ) -> ListReplaced:
        wanted = [db_lists.NewEntry(e.value, e.reason, e.expires_at) for e in data.entries]
        try:
            diff = await db_lists.import_diff(name, wanted)
        except LookupError as exc:
            raise NotFound(str(exc)) from exc
        except ValueError as exc:
            raise FieldProblem("entries.value", str(exc)) from exc
        if not dry_run:
            await db_lists.apply_import(name, diff, data.source, actor(request))
        return ListReplaced(
            dry_run=dry_run,
            added=len(diff.added),
            changed=len(diff.changed),
            removed=len(diff.removed),
            examples={
                "added": [e.value for e in diff.added[:EXAMPLES]],
                "changed": [e.value for e in diff.changed[:EXAMPLES]],
                "removed": diff.removed[:EXAMPLES],
            },
        )

    @delete(
        "/{name:str}/entries/{value:path}",
        summary="Remove an entry",
        description="The value as stored or in any form of the list's kind (a network with "
        "its prefix: /v1/lists/bad_networks/entries/203.0.113.0/24).",
        status_code=HTTP_204_NO_CONTENT,
        responses=error_responses(400, 401, 403, 404, 422, 429, 503),
    )
    async def remove(
        self,
        request: Request[Any, Any, State],
        name: Name,
        value: Annotated[str, Parameter(description="the entry's value")],
    ) -> None:
        try:
            removed = await db_lists.remove(name, value.lstrip("/"), actor(request))
        except LookupError as exc:
            raise NotFound(str(exc)) from exc
        except ListValueError as exc:
            raise FieldProblem("value", str(exc)) from exc
        if not removed:
            raise NotFound(f"@{name} holds no entry {value.lstrip('/')!r}")
