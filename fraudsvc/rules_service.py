"""What the admin API and the CLI do with rules, the same way: check a ruleset against what the
service can evaluate (the served model's features, the lists that exist), and backtest one on
stored history.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import datetime

from fraudsvc.admin_schemas import BacktestOut, DecisionChange, RuleResult
from fraudsvc.db import lists as db_lists
from fraudsvc.db import rulesets as db_rulesets
from fraudsvc.features import Declaration
from fraudsvc.rules.backtest import amount, new_tally, replay
from fraudsvc.rules.lists import build_lists
from fraudsvc.rules.ruleset import Ruleset, RuleSpec, compile_ruleset
from fraudsvc.rules.schema import ListKind, transaction_schema

MAX_BACKTEST_DAYS = 366


async def check(
    version: int, specs: Sequence[RuleSpec], decl: Declaration
) -> tuple[Ruleset, dict[str, ListKind]]:
    """Compile every rule against the features of `decl` (the served model's) and the lists
    that exist now; raises RulesetRefused naming each rule that cannot be."""
    kinds, _ = await db_lists.snapshot_rows(entries=False)
    ruleset = compile_ruleset(version, specs, transaction_schema(decl.names), kinds)
    return ruleset, kinds


async def backtest(version: int, start: datetime, end: datetime, decl: Declaration) -> BacktestOut:
    """Evaluate a stored ruleset version over the scored transactions of [start, end)."""
    if end <= start:
        raise ValueError("end must be after start")
    if (end - start).days > MAX_BACKTEST_DAYS:
        raise ValueError(f"a backtest covers at most {MAX_BACKTEST_DAYS} days")
    stored = await db_rulesets.get(version)
    if stored is None:
        raise LookupError(f"no ruleset version {version}")
    ruleset, _ = await check(version, stored.rules, decl)
    kinds, rows = await db_lists.snapshot_rows()
    lists = await asyncio.to_thread(build_lists, kinds, rows)
    tally = new_tally(ruleset)
    started = time.perf_counter()
    async for batch in db_rulesets.history(start, end):
        # CPU work off the event loop: a web process goes on scoring meanwhile
        await asyncio.to_thread(replay, tally, ruleset, lists, batch)
    seconds = time.perf_counter() - started
    flagged = tally.flagged
    return BacktestOut(
        version=version,
        start=start,
        end=end,
        transactions=tally.transactions,
        frauds=tally.frauds,
        fraud_amount=amount(tally.fraud_minor),
        decisions=dict(tally.decisions),
        flagged_precision=tally.flagged_frauds / flagged if flagged else None,
        flagged_recall=tally.flagged_frauds / tally.frauds if tally.frauds else None,
        caught_fraud_amount=amount(tally.caught_minor),
        blocked_genuine_amount=amount(tally.blocked_genuine_minor),
        changed=sum(tally.changed.values()),
        changes=[
            DecisionChange(live=a, backtest=b, transactions=n)
            for (a, b), n in sorted(tally.changed.items())
        ],
        rules=[
            RuleResult(
                id=r.id,
                action=r.action,
                mode=r.mode,
                hits=r.hits,
                errors=r.errors,
                frauds=r.frauds,
                precision=r.precision(),
                recall=r.recall(tally.frauds),
                fraud_amount=amount(r.fraud_minor),
                genuine_amount=amount(r.genuine_minor),
            )
            for r in tally.rules.values()
        ],
        unreadable_vectors=tally.unreadable,
        seconds=seconds,
        per_second=tally.transactions / seconds if seconds > 0 else 0.0,
    )


def backtest_lines(report: BacktestOut) -> list[str]:
    """A backtest as a table: one line per rule, then the whole ruleset."""

    def ratio(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    lines = [
        f"ruleset v{report.version} on {report.transactions:,} transactions "
        f"({report.start.date()} .. {report.end.date()}), {report.frauds:,} labelled fraud, "
        f"{report.per_second:,.0f} transactions/s",
        f"  {'rule':<24}{'mode':<8}{'action':<8}{'hits':>8}{'precision':>11}{'recall':>8}"
        f"{'fraud caught':>14}{'genuine hit':>13}",
    ]
    for r in report.rules:
        lines.append(
            f"  {r.id:<24}{r.mode:<8}{r.action:<8}{r.hits:>8,}{ratio(r.precision):>11}"
            f"{ratio(r.recall):>8}{r.fraud_amount:>14,.2f}{r.genuine_amount:>13,.2f}"
        )
    lines.append(
        f"  whole ruleset: decisions {report.decisions}; review or block precision "
        f"{ratio(report.flagged_precision)}, recall {ratio(report.flagged_recall)}; fraud caught "
        f"{report.caught_fraud_amount:,.2f}, genuine blocked {report.blocked_genuine_amount:,.2f};"
        f" {report.changed:,} decisions differ from live"
    )
    return lines
