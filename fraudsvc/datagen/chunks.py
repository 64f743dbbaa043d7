"""Generation chunk by chunk of whole days, and the output file.

Days are generated in chunks of about `rows_per_chunk` rows, written as Parquet parts and
streamed into the output, so 10M+ rows never sit in memory at once. The world, the fraud
schedule and every chunk draw from their own seeds spawned from `cfg.seed`, and each chunk's
payments and their attributes from two streams of their own: the same parameters and seed give
the same file, and `fields="basic"` gives the same payments as `"full"` without the attributes.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from fraudsvc.datagen.attributes import payment_attributes
from fraudsvc.datagen.config import BASIC_COLUMNS, FULL_COLUMNS, SCENARIOS, GeneratorConfig
from fraudsvc.datagen.fraud import Schedule, make_schedule, mark_window_frauds
from fraudsvc.datagen.payments import ROW_KEYS, everyday, subscriptions
from fraudsvc.datagen.world import DAY_SECONDS, World, make_world

ROWS_PER_CHUNK = 2_000_000
ID_DIGITS = 6  # C000042, T001337


def _in_chunk(rows: dict[str, np.ndarray], day0: int, day1: int) -> dict[str, np.ndarray]:
    t = rows["seconds"]
    keep = (t >= day0 * DAY_SECONDS) & (t < day1 * DAY_SECONDS)
    return {k: v[keep] for k, v in rows.items()}


def generate_chunk(
    world: World,
    sched: Schedule,
    cfg: GeneratorConfig,
    day0: int,
    day1: int,
    seed: np.random.SeedSequence,
) -> pl.DataFrame:
    """The payments of days [day0, day1), sorted as the file is, with the customer and terminal
    indexes in `_customer` and `_terminal` (no transaction ids yet)."""
    rows_seed, attributes_seed = seed.spawn(2)
    rng = np.random.default_rng(rows_seed)
    rows = everyday(world, cfg, day0, day1, rng)
    mark_window_frauds(rows, sched, rng)  # a subscription keeps billing a compromised card
    parts = [
        rows,
        subscriptions(world, cfg, day0, day1, rng),
        _in_chunk(sched.injected, day0, day1),
    ]
    allrows = {k: np.concatenate([p[k] for p in parts]) for k in ROW_KEYS}
    start_us = int(cfg.start.timestamp() * 1_000_000)
    frame = pl.DataFrame(
        {
            "timestamp": allrows["seconds"] * 1_000_000 + start_us,
            "_customer": allrows["customer"],
            "_terminal": allrows["terminal"],
            "amount": np.round(allrows["amount"], 2),
            "fraud_scenario": allrows["scenario"],
        }
    )
    if cfg.fields == "full":
        attributes = payment_attributes(allrows, world, np.random.default_rng(attributes_seed))
        frame = frame.with_columns(**attributes)
    frame = frame.with_columns(
        pl.col("timestamp").cast(pl.Datetime("us", "UTC")),
        pl.format("C{}", pl.col("_customer").cast(pl.String).str.zfill(ID_DIGITS)).alias(
            "customer_id"
        ),
        pl.format("T{}", pl.col("_terminal").cast(pl.String).str.zfill(ID_DIGITS)).alias(
            "terminal_id"
        ),
        (pl.col("fraud_scenario") > 0).cast(pl.Int8).alias("is_fraud"),
    )
    # the file's order is by timestamp, customer_id, terminal_id, amount; ids of equal width sort
    # as their numbers do, which is faster. Stable: payments equal on every key keep one order.
    numeric = max(cfg.customers, cfg.terminals) <= 10**ID_DIGITS
    ids = ("_customer", "_terminal") if numeric else ("customer_id", "terminal_id")
    return frame.sort("timestamp", *ids, "amount", maintain_order=True)


@dataclass(frozen=True)
class GenerateResult:
    path: Path
    rows: int
    frauds: int
    seconds: float
    by_scenario: dict[str, int]
    largest_terminal_share: float  # share of all payments at the busiest terminal
    by_channel: dict[str, int] = field(default_factory=dict)  # empty with fields="basic"


def generate(
    cfg: GeneratorConfig,
    out: Path,
    progress: Callable[[int, int, int], None] | None = None,
    rows_per_chunk: int = ROWS_PER_CHUNK,
) -> GenerateResult:
    """Write the data set to `out` (.parquet or .csv), chunk by chunk; returns a summary."""
    started = time.perf_counter()
    world_seed, schedule_seed, chunks_seed = np.random.SeedSequence(cfg.seed).spawn(3)
    world = make_world(cfg, np.random.default_rng(world_seed))
    sched = make_schedule(cfg, world, np.random.default_rng(schedule_seed))
    rows_per_day = max(1.0, float(world.customers.tx_per_day.sum()))
    chunk_days = max(1, min(cfg.days, int(rows_per_chunk / rows_per_day)))
    bounds = list(range(0, cfg.days, chunk_days))
    chunk_seeds = chunks_seed.spawn(len(bounds))
    columns = FULL_COLUMNS if cfg.fields == "full" else BASIC_COLUMNS

    out.parent.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix=".generate-", dir=out.parent))
    rows = frauds = 0
    by_scenario = dict.fromkeys(SCENARIOS.values(), 0)
    by_channel: Counter[str] = Counter()
    per_terminal = np.zeros(cfg.terminals, dtype=np.int64)
    try:
        parts = []
        for i, day0 in enumerate(bounds):
            day1 = min(cfg.days, day0 + chunk_days)
            chunk = generate_chunk(world, sched, cfg, day0, day1, chunk_seeds[i])
            chunk = chunk.with_columns(
                pl.format(
                    "tx{}", (pl.int_range(pl.len()) + rows).cast(pl.String).str.zfill(10)
                ).alias("transaction_id")
            )
            rows += chunk.height
            frauds += int(chunk["is_fraud"].sum())
            for code, count in chunk["fraud_scenario"].value_counts().iter_rows():
                by_scenario[SCENARIOS[code]] += count
            if "channel" in chunk.columns:
                by_channel.update(dict(chunk["channel"].value_counts().iter_rows()))
            per_terminal += np.bincount(chunk["_terminal"].to_numpy(), minlength=cfg.terminals)
            part = workdir / f"part-{i:05d}.parquet"
            chunk.select(columns).write_parquet(part)
            parts.append(part)
            if progress:
                progress(day1, cfg.days, rows)
        if out.suffix.lower() == ".csv":
            tmp_out = workdir / "result.csv"
            pl.scan_parquet(parts).sink_csv(tmp_out)
        elif len(parts) == 1:
            tmp_out = parts[0]  # already the file: no second pass
        else:
            tmp_out = workdir / "result.parquet"
            pl.scan_parquet(parts).sink_parquet(tmp_out)
        tmp_out.replace(out)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return GenerateResult(
        path=out,
        rows=rows,
        frauds=frauds,
        seconds=time.perf_counter() - started,
        by_scenario=by_scenario,
        largest_terminal_share=float(per_terminal.max()) / max(1, rows),
        by_channel=dict(by_channel.most_common()),
    )
