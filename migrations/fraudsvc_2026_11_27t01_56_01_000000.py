"""Explanations finished before the previous migration say what they are, and the new columns'
rules, in raw SQL (Piccolo runs a migration's raw SQL before its columns exist)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.table import Table

ID = "2026-11-27T01:56:01:000000"
VERSION = "1.38.0"
DESCRIPTION = "explanations: earlier rows described, checks on target, discretizer, stability"


class _Raw(Table):
    """Only a handle for raw SQL inside the migration's transaction."""


STATEMENTS = [
    # every explanation before these columns ran LIME's defaults: quartile discretizer, samples
    # drawn around the background's means, kernel width 0.75 x sqrt(features), the probability
    # as target, no stability seeds; its model output on that scale is the score
    """UPDATE explanations SET target = 'probability', model_output = score,
       discretizer = 'quartile', sample_around_instance = false, kernel_width_factor = 0.75,
       stability_seeds = 0
       WHERE status = 'done' AND target IS NULL""",
    """ALTER TABLE explanations ADD CONSTRAINT explanations_target_values
       CHECK (target IN ('log_odds', 'probability'))""",
    """ALTER TABLE explanations ADD CONSTRAINT explanations_discretizer_values
       CHECK (discretizer IN ('none', 'quartile', 'decile', 'entropy'))""",
    """ALTER TABLE explanations ADD CONSTRAINT explanations_stability_range
       CHECK (stability >= 0 AND stability <= 1 AND stability_seeds >= 0)""",
]


async def _statements() -> None:
    for statement in STATEMENTS:
        await _Raw.raw(statement)


async def forwards() -> MigrationManager:
    manager = MigrationManager(migration_id=ID, app_name="fraudsvc", description=DESCRIPTION)
    manager.add_raw(_statements)
    return manager
