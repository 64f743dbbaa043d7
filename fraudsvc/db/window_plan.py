"""The window read's arguments for one transaction, and its rows summed back into spans.

This is the request path's pure-Python part of the window read (issue 15). Two ways to the same
arguments, element for element those of the plain definition (tests/plain_online.py, the code
before issue 15, is the oracle):

- `_build`, the plain definition with the per-declaration work done once (each span's range as
  two offsets from the transaction's time, its entity and kind) and `split_nested` (arithmetic)
  in place of the recursive `split`;
- a `_Template` of a previous build, when the transaction's time is in the same class: every
  piece bound is either the transaction's time minus a constant offset, or a boundary of the
  finest buckets (see `_Template`). Within a minute (live transactions) the arguments only
  shift by the time difference, and the plan that sums the rows back is the same object.

The plan says where each row lands in one flat list of cells (the buckets, then each entity's
raw pieces) and which cells each span sums, so `values` reads each row once and builds no tuple
or SpanValue per piece.
"""

from __future__ import annotations

from bisect import bisect
from collections.abc import Callable, Sequence
from operator import attrgetter
from typing import Any, NamedTuple

from fraudsvc.db.buckets import key_text
from fraudsvc.features.declaration import Declaration, Span
from fraudsvc.features.spans import (
    US_PER_SECOND,
    Buckets,
    Raws,
    SpanValue,
    epoch_us,
    split_nested,
)
from fraudsvc.transaction import Transaction

Key = tuple[Any, ...] | None
"""An entity's key values for a transaction; None when one is missing."""
TEMPLATES = 64
"""Templates kept per declaration: a minute's worth of time classes and missing-key masks."""


class Plan(NamedTuple):
    """How one transaction's rows sum back into its spans."""

    spans: list[list[int] | None]
    """Per span of the declaration, the cells it sums; None when the entity's key is missing."""
    raw_cells: list[int]
    """Per row kind, the cell of its piece 0 (kind 0, the buckets: cell 0)."""
    cells: int


class _Span(NamedTuple):
    entity: int
    lo_offset: int
    hi_offset: int
    """The span's [lo, hi) is [t - lo_offset, t - hi_offset) (see spans.span_range)."""


class _Entity(NamedTuple):
    name: str
    key: Callable[[Transaction], tuple[Any, ...]]
    fields: int
    deferred: bool


def _key_getter(fields: tuple[str, ...]) -> Callable[[Transaction], tuple[Any, ...]]:
    """The key's values as a tuple (attrgetter of one field returns the bare value)."""
    if len(fields) == 1:
        one = attrgetter(fields[0])
        return lambda tx: (one(tx),)
    getter: Callable[[Transaction], tuple[Any, ...]] = attrgetter(*fields)
    return getter


class _Shift(NamedTuple):
    """A list of bounds at the template's time, and which of them move with the time."""

    values: list[int]
    moves: list[bool]

    def at(self, delta: int) -> list[int]:
        return [v + delta if m else v for v, m in zip(self.values, self.moves, strict=True)]


class _Template(NamedTuple):
    """The arguments of a build at time t0, as a recipe for any time of the same class.

    Bounds are microseconds. A span's bounds are lo = t - lo_offset and hi = t - hi_offset; its
    pieces' bounds are those two and the finest-bucket boundaries a = lo rounded up, b = hi
    rounded down (the buckets' coarser bounds are finest boundaries too). Take t's class as
    its finest bucket q and where its offset r in that bucket falls among the offsets' own
    residues (the points where some t - offset is a boundary). Within a class every rounded
    bound is the same, no t - offset is a boundary, so every comparison the build makes (lo
    against a, b against hi, a piece against another when deduplicating) comes out the same,
    and the arguments are the template's with the moving bounds shifted by t - t0. A bound of
    t0 moves exactly when it is not a boundary (t0 is in no class of a boundary)."""

    t0: int
    buckets: list[object]
    """Arguments 2-7 but the keys: bucket ids, entity names, (keys), widths, lows, highs."""
    key_runs: list[tuple[int, int]]
    """The bucket keys column as runs of (entity, count)."""
    shifts: list[_Shift]
    """The raw pieces' lows and highs, each distinct list once (entities of the same spans
    share them)."""
    raws: list[tuple[list[int], int, int, list[bool] | None]]
    """Per entity: its raw ids, its lows and highs (indices in `shifts`), its above flags
    (None: not deferred)."""
    low: tuple[int, bool]
    high: tuple[int, bool]
    """The statement's overall range at t0, and whether it moves."""
    plan: Plan


Class = tuple[int, int, tuple[bool, ...]]
"""A time's class (finest bucket, where its offset falls among the residues) and which entity
keys are missing: transactions of one class share a template."""


class _Build(NamedTuple):
    """What a template needs of a build besides its arguments and plan."""

    fixed: list[object]
    """Bucket ids, entity names, widths, lows, highs."""
    buckets: list[tuple[int, int, int, int]]
    """(entity, width, lo, hi) of each bucket."""
    columns: list[tuple[list[int], list[int], list[int], list[bool] | None]]
    """Per entity: its raw pieces' ids, lows, highs and above flags (None: not deferred)."""


class WindowPlan:
    """The per-declaration part of the window read's arguments (see the module docstring)."""

    def __init__(self, decl: Declaration) -> None:
        levels = decl.levels
        if any(levels[i - 1] % levels[i] for i in range(1, len(levels))):
            # split_nested relies on it; Declaration.problems refuses such a declaration anyway
            raise ValueError(f"levels {list(levels)} do not nest")
        self.decl_spans = decl.spans
        self.levels = levels
        self.widths_us = tuple(w * US_PER_SECOND for w in levels)
        self.finest = self.widths_us[-1]
        used = decl.used_entities
        index = {e.name: k for k, e in enumerate(used)}
        self.entities = [
            _Entity(e.name, _key_getter(e.fields), len(e.fields), e.name in decl.deferred)
            for e in used
        ]
        self.getters = [e.key for e in self.entities]
        self.names = [e.name for e in self.entities]
        self.deferred = [e.deferred for e in self.entities]
        self.spans: list[_Span] = []
        for span in decl.spans:
            w, d = span.seconds * US_PER_SECOND, span.delay * US_PER_SECOND
            lo, hi = (w - 1, 0) if d == 0 else (d + w - 1, d - 1)
            self.spans.append(_Span(index[span.entity], lo, hi))
        # where some t - offset is a boundary of the finest buckets (t itself included)
        offsets = {0, *(s.lo_offset for s in self.spans), *(s.hi_offset for s in self.spans)}
        self.residues = sorted({o % self.finest for o in offsets})
        self.residue_set = frozenset(self.residues)
        self.templates: dict[Class, _Template] = {}
        self.seen: set[Class] = set()

    def params(self, tx: Transaction) -> tuple[list[object], Plan]:
        """The statement's arguments, and the plan that sums its pieces back into spans."""
        t_us = epoch_us(tx.timestamp)
        found: list[Key] = []
        for get in self.getters:
            key = get(tx)
            found.append(None if None in key else key)
        q, r = divmod(t_us, self.finest)
        if r in self.residue_set:  # some bound is a boundary: compare afresh
            return self._build(tx, t_us, found)[:2]
        cls = (q, bisect(self.residues, r), tuple([key is None for key in found]))
        template = self.templates.get(cls)
        if template is not None:
            return _apply(template, self.entities, tx, t_us, found), template.plan
        args, plan, build = self._build(tx, t_us, found)
        # a class seen once is not worth a template (a replay of old transactions)
        if cls in self.seen:
            if len(self.templates) >= TEMPLATES:
                self.templates.clear()
            self.templates[cls] = _template(build, args, plan, t_us, self.finest)
        else:
            if len(self.seen) >= TEMPLATES:
                self.seen.clear()
            self.seen.add(cls)
        return args, plan

    def _build(
        self, tx: Transaction, t_us: int, found: list[Key]
    ) -> tuple[list[object], Plan, _Build]:
        """The plain definition's arguments (span by span, pieces deduplicated per entity)
        and the plan, and what a template of them needs."""
        levels, widths_us = self.levels, self.widths_us
        buckets: dict[tuple[int, int, int, int], int] = {}
        raws: list[dict[tuple[int, int, bool], int]] = [{} for _ in self.entities]
        cut: dict[tuple[int, int], tuple[Buckets, Raws]] = {}
        pieces: list[tuple[int, list[int], list[int]] | None] = []
        for k, lo_offset, hi_offset in self.spans:
            if found[k] is None:
                pieces.append(None)
                continue
            lo, hi = t_us - lo_offset, t_us - hi_offset
            split = cut.get((lo, hi))
            if split is None:
                split = cut[(lo, hi)] = split_nested(lo, hi, levels, widths_us)
            own = raws[k]
            mine = [buckets.setdefault((k, *p), len(buckets)) for p in split[0]]
            theirs = [own.setdefault(p, len(own)) for p in split[1]]
            if self.deferred[k]:
                theirs.append(own.setdefault((lo, hi, True), len(own)))
            pieces.append((k, mine, theirs))
        texts = [None if key is None else key_text(key) for key in found]
        fixed: list[object] = [
            list(range(len(buckets))),
            [self.names[p[0]] for p in buckets],
            [p[1] for p in buckets],
            [p[2] for p in buckets],
            [p[3] for p in buckets],
        ]
        args: list[object] = [tx.transaction_id, fixed[0], fixed[1]]
        args += ([texts[p[0]] for p in buckets], *fixed[2:])
        columns: list[tuple[list[int], list[int], list[int], list[bool] | None]] = []
        raw_cells = [0]
        cells = len(buckets)
        for k, own in enumerate(raws):
            ids, lows, highs = list(own.values()), [p[0] for p in own], [p[1] for p in own]
            flags = [p[2] for p in own] if self.deferred[k] else None
            args += (ids, lows, highs) if flags is None else (ids, lows, highs, flags)
            key = found[k]
            args += key if key is not None else (None,) * self.entities[k].fields
            columns.append((ids, lows, highs, flags))
            raw_cells.append(cells)
            cells += len(own)
        low = min((p[0] for own in raws for p in own), default=t_us)
        high = max((p[1] for own in raws for p in own), default=t_us)
        args += (low, high)
        plan = Plan(
            [
                None if span is None else span[1] + [raw_cells[span[0] + 1] + i for i in span[2]]
                for span in pieces
            ],
            raw_cells,
            cells,
        )
        return args, plan, _Build(fixed, list(buckets), columns)

    def values(
        self, rows: Sequence[Sequence[Any]], plan: Plan
    ) -> tuple[bool, dict[Span, SpanValue | None]]:
        """Whether the id is stored, and each span's aggregates (None: the key is missing)."""
        table: list[Any] = [None] * plan.cells
        raw_cells = plan.raw_cells
        exists = False
        for row in rows:
            kind = row[0]
            if kind < 0:
                exists = row[2] > 0
            else:
                table[raw_cells[kind] + row[1]] = row
        out: dict[Span, SpanValue | None] = {}
        for span, cells in zip(self.decl_spans, plan.spans, strict=True):
            if cells is None:
                out[span] = None
                continue
            count = amount_minor = fraud_count = 0
            latest_us: int | None = None
            for cell in cells:
                row = table[cell]
                count += row[2]
                amount_minor += row[3]
                fraud_count += row[4]
                latest = row[5]
                if latest is not None and (latest_us is None or latest > latest_us):
                    latest_us = latest
            out[span] = SpanValue(count, amount_minor, fraud_count, latest_us)
        return exists, out


def _template(build: _Build, args: list[object], plan: Plan, t_us: int, finest: int) -> _Template:
    """A build as a template of its time's class (see `_Template`)."""
    runs: list[tuple[int, int]] = []
    for k, *_ in build.buckets:
        if runs and runs[-1][0] == k:
            runs[-1] = (k, runs[-1][1] + 1)
        else:
            runs.append((k, 1))
    shifts: dict[tuple[int, ...], int] = {}
    raws: list[tuple[list[int], int, int, list[bool] | None]] = []
    for ids, lows, highs, flags in build.columns:
        at_lows = shifts.setdefault(tuple(lows), len(shifts))
        at_highs = shifts.setdefault(tuple(highs), len(shifts))
        raws.append((ids, at_lows, at_highs, flags))
    low, high = args[-2], args[-1]
    assert isinstance(low, int) and isinstance(high, int)
    return _Template(
        t_us,
        build.fixed,
        runs,
        [_moving(list(bounds), finest) for bounds in shifts],
        raws,
        (low, low % finest != 0),
        (high, high % finest != 0),
        plan,
    )


def _moving(values: list[int], finest: int) -> _Shift:
    """Bounds of a time in a template's class: those that are not boundaries move with it."""
    return _Shift(values, [v % finest != 0 for v in values])


def _apply(
    template: _Template, entities: list[_Entity], tx: Transaction, t_us: int, found: list[Key]
) -> list[object]:
    """The arguments for a time of the template's class (see `_Template`)."""
    delta = t_us - template.t0
    ids, names, widths, lows, highs = template.buckets
    keys: list[str] = []
    for k, n in template.key_runs:
        keys += [key_text(found[k])] * n  # type: ignore[arg-type]  # a bucket's key is found
    args: list[object] = [tx.transaction_id, ids, names, keys, widths, lows, highs]
    shifted = [shift.at(delta) for shift in template.shifts]
    for (raw_ids, at_lows, at_highs, above), e, key in zip(
        template.raws, entities, found, strict=True
    ):
        if above is None:
            args += (raw_ids, shifted[at_lows], shifted[at_highs])
        else:
            args += (raw_ids, shifted[at_lows], shifted[at_highs], above)
        args += key if key is not None else (None,) * e.fields
    low, low_moves = template.low
    high, high_moves = template.high
    args += (low + delta if low_moves else low, high + delta if high_moves else high)
    return args
