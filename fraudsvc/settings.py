"""The one typed settings object, read from the environment and validated at startup.

Every entry point builds `Settings.from_env()` once and passes it down; nothing else reads
`os.environ` for configuration (OpenTelemetry's own `OTEL_*` variables are read by its SDK).
A bad value stops the program with a message that names the variable; all bad variables are
reported at once.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypeVar
from urllib.parse import urlparse

from fraudsvc.explain_options import DISCRETIZERS, TARGETS, LimeOptions

T = TypeVar("T")

ExplainPolicy = Literal["flagged", "all", "none"]
LogFormat = Literal["json", "text", "auto"]


class SettingsError(ValueError):
    """One or more environment variables hold a value the service cannot use."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid configuration:\n  " + "\n  ".join(problems))


def default_data_dir() -> Path:
    """The project's `data/` folder in a source checkout, else `./data`."""
    checkout = Path(__file__).resolve().parents[1]
    if (checkout / "pyproject.toml").is_file() and (checkout / "fraudsvc").is_dir():
        return checkout / "data"
    return Path.cwd() / "data"


def hash_api_key(key: str) -> str:
    """The form in which API keys are held and compared: hex SHA-256."""
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class PathSettings:
    data_dir: Path
    """FRAUDSVC_DATA_DIR: generated data, the local MLflow store, model cache, reports."""
    data_file: Path
    """DATA_CSV: the training file (CSV or Parquet)."""
    model_cache_dir: Path
    """FRAUDSVC_MODEL_CACHE_DIR: local copies of loaded models, served when the registry is down."""
    reports_dir: Path
    """FRAUDSVC_REPORTS_DIR: plots and summaries written by train, evaluate and bench."""


DEFAULT_POOL_MAX = 4
"""The scoring pool's default bound. One web process keeps two to four statements busy in
PostgreSQL (its own CPU a request is of the order of the database's); more connections do not
raise its throughput, they let more backends run at once than the database has cores. On the
benchmark's machine (2 cores, 1M transactions of history), 8 s runs at 400 requests/s, two or
four pool sizes interleaved: with 10 or 6 connections 4 of 10 runs had a p99 over 20 ms, with
2, 3 or 4 none of 20, at the same saturation rate. The slow requests came in bursts of 100-250
ms in which every backend waited on the WAL (`LWLock:WALWrite`, `IO:WALSync` in
pg_stat_activity) while the CPUs were busy, the event loop was on time and a plain `fdatasync`
on the same disk stayed under 8 ms: a convoy behind a preempted holder of the WAL lock. The
worker's pool has the same bound (it runs FRAUDSVC_WORKER_MAX_JOBS, 4, jobs at once)."""


@dataclass(frozen=True)
class DatabaseSettings:
    url: str
    """DATABASE_URL: PostgreSQL DSN (postgresql://user:pass@host:port/db)."""
    pool_min: int
    """FRAUDSVC_DB_POOL_MIN: connections opened at startup (in the web process, by the scoring
    path's pool)."""
    pool_max: int
    """FRAUDSVC_DB_POOL_MAX: upper bound of the pool (in the web process, of the scoring path's
    pool); see `DEFAULT_POOL_MAX`."""
    side_pool_max: int
    """FRAUDSVC_DB_SIDE_POOL_MAX: upper bound of the web process's second pool, which serves
    everything but scoring (labels, lists, rules, review pages, the drift monitor)."""
    timeout_seconds: float
    """FRAUDSVC_DB_TIMEOUT_SECONDS: connect and command timeout, and a scoring request's whole
    database budget (pool waits and both statements); past it a request gets 503."""
    replan_seconds: float = 60.0
    """FRAUDSVC_DB_REPLAN_SECONDS: the scoring pool's prepared statements are dropped this
    often, so that their generic plans are made again with the tables' current sizes
    (`engine.replan`); 0 never."""


@dataclass(frozen=True)
class RedisSettings:
    url: str
    """REDIS_URL: the arq queue (redis://host:port/db or unix:///path.sock)."""
    queue_name: str
    """FRAUDSVC_QUEUE_NAME: the arq queue (a Redis sorted set) of explanation jobs; default
    `fraudsvc:explain:<database name>`, so that installs sharing a Redis never take each
    other's jobs (a job names a transaction of one database)."""


@dataclass(frozen=True)
class MlflowSettings:
    tracking_uri: str
    """MLFLOW_TRACKING_URI: default a SQLite store under the data folder (no server needed)."""
    artifact_root: str | None
    """FRAUDSVC_MLFLOW_ARTIFACT_ROOT: artifact location of a newly created experiment; by default
    a folder beside a local store, and the server's own choice with a tracking server."""
    experiment: str
    """MLFLOW_EXPERIMENT: experiment that training runs are logged to."""
    model_name: str
    """MLFLOW_MODEL_NAME: registered model name."""
    model_alias: str
    """MLFLOW_MODEL_ALIAS: the alias the service serves (champion)."""
    auc_threshold: float
    """MLFLOW_AUC_THRESHOLD: minimum test ROC AUC for a new version to be registered."""
    poll_seconds: float
    """FRAUDSVC_MODEL_POLL_SECONDS: how often the service checks whether the alias moved."""


@dataclass(frozen=True)
class ApiSettings:
    host: str
    """FRAUDSVC_HOST: address `fraudsvc web` binds."""
    port: int
    """FRAUDSVC_PORT: port `fraudsvc web` binds."""
    api_key_hashes: tuple[str, ...] = field(repr=False)
    """FRAUDSVC_API_KEYS: comma-separated scoring keys (or `sha256:<hex>` of a key); held
    hashed. They open scoring, reading, labels and explanations."""
    admin_key_hashes: tuple[str, ...] = field(repr=False)
    """FRAUDSVC_ADMIN_KEYS: comma-separated admin keys, same format: they open rules, lists and
    their audit trail, and what a scoring key opens."""
    rules_poll_seconds: float
    """FRAUDSVC_RULES_POLL_SECONDS: at the latest this often, a web process reloads the live
    ruleset and lists (a change notifies every process at once; the poll covers a lost
    notification)."""
    rate_limit_per_second: float
    """FRAUDSVC_RATE_LIMIT_PER_SECOND: sustained requests per second per API key (0 = off)."""
    rate_limit_burst: int
    """FRAUDSVC_RATE_LIMIT_BURST: requests a key may send at once above the sustained rate."""
    max_body_bytes: int
    """FRAUDSVC_MAX_BODY_BYTES: larger request bodies get 413."""
    max_clock_skew_seconds: float
    """FRAUDSVC_MAX_CLOCK_SKEW_SECONDS: how far in the future a transaction's timestamp may be
    (the callers' clocks drift); later ones get 422, since they would sit in the buckets for
    ever."""
    decision_log: bool = True
    """FRAUDSVC_DECISION_LOG: one INFO line per scored transaction and per failed request
    (`fraudsvc.api.middleware`); false turns both off."""
    gc_freeze: bool = True
    """FRAUDSVC_GC_FREEZE: freeze the startup heap out of the garbage collector's reach once
    ready, and collect the young generation less often (fraudsvc.telemetry.runtime)."""
    fast_scoring: bool = True
    """FRAUDSVC_FAST_SCORING: serve plain scoring requests past Litestar's per-request
    machinery, with the same steps (fraudsvc.api.fast_scoring); false sends every request
    through Litestar."""


@dataclass(frozen=True)
class ExplainSettings:
    policy: ExplainPolicy
    """FRAUDSVC_EXPLAIN: which scored transactions get a LIME explanation (flagged, all, none)."""
    sample_rate: float
    """FRAUDSVC_EXPLAIN_SAMPLE_RATE: share of allowed transactions also explained (by id hash)."""
    lime: LimeOptions
    """FRAUDSVC_LIME_NUM_SAMPLES (perturbed samples per explanation), _NUM_FEATURES (features
    reported), _DISCRETIZER (none, quartile, decile, entropy), _SAMPLE_AROUND_INSTANCE (true,
    false), _KERNEL_WIDTH_FACTOR (kernel width over sqrt(features)), _TARGET (log_odds,
    probability), _STABILITY_SEEDS (extra seeds for the stability figure; 0 = off)."""
    seed: int
    """FRAUDSVC_LIME_SEED: base random seed; the same vector and seed give the same explanation."""
    processes: int
    """FRAUDSVC_EXPLAIN_PROCESSES: size of the worker's LIME process pool."""
    max_tries: int
    """FRAUDSVC_EXPLAIN_MAX_TRIES: attempts before an explanation ends as failed."""
    sweep_after_seconds: float
    """FRAUDSVC_SWEEP_AFTER_SECONDS: pending explanations older than this are enqueued again."""
    job_timeout_seconds: float
    """FRAUDSVC_JOB_TIMEOUT_SECONDS: arq job timeout for one explanation."""


@dataclass(frozen=True)
class WorkerSettings:
    metrics_host: str
    """FRAUDSVC_WORKER_METRICS_HOST: address of the worker's /metrics and /healthz server."""
    metrics_port: int
    """FRAUDSVC_WORKER_METRICS_PORT: port of the worker's /metrics and /healthz (0 = off)."""
    max_jobs: int
    """FRAUDSVC_WORKER_MAX_JOBS: jobs a worker runs concurrently."""
    fold_seconds: float
    """FRAUDSVC_BUCKET_FOLD_SECONDS: how often the worker folds new rows into the deferred
    feature buckets (the terminal's)."""
    retention_days: int
    """FRAUDSVC_RETENTION_DAYS: history kept, in days of transaction time; the worker drops the
    monthly partitions older than that once a day (0 = keep everything, the default)."""
    partitions_ahead: int
    """FRAUDSVC_PARTITIONS_AHEAD: months after the current one whose partitions the worker
    creates ahead of time, daily."""
    nice: int
    """FRAUDSVC_WORKER_NICE: CPU niceness `fraudsvc worker` adds to itself at startup (its LIME
    processes inherit it), so that on a host it shares with `fraudsvc web` explanations yield
    the CPU to scoring; 0 = none. No effect across containers or pods (each has its own CPU
    share), nor in `fraudsvc web --with-worker` (one process)."""


@dataclass(frozen=True)
class ReviewSettings:
    blocked_cases: bool
    """FRAUDSVC_REVIEW_BLOCKED: block decisions open a review case too (review ones always do)."""
    session_minutes: int = 480
    """FRAUDSVC_REVIEW_SESSION_MINUTES: an analyst's session ends this long after sign-in."""
    claim_minutes: int = 30
    """FRAUDSVC_REVIEW_CLAIM_MINUTES: a claimed case returns to the queue after this long."""
    signin_attempts: int = 5
    """FRAUDSVC_REVIEW_SIGNIN_ATTEMPTS: failed sign-ins (per name, and per client address) before
    further attempts get 429 until the window ends."""
    signin_window_minutes: int = 15
    """FRAUDSVC_REVIEW_SIGNIN_WINDOW_MINUTES: the window in which failed sign-ins are counted."""
    secure_cookie: bool = False
    """FRAUDSVC_REVIEW_SECURE_COOKIE: always mark the session cookie Secure (behind a TLS proxy);
    it is Secure anyway when the request came over https."""


@dataclass(frozen=True)
class TelemetrySettings:
    log_level: str
    """LOG_LEVEL: DEBUG, INFO, WARNING, ERROR."""
    log_format: LogFormat
    """FRAUDSVC_LOG_FORMAT: json, text, or auto (json for web and worker, text otherwise)."""
    monitor_window: int
    """FRAUDSVC_MONITOR_WINDOW: recent predictions compared with the training reference (PSI)."""
    monitor_interval_seconds: float
    """FRAUDSVC_MONITOR_INTERVAL_SECONDS: how often the drift gauges are recomputed."""


@dataclass(frozen=True)
class Settings:
    paths: PathSettings
    database: DatabaseSettings
    redis: RedisSettings
    mlflow: MlflowSettings
    api: ApiSettings
    explain: ExplainSettings
    worker: WorkerSettings
    telemetry: TelemetrySettings
    review: ReviewSettings

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        return _read(os.environ if env is None else env)


class _Reader:
    """Reads typed values from an environment mapping and collects every problem."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env
        self.problems: list[str] = []
        self.names: set[str] = set()

    def raw(self, name: str) -> str | None:
        self.names.add(name)
        value = self.env.get(name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def get(self, name: str, default: T, parse: Callable[[str], T], rule: str) -> T:
        value = self.raw(name)
        if value is None:
            return default
        try:
            return parse(value)
        except (ValueError, TypeError) as exc:
            detail = f" ({exc})" if str(exc) else ""
            self.problems.append(f"{name}={value!r}: {rule}{detail}")
            return default

    def string(self, name: str, default: str) -> str:
        return self.get(name, default, str, "must be a string")

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        def parse(value: str) -> int:
            number = int(value)
            if not low <= number <= high:
                raise ValueError
            return number

        return self.get(name, default, parse, f"must be an integer from {low} to {high}")

    def number(self, name: str, default: float, low: float, high: float) -> float:
        def parse(value: str) -> float:
            number = float(value)
            if not (math.isfinite(number) and low <= number <= high):
                raise ValueError
            return number

        return self.get(name, default, parse, f"must be a number from {low:g} to {high:g}")

    def choice(self, name: str, default: str, options: tuple[str, ...]) -> str:
        def parse(value: str) -> str:
            if value.lower() not in options:
                raise ValueError
            return value.lower()

        return self.get(name, default, parse, "must be one of " + ", ".join(options))

    def boolean(self, name: str, default: bool) -> bool:
        def parse(value: str) -> bool:
            lowered = value.lower()
            if lowered not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError
            return lowered in ("true", "1", "yes")

        return self.get(name, default, parse, "must be true or false")

    def url(self, name: str, default: str, schemes: tuple[str, ...]) -> str:
        def parse(value: str) -> str:
            parsed = urlparse(value)
            if parsed.scheme not in schemes:
                raise ValueError
            return value

        return self.get(name, default, parse, "must be a URL with scheme " + " or ".join(schemes))

    def path(self, name: str, default: Path) -> Path:
        return self.get(name, default, lambda v: Path(v).expanduser().resolve(), "must be a path")


# Variables read outside Settings: by libraries (OpenTelemetry's SDK, MLflow's client, Piccolo's
# config module name), by Piccolo's app config when it is imported (the migrations folder, before
# any settings exist), and by the replay client (the key it sends, not one the service holds).
LIBRARY_PREFIXES = ("OTEL_", "MLFLOW_")
LIBRARY_VARIABLES = frozenset({"PICCOLO_CONF", "FRAUDSVC_MIGRATIONS_DIR", "FRAUDSVC_API_KEY"})


def known_variables() -> frozenset[str]:
    """Every environment variable the Settings object reads."""
    reader = _Reader({})
    _read_with(reader)
    return frozenset(reader.names)


def is_known_variable(name: str) -> bool:
    """Read by Settings, or by a library under its documented prefix."""
    return (
        name in known_variables() or name in LIBRARY_VARIABLES or name.startswith(LIBRARY_PREFIXES)
    )


def _parse_api_keys(value: str) -> tuple[str, ...]:
    hashes = []
    for item in value.split(","):
        key = item.strip()
        if not key:
            continue
        if key.startswith("sha256:"):
            digest = key.removeprefix("sha256:").lower()
            if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                raise ValueError("a sha256: entry needs 64 hex digits")
            hashes.append(digest)
        else:
            if len(key) < 8:
                raise ValueError("each key needs at least 8 characters")
            hashes.append(hash_api_key(key))
    return tuple(hashes)


def _lime_options(r: _Reader) -> LimeOptions:
    d = LimeOptions()
    return LimeOptions(
        num_samples=r.integer("FRAUDSVC_LIME_NUM_SAMPLES", d.num_samples, 100, 100_000),
        # LIME's forward selection below 7 features costs twice as much
        num_features=r.integer("FRAUDSVC_LIME_NUM_FEATURES", d.num_features, 7, 100),
        discretizer=r.choice("FRAUDSVC_LIME_DISCRETIZER", d.discretizer, DISCRETIZERS),  # type: ignore[arg-type]
        sample_around_instance=r.boolean(
            "FRAUDSVC_LIME_SAMPLE_AROUND_INSTANCE", d.sample_around_instance
        ),
        kernel_width_factor=r.number(
            "FRAUDSVC_LIME_KERNEL_WIDTH_FACTOR", d.kernel_width_factor, 0.05, 100.0
        ),
        target=r.choice("FRAUDSVC_LIME_TARGET", d.target, TARGETS),  # type: ignore[arg-type]
        stability_seeds=r.integer("FRAUDSVC_LIME_STABILITY_SEEDS", d.stability_seeds, 0, 10),
    )


def _read(env: Mapping[str, str]) -> Settings:
    return _read_with(_Reader(env))


def _read_with(r: _Reader) -> Settings:
    data_dir = r.path("FRAUDSVC_DATA_DIR", default_data_dir())
    mlflow_dir = data_dir / "mlflow"
    cpu = os.cpu_count() or 1

    paths = PathSettings(
        data_dir=data_dir,
        data_file=r.path("DATA_CSV", data_dir / "transactions.parquet"),
        model_cache_dir=r.path("FRAUDSVC_MODEL_CACHE_DIR", data_dir / "model-cache"),
        reports_dir=r.path("FRAUDSVC_REPORTS_DIR", data_dir / "reports"),
    )
    database = DatabaseSettings(
        url=r.url(
            "DATABASE_URL",
            "postgresql://postgres@127.0.0.1:5432/fraudsvc",
            ("postgresql", "postgres"),
        ),
        pool_min=r.integer("FRAUDSVC_DB_POOL_MIN", 2, 1, 100),
        pool_max=r.integer("FRAUDSVC_DB_POOL_MAX", DEFAULT_POOL_MAX, 1, 500),
        side_pool_max=r.integer("FRAUDSVC_DB_SIDE_POOL_MAX", 4, 1, 500),
        timeout_seconds=r.number("FRAUDSVC_DB_TIMEOUT_SECONDS", 5.0, 0.1, 300.0),
        replan_seconds=r.number("FRAUDSVC_DB_REPLAN_SECONDS", 60.0, 0.0, 86400.0),
    )
    if database.pool_min > database.pool_max:
        r.problems.append("FRAUDSVC_DB_POOL_MIN: must not exceed FRAUDSVC_DB_POOL_MAX")
    database_name = urlparse(database.url).path.lstrip("/") or "postgres"
    redis = RedisSettings(
        url=r.url("REDIS_URL", "redis://127.0.0.1:6379/0", ("redis", "rediss", "unix")),
        queue_name=r.string("FRAUDSVC_QUEUE_NAME", f"fraudsvc:explain:{database_name}"),
    )
    tracking_uri = r.string("MLFLOW_TRACKING_URI", f"sqlite:///{mlflow_dir / 'mlflow.db'}")
    local_store = urlparse(tracking_uri).scheme in ("sqlite", "file", "")
    mlflow = MlflowSettings(
        tracking_uri=tracking_uri,
        artifact_root=r.raw("FRAUDSVC_MLFLOW_ARTIFACT_ROOT")
        or ((mlflow_dir / "artifacts").as_uri() if local_store else None),
        experiment=r.string("MLFLOW_EXPERIMENT", "fraud-detection"),
        model_name=r.string("MLFLOW_MODEL_NAME", "fraud-detection-model"),
        model_alias=r.string("MLFLOW_MODEL_ALIAS", "champion"),
        auc_threshold=r.number("MLFLOW_AUC_THRESHOLD", 0.8, 0.0, 1.0),
        poll_seconds=r.number("FRAUDSVC_MODEL_POLL_SECONDS", 30.0, 0.1, 86400.0),
    )
    api = ApiSettings(
        host=r.string("FRAUDSVC_HOST", "127.0.0.1"),
        port=r.integer("FRAUDSVC_PORT", 8000, 1, 65535),
        api_key_hashes=r.get(
            "FRAUDSVC_API_KEYS", (), _parse_api_keys, "must be comma-separated API keys"
        ),
        admin_key_hashes=r.get(
            "FRAUDSVC_ADMIN_KEYS", (), _parse_api_keys, "must be comma-separated API keys"
        ),
        rules_poll_seconds=r.number("FRAUDSVC_RULES_POLL_SECONDS", 30.0, 0.5, 3600.0),
        rate_limit_per_second=r.number("FRAUDSVC_RATE_LIMIT_PER_SECOND", 2000.0, 0.0, 1e6),
        rate_limit_burst=r.integer("FRAUDSVC_RATE_LIMIT_BURST", 4000, 1, 10_000_000),
        max_body_bytes=r.integer("FRAUDSVC_MAX_BODY_BYTES", 16_384, 256, 10_000_000),
        max_clock_skew_seconds=r.number("FRAUDSVC_MAX_CLOCK_SKEW_SECONDS", 300.0, 0.0, 86_400.0),
        decision_log=r.boolean("FRAUDSVC_DECISION_LOG", True),
        gc_freeze=r.boolean("FRAUDSVC_GC_FREEZE", True),
        fast_scoring=r.boolean("FRAUDSVC_FAST_SCORING", True),
    )
    explain = ExplainSettings(
        policy=r.choice("FRAUDSVC_EXPLAIN", "flagged", ("flagged", "all", "none")),  # type: ignore[arg-type]
        sample_rate=r.number("FRAUDSVC_EXPLAIN_SAMPLE_RATE", 0.0, 0.0, 1.0),
        lime=_lime_options(r),
        seed=r.integer("FRAUDSVC_LIME_SEED", 42, 0, 2**31 - 1),
        processes=r.integer("FRAUDSVC_EXPLAIN_PROCESSES", max(1, cpu - 1), 1, 256),
        max_tries=r.integer("FRAUDSVC_EXPLAIN_MAX_TRIES", 5, 1, 100),
        sweep_after_seconds=r.number("FRAUDSVC_SWEEP_AFTER_SECONDS", 60.0, 1.0, 86400.0),
        job_timeout_seconds=r.number("FRAUDSVC_JOB_TIMEOUT_SECONDS", 60.0, 1.0, 3600.0),
    )
    worker = WorkerSettings(
        metrics_host=r.string("FRAUDSVC_WORKER_METRICS_HOST", "127.0.0.1"),
        metrics_port=r.integer("FRAUDSVC_WORKER_METRICS_PORT", 9101, 0, 65535),
        max_jobs=r.integer("FRAUDSVC_WORKER_MAX_JOBS", 4, 1, 1000),
        fold_seconds=r.number("FRAUDSVC_BUCKET_FOLD_SECONDS", 5.0, 0.1, 3600.0),
        retention_days=r.integer("FRAUDSVC_RETENTION_DAYS", 0, 0, 36_500),
        partitions_ahead=r.integer("FRAUDSVC_PARTITIONS_AHEAD", 1, 1, 120),
        nice=r.integer("FRAUDSVC_WORKER_NICE", 10, 0, 19),
    )
    telemetry = TelemetrySettings(
        log_level=r.choice(
            "LOG_LEVEL", "info", ("trace", "debug", "info", "warning", "error", "critical")
        ).upper(),
        log_format=r.choice("FRAUDSVC_LOG_FORMAT", "auto", ("json", "text", "auto")),  # type: ignore[arg-type]
        monitor_window=r.integer("FRAUDSVC_MONITOR_WINDOW", 5000, 100, 1_000_000),
        monitor_interval_seconds=r.number("FRAUDSVC_MONITOR_INTERVAL_SECONDS", 30.0, 1.0, 86400.0),
    )
    review = ReviewSettings(
        blocked_cases=r.boolean("FRAUDSVC_REVIEW_BLOCKED", False),
        session_minutes=r.integer("FRAUDSVC_REVIEW_SESSION_MINUTES", 480, 1, 7 * 24 * 60),
        claim_minutes=r.integer("FRAUDSVC_REVIEW_CLAIM_MINUTES", 30, 1, 24 * 60),
        signin_attempts=r.integer("FRAUDSVC_REVIEW_SIGNIN_ATTEMPTS", 5, 1, 1000),
        signin_window_minutes=r.integer("FRAUDSVC_REVIEW_SIGNIN_WINDOW_MINUTES", 15, 1, 24 * 60),
        secure_cookie=r.boolean("FRAUDSVC_REVIEW_SECURE_COOKIE", False),
    )
    if r.problems:
        raise SettingsError(r.problems)
    return Settings(
        paths=paths,
        database=database,
        redis=redis,
        mlflow=mlflow,
        api=api,
        explain=explain,
        worker=worker,
        telemetry=telemetry,
        review=review,
    )
