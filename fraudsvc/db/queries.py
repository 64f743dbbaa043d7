"""The statements of the request path and the label and read routes.

The scoring path makes two round trips and no more: one statement reads the customer's and the
terminal's window aggregates together with any stored transaction of the same id (idempotency),
and one statement writes the id's key, the transaction, its prediction and, when due, the
pending explanation row (a chain of data-modifying CTEs: one statement, so all of it commits or
none of it does). The key (`transaction_ids`, see the partitioning migration) goes first with ON
CONFLICT DO NOTHING: the rest is written only when the id is new, whatever month it is dated in.
Both run as prepared statements on the web process's scoring pool (generic plans, see
`engine.ScoringPool`), elsewhere on the pool that Piccolo's engine owns; the window statement
is generated from the feature declaration (`fraudsvc.db.windows.WindowRead`): whole
time buckets plus the raw rows at the windows' edges, so its cost does not grow with an entity's
volume. Triggers keep the buckets in the same transaction as the write.

Connection loss (PostgreSQL restarted, network cut) becomes `DatabaseUnavailable`; a statement
that lost its connection is tried once more on a fresh one, which is safe because every
statement here is idempotent. A statement (pool wait, round trip, release) takes at most
FRAUDSVC_DB_TIMEOUT_SECONDS, also when the server hangs without closing anything; inside
`one_budget()` (a scoring request) all statements together do.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import Any, Literal

import asyncpg
import msgspec

from fraudsvc.db.buckets import STORED_ENTITIES_SQL, missing_entities, stored_from
from fraudsvc.db.engine import DB, OUTAGE_ERRORS, SCORING, DatabaseUnavailable, use_of
from fraudsvc.db.literals import float_array
from fraudsvc.db.records import (
    History,
    NewPrediction,
    StoredLabel,
    StoredPrediction,
    StoredTransaction,
)
from fraudsvc.db.windows import WindowRead
from fraudsvc.features import Declaration
from fraudsvc.transaction import Transaction

CONNECTION_LOST: tuple[type[BaseException], ...] = (
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.InternalClientError,
    ConnectionResetError,
    BrokenPipeError,
)

LabelOutcome = Literal["created", "updated", "unchanged"]


def _describe(exc: BaseException) -> str:
    detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return f"PostgreSQL is unavailable ({detail})"


@asynccontextmanager
async def outage_guard() -> AsyncIterator[None]:
    """Turn connection and availability errors into DatabaseUnavailable."""
    try:
        yield
    except DatabaseUnavailable:
        raise
    except OUTAGE_ERRORS as exc:
        raise DatabaseUnavailable(_describe(exc)) from exc


_DEADLINE: ContextVar[float | None] = ContextVar("fraudsvc_db_deadline", default=None)


@contextmanager
def one_budget() -> Iterator[None]:
    """The statements run inside share one FRAUDSVC_DB_TIMEOUT_SECONDS (the event loop's
    clock): a scoring request's two round trips together, not each in turn."""
    timeout = DB.config.get("timeout")
    if timeout is None:
        yield
        return
    token = _DEADLINE.set(asyncio.get_running_loop().time() + timeout)
    try:
        yield
    finally:
        _DEADLINE.reset(token)


async def _statement(
    pool: asyncpg.Pool, deadline: float | None, method: str, sql: str, args: tuple[Any, ...]
) -> Any:
    """One statement within the deadline, pool wait included.

    A statement cut off (the deadline, a cancelled request) terminates its connection. Handed
    back as is, asyncpg's release first waits for the server to confirm a cancel request, sent
    on a new connection to the same server: against a hung server (the postgres-hang drill)
    that doubled the time of every request that held a connection when the server stopped.
    """
    connection = None
    use = use_of(pool)
    try:
        # one timer for the pool wait and the round trip (two cost about 15 µs more a statement)
        async with asyncio.timeout_at(deadline):
            asked = time.perf_counter()
            connection = await pool.acquire()
            use.acquires += 1
            use.wait_seconds += time.perf_counter() - asked
            return await getattr(connection, method)(sql, *args)
    except (TimeoutError, asyncio.CancelledError):
        if connection is not None:
            connection.terminate()  # the pool opens a fresh one when it is next needed
        raise
    finally:
        if connection is not None:
            await pool.release(connection)


async def _run(method: str, sql: str, *args: Any, scoring: bool = False) -> Any:
    """One statement on a pooled connection; `scoring` statements go to the scoring pool when
    this process has one (see `engine.ScoringPool`)."""
    pool = (SCORING.pool if scoring else None) or DB.pool
    if pool is None:
        raise DatabaseUnavailable("the database pool is not open")
    timeout = DB.config.get("timeout")
    for attempt in (1, 2):
        deadline = _DEADLINE.get()
        if deadline is None and timeout is not None:
            deadline = asyncio.get_running_loop().time() + timeout
        try:
            return await _statement(pool, deadline, method, sql, args)
        except CONNECTION_LOST as exc:
            if attempt == 2:
                raise DatabaseUnavailable(_describe(exc)) from exc
            # the server restarted: every pooled connection is dead, not just this one
            await pool.expire_connections()
        except DatabaseUnavailable:
            raise
        except OUTAGE_ERRORS as exc:
            raise DatabaseUnavailable(_describe(exc)) from exc
    raise AssertionError("unreachable")


# --------------------------------------------------------------------------- scoring path


_WINDOW_READS: dict[str, WindowRead] = {}


def window_read(decl: Declaration) -> WindowRead:
    """The window statement of a declaration, generated once per declaration (asyncpg prepares
    it once per connection)."""
    read = _WINDOW_READS.get(decl.hash)
    if read is None:
        read = _WINDOW_READS[decl.hash] = WindowRead(decl)
    return read


async def missing_bucket_entities(decl: Declaration) -> list[str]:
    return missing_entities(decl, stored_from(await _run("fetch", STORED_ENTITIES_SQL)))


async def record_declaration(decl: Declaration) -> None:
    """Keep the declaration of the vectors about to be stored (what their numbers mean)."""
    await _run(
        "execute",
        "INSERT INTO feature_declarations (hash, declaration, names, first_used_at) "
        "VALUES ($1, $2::jsonb, $3, now()) ON CONFLICT (hash) DO NOTHING",
        decl.hash,
        msgspec.json.encode(decl.to_dict()).decode(),
        list(decl.names),
    )


async def load_history(tx: Transaction, decl: Declaration) -> History:
    """One statement: every span of the declaration, and whether the id is already stored."""
    read = window_read(decl)
    args, plan = read.params(tx)
    rows = await _run("fetch", read.sql, *args, scoring=True)
    exists, spans = read.values(rows, plan)
    return History(exists=exists, spans=spans)


TRANSACTION_COLUMNS = (
    "transaction_id, ts, customer_id, terminal_id, amount_minor, currency, merchant_category, "
    "merchant_country, card_country, channel, device_id, ip, attributes"
)
INSERT_SQL = f"""
WITH k AS (
    INSERT INTO transaction_ids (transaction_id, ts) VALUES ($1, $2)
    ON CONFLICT (transaction_id) DO NOTHING
    RETURNING transaction_id
), tx AS (
    INSERT INTO transactions ({TRANSACTION_COLUMNS}, received_at)
    SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13::jsonb, now() FROM k
    RETURNING transaction_id, ts
), p AS (
    INSERT INTO predictions (transaction_id, ts, score, decision, threshold_review,
                             threshold_block, model_name, model_version, feature_hash, features,
                             reasons, correlation_id, created_at, model_decision, decided_by,
                             ruleset_version, rule_hits)
    SELECT transaction_id, ts, $14, $15, $16, $17, $18, $19, $20, $21::text::float8[],
           $22::jsonb, $23, now(), $26, $27, $28, $29::jsonb FROM tx
    RETURNING transaction_id, created_at
), e AS (
    INSERT INTO explanations (transaction_id, status, reason, attempts, method, requested_at,
                              correlation_id, trace_context)
    SELECT transaction_id, 'pending', $24::varchar, 0, 'lime', now(), $23, $25 FROM p
    WHERE $24::varchar IS NOT NULL
    RETURNING transaction_id
), c AS (
    INSERT INTO review_cases (transaction_id, opened_at)
    SELECT transaction_id, created_at FROM p WHERE $30::boolean
    RETURNING transaction_id
)
SELECT p.created_at FROM p
"""


def transaction_args(tx: Transaction) -> tuple[object, ...]:
    """The stored columns of a transaction, in TRANSACTION_COLUMNS order."""
    attributes = None if tx.attributes is None else msgspec.json.encode(tx.attributes).decode()
    return (
        tx.transaction_id,
        tx.timestamp,
        tx.customer_id,
        tx.terminal_id,
        tx.amount_minor,
        tx.currency,
        tx.merchant_category,
        tx.merchant_country,
        tx.card_country,
        tx.channel,
        tx.device_id,
        tx.ip,
        attributes,
    )


def transaction_from(row: asyncpg.Record) -> Transaction:
    attributes = row["attributes"]
    return Transaction(
        transaction_id=row["transaction_id"],
        timestamp=row["ts"],
        customer_id=row["customer_id"],
        terminal_id=row["terminal_id"],
        amount_minor=row["amount_minor"],
        currency=row["currency"],
        merchant_category=row["merchant_category"],
        merchant_country=row["merchant_country"],
        card_country=row["card_country"],
        channel=row["channel"],
        device_id=row["device_id"],
        ip=row["ip"],
        attributes=None if attributes is None else msgspec.json.decode(attributes),
    )


async def insert_prediction(new: NewPrediction) -> datetime | None:
    """Store transaction + prediction (+ pending explanation) atomically.

    Returns the prediction's creation time, or None when the transaction id already existed
    (a concurrent duplicate won): then nothing at all was written by this call.
    """
    reasons = None if new.reasons is None else msgspec.json.encode(new.reasons).decode()
    created: datetime | None = await _run(
        "fetchval",
        INSERT_SQL,
        *transaction_args(new.body),
        new.score,
        new.decision,
        new.threshold_review,
        new.threshold_block,
        new.model_name,
        new.model_version,
        new.feature_hash,
        float_array(new.features),  # one text literal: see fraudsvc.db.literals
        reasons,
        new.correlation_id,
        new.explain_reason,
        new.trace_context,
        new.model_decision,
        new.decided_by,
        new.ruleset_version,
        None if new.rule_hits is None else msgspec.json.encode(new.rule_hits).decode(),
        new.open_case,
        scoring=True,
    )
    return created


# --------------------------------------------------------------------------- reads


TRANSACTION_SQL = """
SELECT t.transaction_id, t.ts, t.customer_id, t.terminal_id, t.amount_minor, t.currency,
       t.merchant_category, t.merchant_country, t.card_country, t.channel, t.device_id, t.ip,
       t.attributes, t.received_at,
       p.score, p.decision, p.threshold_review, p.threshold_block, p.model_name, p.model_version,
       p.feature_hash, p.features, p.reasons, p.correlation_id, p.created_at, d.names,
       p.model_decision, p.decided_by, p.ruleset_version, p.rule_hits, l.labelled_by,
       e.status AS explanation_status,
       l.is_fraud, l.source, l.labelled_at, l.updated_at AS label_updated_at
FROM transaction_ids AS k
JOIN transactions AS t ON t.transaction_id = k.transaction_id AND t.ts = k.ts
LEFT JOIN predictions AS p ON p.transaction_id = t.transaction_id AND p.ts = t.ts
LEFT JOIN explanations AS e ON e.transaction_id = t.transaction_id
LEFT JOIN feature_declarations AS d ON d.hash = p.feature_hash
LEFT JOIN labels AS l ON l.transaction_id = t.transaction_id
WHERE k.transaction_id = $1
"""
"""The key table gives the transaction's timestamp, so each partitioned table is read in the one
partition that holds the row (run-time pruning) instead of probing every month's index."""


async def fetch_transaction(transaction_id: str, scoring: bool = False) -> StoredTransaction | None:
    """A stored transaction with its prediction, label and explanation status (`scoring`: a
    replay on the scoring path)."""
    row = await _run("fetchrow", TRANSACTION_SQL, transaction_id, scoring=scoring)
    if row is None:
        return None
    label = None
    if row["is_fraud"] is not None:
        label = StoredLabel(
            is_fraud=bool(row["is_fraud"]),
            source=row["source"],
            labelled_at=row["labelled_at"],
            updated_at=row["label_updated_at"],
            labelled_by=row["labelled_by"],
        )
    prediction = None
    if row["score"] is not None:
        prediction = StoredPrediction(
            score=row["score"],
            decision=row["decision"],
            threshold_review=row["threshold_review"],
            threshold_block=row["threshold_block"],
            model_name=row["model_name"],
            model_version=row["model_version"],
            feature_hash=row["feature_hash"],
            features=list(row["features"]),
            reasons=None if row["reasons"] is None else msgspec.json.decode(row["reasons"]),
            correlation_id=row["correlation_id"],
            created_at=row["created_at"],
            explanation_status=row["explanation_status"],
            feature_names=None if row["names"] is None else list(row["names"]),
            model_decision=row["model_decision"],
            decided_by=row["decided_by"],
            ruleset_version=row["ruleset_version"],
            rule_hits=None if row["rule_hits"] is None else msgspec.json.decode(row["rule_hits"]),
        )
    return StoredTransaction(
        body=transaction_from(row),
        received_at=row["received_at"],
        prediction=prediction,
        label=label,
    )


# --------------------------------------------------------------------------- labels


LABEL_SQL = """
WITH known AS (
    SELECT k.transaction_id FROM transaction_ids AS k
    JOIN transactions AS t ON t.transaction_id = k.transaction_id AND t.ts = k.ts
    WHERE k.transaction_id = $1
), up AS (
    INSERT INTO labels (transaction_id, is_fraud, source, labelled_at, updated_at, labelled_by)
    SELECT transaction_id, $2, $3, now(), now(), $4 FROM known
    ON CONFLICT (transaction_id) DO UPDATE
        SET is_fraud = EXCLUDED.is_fraud, source = EXCLUDED.source, updated_at = now(),
            labelled_by = EXCLUDED.labelled_by
        WHERE labels.is_fraud IS DISTINCT FROM EXCLUDED.is_fraud
           OR labels.source IS DISTINCT FROM EXCLUDED.source
           OR labels.labelled_by IS DISTINCT FROM EXCLUDED.labelled_by
    RETURNING (xmax = 0) AS inserted
)
SELECT (SELECT count(*) FROM known) AS known, (SELECT inserted FROM up) AS inserted
"""


async def upsert_label(
    transaction_id: str,
    is_fraud: bool,
    source: str,
    labelled_by: str | None = None,
    connection: asyncpg.Connection | None = None,
) -> LabelOutcome | None:
    """Record a verdict (the label API and the analysts' pages both come here); None when the
    transaction is unknown. Repeats change nothing. `labelled_by` names the analyst;
    `connection` runs it inside the caller's transaction (a verdict closes its case with it)."""
    args = (transaction_id, is_fraud, source, labelled_by)
    if connection is not None:
        row = await connection.fetchrow(LABEL_SQL, *args)
    else:
        row = await _run("fetchrow", LABEL_SQL, *args)
    if row["known"] == 0:
        return None
    if row["inserted"] is None:
        return "unchanged"
    return "created" if row["inserted"] else "updated"


# --------------------------------------------------------------------------- health, export


async def ping() -> None:
    await _run("fetchval", "SELECT 1")


async def fetch_many(sql: str, *args: Any) -> Sequence[asyncpg.Record]:
    """For the modules of this package only (exports, maintenance)."""
    rows: Sequence[asyncpg.Record] = await _run("fetch", sql, *args)
    return rows
