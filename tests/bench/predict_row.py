"""One row's score and reasons: `Booster.predict` (the definition) against the fast paths.

`python -m tests.bench.predict_row MODEL_DIR [--rows N] [--repeat R]` loads a bundle written
by `fraudsvc train` (a model version's directory, e.g. the local copy in the model cache), and
times, per row over N rows of its background sample, `scoring.score` and `scoring.reasons` with
the bundle's fast paths and without them (`Booster.predict`). Prints the median and the minimum
of R repeats in µs per row, CPU time (process time: a shared machine's wall time wanders), and
checks that both give the same bits on every row.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from fraudsvc import scoring
from fraudsvc.model.bundle import ModelBundle, load_bundle


def per_row_us(
    fns: dict[str, Callable[[], object]], rows: int, repeat: int, number: int
) -> dict[str, list[float]]:
    """CPU µs per row of each function, the functions interleaved in every repeat so that a
    shared machine's drifting load falls on all of them alike."""
    times: dict[str, list[float]] = {label: [] for label in fns}
    for fn in fns.values():
        fn()  # warm
    for _ in range(repeat):
        for label, fn in fns.items():
            started = time.process_time()
            for _ in range(number):
                fn()
            times[label].append((time.process_time() - started) / number / rows * 1e6)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    fast = load_bundle(args.model_dir)
    if fast.fast is None:
        raise SystemExit("this LightGBM has no single-row fast path")
    plain = dataclasses.replace(fast, fast=None)
    rows = [[float(v) for v in row] for row in fast.background[: args.rows]]
    n = len(rows)

    def same(a: ModelBundle, b: ModelBundle) -> bool:
        return all(
            np.float64(scoring.score(a, v)).tobytes() == np.float64(scoring.score(b, v)).tobytes()
            and scoring.contributions(a, v).tobytes() == scoring.contributions(b, v).tobytes()
            for v in rows
        )

    print(f"{args.model_dir}: {fast.booster.num_trees()} trees, {len(rows[0])} features, {n} rows")
    print(f"same bits on every row: {same(fast, plain)}")
    for name, call, number in (("score", scoring.score, 20), ("reasons", scoring.reasons, 1)):
        fns: dict[str, Callable[[], object]] = {
            label: functools.partial(lambda b, c: [c(b, v) for v in rows], bundle, call)
            for label, bundle in (("Booster.predict", plain), ("fast path", fast))
        }
        for label, times in per_row_us(fns, n, args.repeat, number).items():
            print(
                f"{name:8s} {label:16s} median {statistics.median(times):8.1f} µs/row"
                f"  (min {min(times):.1f}, {args.repeat} repeats)"
            )


if __name__ == "__main__":
    main()
