"""Monthly partitions and retention, on databases of their own (a prune drops whole months).

- idempotency holds across partitions: the same id dated in another month is a 409, the same
  body a 200, and an id whose month was pruned is refused (409), never scored again;
- a transaction dated outside every partition is stored (DEFAULT) and moves to its month's own
  partition when that is created, its feature buckets untouched;
- `prune` drops only the months older than the kept days and nothing that a pending
  explanation, an open review case or a recent label needs; windows read the same values
  before and after; a dry run changes nothing; a span shorter than the windows is refused;
- `fraudsvc prune` says what it dropped.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import asyncpg
import polars as pl
import pytest

from fraudsvc.cli import main
from fraudsvc.contract import load_contract_file
from fraudsvc.datagen import GeneratorConfig, generate
from fraudsvc.db import partitions, queries, retention
from fraudsvc.db.admin import drop_database, migrate
from fraudsvc.db.backfill import backfill
from fraudsvc.features import DECLARATION, Span, SpanValue
from fraudsvc.resources import open_database
from fraudsvc.settings import Settings
from tests.raw_windows import raw_spans
from tests.service import running_service, service_env, transaction
from tests.timeline import transaction as tx_of

pytestmark = pytest.mark.slow

WORLD = GeneratorConfig(
    customers=30, terminals=20, days=150, start=datetime(2026, 1, 1, tzinfo=UTC), seed=5
)
KEEP = 50
"""Days kept: the data ends on 30 May, so January to March are older, April is not."""
LATER = datetime(2028, 1, 1, tzinfo=UTC)
"""A wall clock after every label of the tests' data (no label counts as recent)."""


@pytest.fixture
async def own_database() -> AsyncIterator[str]:
    base = os.environ["FRAUDSVC_TEST_DATABASE_URL"].rstrip("/")
    url = f"{base}/fraudsvc_test_retention_{os.getpid()}_{secrets.token_hex(3)}"
    await migrate(Settings.from_env({"DATABASE_URL": url}).database)
    try:
        yield url
    finally:
        await drop_database(url)


async def where_stored(connection: asyncpg.Connection, transaction_id: str) -> list[str]:
    rows = await connection.fetch(
        "SELECT tableoid::regclass::text AS part FROM transactions WHERE transaction_id = $1",
        transaction_id,
    )
    return [r["part"] for r in rows]


async def test_an_id_is_unique_across_months_and_after_its_month_is_pruned(
    registry_dir: Path, own_database: str
) -> None:
    env = service_env(registry_dir, own_database, FRAUDSVC_EXPLAIN="none")
    settings = Settings.from_env(env)
    connection = await asyncpg.connect(own_database)
    try:
        await partitions.ensure(connection, 1, [date(2026, 1, 1), date(2026, 2, 1)])
        body = transaction(timestamp="2026-01-15T10:00:00Z")
        async with running_service(settings) as client:
            assert (await client.post("/v1/transactions", json=body)).status_code == 201
            assert (await client.post("/v1/transactions", json=body)).status_code == 200
            moved = {**body, "timestamp": "2026-02-15T10:00:00Z"}  # another month's partition
            conflict = await client.post("/v1/transactions", json=moved)
            assert conflict.status_code == 409, conflict.text
            assert conflict.json()["field"] == "timestamp"
            assert await where_stored(connection, body["transaction_id"]) == [
                "transactions_p202601"
            ]

            # a recent transaction moves the history's clock; January is then far behind it
            recent = transaction(timestamp=(datetime.now(UTC) - timedelta(hours=1)).isoformat())
            assert (await client.post("/v1/transactions", json=recent)).status_code == 201
            await connection.execute("UPDATE review_cases SET status = 'closed'")
            report = await retention.prune(connection, 60, DECLARATION)
            assert "p202601" in {m.name for m in report.dropped}
            assert await where_stored(connection, body["transaction_id"]) == []

            again = await client.post("/v1/transactions", json=body)
            assert again.status_code == 409, again.text
            assert "retention" in again.json()["message"]
            gone = await client.get(f"/v1/transactions/{body['transaction_id']}")
            assert gone.status_code == 404
    finally:
        await connection.close()


async def test_a_transaction_outside_every_partition_is_kept_and_moved_later(
    own_database: str,
) -> None:
    row = {
        "transaction_id": "old-1",
        "timestamp": datetime(2019, 6, 3, 12, tzinfo=UTC),
        "customer_id": "C1",
        "terminal_id": "T1",
        "amount_minor": 1234,
    }
    connection = await asyncpg.connect(own_database)
    try:
        # the scoring write's path: no partition for June 2019 exists, DEFAULT takes it
        await connection.execute(
            "WITH k AS (INSERT INTO transaction_ids VALUES ($1, $2) RETURNING transaction_id) "
            "INSERT INTO transactions (transaction_id, ts, customer_id, terminal_id, "
            "amount_minor, received_at) SELECT $1, $2, $3, $4, $5, now() FROM k",
            *row.values(),
        )
        assert await where_stored(connection, "old-1") == ["transactions_default"]
        buckets = await connection.fetch("SELECT * FROM feature_buckets ORDER BY 1, 2, 3, 4")
        assert buckets  # the customer's buckets counted it
        created = await partitions.ensure(connection, 1)
        assert [(c.month, c.moved) for c in created if c.month.year == 2019] == [
            (date(2019, 6, 1), 1)
        ]
        assert await where_stored(connection, "old-1") == ["transactions_p201906"]
        assert await connection.fetch("SELECT * FROM feature_buckets ORDER BY 1, 2, 3, 4") == (
            buckets
        )
    finally:
        await connection.close()


async def test_an_import_leaves_no_month_without_its_partition(own_database: str) -> None:
    """A backfill of two old months, then traffic dated between them and now: every month from
    the import's oldest to the one ahead has its partition, so nothing of it lands in DEFAULT
    (whose rows the scoring read's plans were not made for)."""
    now = datetime(2026, 11, 27, tzinfo=UTC)
    connection = await asyncpg.connect(own_database)
    try:
        await partitions.ensure(connection, 1, [date(2026, 1, 15), date(2026, 2, 3)], now=now)
        months = [p.month for p in await partitions.partitions(connection, "transactions")]
        assert partitions.months_between(date(2026, 1, 1), date(2026, 12, 1)) == [
            m for m in months if m >= date(2026, 1, 1)
        ]
        # the daily upkeep then finds nothing to create
        created = await partitions.ensure(connection, 1, now=now)
        assert created == []
    finally:
        await connection.close()


async def window_values(
    connection: asyncpg.Connection, frame: pl.DataFrame
) -> list[dict[Span, SpanValue | None]]:
    read = queries.window_read(DECLARATION)
    out = []
    for row in frame.iter_rows(named=True):
        tx = tx_of(row)
        args, plan = read.params(tx)
        _, spans = read.values(await connection.fetch(read.sql, *args), plan)
        assert spans == await raw_spans(connection, DECLARATION, tx)
        out.append(dict(spans))
    return out


async def counts(connection: asyncpg.Connection) -> dict[str, int]:
    out = {}
    for table in ("transaction_ids", "transactions", "labels", "explanations", "review_cases"):
        out[table] = await connection.fetchval(f"SELECT count(*) FROM {table}")
    out["feature_buckets"] = await connection.fetchval("SELECT count(*) FROM feature_buckets")
    out["partitions"] = len(await partitions.partitions(connection, "transactions"))
    return out


async def test_prune_drops_old_months_and_keeps_what_is_needed(
    own_database: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = Settings.from_env({"DATABASE_URL": own_database})
    frame = load_contract_file(generate(WORLD, tmp_path / "w.parquet").path, True).frame
    async with open_database(settings):
        await backfill(frame, None, timedelta(seconds=DECLARATION.label_delay))
    connection = await asyncpg.connect(own_database)
    try:
        names = [p.name for p in await partitions.partitions(connection, "transactions")]
        assert {"transactions_p202601", "transactions_p202605"} <= set(names)

        def first(month: int) -> str:
            ids = frame.filter(pl.col("timestamp").dt.month() == month)["transaction_id"]
            return str(ids[0])

        # February: a pending explanation; March: an open review case (kept for them)
        await connection.execute(
            "INSERT INTO explanations (transaction_id, status, reason, attempts, method, "
            "requested_at) VALUES ($1, 'pending', 'requested', 0, 'lime', now())",
            first(2),
        )
        await connection.execute(
            "INSERT INTO review_cases (transaction_id, opened_at) VALUES ($1, now())", first(3)
        )
        last = frame.filter(pl.col("timestamp") >= datetime(2026, 5, 25, tzinfo=UTC)).head(40)
        windows_before = await window_values(connection, last)

        with pytest.raises(ValueError, match="longest window"):
            await retention.prune(connection, 10, DECLARATION, now=LATER)

        before = await counts(connection)
        dry = await retention.prune(connection, KEEP, DECLARATION, dry_run=True, now=LATER)
        assert await counts(connection) == before  # a dry run changes nothing
        assert [m.name for m in dry.dropped] == ["p202601"], dry.lines()
        assert {m.name: m.kept_because for m in dry.months if not m.dropped} == {
            "p202602": "1 explanation(s) pending or running",
            "p202603": "1 open review case(s)",
        }
        # labels given today (the backfill's) keep January, which has no other reason
        recent = await retention.prune(connection, KEEP, DECLARATION, dry_run=True)
        assert not recent.dropped
        assert "label(s) given within the kept days" in (recent.months[0].kept_because or "")

        report = await retention.prune(connection, KEEP, DECLARATION, now=LATER)
        assert [m.name for m in report.dropped] == ["p202601"]
        # the dry run said what happens
        assert [replace(m, lock_seconds=0.0) for m in report.dropped] == list(dry.dropped)
        assert report.dropped[0].lock_seconds > 0
        january = frame.filter(pl.col("timestamp") < datetime(2026, 2, 1, tzinfo=UTC))
        assert report.dropped[0].transactions == january.height
        after = await counts(connection)
        assert after["transactions"] == before["transactions"] - january.height
        assert after["transaction_ids"] == before["transaction_ids"]  # the keys stay
        assert after["labels"] == before["labels"] - report.dropped[0].labels
        assert after["explanations"] == before["explanations"] == 1
        assert after["review_cases"] == before["review_cases"] == 1
        assert after["partitions"] == before["partitions"] - 1
        assert 0 < report.buckets == before["feature_buckets"] - after["feature_buckets"]
        assert await window_values(connection, last) == windows_before  # no window lost a row

        again = await retention.prune(connection, KEEP, DECLARATION, now=LATER)
        assert not again.dropped  # nothing more to drop
    finally:
        await connection.close()

    monkeypatch.setenv("DATABASE_URL", own_database)
    # the CLI runs its own event loop, as from a shell
    assert await asyncio.to_thread(main, ["prune", "--keep-days", str(KEEP), "--dry-run"]) == 0
    said = capsys.readouterr().out
    assert "retention: kept p202602" in said
    assert await asyncio.to_thread(main, ["prune", "--keep-days", "3"]) == 2
