"""`fraudsvc rules ...` and `fraudsvc lists ...`: the admin API's operations for scripts.

They work on the database directly (as `fraudsvc migrate` and `backfill` do), through the same
code as the API, and the audit trail names them `cli:<user>`. Every web process follows a
change within a second.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import getpass
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from fraudsvc.settings import Settings

T = TypeVar("T")
KINDS = ("customer", "terminal", "device", "ip", "country", "merchant_category", "string")


def actor() -> str:
    return f"cli:{getpass.getuser()}"


def _run(settings: Settings, work: Callable[[], Awaitable[T]]) -> T:
    from fraudsvc.db import engine

    async def run() -> T:
        await engine.start_pool(settings.database)
        try:
            return await work()
        finally:
            await engine.close_pool()

    return asyncio.run(run())


def _print(value: Any) -> None:
    print(json.dumps(msgspec.to_builtins(value), indent=2, default=str))


def _declaration(settings: Settings) -> Any:
    """The served model's declaration (the champion's), else the default one."""
    from fraudsvc.features import DECLARATION
    from fraudsvc.model import registry

    ms = settings.mlflow
    try:
        ref = registry.version_for_alias(ms, ms.model_name, ms.model_alias)
        if ref is not None:
            bundle = registry.load_version(
                ms, ms.model_name, ref.version, settings.paths.model_cache_dir
            )
            return bundle.declaration
    except registry.RegistryUnavailable:
        pass
    return DECLARATION


# --------------------------------------------------------------------------- lists


def cmd_lists(args: argparse.Namespace, settings: Settings) -> int:
    from fraudsvc.db import lists

    if args.action == "define":
        outcome = _run(
            settings, lambda: lists.define(args.name, args.kind, args.description, actor())
        )
        print(f"@{args.name}: {outcome}")
    elif args.action == "show":
        info = _run(settings, lambda: lists.info(args.name))
        if info is None:
            print(f"no list @{args.name}", file=sys.stderr)
            return 1
        entries = _run(settings, lambda: lists.entries_of(args.name, limit=args.limit))
        _print({"list": info, "entries": entries})
    elif args.action == "add":
        entry = lists.NewEntry(args.value, args.reason, _instant(args.expires))
        added, changed = _run(settings, lambda: lists.add(args.name, [entry], "cli", actor()))
        print(f"@{args.name}: {added} added, {changed} changed")
    elif args.action == "remove":
        removed = _run(settings, lambda: lists.remove(args.name, args.value, actor()))
        print(f"@{args.name}: {'removed' if removed else 'no such entry'} {args.value}")
        return 0 if removed else 1
    else:
        return _import(args, settings)
    return 0


def _instant(text: str | None) -> datetime | None:
    if not text:
        return None
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def read_entries(path: Path) -> list[Any]:
    """A CSV with a `value` column and optional `reason` and `expires_at` columns."""
    from fraudsvc.db.lists import NewEntry

    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or "value" not in reader.fieldnames:
            raise ValueError(f"{path}: needs a header with a `value` column")
        return [
            NewEntry(
                row["value"].strip(),
                (row.get("reason") or "").strip(),
                _instant((row.get("expires_at") or "").strip()),
            )
            for row in reader
            if (row.get("value") or "").strip()
        ]


def _import(args: argparse.Namespace, settings: Settings) -> int:
    from fraudsvc.db import lists

    wanted = read_entries(args.file)
    diff = _run(settings, lambda: lists.import_diff(args.name, wanted))
    mode = "would" if args.dry_run else "will"
    print(
        f"@{args.name} from {args.file}: {mode} add {len(diff.added)}, change "
        f"{len(diff.changed)}, remove {len(diff.removed)}"
    )
    shown = 10
    for label, values in (
        ("add", [e.value for e in diff.added]),
        ("change", [e.value for e in diff.changed]),
        ("remove", diff.removed),
    ):
        for value in values[:shown]:
            print(f"  {label:<7}{value}")
        if len(values) > shown:
            print(f"  ... and {len(values) - shown} more to {label}")
    if not args.dry_run:
        _run(settings, lambda: lists.apply_import(args.name, diff, "import", actor()))
        print("done")
    return 0


# --------------------------------------------------------------------------- rules


def cmd_rules(args: argparse.Namespace, settings: Settings) -> int:
    from fraudsvc.db import rulesets
    from fraudsvc.rules.ruleset import RulesetRefused, RuleSpec

    if args.action == "create":
        payload = json.loads(args.file.read_text())
        if isinstance(payload, list):  # the rules alone
            payload = {"rules": payload}
        specs = msgspec.convert(payload.get("rules", []), type=list[RuleSpec])
        description = args.description or payload.get("description", "")
        try:
            _run(settings, lambda: _check(settings, specs))
        except RulesetRefused as refused:
            for p in refused.problems:
                print(f"rule {p.rule}: {p.message}", file=sys.stderr)
            return 1
        stored = _run(settings, lambda: rulesets.create(specs, description, actor()))
        print(f"ruleset version {stored.version} stored (a draft: publish it to make it live)")
    elif args.action == "publish":
        stored_version = _run(settings, lambda: rulesets.get(args.version))
        if stored_version is None:
            print(f"no ruleset version {args.version}", file=sys.stderr)
            return 1
        _run(settings, lambda: _check(settings, stored_version.rules))
        _run(settings, lambda: rulesets.publish(args.version, actor()))
        print(f"ruleset version {args.version} is live")
    elif args.action == "show":
        found = _run(
            settings,
            lambda: rulesets.live() if args.version == "live" else rulesets.get(int(args.version)),
        )
        if found is None:
            print(f"no ruleset {args.version}", file=sys.stderr)
            return 1
        _print(found)
    else:
        return _backtest(args, settings)
    return 0


async def _check(settings: Settings, specs: Any) -> None:
    from fraudsvc.rules_service import check

    await check(0, specs, await asyncio.to_thread(_declaration, settings))


def _backtest(args: argparse.Namespace, settings: Settings) -> int:
    from fraudsvc.rules_service import backtest, backtest_lines

    start = datetime(args.start.year, args.start.month, args.start.day, tzinfo=UTC)
    end = datetime(args.end.year, args.end.month, args.end.day, tzinfo=UTC)
    decl = _declaration(settings)
    report = _run(settings, lambda: backtest(args.version, start, end, decl))
    if args.json:
        _print(report)
        return 0
    print("\n".join(backtest_lines(report)))
    return 0


def _date(value: str) -> date:
    return date.fromisoformat(value)


def register(sub: Any) -> None:
    """Add the `lists` and `rules` subcommands to the main parser."""
    ls = sub.add_parser(
        "lists",
        help="named lists the rules look up (@name): define, show, add, remove, import",
        description="Lists the rules look up with `@name`. Changes reach every web process "
        "within a second and are audited as cli:<user>.",
    )
    lsub = ls.add_subparsers(dest="action", required=True, metavar="ACTION")
    d = lsub.add_parser("define", help="create a list (or change its description)")
    d.add_argument("name")
    d.add_argument("--kind", required=True, choices=KINDS)
    d.add_argument("--description", default="")
    s = lsub.add_parser("show", help="a list and its entries")
    s.add_argument("name")
    s.add_argument("--limit", type=int, default=100)
    a = lsub.add_parser("add", help="add (or update) an entry")
    a.add_argument("name")
    a.add_argument("value")
    a.add_argument("--reason", default="")
    a.add_argument("--expires", help="ISO date-time at which the entry stops matching")
    r = lsub.add_parser("remove", help="remove an entry")
    r.add_argument("name")
    r.add_argument("value")
    i = lsub.add_parser(
        "import",
        help="make a list hold exactly a CSV's entries (value[,reason][,expires_at])",
        description="The CSV is the list's whole new content: new values are added, changed "
        "reasons or expiries updated, values absent from the file removed. --dry-run prints "
        "what would change and changes nothing.",
    )
    i.add_argument("name")
    i.add_argument("file", type=Path)
    i.add_argument("--dry-run", action="store_true")
    ls.set_defaults(handler=cmd_lists)

    ru = sub.add_parser(
        "rules",
        help="rulesets: create, publish (or roll back), show, backtest",
        description="Rulesets are numbered, immutable versions; one is live. A version is "
        "checked against the served model's features and the lists when created and again "
        "when published.",
    )
    rsub = ru.add_subparsers(dest="action", required=True, metavar="ACTION")
    c = rsub.add_parser(
        "create", help='store a new version from a JSON file ({"rules": [...]} or a list)'
    )
    c.add_argument("file", type=Path)
    c.add_argument("--description", default="")
    p = rsub.add_parser("publish", help="make a version live (an older one: a rollback)")
    p.add_argument("version", type=int)
    sh = rsub.add_parser("show", help="a version, or `live`")
    sh.add_argument("version", help="a version number or `live`")
    b = rsub.add_parser(
        "backtest",
        help="a version on stored history: hits, precision, recall, amounts per rule",
    )
    b.add_argument("version", type=int)
    b.add_argument("--start", type=_date, required=True, help="first day (YYYY-MM-DD)")
    b.add_argument("--end", type=_date, required=True, help="day after the last (YYYY-MM-DD)")
    b.add_argument("--json", action="store_true", help="the report as JSON")
    ru.set_defaults(handler=cmd_rules)
