"""The statements of the request path and the label and read routes.

The scoring path makes two round trips and no more: one statement reads the customer's and the
terminal's window aggregates together with any stored transaction of the same id (idempotency),
and one statement writes the transaction, its prediction and, when due, the pending explanation
row (a chain of data-modifying CTEs: one statement, so all of it commits or none of it does).
Both run as prepared statements on the asyncpg pool that Piccolo's engine owns; the window
statement is generated from the feature spec, so it follows the same definitions as training.

Connection loss (PostgreSQL restarted, network cut) becomes `DatabaseUnavailable`; a statement
that lost its connection is tried once more on a fresh one, which is safe because every
statement here is idempotent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any, Literal

import asyncpg
import msgspec

from fraudsvc.db.engine import DB, OUTAGE_ERRORS, DatabaseUnavailable
from fraudsvc.db.records import (
    History,
    NewPrediction,
    StoredLabel,
    StoredPrediction,
    StoredTransaction,
    TransactionBody,
)
from fraudsvc.features import FEATURE_SPEC, CustomerHistory, FeatureSpec, TerminalHistory

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


async def _run(method: str, sql: str, *args: Any) -> Any:
    pool = DB.pool
    if pool is None:
        raise DatabaseUnavailable("the database pool is not open")
    timeout = DB.config.get("timeout")
    for attempt in (1, 2):
        try:
            async with pool.acquire(timeout=timeout) as connection:
                return await getattr(connection, method)(sql, *args)
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


def history_sql(spec: FeatureSpec) -> str:
    """One statement: the customer's and the terminal's window aggregates and the stored body.

    Parameters: $1 transaction id, $2 customer, $3 terminal, $4 t, $5 t - D (terminal end),
    then the customer windows' lower bounds, then the terminal windows' lower bounds.
    """
    n_c, n_t = len(spec.customer_windows), len(spec.terminal_windows)
    c_params = [f"${6 + i}" for i in range(n_c)]
    t_params = [f"${6 + n_c + i}" for i in range(n_t)]
    c_oldest = c_params[max(range(n_c), key=lambda i: spec.customer_windows[i][1])]
    t_oldest = t_params[max(range(n_t), key=lambda i: spec.terminal_windows[i][1])]
    customer_cols = ",\n      ".join(
        f"count(*) FILTER (WHERE ts > {p}) AS c_n{i}, "
        f"coalesce(sum(amount) FILTER (WHERE ts > {p}), 0.0) AS c_s{i}"
        for i, p in enumerate(c_params)
    )
    terminal_cols = ",\n      ".join(
        f"count(*) FILTER (WHERE x.ts > {p}) AS t_n{i}, "
        f"count(*) FILTER (WHERE x.ts > {p} AND l.is_fraud) AS t_f{i}"
        for i, p in enumerate(t_params)
    )
    return f"""
SELECT e.ts AS e_ts, e.customer_id AS e_customer_id, e.terminal_id AS e_terminal_id,
       e.amount AS e_amount, c.*, t.*
FROM (
    SELECT {customer_cols},
      max(ts) AS c_latest
    FROM transactions
    WHERE customer_id = $2 AND ts > {c_oldest} AND ts < $4
) AS c
CROSS JOIN (
    SELECT {terminal_cols}
    FROM transactions AS x
    LEFT JOIN labels AS l ON l.transaction_id = x.transaction_id
    WHERE x.terminal_id = $3 AND x.ts > {t_oldest} AND x.ts <= $5
) AS t
LEFT JOIN transactions AS e ON e.transaction_id = $1
"""


HISTORY_SQL = history_sql(FEATURE_SPEC)


async def load_history(body: TransactionBody, spec: FeatureSpec = FEATURE_SPEC) -> History:
    end, terminal_bounds = spec.terminal_bounds(body.timestamp)
    sql = HISTORY_SQL if spec is FEATURE_SPEC else history_sql(spec)
    row = await _run(
        "fetchrow",
        sql,
        body.transaction_id,
        body.customer_id,
        body.terminal_id,
        body.timestamp,
        end,
        *spec.customer_bounds(body.timestamp),
        *terminal_bounds,
    )
    n_c, n_t = len(spec.customer_windows), len(spec.terminal_windows)
    existing = None
    if row["e_ts"] is not None:
        existing = TransactionBody(
            transaction_id=body.transaction_id,
            timestamp=row["e_ts"],
            customer_id=row["e_customer_id"],
            terminal_id=row["e_terminal_id"],
            amount=row["e_amount"],
        )
    return History(
        existing=existing,
        customer=CustomerHistory(
            counts=tuple(int(row[f"c_n{i}"]) for i in range(n_c)),
            amount_sums=tuple(float(row[f"c_s{i}"]) for i in range(n_c)),
            latest=row["c_latest"],
        ),
        terminal=TerminalHistory(
            counts=tuple(int(row[f"t_n{i}"]) for i in range(n_t)),
            fraud_counts=tuple(int(row[f"t_f{i}"]) for i in range(n_t)),
        ),
    )


INSERT_SQL = """
WITH tx AS (
    INSERT INTO transactions (transaction_id, ts, customer_id, terminal_id, amount, received_at)
    VALUES ($1, $2, $3, $4, $5, now())
    ON CONFLICT (transaction_id) DO NOTHING
    RETURNING transaction_id
), p AS (
    INSERT INTO predictions (transaction_id, score, decision, threshold_review, threshold_block,
                             model_name, model_version, feature_hash, features, reasons,
                             correlation_id, created_at)
    SELECT transaction_id, $6, $7, $8, $9, $10, $11, $12, $13, $14::jsonb, $15, now() FROM tx
    RETURNING transaction_id, created_at
), e AS (
    INSERT INTO explanations (transaction_id, status, reason, attempts, method, requested_at,
                              correlation_id, trace_context)
    SELECT transaction_id, 'pending', $16::varchar, 0, 'lime', now(), $15, $17 FROM p
    WHERE $16::varchar IS NOT NULL
    RETURNING transaction_id
)
SELECT p.created_at FROM p
"""


async def insert_prediction(new: NewPrediction) -> datetime | None:
    """Store transaction + prediction (+ pending explanation) atomically.

    Returns the prediction's creation time, or None when the transaction id already existed
    (a concurrent duplicate won): then nothing at all was written by this call.
    """
    b = new.body
    reasons = None if new.reasons is None else msgspec.json.encode(new.reasons).decode()
    created: datetime | None = await _run(
        "fetchval",
        INSERT_SQL,
        b.transaction_id,
        b.timestamp,
        b.customer_id,
        b.terminal_id,
        b.amount,
        new.score,
        new.decision,
        new.threshold_review,
        new.threshold_block,
        new.model_name,
        new.model_version,
        new.feature_hash,
        new.features,
        reasons,
        new.correlation_id,
        new.explain_reason,
        new.trace_context,
    )
    return created


# --------------------------------------------------------------------------- reads


TRANSACTION_SQL = """
SELECT t.transaction_id, t.ts, t.customer_id, t.terminal_id, t.amount, t.received_at,
       p.score, p.decision, p.threshold_review, p.threshold_block, p.model_name, p.model_version,
       p.feature_hash, p.features, p.reasons, p.correlation_id, p.created_at,
       e.status AS explanation_status,
       l.is_fraud, l.source, l.labelled_at, l.updated_at AS label_updated_at
FROM transactions AS t
LEFT JOIN predictions AS p ON p.transaction_id = t.transaction_id
LEFT JOIN explanations AS e ON e.transaction_id = t.transaction_id
LEFT JOIN labels AS l ON l.transaction_id = t.transaction_id
WHERE t.transaction_id = $1
"""


async def fetch_transaction(transaction_id: str) -> StoredTransaction | None:
    row = await _run("fetchrow", TRANSACTION_SQL, transaction_id)
    if row is None:
        return None
    label = None
    if row["is_fraud"] is not None:
        label = StoredLabel(
            is_fraud=bool(row["is_fraud"]),
            source=row["source"],
            labelled_at=row["labelled_at"],
            updated_at=row["label_updated_at"],
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
        )
    return StoredTransaction(
        body=TransactionBody(
            transaction_id=row["transaction_id"],
            timestamp=row["ts"],
            customer_id=row["customer_id"],
            terminal_id=row["terminal_id"],
            amount=row["amount"],
        ),
        received_at=row["received_at"],
        prediction=prediction,
        label=label,
    )


# --------------------------------------------------------------------------- labels


LABEL_SQL = """
WITH known AS (
    SELECT transaction_id FROM transactions WHERE transaction_id = $1
), up AS (
    INSERT INTO labels (transaction_id, is_fraud, source, labelled_at, updated_at)
    SELECT transaction_id, $2, $3, now(), now() FROM known
    ON CONFLICT (transaction_id) DO UPDATE
        SET is_fraud = EXCLUDED.is_fraud, source = EXCLUDED.source, updated_at = now()
        WHERE labels.is_fraud IS DISTINCT FROM EXCLUDED.is_fraud
           OR labels.source IS DISTINCT FROM EXCLUDED.source
    RETURNING (xmax = 0) AS inserted
)
SELECT (SELECT count(*) FROM known) AS known, (SELECT inserted FROM up) AS inserted
"""


async def upsert_label(transaction_id: str, is_fraud: bool, source: str) -> LabelOutcome | None:
    """Record a verdict; None when the transaction is unknown. Repeats change nothing."""
    row = await _run("fetchrow", LABEL_SQL, transaction_id, is_fraud, source)
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
