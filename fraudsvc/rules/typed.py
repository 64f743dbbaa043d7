"""What the compiler knows about a compiled sub-expression."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fraudsvc.rules.runtime import Fn
from fraudsvc.rules.schema import Field, ListKind, StaticType

NOTHING: Any = object()  # `Typed.constant` of an expression that is not a literal
DESCRIBED: dict[StaticType, str] = {
    "number": "a number",
    "string": "a string",
    "bool": "true/false",
    "any": "any value",
}


@dataclass(frozen=True, slots=True)
class Typed:
    """A compiled sub-expression: its static type and the closure computing it. `field` and
    `constant` let a parent fuse a whole `name <op> literal` term into one closure; `kind` is
    the list kind of a schema name's values."""

    type: StaticType
    fn: Fn
    kind: ListKind | None = None
    field: tuple[str, Field] | None = None
    constant: Any = NOTHING
