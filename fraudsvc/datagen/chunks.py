"""Generation chunk by chunk of whole days, and the output file.

Days are generated in chunks of about `rows_per_chunk` rows, each appended to the output as it
is made (a Parquet row group through pyarrow's writer, or CSV rows), so 10M+ rows never sit in
memory at once and nothing is written twice. The world, the fraud
schedule and every chunk draw from their own seeds spawned from `cfg.seed`, and each chunk's
payments and their attributes from two streams of their own: the same parameters and seed give
the same file, and `fields="basic"` gives the same payments as `"full"` without the attributes.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq  # type: ignore[import-untyped]  # pyarrow ships no type information

from fraudsvc.datagen.attributes import payment_attributes
from fraudsvc.datagen.config import BASIC_COLUMNS, FULL_COLUMNS, SCENARIOS, GeneratorConfig
from fraudsvc.datagen.fraud import Schedule, make_schedule, mark_window_frauds
from fraudsvc.datagen.payments import ROW_KEYS, everyday, subscriptions
from fraudsvc.datagen.world import DAY_SECONDS, World, make_world

ROWS_PER_CHUNK = 500_000
ID_DIGITS = 6  # C000042, T001337


@contextmanager
def _output(out: Path) -> Iterator[Callable[[pl.DataFrame], None]]:
    """Append chunks to `out` (Parquet row groups, or CSV rows under one header) in one pass;
    the file appears, complete, only when the last chunk is written."""
    fd, name = tempfile.mkstemp(prefix=".generate-", suffix=out.suffix, dir=out.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        if out.suffix.lower() == ".csv":
            with tmp.open("wb") as handle:
                header = [True]

                def write_csv(frame: pl.DataFrame) -> None:
                    frame.write_csv(handle, include_header=header[0])
                    header[0] = False

                yield write_csv
        else:
            writer: pq.ParquetWriter | None = None

            def write_parquet(frame: pl.DataFrame) -> None:
                nonlocal writer
                table = frame.to_arrow()
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema, compression="zstd")
                writer.write_table(table)

            try:
                yield write_parquet
            finally:
                if writer is not None:
                    writer.close()
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)


def _in_chunk(rows: dict[str, np.ndarray], day0: int, day1: int) -> dict[str, np.ndarray]:
    t = rows["seconds"]
    keep = (t >= day0 * DAY_SECONDS) & (t < day1 * DAY_SECONDS)
    return {k: v[keep] for k, v in rows.items()}


@dataclass(frozen=True)
class IdTables:
    """Every id string once, gathered by index: much faster than formatting each row's."""

    customer: pl.Series  # "C000042" at index 42
    terminal: pl.Series  # "T001337" at index 1337
    digits: pl.Series  # "00000" to "99999", the halves of a transaction id's number

    @classmethod
    def of(cls, cfg: GeneratorConfig) -> IdTables:
        def table(prefix: str, n: int, width: int) -> pl.Series:
            number = pl.int_range(n).cast(pl.String).str.zfill(width)
            return pl.select(pl.format(prefix + "{}", number)).to_series()

        return cls(
            customer=table("C", cfg.customers, ID_DIGITS),
            terminal=table("T", cfg.terminals, ID_DIGITS),
            digits=table("", 100_000, 5),
        )

    def transactions(self, first: int, n: int) -> pl.Series:
        """`tx0000000000`-style ids for rows first .. first + n - 1 of the file."""
        number = np.arange(first, first + n)
        frame = pl.DataFrame(
            {
                "high": self.digits.gather(number // 100_000),
                "low": self.digits.gather(number % 100_000),
            }
        )
        return frame.select(pl.concat_str(pl.lit("tx"), "high", "low")).to_series()


def _file_order(rows: dict[str, np.ndarray], cfg: GeneratorConfig, ids: IdTables) -> np.ndarray:
    """The permutation that sorts rows by timestamp, customer_id, terminal_id and amount; stable,
    so payments equal on every key keep one order and the file is the same every time."""
    keys: dict[str, object] = {
        "seconds": rows["seconds"],
        "customer": rows["customer"],
        "terminal": rows["terminal"],
        "amount": rows["amount"],
    }
    if max(cfg.customers, cfg.terminals) > 10**ID_DIGITS:  # ids of unequal width sort as text
        keys["customer"] = ids.customer.gather(rows["customer"])
        keys["terminal"] = ids.terminal.gather(rows["terminal"])
    order = pl.DataFrame(keys).select(pl.arg_sort_by(list(keys), maintain_order=True))
    return order.to_series().to_numpy()


@dataclass(frozen=True)
class Chunk:
    frame: pl.DataFrame  # the file's columns but the transaction id, in the file's order
    terminal: np.ndarray  # terminal index of each row


def generate_chunk(
    world: World,
    sched: Schedule,
    cfg: GeneratorConfig,
    ids: IdTables,
    days: tuple[int, int],
    seed: np.random.SeedSequence,
) -> Chunk:
    """The payments of days [days[0], days[1]), sorted as the file is."""
    day0, day1 = days
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
    allrows["amount"] = np.round(allrows["amount"], 2)
    order = _file_order(allrows, cfg, ids)
    allrows = {k: v[order] for k, v in allrows.items()}
    start_us = int(cfg.start.timestamp() * 1_000_000)
    frame = pl.DataFrame(
        {
            "timestamp": pl.Series(allrows["seconds"] * 1_000_000 + start_us).cast(
                pl.Datetime("us", "UTC")
            ),
            "customer_id": ids.customer.gather(allrows["customer"]),
            "terminal_id": ids.terminal.gather(allrows["terminal"]),
            "amount": allrows["amount"],
            "is_fraud": (allrows["scenario"] > 0).astype(np.int8),
            "fraud_scenario": allrows["scenario"],
        }
    )
    if cfg.fields == "full":
        attributes = payment_attributes(allrows, world, np.random.default_rng(attributes_seed))
        frame = frame.with_columns(**attributes)
    return Chunk(frame=frame, terminal=allrows["terminal"])


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

    ids = IdTables.of(cfg)
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = frauds = 0
    by_scenario = dict.fromkeys(SCENARIOS.values(), 0)
    by_channel: Counter[str] = Counter()
    per_terminal = np.zeros(cfg.terminals, dtype=np.int64)
    with _output(out) as write:
        for i, day0 in enumerate(bounds):
            day1 = min(cfg.days, day0 + chunk_days)
            chunk = generate_chunk(world, sched, cfg, ids, (day0, day1), chunk_seeds[i])
            per_terminal += np.bincount(chunk.terminal, minlength=cfg.terminals)
            frame = chunk.frame.with_columns(
                transaction_id=ids.transactions(rows, chunk.frame.height)
            ).select(columns)
            rows += frame.height
            frauds += int(frame["is_fraud"].sum())
            for code, count in frame["fraud_scenario"].value_counts().iter_rows():
                by_scenario[SCENARIOS[code]] += count
            if "channel" in frame.columns:
                by_channel.update(dict(frame["channel"].value_counts().iter_rows()))
            write(frame)
            if progress:
                progress(day1, cfg.days, rows)
    return GenerateResult(
        path=out,
        rows=rows,
        frauds=frauds,
        seconds=time.perf_counter() - started,
        by_scenario=by_scenario,
        largest_terminal_share=float(per_terminal.max()) / max(1, rows),
        by_channel=dict(by_channel.most_common()),
    )
