"""Synthetic card transactions with four fraud scenarios, vectorised and seeded.

The world: customers with a home on a 100 x 100 map, their own spending habits (mean amount,
transactions per day, preferred hour, weekend habit), and terminals scattered on the same map.
Each customer buys at terminals within `radius` of home. Days are generated in chunks of whole
days (about two million rows each), so 10M+ rows never sit in memory at once. The chunk size
follows from the parameters and the fraud scenarios are scheduled up front from the seed, so the
same parameters and seed always give the same file.

Fraud scenarios (column `fraud_scenario`, kept in the file for analysis; the contract ignores it):

1. large amount: a single transaction several times above the customer's habit, far from home;
2. compromised terminal: every transaction at the terminal is fraud for one to four weeks;
3. compromised card: for two weeks a third of the customer's transactions are fraud, amounts x5;
4. card testing: a burst of 5-20 small amounts (0.50-5.00) within minutes at one terminal.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
from scipy.spatial import cKDTree

GENUINE, LARGE_AMOUNT, COMPROMISED_TERMINAL, COMPROMISED_CARD, CARD_TESTING = range(5)
SCENARIOS = {
    GENUINE: "genuine",
    LARGE_AMOUNT: "large amount",
    COMPROMISED_TERMINAL: "compromised terminal",
    COMPROMISED_CARD: "compromised card",
    CARD_TESTING: "card testing",
}
DAY_SECONDS = 86_400
MAP_SIZE = 100.0
MAX_TERMINALS_PER_CUSTOMER = 64
ROWS_PER_CHUNK = 2_000_000


@dataclass(frozen=True)
class GeneratorConfig:
    customers: int = 2_000
    terminals: int = 4_000
    days: int = 120
    start: datetime = datetime(2026, 1, 1, tzinfo=UTC)
    seed: int = 7
    radius: float = 5.0
    # expected scenario events per day, per 1,000 customers or terminals
    large_amount_rate: float = 0.35
    compromised_terminal_rate: float = 0.12
    compromised_card_rate: float = 0.55
    card_testing_rate: float = 0.3


@dataclass(frozen=True)
class Population:
    home: np.ndarray  # (customers, 2)
    mean_amount: np.ndarray
    std_amount: np.ndarray
    tx_per_day: np.ndarray
    peak_hour: np.ndarray
    night_share: np.ndarray
    weekend_factor: np.ndarray
    terminal_xy: np.ndarray  # (terminals, 2)
    nearby: np.ndarray  # (customers, MAX_TERMINALS_PER_CUSTOMER) terminal indexes
    nearby_count: np.ndarray  # how many of `nearby` are usable


@dataclass(frozen=True)
class Schedule:
    """Fraud events drawn for the whole period before any transaction is generated."""

    terminal_start: np.ndarray  # seconds from start
    terminal_end: np.ndarray
    terminal_idx: np.ndarray
    card_start: np.ndarray
    card_end: np.ndarray
    card_customer: np.ndarray
    testing_time: np.ndarray
    testing_customer: np.ndarray
    testing_terminal: np.ndarray
    testing_size: np.ndarray
    large_time: np.ndarray
    large_customer: np.ndarray
    large_terminal: np.ndarray


def make_population(cfg: GeneratorConfig, rng: np.random.Generator) -> Population:
    n = cfg.customers
    home = rng.uniform(0, MAP_SIZE, size=(n, 2))
    mean_amount = rng.uniform(5, 100, size=n)
    terminal_xy = rng.uniform(0, MAP_SIZE, size=(cfg.terminals, 2))
    k = min(MAX_TERMINALS_PER_CUSTOMER, cfg.terminals)
    distances, nearby = cKDTree(terminal_xy).query(home, k=k)
    distances = distances.reshape(n, k)
    nearby = nearby.reshape(n, k)
    # at least the nearest terminal, even for a customer living far from every terminal
    nearby_count = np.maximum((distances <= cfg.radius).sum(axis=1), 1)
    return Population(
        home=home,
        mean_amount=mean_amount,
        std_amount=mean_amount / 2,
        tx_per_day=rng.uniform(0.2, 4.0, size=n),
        peak_hour=rng.normal(14.0, 2.5, size=n).clip(8, 21),
        night_share=rng.beta(1, 30, size=n),
        weekend_factor=rng.uniform(0.5, 1.5, size=n),
        terminal_xy=terminal_xy,
        nearby=nearby.astype(np.int64),
        nearby_count=nearby_count.astype(np.int64),
    )


def _events(rng: np.random.Generator, rate_per_1000: float, population: int, days: int) -> int:
    return int(rng.poisson(rate_per_1000 * population / 1000.0 * days))


def make_schedule(cfg: GeneratorConfig, rng: np.random.Generator) -> Schedule:
    span = cfg.days * DAY_SECONDS
    n_term = _events(rng, cfg.compromised_terminal_rate, cfg.terminals, cfg.days)
    term_start = rng.integers(0, span, size=n_term)
    n_card = _events(rng, cfg.compromised_card_rate, cfg.customers, cfg.days)
    card_start = rng.integers(0, span, size=n_card)
    n_test = _events(rng, cfg.card_testing_rate, cfg.customers, cfg.days)
    n_large = _events(rng, cfg.large_amount_rate, cfg.customers, cfg.days)
    return Schedule(
        terminal_start=term_start,
        terminal_end=term_start + rng.integers(7, 29, size=n_term) * DAY_SECONDS,
        terminal_idx=rng.integers(0, cfg.terminals, size=n_term),
        card_start=card_start,
        card_end=card_start + 14 * DAY_SECONDS,
        card_customer=rng.integers(0, cfg.customers, size=n_card),
        # a burst ends within the day it starts, so it never crosses a chunk of whole days
        testing_time=rng.integers(0, cfg.days, size=n_test) * DAY_SECONDS
        + rng.integers(0, DAY_SECONDS - 3_600, size=n_test),
        testing_customer=rng.integers(0, cfg.customers, size=n_test),
        testing_terminal=rng.integers(0, cfg.terminals, size=n_test),
        testing_size=rng.integers(5, 21, size=n_test),
        large_time=rng.integers(0, span, size=n_large),
        large_customer=rng.integers(0, cfg.customers, size=n_large),
        large_terminal=rng.integers(0, cfg.terminals, size=n_large),
    )


def _genuine(
    pop: Population, cfg: GeneratorConfig, day0: int, day1: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    days = np.arange(day0, day1)
    weekday = (cfg.start.weekday() + days) % 7
    weekend = weekday >= 5
    rate = pop.tx_per_day[:, None] * np.where(weekend[None, :], pop.weekend_factor[:, None], 1.0)
    counts = rng.poisson(rate)  # (customers, days)
    customer = np.repeat(np.arange(cfg.customers), counts.sum(axis=1))
    day = np.repeat(np.tile(days, cfg.customers), counts.ravel())
    n = customer.size
    night = rng.random(n) < pop.night_share[customer]
    hour = np.where(
        night,
        rng.uniform(0, 6, size=n),
        rng.normal(pop.peak_hour[customer], 3.0).clip(6.0, 23.999),
    )
    seconds = day * DAY_SECONDS + (hour * 3600).astype(np.int64)
    pick = (rng.random(n) * pop.nearby_count[customer]).astype(np.int64)
    terminal = pop.nearby[customer, pick]
    amount = np.abs(rng.normal(pop.mean_amount[customer], pop.std_amount[customer]))
    return {
        "seconds": seconds,
        "customer": customer,
        "terminal": terminal,
        "amount": amount,
        "scenario": np.zeros(n, dtype=np.int8),
    }


def _in_chunk(times: np.ndarray, day0: int, day1: int) -> np.ndarray:
    return (times >= day0 * DAY_SECONDS) & (times < day1 * DAY_SECONDS)


def _injected(
    pop: Population, sched: Schedule, day0: int, day1: int, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Card-testing bursts and large-amount frauds whose time falls in this chunk."""
    t = _in_chunk(sched.testing_time, day0, day1)
    sizes = sched.testing_size[t]
    burst = np.repeat(np.arange(sizes.size), sizes)
    # minutes apart at most, strictly increasing within a burst
    steps = rng.integers(5, 60, size=burst.size)
    offsets = np.cumsum(steps)
    if sizes.size:
        first = np.r_[0, np.cumsum(sizes)[:-1]]
        offsets = offsets - np.repeat(offsets[first] - steps[first], sizes)
    testing = {
        "seconds": np.repeat(sched.testing_time[t], sizes) + offsets,
        "customer": np.repeat(sched.testing_customer[t], sizes),
        "terminal": np.repeat(sched.testing_terminal[t], sizes),
        "amount": rng.uniform(0.5, 5.0, size=burst.size),
        "scenario": np.full(burst.size, CARD_TESTING, dtype=np.int8),
    }
    g = _in_chunk(sched.large_time, day0, day1)
    customers = sched.large_customer[g]
    large = {
        "seconds": sched.large_time[g],
        "customer": customers,
        "terminal": sched.large_terminal[g],
        "amount": np.maximum(
            pop.mean_amount[customers] * rng.uniform(5, 20, size=customers.size),
            rng.uniform(300, 2_500, size=customers.size),
        ),
        "scenario": np.full(customers.size, LARGE_AMOUNT, dtype=np.int8),
    }
    return {k: np.concatenate([testing[k], large[k]]) for k in testing}


def _mark_window_frauds(
    rows: dict[str, np.ndarray],
    keys: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    row_keys: np.ndarray,
) -> np.ndarray:
    """Boolean mask of rows whose key has an active event (start <= t < end)."""
    hit = np.zeros(row_keys.size, dtype=bool)
    if keys.size == 0:
        return hit
    order = np.argsort(keys, kind="stable")
    keys, starts, ends = keys[order], starts[order], ends[order]
    lo = np.searchsorted(keys, row_keys, side="left")
    hi = np.searchsorted(keys, row_keys, side="right")
    # each key has few events: loop over the k-th event of every row's key
    for k in range(int((hi - lo).max(initial=0))):
        idx = lo + k
        valid = idx < hi
        j = np.where(valid, idx, 0)
        hit |= valid & (rows["seconds"] >= starts[j]) & (rows["seconds"] < ends[j])
    return hit


def generate_chunk(
    pop: Population,
    sched: Schedule,
    cfg: GeneratorConfig,
    day0: int,
    day1: int,
    rng: np.random.Generator,
) -> pl.DataFrame:
    rows = _genuine(pop, cfg, day0, day1, rng)
    terminal_fraud = _mark_window_frauds(
        rows, sched.terminal_idx, sched.terminal_start, sched.terminal_end, rows["terminal"]
    )
    card_active = _mark_window_frauds(
        rows, sched.card_customer, sched.card_start, sched.card_end, rows["customer"]
    )
    card_fraud = card_active & (rng.random(card_active.size) < 1 / 3) & ~terminal_fraud
    rows["amount"] = np.where(card_fraud, rows["amount"] * 5, rows["amount"])
    rows["scenario"][terminal_fraud] = COMPROMISED_TERMINAL
    rows["scenario"][card_fraud] = COMPROMISED_CARD
    injected = _injected(pop, sched, day0, day1, rng)
    allrows = {k: np.concatenate([rows[k], injected[k]]) for k in rows}
    start_us = int(cfg.start.timestamp() * 1_000_000)
    return (
        pl.DataFrame(
            {
                "timestamp": allrows["seconds"] * 1_000_000 + start_us,
                "customer_id": allrows["customer"],
                "terminal_id": allrows["terminal"],
                "amount": np.round(allrows["amount"], 2),
                "fraud_scenario": allrows["scenario"],
            }
        )
        .select(
            pl.col("timestamp").cast(pl.Datetime("us", "UTC")),
            pl.format("C{}", pl.col("customer_id").cast(pl.String).str.zfill(6)).alias(
                "customer_id"
            ),
            pl.format("T{}", pl.col("terminal_id").cast(pl.String).str.zfill(6)).alias(
                "terminal_id"
            ),
            "amount",
            (pl.col("fraud_scenario") > 0).cast(pl.Int8).alias("is_fraud"),
            "fraud_scenario",
        )
        .sort("timestamp", "customer_id", "terminal_id", "amount")
    )


@dataclass(frozen=True)
class GenerateResult:
    path: Path
    rows: int
    frauds: int
    seconds: float
    by_scenario: dict[str, int]


def generate(
    cfg: GeneratorConfig,
    out: Path,
    progress: Callable[[int, int, int], None] | None = None,
) -> GenerateResult:
    """Write the data set to `out` (.parquet or .csv), chunk by chunk; returns a summary."""
    started = time.perf_counter()
    seeds = np.random.SeedSequence(cfg.seed)
    world_seed, schedule_seed, chunks_seed = seeds.spawn(3)
    pop = make_population(cfg, np.random.default_rng(world_seed))
    sched = make_schedule(cfg, np.random.default_rng(schedule_seed))
    rows_per_day = max(1.0, float(pop.tx_per_day.sum()))
    chunk_days = max(1, min(cfg.days, int(ROWS_PER_CHUNK / rows_per_day)))
    bounds = list(range(0, cfg.days, chunk_days))
    chunk_seeds = chunks_seed.spawn(len(bounds))

    out.parent.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix=".generate-", dir=out.parent))
    rows = frauds = 0
    by_scenario = dict.fromkeys(SCENARIOS.values(), 0)
    try:
        parts = []
        for i, day0 in enumerate(bounds):
            day1 = min(cfg.days, day0 + chunk_days)
            chunk = generate_chunk(
                pop, sched, cfg, day0, day1, np.random.default_rng(chunk_seeds[i])
            )
            chunk = chunk.with_columns(
                pl.format(
                    "tx{}", (pl.int_range(pl.len()) + rows).cast(pl.String).str.zfill(10)
                ).alias("transaction_id")
            ).select(
                "transaction_id",
                "timestamp",
                "customer_id",
                "terminal_id",
                "amount",
                "is_fraud",
                "fraud_scenario",
            )
            rows += chunk.height
            frauds += int(chunk["is_fraud"].sum())
            for code, count in chunk["fraud_scenario"].value_counts().iter_rows():
                by_scenario[SCENARIOS[code]] += count
            part = workdir / f"part-{i:05d}.parquet"
            chunk.write_parquet(part)
            parts.append(part)
            if progress:
                progress(day1, cfg.days, rows)
        combined = pl.scan_parquet(parts)
        tmp_out = workdir / ("result" + out.suffix)
        if out.suffix.lower() == ".csv":
            combined.sink_csv(tmp_out)
        else:
            combined.sink_parquet(tmp_out)
        tmp_out.replace(out)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return GenerateResult(
        path=out,
        rows=rows,
        frauds=frauds,
        seconds=time.perf_counter() - started,
        by_scenario=by_scenario,
    )
