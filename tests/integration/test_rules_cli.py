"""`fraudsvc lists` and `fraudsvc rules` for scripts: the same checks and audit as the API."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fraudsvc.cli import main

RULES = {
    "description": "from a script",
    "rules": [
        {"id": "bad_network", "expression": "ip in @bad_networks", "action": "block"},
        {"id": "big", "expression": "amount > 9000", "action": "review", "mode": "shadow"},
    ],
}


@pytest.fixture
def env(
    monkeypatch: pytest.MonkeyPatch, database_url: str, tmp_path: Path, no_rules_after: None
) -> Path:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("FRAUDSVC_DATA_DIR", str(tmp_path / "data"))
    return tmp_path


def test_lists_import_shows_its_diff_before_it_changes_anything(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["lists", "define", "bad_networks", "--kind", "ip"]) == 0
    assert main(["lists", "add", "bad_networks", "198.51.100.7", "--reason", "seen"]) == 0
    csv_file = env / "nets.csv"
    csv_file.write_text(
        "value,reason,expires_at\n203.0.113.0/24,botnet,\n2001:DB8::/32,test range,2030-01-01\n"
    )
    capsys.readouterr()
    assert main(["lists", "import", "bad_networks", str(csv_file), "--dry-run"]) == 0
    dry = capsys.readouterr().out
    assert "would add 2, change 0, remove 1" in dry
    assert "remove 198.51.100.7" in dry
    assert main(["lists", "show", "bad_networks"]) == 0
    assert "198.51.100.7" in capsys.readouterr().out  # the dry run changed nothing

    assert main(["lists", "import", "bad_networks", str(csv_file)]) == 0
    assert "will add 2, change 0, remove 1" in capsys.readouterr().out
    assert main(["lists", "show", "bad_networks"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert {e["value"] for e in shown["entries"]} == {"203.0.113.0/24", "2001:db8::/32"}

    bad = env / "bad.csv"
    bad.write_text("value\nnot-an-ip\n")
    assert main(["lists", "import", "bad_networks", str(bad)]) == 1
    assert "not-an-ip" in capsys.readouterr().err


def test_a_ruleset_is_checked_stored_and_published_from_a_file(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["lists", "define", "bad_networks", "--kind", "ip"])
    refused = env / "refused.json"
    refused.write_text(
        json.dumps([{"id": "x", "expression": "amount.real > 1", "action": "block"}])
    )
    assert main(["rules", "create", str(refused)]) == 1
    assert "rule x:" in capsys.readouterr().err

    good = env / "rules.json"
    good.write_text(json.dumps(RULES))
    assert main(["rules", "create", str(good)]) == 0
    version = int(capsys.readouterr().out.split()[2])
    assert main(["rules", "publish", str(version)]) == 0
    assert main(["rules", "show", "live"]) == 0
    live = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert live["version"] == version
    assert live["published_by"].startswith("cli:")


def test_one_value_given_twice_or_in_two_forms_is_one_entry(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import asyncio

    from fraudsvc.db import lists
    from fraudsvc.resources import open_database
    from fraudsvc.settings import Settings

    async def add() -> tuple[int, int]:
        async with open_database(Settings.from_env()):
            await lists.define("nets", "ip", "", "test")
            entries = [
                lists.NewEntry("10.0.0.1", "first"),
                lists.NewEntry("10.0.0.1/32", "second"),
                lists.NewEntry("10.0.0.1", "third"),
            ]
            return await lists.add("nets", entries, "test", "test")

    assert asyncio.run(add()) == (1, 0)
    assert main(["lists", "show", "nets"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [(e["value"], e["reason"]) for e in shown["entries"]] == [("10.0.0.1", "third")]
