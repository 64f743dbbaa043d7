"""The plain definition of every span in SQL, row by row: the test oracle of the bucketed read.

For a span ending at the transaction it counts the entity's rows with t - w < ts < t; for a
shifted one, t - d - w < ts <= t - d; frauds are the rows whose current label says fraud. This is
what the online path computed before time buckets, and what they must equal bit for bit.
"""

from __future__ import annotations

from datetime import timedelta

import asyncpg

from fraudsvc.features import Declaration, Span, SpanValue
from fraudsvc.features.online import entity_key
from fraudsvc.features.spans import epoch_us
from fraudsvc.transaction import Transaction

TRUNCATE = (
    "TRUNCATE transaction_ids, transactions, predictions, labels, explanations, review_cases, "
    "feature_buckets"
)


def span_sql(decl: Declaration, span: Span) -> str:
    fields = decl.entity[span.entity].fields
    keys = " AND ".join(f"t.{f} = ${i + 3}" for i, f in enumerate(fields))
    upper = "t.ts < $2" if span.delay == 0 else "t.ts <= $2"
    return f"""
SELECT count(*) AS n, coalesce(sum(t.amount_minor), 0) AS amount,
       count(*) FILTER (WHERE l.is_fraud) AS frauds, max(t.ts) AS latest
FROM transactions AS t LEFT JOIN labels AS l ON l.transaction_id = t.transaction_id
WHERE {keys} AND t.ts > $1 AND {upper}"""


async def raw_spans(
    connection: asyncpg.Connection, decl: Declaration, tx: Transaction
) -> dict[Span, SpanValue | None]:
    out: dict[Span, SpanValue | None] = {}
    for span in decl.spans:
        key = entity_key(decl, span.entity, tx)
        if key is None:
            out[span] = None
            continue
        end = tx.timestamp - timedelta(seconds=span.delay)
        row = await connection.fetchrow(
            span_sql(decl, span), end - timedelta(seconds=span.seconds), end, *key
        )
        latest = row["latest"]
        out[span] = SpanValue(
            int(row["n"]),
            int(row["amount"]),
            int(row["frauds"]),
            None if latest is None else epoch_us(latest),
        )
    return out
