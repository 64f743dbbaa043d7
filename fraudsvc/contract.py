"""The data contract shared by training files, the replay client and the HTTP API (v2).

A file is read as text first and then cast, so that a bad value is reported with its column, the
rule it breaks and the first offending rows, instead of a parser's stack trace. Checked frames come
out with fixed dtypes and every contract column (optional ones absent from the file are null):
string ids, `Datetime("us", "UTC")` timestamps, `amount` as `Float64` and `amount_minor` as exact
`Int64` minor units, the optional attributes as canonical strings (`ip` in its canonical form,
`attributes` as compact JSON with sorted keys), and an `Int8` label; sorted by timestamp (then by
transaction id, so that ties have one order). The field rules live in `fraudsvc.transaction`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
from loguru import logger

from fraudsvc.iso import COUNTRIES, CURRENCIES
from fraudsvc.transaction import (
    AMOUNT_RULE,
    AMOUNT_SCALE,
    CHANNELS,
    DEVICE_PATTERN,
    ID_PATTERN,
    ID_RULE,
    MAX_AMOUNT,
    MCC_PATTERN,
    OPTIONAL_FIELDS,
    REQUIRED_FIELDS,
    RULES,
    FieldProblem,
    canonical_ip,
    check_attributes,
)

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
TIMESTAMP_RULE = "an ISO 8601 date-time (naive values mean UTC) from 1970-01-01 to 9999-12-31"

ID_COLUMNS = ("transaction_id", "customer_id", "terminal_id")
REQUIRED_COLUMNS = REQUIRED_FIELDS
OPTIONAL_COLUMNS = OPTIONAL_FIELDS
LABEL_COLUMN = "is_fraud"
SHOWN_ROWS = 5
_SET_RULES = {
    "currency": CURRENCIES,
    "merchant_country": COUNTRIES,
    "card_country": COUNTRIES,
    "channel": frozenset(CHANNELS),
}
_PATTERN_RULES = {"merchant_category": MCC_PATTERN, "device_id": DEVICE_PATTERN}


class ContractError(ValueError):
    """A file breaks the data contract; says which column, which rule, and where."""

    def __init__(self, source: str, column: str, rule: str, count: int, rows: str) -> None:
        self.column = column
        self.rule = rule
        self.count = count
        super().__init__(
            f"{source} breaks the data contract: column '{column}' must be {rule}; "
            f"{count} row(s) break it. First offending rows (1-based data rows):\n{rows}"
        )


@dataclass(frozen=True)
class CheckedFile:
    frame: pl.DataFrame
    has_labels: bool
    ignored_columns: tuple[str, ...]


def read_table(path: Path) -> pl.DataFrame:
    """Read a CSV or Parquet file; CSV columns stay text so the contract check sees raw values."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (generate one with `fraudsvc generate`)")
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return pl.read_parquet(path)
    if suffix in (".csv", ".txt"):
        return pl.read_csv(path, infer_schema=False)
    raise ValueError(f"{path}: unsupported file type {suffix!r}; use .csv or .parquet")


def load_contract_file(
    path: Path, require_labels: bool, latest: datetime | None = None
) -> CheckedFile:
    """Read and check a data file; raises ContractError or FileNotFoundError."""
    checked = check_frame(read_table(path), str(path), require_labels=require_labels, latest=latest)
    if checked.ignored_columns:
        logger.info(
            "{}: ignoring columns outside the contract: {}",
            path,
            ", ".join(checked.ignored_columns),
        )
    return checked


def _offending(frame: pl.DataFrame, bad: pl.Expr, column: str, source: str, rule: str) -> None:
    hits = frame.filter(bad)
    if hits.height == 0:
        return
    shown = [c for c in dict.fromkeys(("transaction_id", column)) if c in frame.columns]
    lines = [
        "  row {}: {}".format(row["_row"], ", ".join(f"{c}={row[c]!r}" for c in shown))
        for row in hits.select("_row", *shown).head(SHOWN_ROWS).iter_rows(named=True)
    ]
    raise ContractError(source, column, rule, hits.height, "\n".join(lines))


def _parse_timestamps(raw: pl.Series) -> pl.Series:
    """Parse timestamps to UTC: tz-aware values are converted, naive ones are taken as UTC."""
    dtype = raw.dtype
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is None:
            return raw.dt.cast_time_unit("us").dt.replace_time_zone("UTC")
        return raw.dt.cast_time_unit("us").dt.convert_time_zone("UTC")
    if isinstance(dtype, pl.Date):
        return raw.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    text = raw.cast(pl.String).str.strip_chars().str.replace(r"Z$", "+00:00")
    text = text.str.replace(" ", "T", literal=True)
    with_offset = text.str.contains(r"[+-]\d{2}:?\d{2}$")
    aware = text.str.to_datetime(
        "%Y-%m-%dT%H:%M:%S%.f%z", time_unit="us", time_zone="UTC", strict=False
    )
    naive = (
        text.str.to_datetime("%Y-%m-%dT%H:%M:%S%.f", time_unit="us", strict=False)
        .fill_null(text.str.to_datetime("%Y-%m-%d", time_unit="us", strict=False))
        .dt.replace_time_zone("UTC")
    )
    return (
        pl.select(pl.when(with_offset).then(aware).otherwise(naive).alias(raw.name))
        .to_series()
        .rename(raw.name)
    )


def _amounts(df: pl.DataFrame, source: str) -> pl.DataFrame:
    """`amount` as Float64 and exact `amount_minor`. A decimal with at most two decimals, times
    100, lands within a few ulps of its integer; anything farther has more decimals."""
    raw = pl.col("amount")
    as_float = (
        raw.cast(pl.String).str.strip_chars().cast(pl.Float64, strict=False)
        if df["amount"].dtype == pl.String
        else raw.cast(pl.Float64, strict=False)
    )
    df = df.with_columns(as_float.alias("amount"))
    scaled = pl.col("amount") * AMOUNT_SCALE
    _offending(
        df,
        pl.col("amount").is_null()
        | ~pl.col("amount").is_finite()
        | (pl.col("amount") < 0)
        | (pl.col("amount") > MAX_AMOUNT)
        | ((scaled - scaled.round()).abs() > 1e-6),
        "amount",
        source,
        AMOUNT_RULE,
    )
    minor = scaled.round().cast(pl.Int64)
    amount = divided(minor.cast(pl.Float64), float(AMOUNT_SCALE))
    return df.with_columns(minor.alias("amount_minor"), amount.alias("amount"))


def divided(expr: pl.Expr, constant: float) -> pl.Expr:
    """expr / constant as a true IEEE division, like Python's; null stays null.

    polars turns a division by a literal into a multiplication by its reciprocal, which differs
    from the division in the last bit for about one value in seven (164 / 100 would come out as
    1.6400000000000001): amounts and features must be the same numbers in every path."""
    return expr.map_batches(
        lambda s: pl.Series(s.name, s.to_numpy() / constant, dtype=pl.Float64).fill_nan(None),
        return_dtype=pl.Float64,
    )


def _checked_values(
    df: pl.DataFrame, column: str, source: str, check: Callable[[str], str]
) -> pl.DataFrame:
    """Check (and canonicalise) the distinct values of a column with a Python function."""
    distinct = df.select(pl.col(column).drop_nulls().unique()).to_series().to_list()
    canonical: dict[str, str | None] = {}
    for value in distinct:
        try:
            canonical[value] = check(value)
        except (FieldProblem, ValueError):
            canonical[value] = None
    bad = [v for v, c in canonical.items() if c is None]
    _offending(df, pl.col(column).is_in(bad), column, source, RULES[column])
    if all(c == v for v, c in canonical.items()):
        return df
    return df.with_columns(
        pl.col(column).replace_strict(
            list(canonical), list(canonical.values()), default=None, return_dtype=pl.String
        )
    )


def _attributes_json(text: str) -> str:
    value = json.loads(text)
    return json.dumps(check_attributes(value), sort_keys=True, separators=(",", ":"))


def _optional(df: pl.DataFrame, source: str) -> pl.DataFrame:
    """Check the optional columns; absent ones become null columns."""
    for column in OPTIONAL_COLUMNS:
        if column not in df.columns:
            df = df.with_columns(pl.lit(None, dtype=pl.String).alias(column))
            continue
        if column == "merchant_category" and df[column].dtype.is_integer():
            df = df.with_columns(pl.col(column).cast(pl.String).str.zfill(4))
        else:
            df = df.with_columns(pl.col(column).cast(pl.String, strict=False))
        # an empty CSV cell is a missing value
        df = df.with_columns(
            pl.when(pl.col(column).str.strip_chars() == "").then(None).otherwise(pl.col(column))
        )
        if column in _SET_RULES:
            allowed = sorted(_SET_RULES[column])
            bad = pl.col(column).is_not_null() & ~pl.col(column).is_in(allowed)
            _offending(df, bad, column, source, RULES[column])
        elif column in _PATTERN_RULES:
            bad = pl.col(column).is_not_null() & ~pl.col(column).str.contains(
                _PATTERN_RULES[column]
            )
            _offending(df, bad, column, source, RULES[column])
        elif column == "ip":
            df = _checked_values(df, column, source, canonical_ip)
        else:  # attributes: a JSON object per row
            df = _checked_values(df, column, source, _attributes_json)
    return df


def check_frame(
    frame: pl.DataFrame, source: str, require_labels: bool, latest: datetime | None = None
) -> CheckedFile:
    """Check a frame against the contract and return it typed and time-ordered. With `latest`,
    timestamps after it are refused (rows dated in the future)."""
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if require_labels and LABEL_COLUMN not in frame.columns:
        missing.append(LABEL_COLUMN)
    if missing:
        raise ContractError(
            source,
            missing[0],
            "present (required columns: "
            + ", ".join([*REQUIRED_COLUMNS, *((LABEL_COLUMN,) if require_labels else ())])
            + ")",
            frame.height,
            "  the column is missing; columns found: " + ", ".join(frame.columns),
        )
    has_labels = LABEL_COLUMN in frame.columns
    contract = (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS, *((LABEL_COLUMN,) if has_labels else ()))
    keep = [c for c in contract if c in frame.columns]
    ignored = tuple(c for c in frame.columns if c not in keep)
    df = frame.select(keep).with_row_index("_row", offset=1)

    for column in ID_COLUMNS:
        df = df.with_columns(pl.col(column).cast(pl.String, strict=False))
        _offending(
            df,
            pl.col(column).is_null() | ~pl.col(column).str.contains(ID_PATTERN),
            column,
            source,
            ID_RULE,
        )
    _offending(
        df,
        pl.col("transaction_id").is_duplicated(),
        "transaction_id",
        source,
        "unique (duplicates found)",
    )

    df = df.with_columns(_parse_timestamps(df["timestamp"]).alias("_ts"))
    _offending(
        df,
        pl.col("_ts").is_null() | (pl.col("_ts") < EARLIEST) | (pl.col("_ts") > LATEST),
        "timestamp",
        source,
        TIMESTAMP_RULE,
    )
    if latest is not None:
        _offending(
            df,
            pl.col("_ts") > latest,
            "timestamp",
            source,
            f"not after {latest.isoformat()} (now plus the allowed clock skew)",
        )
    df = df.with_columns(pl.col("_ts").alias("timestamp")).drop("_ts")
    df = _amounts(df, source)
    df = _optional(df, source)

    if has_labels:
        label = pl.col(LABEL_COLUMN)
        if df[LABEL_COLUMN].dtype == pl.Boolean:
            df = df.with_columns(label.cast(pl.Int8))
        else:
            df = df.with_columns(
                label.cast(pl.String).str.strip_chars().cast(pl.Int64, strict=False)
            )
        _offending(
            df,
            label.is_null() | ~label.is_in([0, 1]),
            LABEL_COLUMN,
            source,
            "0 or 1",
        )
        df = df.with_columns(label.cast(pl.Int8))

    columns = [
        *REQUIRED_COLUMNS,
        "amount_minor",
        *OPTIONAL_COLUMNS,
        *((LABEL_COLUMN,) if has_labels else ()),
    ]
    df = df.select(columns).sort(["timestamp", "transaction_id"])
    return CheckedFile(frame=df, has_labels=has_labels, ignored_columns=ignored)
