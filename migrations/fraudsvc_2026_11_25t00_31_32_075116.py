"""Explanations: the number of features reported, LIME's local fit (R²) and the time spent in
the model's own predictions (to report how an explanation's cost splits)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import DoublePrecision
from piccolo.columns.column_types import Integer
from piccolo.columns.indexes import IndexMethod

ID = "2026-11-25T00:31:32:075116"
VERSION = "1.38.0"
DESCRIPTION = "explanations: number of features, local fit of LIME, time in model predictions"


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="fraudsvc", description=DESCRIPTION
    )

    manager.add_column(
        table_class_name="Explanation",
        tablename="explanations",
        column_name="local_fit_r2",
        db_column_name="local_fit_r2",
        column_class_name="DoublePrecision",
        column_class=DoublePrecision,
        params={
            "default": None,
            "null": True,
            "primary_key": False,
            "unique": False,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )

    manager.add_column(
        table_class_name="Explanation",
        tablename="explanations",
        column_name="num_features",
        db_column_name="num_features",
        column_class_name="Integer",
        column_class=Integer,
        params={
            "default": None,
            "null": True,
            "primary_key": False,
            "unique": False,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )

    manager.add_column(
        table_class_name="Explanation",
        tablename="explanations",
        column_name="predict_ms",
        db_column_name="predict_ms",
        column_class_name="DoublePrecision",
        column_class=DoublePrecision,
        params={
            "default": None,
            "null": True,
            "primary_key": False,
            "unique": False,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )

    return manager
