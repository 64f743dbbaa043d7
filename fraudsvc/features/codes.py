"""Integer codes of categorical fields, fixed by rule so that no vocabulary has to travel with a
model: a channel is its position in the contract's list, a merchant category code its number, a
country or currency its letters read as a base-26 number (AA = 0). Missing is NaN, which
LightGBM reads as missing."""

from __future__ import annotations

import math

import polars as pl

from fraudsvc.iso import COUNTRIES, CURRENCIES
from fraudsvc.transaction import CHANNELS

NAN = math.nan
_VOCABULARY = {
    "channel": CHANNELS,
    "merchant_country": tuple(sorted(COUNTRIES)),
    "card_country": tuple(sorted(COUNTRIES)),
    "currency": tuple(sorted(CURRENCIES)),
}


def category_code(field: str, value: str | None) -> float:
    if value is None:
        return NAN
    if field == "channel":
        return float(CHANNELS.index(value))
    if field == "merchant_category":
        return float(int(value))
    code = 0
    for char in value:  # countries (2 letters), currencies (3 letters)
        code = code * 26 + (ord(char) - ord("A"))
    return float(code)


def category_code_expr(field: str) -> pl.Expr:
    """The same codes for a whole (checked) column; null stays null."""
    if field == "merchant_category":
        return pl.col(field).cast(pl.Int64).cast(pl.Float64)
    values = _VOCABULARY[field]
    return pl.col(field).replace_strict(
        list(values),
        [category_code(field, v) for v in values],
        default=None,
        return_dtype=pl.Float64,
    )
