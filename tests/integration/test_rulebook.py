"""The rulebook's poll: it reloads when the rules' generation moved (a notification lost with its
connection) and only then; the lists are read whole, in chunks."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg

from fraudsvc.db import engine
from fraudsvc.db import lists as db_lists
from fraudsvc.model.loader import ModelHolder
from fraudsvc.rulebook import Rulebook
from fraudsvc.settings import Settings
from fraudsvc.telemetry.metrics import WebMetrics


async def wait_for(check: object, seconds: float = 5.0) -> None:
    assert callable(check)
    deadline = asyncio.get_running_loop().time() + seconds
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "not reloaded in time"
        await asyncio.sleep(0.05)


async def test_a_lost_notification_is_caught_by_the_poll_and_nothing_reloads_for_nothing(
    database_url: str, tmp_path: Path, no_rules_after: None
) -> None:
    settings = Settings.from_env({"DATABASE_URL": database_url, "FRAUDSVC_DATA_DIR": str(tmp_path)})
    await engine.start_pool(settings.database)
    writer = await asyncpg.connect(database_url)
    rulebook = Rulebook(ModelHolder(settings), WebMetrics(), poll_seconds=0.2)
    loads = 0
    original = rulebook.load

    async def counted() -> None:
        nonlocal loads
        loads += 1
        await original()

    rulebook.load = counted  # type: ignore[method-assign]
    try:
        await writer.execute(
            "INSERT INTO lists (name, kind, created_by) VALUES ('watched', 'customer', 'test')"
        )
        task = asyncio.create_task(rulebook.run())
        await wait_for(lambda: "watched" in rulebook.current.lists.lists)
        await asyncio.sleep(1.0)  # five polls with nothing changed
        assert loads == 1

        # the listening connection dies: the change's notification is lost with it
        assert rulebook._listener is not None
        rulebook._listener.terminate()
        rulebook._listener = None
        await rulebook._drop_listener()
        entries = [(f"C{i:06d}",) for i in range(db_lists.SNAPSHOT_CHUNK + 5)]
        await writer.executemany(
            "INSERT INTO list_entries (list_name, value, reason, source, added_by) "
            "VALUES ('watched', $1, '', 'test', 'test')",
            entries,
        )
        await wait_for(lambda: len(rulebook.current.lists.lists.get("watched", {})) == len(entries))
        assert loads == 2
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    finally:
        await rulebook.close()
        await writer.close()
        await engine.close_pool()
