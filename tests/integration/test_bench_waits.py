"""make bench's wait sampler classifies what the database's busy backends wait on, read from
the real server's pg_stat_activity: a backend blocked by another's lock counts as a lock wait,
one computing as CPU."""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter

import asyncpg

from tests.bench.waits import CLASSES, WaitSampler, shares, wait_class


def test_wait_classes() -> None:
    assert wait_class(None, None) == "cpu"
    assert wait_class("IO", "WALSync") == "wal"
    assert wait_class("LWLock", "WALWrite") == "wal"
    assert wait_class("IO", "WALWrite") == "wal"
    assert wait_class("IO", "DataFileRead") == "data_read"
    assert wait_class("Lock", "relation") == "lock"
    assert wait_class("Client", "ClientRead") == "client"
    assert wait_class("Timeout", "PgSleep") == "other"


def test_shares_are_per_cent_and_nan_without_samples() -> None:
    assert shares(Counter({"cpu": 1, "wal": 3})) == {
        "cpu": 25.0, "wal": 75.0, "data_read": 0.0, "lock": 0.0, "client": 0.0, "other": 0.0
    }  # fmt: skip
    assert all(math.isnan(v) for v in shares(Counter()).values())
    assert set(shares(Counter())) == set(CLASSES)


async def test_a_blocked_backend_is_sampled_as_a_lock_wait(clean_database: str) -> None:
    holder = await asyncpg.connect(clean_database)
    waiter = await asyncpg.connect(clean_database)
    try:
        await holder.execute("CREATE TABLE wait_probe (x int)")
        transaction = holder.transaction()
        await transaction.start()
        await holder.execute("LOCK TABLE wait_probe IN ACCESS EXCLUSIVE MODE")
        blocked = asyncio.create_task(waiter.execute("SELECT count(*) FROM wait_probe"))
        with WaitSampler(clean_database, interval=0.01) as sampler:
            await asyncio.sleep(0.5)
        await transaction.rollback()
        await blocked
        # the sampler's thread has its own connection; this one and the holder are idle
        assert sampler.counts["lock"] >= 10, sampler.counts
        assert sum(sampler.counts.values()) == sampler.counts["lock"], sampler.counts
    finally:
        await holder.execute("DROP TABLE IF EXISTS wait_probe")
        await holder.close()
        await waiter.close()


async def test_a_computing_backend_is_sampled_on_the_cpu(clean_database: str) -> None:
    busy = await asyncpg.connect(clean_database)
    try:
        # a PL/pgSQL loop: nothing to read, write or wait for
        work = asyncio.create_task(
            busy.execute("DO $$ BEGIN FOR i IN 1..30000000 LOOP END LOOP; END $$")
        )
        await asyncio.sleep(0.05)
        with WaitSampler(clean_database, interval=0.01) as sampler:
            await asyncio.sleep(0.3)
        await work
        assert sampler.counts["cpu"] >= 5, sampler.counts
        assert sampler.counts["cpu"] == sum(sampler.counts.values()), sampler.counts
    finally:
        await busy.close()


def test_without_a_database_nothing_is_counted() -> None:
    with WaitSampler(None) as sampler:
        pass
    assert not sampler.counts
    with WaitSampler("postgresql://nobody@127.0.0.1:1/none", interval=0.01) as sampler:
        time.sleep(0.1)
    assert not sampler.counts
