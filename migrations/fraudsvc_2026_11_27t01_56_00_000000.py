"""Explanations: the scale of LIME's numbers (target) and the model's output on it, the LIME
options each explanation ran with, its stability across seeds, and the features held missing."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.base import Column
from piccolo.columns.column_types import JSONB, Boolean, DoublePrecision, Integer, Varchar
from piccolo.columns.indexes import IndexMethod

ID = "2026-11-27T01:56:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "explanations: target, model output, LIME options, stability, features held missing"

NULLABLE = {
    "default": None,
    "null": True,
    "primary_key": False,
    "unique": False,
    "index": False,
    "index_method": IndexMethod.btree,
    "choices": None,
    "db_column_name": None,
    "secret": False,
}

COLUMNS: list[tuple[str, type[Column], dict[str, object]]] = [
    ("target", Varchar, {"length": 16}),
    ("model_output", DoublePrecision, {}),
    ("discretizer", Varchar, {"length": 16}),
    ("sample_around_instance", Boolean, {}),
    ("kernel_width_factor", DoublePrecision, {}),
    ("stability", DoublePrecision, {}),
    ("stability_seeds", Integer, {}),
    ("held_missing", JSONB, {}),
]


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="fraudsvc", description=DESCRIPTION
    )
    for name, column_class, params in COLUMNS:
        manager.add_column(
            table_class_name="Explanation",
            tablename="explanations",
            column_name=name,
            db_column_name=name,
            column_class_name=column_class.__name__,
            column_class=column_class,
            params=params | NULLABLE,
            schema=None,
        )
    return manager
