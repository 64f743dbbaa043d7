"""Micro-benchmark of rule evaluation: 100 realistic rules over varied transactions, printed as
µs per rule (the budget is 2-3 µs: 100 rules may add at most 10 % to a ~3 ms scoring request).

    .venv/bin/python -m tests.rules_bench [--transactions N] [--repeat R]

Not a test: timings depend on the machine and its load. It lives in the test tree because the
service never runs it.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from fraudsvc.features import DECLARATION
from fraudsvc.rules.language import CompiledRule, compile_rule
from fraudsvc.rules.lists import ListEntry, ListSnapshot, ListView, build_lists
from fraudsvc.rules.schema import transaction_schema

NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)
EXTRA_FEATURES = ["customer_device_nb_tx_30d"]
KINDS = {
    "blocked_customers": "customer",
    "blocked_terminals": "terminal",
    "bad_devices": "device",
    "bad_networks": "ip",
    "high_risk_countries": "country",
    "risky_mcc": "merchant_category",
    "disposable_domains": "string",
}
CHANNELS = ["ecommerce", "pos", "moto", "atm"]
COUNTRIES = ["FR", "DE", "ES", "IT", "GB", "US", "NG", "BR", "RO", "NL"]


def rules(rng: random.Random) -> list[str]:
    """100 rules in the shapes analysts write: thresholds, combinations with the channel and
    countries, list look-ups, literal lists, ratios, attributes, presence, ranges."""
    templates: list[Callable[[], str]] = [
        lambda: f"amount > {rng.choice([1000, 2000, 5000, 10000])}",
        lambda: f"score > {rng.uniform(0.2, 0.9):.2f} and amount > {rng.randint(50, 900)}",
        lambda: (
            f'channel == "{rng.choice(CHANNELS)}" and amount > {rng.randint(100, 900)} '
            f"and customer_device_nb_tx_30d == 1"
        ),
        lambda: f"card_country != merchant_country and score > {rng.uniform(0.1, 0.6):.2f}",
        lambda: "customer_id in @blocked_customers",
        lambda: "terminal_id in @blocked_terminals and amount > 10",
        lambda: "ip in @bad_networks",
        lambda: "device_id in @bad_devices or customer_id in @blocked_customers",
        lambda: f"card_country in @high_risk_countries and amount > {rng.randint(100, 2000)}",
        lambda: "merchant_category in @risky_mcc and score > 0.2",
        lambda: 'merchant_category in ("5967", "7995", "6051", "4829") and amount > 200',
        lambda: (
            f'card_country not in ("FR", "DE", "ES", "IT") and amount > {rng.randint(300, 3000)}'
        ),
        lambda: f"amount / customer_mean_amount_30d > {rng.randint(3, 10)}",
        lambda: (
            f"amount_over_customer_mean_30d > {rng.randint(3, 10)} "
            f"and customer_nb_tx_1h >= {rng.randint(2, 6)}"
        ),
        lambda: f"attributes.account_age_days < {rng.randint(1, 7)} and amount > 300",
        lambda: "lower(attributes.email_domain) in @disposable_domains",
        lambda: 'missing(device_id) and channel == "ecommerce" and amount > 500',
        lambda: f"0.3 < score < 0.6 and terminal_risk_7d > {rng.uniform(0.05, 0.5):.2f}",
        lambda: f"abs(amount - customer_mean_amount_7d) > {rng.randint(500, 3000)}",
        lambda: (
            f"customer_nb_tx_1d > {rng.randint(5, 20)} and "
            f"customer_seconds_since_prev < {rng.randint(10, 120)}"
        ),
        lambda: f'is_night == 1 and channel == "ecommerce" and score > {rng.uniform(0.1, 0.5):.2f}',
        lambda: 'model_decision == "review" and (amount > 1000 or card_country != "FR")',
        lambda: f"max(terminal_risk_1d, terminal_risk_7d) > {rng.uniform(0.3, 0.8):.2f}",
        lambda: 'startswith(terminal_id, "T9") and amount > 800',
        lambda: 'not (channel == "pos") and attributes.three_ds == False',
    ]
    return [templates[i % len(templates)]() for i in range(100)]


def lists(rng: random.Random) -> ListSnapshot:
    rows: list[tuple[str, ListEntry]] = []
    later = NOW + timedelta(days=30)
    for i in range(10_000):
        rows.append(("blocked_customers", ListEntry(f"C{rng.randrange(10**7):07d}", "chargebacks")))
        rows.append(("bad_devices", ListEntry(f"D{i:07d}", "emulator", expires_at=later)))
    for _ in range(2_000):
        rows.append(("blocked_terminals", ListEntry(f"T{rng.randrange(10**6):06d}", "compromised")))
    for _ in range(3_000):
        length = rng.choice([32, 32, 32, 24, 16])
        address = rng.getrandbits(32) >> (32 - length) << (32 - length)
        text = ".".join(str(address >> s & 255) for s in (24, 16, 8, 0))
        rows.append(
            ("bad_networks", ListEntry(text if length == 32 else f"{text}/{length}", "tor"))
        )
    for _ in range(500):
        net = rng.getrandbits(48) << 80
        rows.append(("bad_networks", ListEntry(f"{net:032x}"[:12] + "::/48", "hosting")))
    rows += [("high_risk_countries", ListEntry(c, "policy")) for c in ("NG", "RO", "BR")]
    rows += [("risky_mcc", ListEntry(m, "policy")) for m in ("5967", "7995", "6051", "4829")]
    rows += [
        ("disposable_domains", ListEntry(d, "vendor")) for d in ("mailinator.com", "yopmail.com")
    ]
    return build_lists(KINDS, rows)  # type: ignore[arg-type]


def features(rng: random.Random, amount: float) -> dict[str, float]:
    """Values in the ranges the real features take (counts, means, mostly-zero risks)."""
    values: dict[str, float] = {}
    for name in DECLARATION.names:
        if "nb_tx" in name:
            values[name] = float(
                rng.randint(1, 20) if name.startswith("customer") else rng.randint(0, 300)
            )
        elif "risk" in name:
            values[name] = 0.0 if rng.random() < 0.8 else rng.uniform(0, 0.5)
        elif "mean_amount" in name:
            values[name] = rng.uniform(10, 200)
        else:
            values[name] = float(rng.randint(0, 1))
    values["amount"] = amount
    values["customer_seconds_since_prev"] = rng.uniform(0, 3 * 86_400)
    values["amount_over_customer_mean_30d"] = amount / values["customer_mean_amount_30d"]
    return values


def transactions(rng: random.Random, count: int) -> list[dict[str, Any]]:
    out = []
    for i in range(count):
        ctx: dict[str, Any] = features(rng, round(rng.lognormvariate(4, 1.2), 2))
        ctx.update(
            transaction_id=f"tx{i}",
            customer_id=f"C{rng.randrange(10**7):07d}",
            terminal_id=f"T{rng.randrange(10**6):06d}",
            channel=rng.choice(CHANNELS),
            card_country=rng.choice(COUNTRIES),
            merchant_country=rng.choice(COUNTRIES),
            merchant_category=rng.choice(["5411", "5967", "5812", "4829"]),
            score=rng.random() ** 4,
            model_decision=rng.choice(["allow"] * 20 + ["review", "block"]),
            customer_device_nb_tx_30d=rng.randint(0, 5),
        )
        if rng.random() < 0.8:
            ctx["device_id"] = f"D{rng.randrange(10**7):07d}"
        if rng.random() < 0.9:
            ctx["ip"] = ".".join(str(rng.randrange(256)) for _ in range(4))
        if rng.random() < 0.7:
            ctx["attributes"] = {
                "account_age_days": rng.randint(0, 900),
                "email_domain": rng.choice(["Gmail.com", "mailinator.com", "orange.fr"]),
                "three_ds": rng.random() < 0.7,
            }
        out.append(ctx)
    return out


def run(
    compiled: list[CompiledRule], txs: list[dict[str, Any]], snapshot: ListSnapshot
) -> tuple[float, float]:
    """CPU and wall seconds for every rule on every transaction, one list view per transaction
    (as scoring binds it). CPU time is the figure to read on a shared machine: wall time there
    includes waiting for the other processes' turns."""
    cpu, wall = time.process_time(), time.perf_counter()
    for ctx in txs:
        view = snapshot.at(NOW)
        for rule in compiled:
            rule.evaluate(ctx, view)
    return time.process_time() - cpu, time.perf_counter() - wall


def best_cpu(rule: CompiledRule, txs: list[dict[str, Any]], view: ListView, repeat: int) -> float:
    """µs of CPU per evaluation of one rule, best of `repeat` passes over the transactions."""
    best = math.inf
    for _ in range(repeat):
        start = time.process_time()
        for ctx in txs:
            rule.evaluate(ctx, view)
        best = min(best, time.process_time() - start)
    return best / len(txs) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--transactions", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rng = random.Random(7)
    schema = transaction_schema([*DECLARATION.names, *EXTRA_FEATURES])
    snapshot = lists(rng)
    texts = rules(rng)
    started = time.perf_counter()
    compiled = [compile_rule(text, schema, snapshot.kinds) for text in texts]
    compile_us = (time.perf_counter() - started) / len(texts) * 1e6
    txs = transactions(rng, args.transactions)
    statuses = Counter(r.evaluate(ctx, snapshot.at(NOW)).status for ctx in txs for r in compiled)
    timings = [run(compiled, txs, snapshot) for _ in range(args.repeat)]
    evaluations = len(txs) * len(compiled)
    cpu = statistics.median(c for c, _ in timings) / evaluations * 1e6
    wall = statistics.median(w for _, w in timings) / evaluations * 1e6
    print(f"{len(compiled)} rules x {len(txs)} transactions, median of {args.repeat} runs")
    print(f"  compile        {compile_us:.0f} µs per rule")
    print(f"  evaluate       {cpu:.2f} µs of CPU per rule ({wall:.2f} µs wall)")
    print(
        f"  per transaction {cpu * len(compiled) / 1e3:.3f} ms of CPU for all {len(compiled)} rules"
    )
    total = sum(statuses.values())
    print("  outcomes       " + ", ".join(f"{k} {v / total:.1%}" for k, v in statuses.items()))
    view = snapshot.at(NOW)
    shapes = [
        (best_cpu(rule, txs, view, args.repeat), text)
        for text, rule in zip(texts[:25], compiled[:25], strict=True)
    ]
    always = compile_rule(
        "amount >= 0 and customer_id not in @blocked_customers", schema, snapshot.kinds
    )
    never = compile_rule("amount < 0 and customer_id in @blocked_customers", schema, snapshot.kinds)
    for label, rule in (("a hit", always), ("a miss", never)):
        print(f"  {label:<14} {best_cpu(rule, txs, view, args.repeat):.2f} µs of CPU  {rule.text}")
    print("  per shape (µs of CPU, best of the runs):")
    for us, text in sorted(shapes, reverse=True):
        print(f"    {us:5.2f}  {text}")


if __name__ == "__main__":
    main()
