"""The stored transactions and labels as a contract frame, for `fraudsvc train --from-db`.

Amounts leave as exact decimal text (minor units / 100) and are checked back into minor units
by the contract, like a file's. A transaction without a label counts as genuine (is_fraud = 0):
chargebacks and analyst verdicts name the frauds, and most transactions are never labelled at
all. A label corrected to genuine counts as genuine.
"""

from __future__ import annotations

import polars as pl

from fraudsvc.contract import OPTIONAL_COLUMNS, REQUIRED_COLUMNS, check_frame
from fraudsvc.db.engine import pool
from fraudsvc.db.queries import outage_guard

EXPORT_SQL = """
SELECT t.transaction_id, t.ts AS timestamp, t.customer_id, t.terminal_id,
       (t.amount_minor / 100.0)::text AS amount, t.currency, t.merchant_category,
       t.merchant_country, t.card_country, t.channel, t.device_id, t.ip, t.attributes::text,
       coalesce(l.is_fraud, false)::int AS is_fraud
FROM transactions AS t
LEFT JOIN labels AS l ON l.transaction_id = t.transaction_id
ORDER BY t.ts, t.transaction_id
"""
BATCH_ROWS = 100_000


async def training_frame() -> pl.DataFrame:
    """Every stored transaction with its label, checked against the data contract."""
    batches: list[pl.DataFrame] = []
    columns = [*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS, "is_fraud"]
    async with outage_guard(), pool().acquire() as connection, connection.transaction():
        cursor = await connection.cursor(EXPORT_SQL)
        while rows := await cursor.fetch(BATCH_ROWS):
            batches.append(pl.DataFrame([tuple(r) for r in rows], schema=columns, orient="row"))
    if not batches:
        return pl.DataFrame(schema=columns)
    frame = pl.concat(batches)
    return check_frame(frame, "database", require_labels=True).frame
