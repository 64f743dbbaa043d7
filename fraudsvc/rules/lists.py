"""Named, typed lists in memory, answering `value in @name` in constant time.

- A `NamedList` is built once from its entries and never changes. Plain kinds are a dict from the
  canonical value (see `fraudsvc.rules.values`) to its entry. `ip` lists hold addresses and CIDR
  networks, IPv4 and IPv6, in one dict per prefix length present: an address is looked up by
  masking it to each of those lengths (at most 33 or 129 probes, usually a handful), never by
  scanning the networks. The most specific live entry answers.
- A `ListSnapshot` is every list at one moment, immutable. `LiveLists` holds the current one;
  a reload builds a whole new snapshot and swaps it in with one assignment, so a reader never
  sees a half-built list, and a transaction evaluates all its rules against one snapshot.
- Expiry: an entry matches while `at < expires_at`. `at` is chosen by whoever evaluates, once per
  transaction (`snapshot.at(when)`): the scoring path passes the service's clock, because an
  analyst's "until Friday" is wall-clock time and a request's timestamp is the caller's claim,
  which must not be able to switch an entry off; a backtest passes each transaction's own time.
- Rows that fail validation while a snapshot is built from the database are left out and listed
  in `snapshot.rejected`, so that one bad row cannot take every list down; the API refuses such
  values on the way in with `normalise`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType

from fraudsvc.rules.schema import LIST_KINDS, NAME_PATTERN, ListKind
from fraudsvc.rules.values import (
    ListValueError,
    ip_entry,
    normalise,
    parse_ip,
)

__all__ = [
    "ListEntry",
    "ListSnapshot",
    "ListValueError",
    "ListView",
    "LiveLists",
    "NamedList",
    "build_lists",
    "normalise",
]


@dataclass(frozen=True, slots=True)
class ListEntry:
    """One value of a list and why it is there; `expires_at` (timezone-aware) ends it."""

    value: str
    reason: str = ""
    source: str = ""
    added_by: str = ""
    expires_at: datetime | None = None


def _outlives(a: ListEntry, b: ListEntry) -> bool:
    """Of two entries for one value, the one that lasts longer wins (no expiry lasts longest)."""
    if a.expires_at is None:
        return b.expires_at is not None
    return b.expires_at is not None and a.expires_at > b.expires_at


def _live(entry: ListEntry, at: datetime) -> bool:
    return entry.expires_at is None or at < entry.expires_at


# (prefix length, shift, masked address -> entry), most specific first
IpTables = tuple[tuple[int, int, dict[int, ListEntry]], ...]


class NamedList:
    """One list, immutable: its kind, entries (canonical values) and look-up tables."""

    __slots__ = ("_exact", "_v4", "_v6", "entries", "kind", "name")

    def __init__(self, name: str, kind: ListKind, entries: Iterable[ListEntry]) -> None:
        if not NAME_PATTERN.match(name):
            raise ListValueError(f"list name {name!r} must match {NAME_PATTERN.pattern[:-2]}")
        if kind not in LIST_KINDS:
            raise ListValueError(f"unknown list kind {kind!r}; the kinds are {LIST_KINDS}")
        self.name = name
        self.kind = kind
        exact: dict[str, ListEntry] = {}
        networks: dict[str, tuple[int, int, int]] = {}
        for entry in entries:
            if entry.expires_at is not None and entry.expires_at.utcoffset() is None:
                raise ListValueError(f"{entry.value!r}: expires_at must be timezone-aware")
            if kind == "ip":  # parsed once: the canonical text and the table key come from it
                value, *network = ip_entry(entry.value)
                networks[value] = (network[0], network[1], network[2])
            else:
                value = normalise(kind, entry.value)
            if value != entry.value:
                entry = ListEntry(
                    value, entry.reason, entry.source, entry.added_by, entry.expires_at
                )
            kept = exact.get(value)
            if kept is None or _outlives(entry, kept):
                exact[value] = entry
        self.entries: Mapping[str, ListEntry] = MappingProxyType(exact)
        self._exact = exact if kind != "ip" else {}
        self._v4, self._v6 = _ip_tables(exact, networks) if kind == "ip" else ((), ())

    def __len__(self) -> int:
        return len(self.entries)

    def __repr__(self) -> str:
        return f"NamedList({self.name!r}, {self.kind!r}, {len(self)} entries)"

    def find(self, value: str, at: datetime) -> ListEntry | None:
        """The live entry matching a transaction's value, or None."""
        if self.kind == "ip":
            return self._find_ip(value, at)
        key = value.upper() if self.kind == "country" else value
        entry = self._exact.get(key)
        return entry if entry is not None and _live(entry, at) else None

    def _find_ip(self, value: str, at: datetime) -> ListEntry | None:
        parsed = parse_ip(value)
        if parsed is None:
            return None
        version, number = parsed
        for _, shift, table in self._v4 if version == 4 else self._v6:
            entry = table.get(number >> shift)
            if entry is not None and _live(entry, at):
                return entry
        return None


def _ip_tables(
    entries: Mapping[str, ListEntry], networks: Mapping[str, tuple[int, int, int]]
) -> tuple[IpTables, IpTables]:
    by_version: dict[int, dict[int, dict[int, ListEntry]]] = {4: {}, 6: {}}
    for value, entry in entries.items():
        version, length, number = networks[value]
        shift = (32 if version == 4 else 128) - length
        by_version[version].setdefault(length, {})[number >> shift] = entry
    v4, v6 = (
        tuple(
            (length, (32 if version == 4 else 128) - length, tables[length])
            for length in sorted(tables, reverse=True)
        )
        for version, tables in by_version.items()
    )
    return v4, v6


class ListView:
    """A snapshot bound to one instant: the `lists` argument of `CompiledRule.evaluate`."""

    __slots__ = ("_at", "_lists")

    def __init__(self, lists: Mapping[str, NamedList], at: datetime) -> None:
        self._lists = lists
        self._at = at

    def contains(self, name: str, value: str) -> bool:
        return self.find(name, value) is not None

    def find(self, name: str, value: str) -> ListEntry | None:
        named = self._lists.get(name)
        if named is None:  # the evaluator turns this into the rule's error outcome
            raise LookupError(f"unknown list @{name}")
        return named.find(value, self._at)


@dataclass(frozen=True)
class ListSnapshot:
    """Every list at one moment. `version` is the caller's (e.g. a change counter)."""

    lists: Mapping[str, NamedList]
    version: int = 0
    rejected: tuple[str, ...] = ()

    @property
    def kinds(self) -> dict[str, ListKind]:
        """The registry `compile_rule` checks `@name` references against."""
        return {name: named.kind for name, named in self.lists.items()}

    def at(self, when: datetime) -> ListView:
        if when.utcoffset() is None:
            raise ValueError("the instant a list is read at must be timezone-aware")
        return ListView(self.lists, when)

    def replacing(self, named: NamedList, version: int | None = None) -> ListSnapshot:
        """A new snapshot with one list added or replaced (this one is left as it is)."""
        lists = {**self.lists, named.name: named}
        return ListSnapshot(MappingProxyType(lists), self.version if version is None else version)


def build_lists(
    kinds: Mapping[str, ListKind],
    rows: Iterable[tuple[str, ListEntry]],
    version: int = 0,
) -> ListSnapshot:
    """A snapshot from the list definitions (name -> kind) and (list name, entry) rows."""
    grouped: dict[str, list[ListEntry]] = {name: [] for name in kinds}
    rejected: list[str] = []
    for name, entry in rows:
        if name not in grouped:
            rejected.append(f"@{name}: no such list (entry {entry.value!r})")
            continue
        try:
            normalise(kinds[name], entry.value)
        except ListValueError as error:
            rejected.append(f"@{name}: {error}")
            continue
        if entry.expires_at is not None and entry.expires_at.utcoffset() is None:
            rejected.append(f"@{name}: {entry.value!r}: expires_at must be timezone-aware")
            continue
        grouped[name].append(entry)
    lists = {name: NamedList(name, kinds[name], entries) for name, entries in grouped.items()}
    return ListSnapshot(MappingProxyType(lists), version, tuple(rejected))


class LiveLists:
    """Holds the current snapshot; `replace` swaps in a new one in a single assignment."""

    __slots__ = ("_current",)

    def __init__(self, snapshot: ListSnapshot | None = None) -> None:
        self._current = snapshot or ListSnapshot(MappingProxyType({}))

    @property
    def current(self) -> ListSnapshot:
        return self._current

    def replace(self, snapshot: ListSnapshot) -> None:
        self._current = snapshot
