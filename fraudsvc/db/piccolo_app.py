"""Piccolo's app config: the tables and the top-level `migrations/` folder."""

from __future__ import annotations

import os
from pathlib import Path

from piccolo.conf.apps import AppConfig

from fraudsvc.db.tables import TABLES


def migrations_dir() -> Path:
    """FRAUDSVC_MIGRATIONS_DIR, else the checkout's (or image's) `migrations/` folder."""
    configured = os.environ.get("FRAUDSVC_MIGRATIONS_DIR")
    if configured:
        return Path(configured)
    beside_package = Path(__file__).resolve().parents[2] / "migrations"
    return beside_package if beside_package.is_dir() else Path.cwd() / "migrations"


APP_CONFIG = AppConfig(
    app_name="fraudsvc",
    migrations_folder_path=str(migrations_dir()),
    table_classes=TABLES,
    migration_dependencies=[],
    commands=[],
)
