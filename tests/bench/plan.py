"""How big each benchmark is: the full run (`make bench`) and the smoke run (`--quick`)."""

from __future__ import annotations

from dataclasses import dataclass

from fraudsvc.datagen import GeneratorConfig

# about 1.03M rows over 120 days
MILLION = GeneratorConfig(customers=4_000, terminals=8_000, days=120, seed=5)
# about 214k rows over 100 days: every training period still holds frauds
SMALL = GeneratorConfig(customers=1_000, terminals=2_000, days=100, seed=5)

SECTIONS = (
    "offline",
    "lime",
    "http",
    "mlflow-serve",
    "volume",
    "rules",
    "explain",
    "memory",
    "storage",
)
STACK_SECTIONS = frozenset(
    {"http", "mlflow-serve", "volume", "rules", "explain", "memory", "storage"}
)


@dataclass(frozen=True)
class Plan:
    quick: bool
    repeat: int
    data: GeneratorConfig
    model_rounds: int
    """Boosting rounds at most for the served model (early stopping picks fewer)."""
    lime_vectors: int
    """Flagged vectors in each of the lime section's two sets (study, confirmation)."""
    lime_allowed: int
    """Allowed vectors in each set."""
    lime_seeds: int
    lime_samples: tuple[int, ...]
    lime_kernel_widths: tuple[float, ...]
    """Kernel width factors tried (width = factor x sqrt(features); LIME's default 0.75)."""
    lime_k_seeds: int
    """Seeds per vector for the study of the stability seeds."""
    lime_max_k: int
    """Most stability seeds considered (the seeds after them are the reference)."""
    rates: tuple[float, ...]
    load_seconds: float
    """Duration of each wrk run."""
    warmup_seconds: float
    pool_rows: int
    """(customer, terminal, amount) rows and feature rows the load scripts draw from."""
    explain_requests: int
    """Explanations requested at once to measure the worker's throughput."""
    explain_load_seconds: float
    """Scoring at the explain section's steady rate, to measure request-to-ready latency."""
    explain_rate: float = 300.0
    profile_seconds: float = 10.0
    what_if_seconds: float = 6.0

    @property
    def label(self) -> str:
        return "quick (smoke run)" if self.quick else "full"


def make_plan(quick: bool, repeat: int | None) -> Plan:
    if quick:
        return Plan(
            quick=True,
            repeat=repeat or 1,
            data=SMALL,
            model_rounds=150,
            lime_vectors=6,
            lime_allowed=2,
            lime_seeds=3,
            lime_samples=(500, 1000, 2000, 5000),
            lime_kernel_widths=(0.5, 0.75, 1.5, 3.0),
            lime_k_seeds=8,
            lime_max_k=3,
            rates=(100.0, 200.0, 300.0, 400.0),
            load_seconds=3.0,
            warmup_seconds=2.0,
            pool_rows=5_000,
            explain_requests=24,
            explain_load_seconds=6.0,
            profile_seconds=3.0,
            what_if_seconds=3.0,
        )
    return Plan(
        quick=False,
        repeat=repeat or 3,
        data=MILLION,
        model_rounds=1000,
        lime_vectors=30,
        lime_allowed=6,
        lime_seeds=5,
        lime_samples=(500, 1000, 2000, 5000),
        lime_kernel_widths=(0.25, 0.5, 0.75, 1.5, 3.0),
        lime_k_seeds=12,
        lime_max_k=4,
        rates=(100.0, 200.0, 300.0, 400.0),
        load_seconds=10.0,
        warmup_seconds=5.0,
        pool_rows=20_000,
        explain_requests=200,
        explain_load_seconds=20.0,
        profile_seconds=10.0,
    )
