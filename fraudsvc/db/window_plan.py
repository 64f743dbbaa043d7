"""The window read's arguments for one transaction, and its rows summed back into spans.

This is the request path's pure-Python part of the window read (issue 15). The arguments are,
element for element, those of the plain definition (tests/plain_online.py, the code before
issue 15, is the oracle), built from what is decided once:

- per declaration: each span's range as two offsets from the transaction's time, its entity,
  and the entities' "groups" (an entity's span ranges and whether it is deferred: the
  customer-device, customer-IP and customer-category counts of the default declaration are one
  30-day group);
- per time class (`Class`: a minute, for live transactions) and group: the group's pieces,
  split with arithmetic and deduplicated (`_GroupLayout`), the same for every entity of the
  group whatever its key;
- per time class and set of missing keys: the arguments' layout and the plan (`_Template`).

A transaction then costs its keys, a shift of the raw pieces' moving bounds by its time, and
list concatenations. The plan says where each row lands in one flat list of cells (the buckets,
then each entity's raw pieces) and which cells each span sums, so `values` reads each row once
and builds no tuple or SpanValue per piece.

Measured with tests/bench/online_path.py (µs of CPU a transaction for params, default
declaration, this 2-core machine): 100-120 before; 15 for live transactions (300 a second: one
class a minute), 35 at the HTTP bench's pace (a transaction every 10 s: a class and two
templates every six transactions), 85 for transactions scattered over a day (no class reused).
"""

from __future__ import annotations

from bisect import bisect
from collections.abc import Callable, Sequence
from operator import attrgetter
from typing import Any, NamedTuple

from fraudsvc.db.buckets import key_text
from fraudsvc.db.literals import bool_array, int_array, text_array
from fraudsvc.features.declaration import Declaration, Span
from fraudsvc.features.spans import US_PER_SECOND, SpanValue, epoch_us, split_nested
from fraudsvc.transaction import Transaction

Key = tuple[Any, ...] | None
"""An entity's key values for a transaction; None when one is missing."""
Class = tuple[int, int]
"""A time's class: its finest bucket, and where its offset in it falls among the residues."""
KEPT = 64
"""Classes (and templates) kept per declaration: a minute of live transactions needs one class
and a template per set of missing keys."""


class Plan(NamedTuple):
    """How one transaction's rows sum back into its spans (shared by the transactions of a
    template: read-only). Cells go entity after entity, each entity's buckets then its raw
    pieces, so a span's cells are two runs of its group's own indices."""

    spans: list[tuple[int, list[int], int, list[int]] | None]
    """Per span of the declaration: the cell of its entity's bucket 0, its buckets' indices
    from there, the cell of its entity's raw piece 0, its raw pieces' indices from there; None
    when the entity's key is missing."""
    bucket_cells: list[int]
    """Per bucket row (kind 0, by its id), its cell."""
    raw_cells: list[int]
    """Per row kind, the cell of its raw piece 0 (kind 0: unused)."""
    cells: int


class _Entity(NamedTuple):
    name: str
    key: Callable[[Transaction], tuple[Any, ...]]
    fields: int
    deferred: bool
    group: int


class _Shift(NamedTuple):
    """Bounds at a layout's time t0, and which of them move with the time."""

    values: list[int]
    moves: list[bool]

    def at(self, delta: int) -> list[int]:
        if not delta:
            return self.values
        return [v + delta if m else v for v, m in zip(self.values, self.moves, strict=True)]


class _GroupLayout(NamedTuple):
    """A group's pieces at time t0, valid for every time of t0's class (see `_classify`)."""

    t0: int
    widths: list[int]
    lows: list[int]
    highs: list[int]
    """The buckets (width in seconds, [lo, hi) of their starts in µs): fixed within a class."""
    seen: list[int]
    """Per span of the group, how many distinct buckets its spans so far hold."""
    raw_ids: list[int]
    raw_lows: _Shift
    raw_highs: _Shift
    above: list[bool]
    low: tuple[int, bool] | None
    high: tuple[int, bool] | None
    """The raw pieces' lowest and highest bound (and whether it moves); None: no raw piece."""
    spans: list[tuple[list[int], list[int]]]
    """Per span of the group, its buckets and raw pieces as indices into the lists above."""
    wire_ids: str
    wire_above: str
    """raw_ids and above as the statement takes them (array literals, see `wire_params`)."""


class _Template(NamedTuple):
    """The arguments' layout for a class and set of missing keys."""

    layouts: list[_GroupLayout]
    """The present entities' groups."""
    entity_layout: list[int]
    """Per entity, its group's index in `layouts`; -1 when its key is missing."""
    buckets: tuple[list[int], list[str], list[int], list[int], list[int]]
    """Bucket ids, entity names, widths, lows, highs (arguments 2, 3, 5, 6, 7)."""
    key_runs: list[tuple[int, int]]
    """The bucket keys column (argument 4) as runs of (entity, count)."""
    plan: Plan
    wire: tuple[str, str, str, str, str]
    """`buckets` as the statement takes them (array literals)."""


def _key_getter(fields: tuple[str, ...]) -> Callable[[Transaction], tuple[Any, ...]]:
    """The key's values as a tuple (attrgetter of one field returns the bare value)."""
    if len(fields) == 1:
        one = attrgetter(fields[0])
        return lambda tx: (one(tx),)
    getter: Callable[[Transaction], tuple[Any, ...]] = attrgetter(*fields)
    return getter


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
        used = [e.name for e in decl.used_entities]
        ranges: dict[str, list[tuple[int, int]]] = {name: [] for name in used}
        # per span: its entity and its position among the entity's spans
        self.spans: list[tuple[int, int]] = []
        offsets = {0}
        for span in decl.spans:
            w, d = span.seconds * US_PER_SECOND, span.delay * US_PER_SECOND
            # [lo, hi) = [t - lo_offset, t - hi_offset) (see spans.span_range)
            lo_offset, hi_offset = (w - 1, 0) if d == 0 else (d + w - 1, d - 1)
            offsets |= {lo_offset, hi_offset}
            self.spans.append((used.index(span.entity), len(ranges[span.entity])))
            ranges[span.entity].append((lo_offset, hi_offset))
        groups: dict[tuple[tuple[tuple[int, int], ...], bool], int] = {}
        self.entities: list[_Entity] = []
        for e in decl.used_entities:
            deferred = e.name in decl.deferred
            group = groups.setdefault((tuple(ranges[e.name]), deferred), len(groups))
            getter = _key_getter(e.fields)
            self.entities.append(_Entity(e.name, getter, len(e.fields), deferred, group))
        self.groups = list(groups)
        # runs of consecutive spans of one entity: (entity, first and last position)
        self.span_runs: list[tuple[int, int, int]] = []
        for k, position in self.spans:
            if self.span_runs and self.span_runs[-1][0] == k:
                self.span_runs[-1] = (k, self.span_runs[-1][1], position)
            else:
                self.span_runs.append((k, position, position))
        self.getters = [e.key for e in self.entities]
        # where some t - offset is a boundary of the finest buckets (t itself included)
        self.residues = sorted({o % self.finest for o in offsets})
        self.residue_set = frozenset(self.residues)
        self.classes: dict[Class, list[_GroupLayout | None]] = {}
        self.templates: dict[tuple[Class, tuple[bool, ...]], _Template] = {}

    def params(self, tx: Transaction) -> tuple[list[object], Plan]:
        """The statement's arguments as Python lists (the plain definition's), and the plan
        that sums its pieces back into spans."""
        template, t_us, found = self._template_for(tx)
        return _apply(template, self.entities, tx, t_us, found, wire=False), template.plan

    def wire_params(self, tx: Transaction) -> tuple[list[object], Plan]:
        """The same arguments as the statement takes them: every array as its text literal
        (`fraudsvc.db.literals`); the template's constant arrays are written once per
        template, the rest (keys, the raw pieces' moving bounds) per transaction."""
        template, t_us, found = self._template_for(tx)
        return _apply(template, self.entities, tx, t_us, found, wire=True), template.plan

    def _template_for(self, tx: Transaction) -> tuple[_Template, int, list[Key]]:
        t_us = epoch_us(tx.timestamp)
        found: list[Key] = []
        for get in self.getters:
            key = get(tx)
            found.append(None if None in key else key)
        missing = tuple([key is None for key in found])
        q, r = divmod(t_us, self.finest)
        if r in self.residue_set:
            # some bound is a boundary: this time is its own class, kept nowhere
            layouts: list[_GroupLayout | None] = [None] * len(self.groups)
            template = self._template(layouts, t_us, missing)
        else:
            cls = (q, bisect(self.residues, r))
            found_template = self.templates.get((cls, missing))
            if found_template is None:
                kept = self.classes.get(cls)
                if kept is None:
                    if len(self.classes) >= KEPT:
                        self.classes.clear()
                    kept = self.classes[cls] = [None] * len(self.groups)
                if len(self.templates) >= KEPT:
                    self.templates.clear()
                template = self.templates[(cls, missing)] = self._template(kept, t_us, missing)
            else:
                template = found_template
        return template, t_us, found

    def _template(
        self, layouts: list[_GroupLayout | None], t_us: int, missing: tuple[bool, ...]
    ) -> _Template:
        """The arguments' layout: buckets in the order the spans first name them (each span
        adds its entity's buckets not named yet), raw pieces entity after entity."""
        present: list[_GroupLayout] = []
        at_group: dict[int, int] = {}
        entity_layout: list[int] = []
        for e, gone in zip(self.entities, missing, strict=True):
            if gone:
                entity_layout.append(-1)
                continue
            if e.group not in at_group:
                layout = layouts[e.group]
                if layout is None:
                    layout = layouts[e.group] = self._layout(e.group, t_us)
                at_group[e.group] = len(present)
                present.append(layout)
            entity_layout.append(at_group[e.group])
        # cells: entity after entity, its buckets then its raw pieces
        block = [0] * len(self.entities)
        raw_cells = [0]
        cells = 0
        for k, at in enumerate(entity_layout):
            block[k] = cells
            if at >= 0:
                cells += len(present[at].widths)
                raw_cells.append(cells)
                cells += len(present[at].raw_ids)
            else:
                raw_cells.append(cells)
        # buckets: in the order the spans first name them
        names: list[str] = []
        widths: list[int] = []
        lows: list[int] = []
        highs: list[int] = []
        runs: list[tuple[int, int]] = []
        bucket_cells: list[int] = []
        emitted = [0] * len(self.entities)
        spans: list[tuple[int, list[int], int, list[int]] | None] = []
        for k, first, last in self.span_runs:
            if missing[k]:
                spans += [None] * (last + 1 - first)
                continue
            layout = present[entity_layout[k]]
            start, end = emitted[k], layout.seen[last]
            if end > start:
                n = end - start
                bucket_cells += range(block[k] + start, block[k] + end)
                names += [self.entities[k].name] * n
                widths += layout.widths[start:end]
                lows += layout.lows[start:end]
                highs += layout.highs[start:end]
                if runs and runs[-1][0] == k:
                    n += runs.pop()[1]
                runs.append((k, n))
                emitted[k] = end
            first_bucket, first_raw = block[k], raw_cells[k + 1]
            spans += [
                (first_bucket, mine, first_raw, own) for mine, own in layout.spans[first : last + 1]
            ]
        ids = list(range(len(widths)))
        return _Template(
            present,
            entity_layout,
            (ids, names, widths, lows, highs),
            runs,
            Plan(spans, bucket_cells, raw_cells, cells),
            (
                int_array(ids),
                text_array(names),
                int_array(widths),
                int_array(lows),
                int_array(highs),
            ),
        )

    def _layout(self, g: int, t_us: int) -> _GroupLayout:
        """A group's pieces for a transaction at t_us, span after span (as `split` cuts each
        range, deduplicated as the plain definition does).

        A range [lo, hi) holds the whole finest buckets [a, b): a = lo rounded up, b = hi
        rounded down. When a < b its buckets are those of [a, b) (every coarser boundary inside
        [lo, hi) is a finest one) and its raw pieces [lo, a) and [b, hi) when not empty;
        otherwise it is one raw piece. Within t's class every a and b is the same and no
        t - offset is a boundary, so every comparison here (lo < a, b < hi, a piece against
        another) comes out the same: the pieces are those of t0 with the bounds that are not
        boundaries (the t - offset ones) shifted by t - t0."""
        ranges, deferred = self.groups[g]
        levels, widths_us, finest = self.levels, self.widths_us, self.finest
        buckets: dict[tuple[int, int, int], int] = {}
        raws: dict[tuple[int, int, bool], int] = {}
        seen: list[int] = []
        spans: list[tuple[list[int], list[int]]] = []
        for lo_offset, hi_offset in ranges:
            lo, hi = t_us - lo_offset, t_us - hi_offset
            a, b = -(-lo // finest) * finest, hi // finest * finest
            if a < b:
                pieces = split_nested(a, b, levels, widths_us)[0]
                mine = [buckets.setdefault(p, len(buckets)) for p in pieces]
                own = [raws.setdefault((lo, a, False), len(raws))] if lo < a else []
                if b < hi:
                    own.append(raws.setdefault((b, hi, False), len(raws)))
            else:
                mine = []
                own = [raws.setdefault((lo, hi, False), len(raws))] if lo < hi else []
            if deferred:
                own.append(raws.setdefault((lo, hi, True), len(raws)))
            seen.append(len(buckets))
            spans.append((mine, own))
        # the columns by one zip each: layouts 7 % cheaper than with a comprehension per column
        widths, lows, highs = map(list, zip(*buckets, strict=True)) if buckets else ([], [], [])
        raw_lows, raw_highs, above = map(list, zip(*raws, strict=True)) if raws else ([], [], [])
        low = min(raw_lows) if raw_lows else None
        high = max(raw_highs) if raw_highs else None
        raw_ids = list(range(len(raws)))
        return _GroupLayout(
            t_us,
            widths,
            lows,
            highs,
            seen,
            raw_ids,
            _Shift(raw_lows, [v % finest != 0 for v in raw_lows]),
            _Shift(raw_highs, [v % finest != 0 for v in raw_highs]),
            above,
            None if low is None else (low, low % finest != 0),
            None if high is None else (high, high % finest != 0),
            spans,
            int_array(raw_ids),
            bool_array(above),
        )

    def values(
        self, rows: Sequence[Sequence[Any]], plan: Plan
    ) -> tuple[bool, dict[Span, SpanValue | None]]:
        """Whether the id is stored, and each span's aggregates (None: the key is missing)."""
        table: list[Any] = [None] * plan.cells
        bucket_cells, raw_cells = plan.bucket_cells, plan.raw_cells
        exists = False
        for row in rows:
            kind = row[0]
            if kind == 0:
                table[bucket_cells[row[1]]] = row
            elif kind > 0:
                table[raw_cells[kind] + row[1]] = row
            else:
                exists = row[2] > 0
        out: dict[Span, SpanValue | None] = {}
        for span, cells in zip(self.decl_spans, plan.spans, strict=True):
            if cells is None:
                out[span] = None
                continue
            count = amount_minor = fraud_count = 0
            latest_us: int | None = None
            first_bucket, mine, first_raw, own = cells
            for first, indices in ((first_bucket, mine), (first_raw, own)):
                for i in indices:
                    row = table[first + i]
                    count += row[2]
                    amount_minor += row[3]
                    fraud_count += row[4]
                    latest = row[5]
                    if latest is not None and (latest_us is None or latest > latest_us):
                        latest_us = latest
            out[span] = SpanValue(count, amount_minor, fraud_count, latest_us)
        return exists, out


def _apply(
    template: _Template,
    entities: list[_Entity],
    tx: Transaction,
    t_us: int,
    found: list[Key],
    wire: bool,
) -> list[object]:
    """The arguments for a transaction at t_us, of the template's class and missing keys; with
    `wire` every array is its text literal."""
    keys: list[str] = []
    for k, n in template.key_runs:
        keys += [key_text(found[k])] * n  # type: ignore[arg-type]  # a bucket's key is found
    ids, names, widths, lows, highs = template.wire if wire else template.buckets
    args: list[object] = [
        tx.transaction_id, ids, names, text_array(keys) if wire else keys, widths, lows, highs
    ]  # fmt: skip
    shifted: list[tuple[object, object]] = []
    low: int | None = None
    high: int | None = None
    for layout in template.layouts:
        delta = t_us - layout.t0
        raw_lows, raw_highs = layout.raw_lows.at(delta), layout.raw_highs.at(delta)
        if wire:
            shifted.append((int_array(raw_lows), int_array(raw_highs)))
        else:
            shifted.append((raw_lows, raw_highs))
        if layout.low is not None:
            value = layout.low[0] + delta if layout.low[1] else layout.low[0]
            low = value if low is None or value < low else low
        if layout.high is not None:
            value = layout.high[0] + delta if layout.high[1] else layout.high[0]
            high = value if high is None or value > high else high
    for e, at, key in zip(entities, template.entity_layout, found, strict=True):
        if at < 0:
            none: list[object] = ["{}"] * 4 if wire else [[], [], [], []]
            args += none if e.deferred else none[:3]
            args += (None,) * e.fields
            continue
        layout = template.layouts[at]
        lows_at, highs_at = shifted[at]
        raw_ids = layout.wire_ids if wire else layout.raw_ids
        if e.deferred:
            args += (raw_ids, lows_at, highs_at, layout.wire_above if wire else layout.above)
        else:
            args += (raw_ids, lows_at, highs_at)
        args += key  # type: ignore[arg-type]  # present
    args += (t_us if low is None else low, t_us if high is None else high)
    return args
