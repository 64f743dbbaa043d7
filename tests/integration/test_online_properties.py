"""The online path's SQL equals the batch features on random timelines (hypothesis): every row
of a random timeline, read back from PostgreSQL by the production history query, gives the
batch path's vector within 1e-9. Timestamps crowd the window edges on purpose."""

from __future__ import annotations

import asyncio

import asyncpg
import numpy as np
import polars as pl
from hypothesis import HealthCheck, given, settings

from fraudsvc.db import queries
from fraudsvc.db.backfill import backfill
from fraudsvc.db.records import TransactionBody
from fraudsvc.features import FEATURE_SPEC, batch_features, online_vector
from fraudsvc.resources import open_database
from fraudsvc.settings import Settings
from tests.unit.test_feature_properties import rows, timeline


async def online_matrix(database_url: str, df: pl.DataFrame) -> np.ndarray:
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute("TRUNCATE transactions, predictions, labels, explanations")
    finally:
        await connection.close()
    async with open_database(Settings.from_env({"DATABASE_URL": database_url})):
        await backfill(df, None, FEATURE_SPEC.label_delay)
        vectors = []
        for row in df.iter_rows(named=True):
            body = TransactionBody(
                transaction_id="probe",  # not stored: the history of a new transaction
                timestamp=row["timestamp"],
                customer_id=row["customer_id"],
                terminal_id=row["terminal_id"],
                amount=row["amount"],
            )
            history = await queries.load_history(body)
            vectors.append(
                online_vector(
                    FEATURE_SPEC, body.timestamp, body.amount, history.customer, history.terminal
                )
            )
    return np.array(vectors)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(rows)
def test_the_history_query_gives_the_batch_features(
    clean_database: str, drawn: list[tuple[int, str, str, float, int]]
) -> None:
    df = timeline(drawn)
    expected = batch_features(df).select(FEATURE_SPEC.names).to_numpy()
    online = asyncio.run(online_matrix(clean_database, df))
    np.testing.assert_allclose(online, expected, rtol=0, atol=1e-9)
