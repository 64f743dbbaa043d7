"""What a rule may name: the schema (name -> value type, optional, list kind) and the list kinds.

The caller gives the schema when it compiles a rule; `transaction_schema` builds the one the
scoring path uses (the contract's fields, the model's features, `score` and `model_decision`).
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

ValueType = Literal["number", "string", "bool"]
# "any" is the static type of `attributes.<key>`: checked when the rule runs
StaticType = Literal["number", "string", "bool", "any"]
VALUE_TYPES: tuple[ValueType, ...] = ("number", "string", "bool")

ListKind = Literal["customer", "terminal", "device", "ip", "country", "merchant_category", "string"]
LIST_KINDS: tuple[ListKind, ...] = (
    "customer",
    "terminal",
    "device",
    "ip",
    "country",
    "merchant_category",
    "string",
)
# what a list of each kind holds, for messages
KIND_VALUES: dict[ListKind, str] = {
    "customer": "customer ids",
    "terminal": "terminal ids",
    "device": "device ids",
    "ip": "IP addresses and networks",
    "country": "country codes",
    "merchant_category": "merchant category codes",
    "string": "strings",
}

NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,63}\Z")
ATTRIBUTE_KEY_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,31}\Z")
ATTRIBUTES = "attributes"


@dataclass(frozen=True, slots=True)
class Field:
    """One name a rule may read. `kind` says which lists its values belong in (a `customer_id`
    is looked up in customer lists), so that `customer_id in @blocked_terminals` is refused."""

    type: ValueType
    optional: bool = False
    kind: ListKind | None = None

    def __post_init__(self) -> None:
        if self.type not in VALUE_TYPES:
            raise ValueError(f"unknown value type {self.type!r}; use one of {VALUE_TYPES}")
        if self.kind is not None and (self.type != "string" or self.kind not in LIST_KINDS):
            raise ValueError(f"list kind {self.kind!r} needs a string field of a known kind")


class Schema(Mapping[str, Field]):
    """An immutable name -> Field map with checked names."""

    def __init__(self, fields: Mapping[str, Field]) -> None:
        for name in fields:
            if not NAME_PATTERN.match(name) or keyword.iskeyword(name) or name == ATTRIBUTES:
                raise ValueError(
                    f"schema name {name!r} must match {NAME_PATTERN.pattern} and be neither a "
                    f"Python keyword nor {ATTRIBUTES!r}"
                )
        self._fields = dict(fields)

    def __getitem__(self, name: str) -> Field:
        return self._fields[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)


# The contract's fields as rules see them; `timestamp` is left out (the features carry time).
CONTRACT_FIELDS: dict[str, Field] = {
    "transaction_id": Field("string"),
    "customer_id": Field("string", kind="customer"),
    "terminal_id": Field("string", kind="terminal"),
    "amount": Field("number"),
    "currency": Field("string", optional=True),
    "merchant_category": Field("string", optional=True, kind="merchant_category"),
    "merchant_country": Field("string", optional=True, kind="country"),
    "card_country": Field("string", optional=True, kind="country"),
    "channel": Field("string", optional=True),
    "device_id": Field("string", optional=True, kind="device"),
    "ip": Field("string", optional=True, kind="ip"),
}
MODEL_FIELDS: dict[str, Field] = {
    "score": Field("number"),
    "model_decision": Field("string"),
}


def transaction_schema(feature_names: Iterable[str]) -> Schema:
    """The scoring path's schema: contract fields, every feature (a number), the model's output."""
    fields = dict(CONTRACT_FIELDS)
    for name in feature_names:
        existing = fields.get(name)
        if existing is not None and existing.type != "number":
            raise ValueError(f"feature {name!r} clashes with the {existing.type} field {name!r}")
        fields.setdefault(name, Field("number"))
    fields.update(MODEL_FIELDS)
    return Schema(fields)
