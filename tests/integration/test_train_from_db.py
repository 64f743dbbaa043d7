"""`fraudsvc train --from-db`: the stored transactions and labels are the training data."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest

from fraudsvc.cli import main
from fraudsvc.contract import load_contract_file
from fraudsvc.db.backfill import backfill
from fraudsvc.db.export import training_frame
from fraudsvc.features import DECLARATION
from fraudsvc.resources import open_database
from fraudsvc.settings import Settings

pytestmark = pytest.mark.slow


def test_stored_history_trains_like_the_file_it_came_from(
    small_data: Path,
    clean_database: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    env = {"DATABASE_URL": clean_database, "FRAUDSVC_DATA_DIR": str(tmp_path / "data")}
    settings = Settings.from_env(env)
    source = load_contract_file(small_data, require_labels=True).frame

    async def load_and_export() -> pl.DataFrame:
        async with open_database(settings):
            await backfill(source, None, timedelta(seconds=DECLARATION.label_delay))
            return await training_frame()

    # the CLI runs its own event loop, as it does from a shell: so does this test
    exported = asyncio.run(load_and_export())
    assert exported.equals(source)

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["train", "--from-db", "--resampling", "none", "--max-rounds", "80"]) == 0
    out = capsys.readouterr().out
    assert f"database (stored transactions and labels) ({source.height:,} rows)" in out
    assert "registered    v1 alias champion" in out
    assert main(["train", "--from-db", "--data", str(small_data)]) == 2
