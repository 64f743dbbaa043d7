"""Words for a declaration: one line per feature, and the README's feature table.

`python -m fraudsvc.features.describe` prints the table of the default declaration; a test
holds the README's copy equal to it, so the documentation cannot drift from the code.
"""

from __future__ import annotations

from fraudsvc.features.declaration import (
    Amount,
    Category,
    Declaration,
    Differs,
    Feature,
    Hour,
    Night,
    Ratio,
    Weekend,
    Window,
)
from fraudsvc.features.default import DECLARATION

AGGREGATES = {
    "count": "number",
    "amount_sum": "total amount",
    "amount_mean": "mean amount",
    "seconds_since_prev": "seconds since the latest",
    "fraud_count": "number labelled fraud",
    "fraud_share": "share labelled fraud (0 when none)",
}


def duration(seconds: int) -> str:
    for unit, size in (("d", 86_400), ("h", 3_600), ("min", 60)):
        if seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def describe(decl: Declaration, f: Feature) -> str:
    if isinstance(f, Amount):
        return "the amount, in the reporting currency"
    if isinstance(f, Hour):
        return "hour of the day, UTC"
    if isinstance(f, Weekend):
        return "1 on Saturday and Sunday (UTC)"
    if isinstance(f, Night):
        return f"1 from 00:00 to {f.end_hour:02d}:00 (UTC)"
    if isinstance(f, Category):
        return f"`{f.field}` as a category code (LightGBM categorical)"
    if isinstance(f, Differs):
        return f"1 when `{f.left}` and `{f.right}` differ, 0 when equal"
    if isinstance(f, Ratio):
        return f"`{f.numerator}` / `{f.denominator}` ({f.when_zero:g} when that is 0)"
    assert isinstance(f, Window)
    fields = " and ".join(f"`{name}`" for name in decl.entity[f.entity].fields)
    what = AGGREGATES[f.aggregate]
    if f.delay:
        far, near = duration(f.delay + f.seconds), duration(f.delay)
        return f"{what} of the same {fields}'s transactions in (t - {far}, t - {near}]"
    w = duration(f.seconds)
    if f.aggregate == "seconds_since_prev":
        return f"{what} of the same {fields}'s transactions in (t - {w}, t); {w} when none"
    return f"{what} of the same {fields}'s transactions in (t - {w}, t), this one included"


def missing_note(decl: Declaration, f: Feature) -> str:
    fields: tuple[str, ...] = ()
    if isinstance(f, Category):
        fields = (f.field,)
    elif isinstance(f, Differs):
        fields = (f.left, f.right)
    elif isinstance(f, Window):
        fields = decl.entity[f.entity].fields
    optional = [f"`{n}`" for n in fields if n not in ("customer_id", "terminal_id")]
    return " or ".join(optional) + " absent" if optional else ""


def markdown_table(decl: Declaration = DECLARATION) -> str:
    lines = ["| feature | definition | missing (NaN) when |", "|---|---|---|"]
    for f in decl.features:
        lines.append(f"| `{f.name}` | {describe(decl, f)} | {missing_note(decl, f)} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown_table())
