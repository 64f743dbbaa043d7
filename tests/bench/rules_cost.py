"""Section `rules`: what 100 live rules and three lists of 100,000 entries cost a scoring request.

The same service and load, in one run, alternating: no ruleset live, then 100 live rules (the
shapes analysts write: thresholds, combinations of the channel, countries and features, list
look-ups, literal lists, ratios, attributes, presence; `tests.rules_bench`) with three lists of
100,000 entries (customers, devices, IP addresses and networks) plus small ones, and back,
`repeat` times. The lists stay loaded throughout: a list costs nothing until a rule reads it.
Reported: server CPU per request, p50 at a steady rate, requests/s at saturation, and the mean
time of the scoring path's `rules` stage. Target: under 10 % slower.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

from fraudsvc.db import lists as db_lists
from fraudsvc.db import rulesets as db_rulesets
from fraudsvc.features import DECLARATION
from fraudsvc.resources import open_database
from fraudsvc.rules.ruleset import RuleSpec
from fraudsvc.rules_service import check
from tests.bench.environment import Bench
from tests.bench.load import LoadRun, describe, fraudsvc_target, median_of, pools_for, run_level
from tests.bench.report import Figure, Report
from tests.rules_bench import KINDS, rules

SECTION = "rules: 100 live rules and three lists of 100,000 entries against none"
RATE = 200.0
BIG_LISTS = 100_000
TARGET_SLOWDOWN = 0.10


def _entries(rng: random.Random) -> dict[str, list[db_lists.NewEntry]]:
    ips: list[db_lists.NewEntry] = []
    while len(ips) < BIG_LISTS:
        length = rng.choice([32, 32, 32, 24, 16])
        address = rng.getrandbits(32) >> (32 - length) << (32 - length)
        text = ".".join(str(address >> s & 255) for s in (24, 16, 8, 0))
        ips.append(db_lists.NewEntry(text if length == 32 else f"{text}/{length}", "tor"))
    return {
        "blocked_customers": [
            db_lists.NewEntry(f"X{i:07d}", "chargebacks") for i in range(BIG_LISTS)
        ],
        "bad_devices": [db_lists.NewEntry(f"D{i:07d}", "emulator") for i in range(BIG_LISTS)],
        "bad_networks": ips,
        "blocked_terminals": [db_lists.NewEntry(f"Z{i:06d}", "skimmer") for i in range(2_000)],
        "high_risk_countries": [db_lists.NewEntry(c, "policy") for c in ("NG", "RO", "BR")],
        "risky_mcc": [db_lists.NewEntry(m, "policy") for m in ("5967", "7995", "6051", "4829")],
        "disposable_domains": [db_lists.NewEntry("mailinator.com", "vendor")],
    }


async def prepare(bench: Bench) -> tuple[int, float]:
    """The lists (loaded into every process by the notification) and a stored ruleset; returns
    its version and the seconds the import took."""
    rng = random.Random(5)
    specs = [
        RuleSpec(id=f"rule_{i:03d}", expression=text, action=rng.choice(["review", "block"]))
        for i, text in enumerate(rules(rng))
    ]
    started = time.perf_counter()
    async with open_database(bench.settings):
        for name, entries in _entries(rng).items():
            await db_lists.define(name, KINDS[name], "bench", "bench")  # type: ignore[arg-type]
            for start in range(0, len(entries), 20_000):
                await db_lists.add(name, entries[start : start + 20_000], "bench", "bench")
        await check(0, specs, DECLARATION)
        version = (await db_rulesets.create(specs, "bench: 100 rules", "bench")).version
    return version, time.perf_counter() - started


async def set_live(bench: Bench, version: int | None) -> None:
    async with open_database(bench.settings):
        if version is None:
            from fraudsvc.db.engine import DB

            assert DB.pool is not None
            await DB.pool.execute("DELETE FROM ruleset_live")
        else:
            await db_rulesets.publish(version, "bench")
    await asyncio.sleep(5)  # the process reloads (100k-entry lists: about a second each)


def run(bench: Bench, report: Report) -> None:
    plan = bench.plan
    bench.web()
    version, seconds = asyncio.run(prepare(bench))
    report.add(
        SECTION,
        Figure("lists and ruleset stored", "s", [seconds], "3 x 100,000 entries and small lists"),
    )
    target = fraudsvc_target(bench, pools_for(bench))
    runs: dict[str, list[LoadRun]] = {"none": [], "rules": []}
    for r in range(plan.repeat):
        for phase in ("none", "rules"):
            asyncio.run(set_live(bench, version if phase == "rules" else None))
            for rate in (RATE, None):
                result = run_level(target, rate, plan.load_seconds, r)
                result.target = f"{phase}"
                print(describe(result), flush=True)
                runs[phase].append(result)
    asyncio.run(set_live(bench, None))
    report.data["rules_runs"] = {k: [r.as_json() for r in v] for k, v in runs.items()}
    _figures(report, runs)


def _figures(report: Report, runs: dict[str, list[LoadRun]]) -> None:
    def steady(phase: str) -> list[LoadRun]:
        return [r for r in runs[phase] if r.rate == RATE]

    def saturated(phase: str) -> list[LoadRun]:
        return [r for r in runs[phase] if r.rate is None]

    values: dict[str, Any] = {}
    for phase, label in (("none", "no rules"), ("rules", "100 rules, 3 x 100k lists")):
        cpu = [r.cpu_ms["server"] for r in saturated(phase)]
        p50 = [r.result.p50_ms for r in steady(phase)]
        rps = [r.result.rate for r in saturated(phase)]
        stage = [r.stages_ms.get("rules", 0.0) for r in steady(phase)]
        report.add(SECTION, Figure(f"{label}: web CPU per request", "ms", cpu, "at saturation"))
        report.add(SECTION, Figure(f"{label}: p50 at {RATE:g}/s", "ms", p50, ""))
        report.add(SECTION, Figure(f"{label}: requests/s at saturation", "req/s", rps, ""))
        report.add(SECTION, Figure(f"{label}: rules stage (mean)", "ms", stage, f"at {RATE:g}/s"))
        values[phase] = (
            median_of(saturated(phase), lambda r: r.cpu_ms["server"]),
            median_of(saturated(phase), lambda r: r.result.rate),
        )
    cpu_slowdown = values["rules"][0] / values["none"][0] - 1.0
    throughput_loss = 1.0 - values["rules"][1] / values["none"][1]
    report.add(SECTION, Figure("web CPU per request: rules / none - 1", "x", [cpu_slowdown], ""))
    report.add(SECTION, Figure("throughput lost to the rules", "x", [throughput_loss], ""))
    report.verdict(
        f"100 live rules and three lists of 100,000 entries cost under "
        f"{TARGET_SLOWDOWN:.0%} of a scoring request",
        f"web CPU per request +{cpu_slowdown:.1%}, throughput -{throughput_loss:.1%}",
        cpu_slowdown < TARGET_SLOWDOWN and throughput_loss < TARGET_SLOWDOWN,
    )
