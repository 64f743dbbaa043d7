"""The history's upkeep, shared by `fraudsvc prune` and the worker's daily run: monthly
partitions created ahead of time, then retention (see `partitions` and `retention`)."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from loguru import logger

from fraudsvc.db import partitions, retention
from fraudsvc.features import DECLARATION
from fraudsvc.settings import Settings


@dataclass(frozen=True)
class Upkeep:
    created: list[partitions.Created]
    pruned: retention.PruneReport | None


async def prune_with(
    connection: asyncpg.Connection, keep_days: int, dry_run: bool = False
) -> retention.PruneReport:
    """Retention against the code's feature declaration (the windows it must keep)."""
    return await retention.prune(connection, keep_days, DECLARATION, dry_run=dry_run)


async def run_prune(
    settings: Settings, keep_days: int, dry_run: bool = False
) -> retention.PruneReport:
    """`fraudsvc prune`: on a connection of its own."""
    connection = await asyncpg.connect(settings.database.url)
    try:
        return await prune_with(connection, keep_days, dry_run)
    finally:
        await connection.close()


async def upkeep(connection: asyncpg.Connection, settings: Settings) -> Upkeep:
    """The worker's daily run: the partitions of the months ahead (and of rows waiting in
    DEFAULT), then, when FRAUDSVC_RETENTION_DAYS is set, the prune; both logged."""
    created = await partitions.ensure(connection, settings.worker.partitions_ahead)
    for made in created:
        logger.info(
            "partitions of {:%Y-%m}: created ({:,} transactions moved out of DEFAULT)",
            made.month,
            made.moved,
        )
    report = None
    days = settings.worker.retention_days
    if days:
        try:
            report = await prune_with(connection, days)
        except ValueError as exc:
            logger.error("FRAUDSVC_RETENTION_DAYS={}: {}; nothing pruned", days, exc)
        else:
            for line in report.lines():
                logger.info(line)
    return Upkeep(created, report)
