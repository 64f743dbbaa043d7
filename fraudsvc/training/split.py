"""The out-of-time split: fit, validation and test periods separated by the label delay.

    | warm-up | fit ............ | gap | validation | gap | test |

Features are computed over the whole file first (history before a period counts); the periods
then only select rows. Warm-up days give the 30-day windows their history. Each gap is as long
as the label delay, as in production: the labels of the last days before a cut are not known yet.
Periods are whole UTC days; `end` is exclusive.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import polars as pl


class SplitError(ValueError):
    """The requested periods do not fit the data."""


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    def mask(self) -> pl.Expr:
        return (pl.col("timestamp") >= self.start) & (pl.col("timestamp") < self.end)

    def __str__(self) -> str:
        last = (self.end - timedelta(days=1)).date()
        return f"{self.start.date()}..{last} ({self.days} d)"


@dataclass(frozen=True)
class SplitOptions:
    warmup_days: int = 30
    valid_days: int = 14
    test_days: int = 14
    gap_days: int = 7
    train_start: date | None = None
    train_end: date | None = None
    """Last day of the training period (fit + gap + validation), inclusive."""
    test_start: date | None = None
    test_end: date | None = None
    """Last day of the test period, inclusive."""


@dataclass(frozen=True)
class SplitPlan:
    fit: Period
    valid: Period
    test: Period
    gap_days: int


def _midnight(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


def plan_split(first: datetime, last: datetime, opt: SplitOptions) -> SplitPlan:
    """Lay the periods on the data's time range [first, last]."""
    gap = timedelta(days=opt.gap_days)
    data_start = _midnight(first.astimezone(UTC).date())
    data_end = _midnight(last.astimezone(UTC).date()) + timedelta(days=1)

    test_end = _midnight(opt.test_end) + timedelta(days=1) if opt.test_end else data_end
    if opt.test_start:
        test_start = _midnight(opt.test_start)
    else:
        test_start = test_end - timedelta(days=opt.test_days)
    train_end = _midnight(opt.train_end) + timedelta(days=1) if opt.train_end else test_start - gap
    train_start = (
        _midnight(opt.train_start)
        if opt.train_start
        else data_start + timedelta(days=opt.warmup_days)
    )
    valid = Period(train_end - timedelta(days=opt.valid_days), train_end)
    fit = Period(train_start, valid.start - gap)
    test = Period(test_start, test_end)

    problems = []
    if test.days < 1:
        problems.append(f"the test period {test} is empty")
    if test.start < train_end:
        problems.append(f"the test period starts {test.start.date()}, inside the training period")
    if fit.days < 7:
        problems.append(
            f"the fit period {fit} is shorter than 7 days (training period "
            f"{train_start.date()}..{(train_end - timedelta(days=1)).date()} holds "
            f"{opt.valid_days} validation days and a {opt.gap_days}-day gap)"
        )
    if test.end > data_end or fit.start < data_start:
        problems.append(
            f"the periods reach outside the data ({data_start.date()}.."
            f"{(data_end - timedelta(days=1)).date()})"
        )
    if problems:
        raise SplitError("cannot split the data: " + "; ".join(problems))
    return SplitPlan(fit=fit, valid=valid, test=test, gap_days=opt.gap_days)
