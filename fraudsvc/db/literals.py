"""PostgreSQL array literals, for arrays sent as one text parameter (`$n::text::int8[]`).

asyncpg's binary array encoder checks every element against three of collections.abc's abstract
base classes, a Python-level isinstance each: for the scoring path's arrays about 370 checks a
request, 23 % of the web process's instructions (callgrind, scoring in process). A literal is one
string built with `str.join`, and PostgreSQL's array_in parses it. Every element is written so
that array_in gives back exactly the Python value (tests/integration/test_array_literals.py).
"""

from __future__ import annotations

from collections.abc import Sequence


def int_array(values: Sequence[int]) -> str:
    """A PostgreSQL array literal of integers, `{1,2,3}`."""
    return "{" + ",".join(map(str, values)) + "}"


def _quoted(value: str) -> str:
    """An array element as array_in reads it: double-quoted, backslash and quote escaped."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def text_array(values: Sequence[str]) -> str:
    """A PostgreSQL array literal of text, `{"a","b"}` (every element quoted)."""
    return "{" + ",".join(map(_quoted, values)) + "}"


def bool_array(values: Sequence[bool]) -> str:
    """A PostgreSQL array literal of booleans, `{t,f}`."""
    return "{" + ",".join("t" if v else "f" for v in values) + "}"


def float_array(values: Sequence[float]) -> str:
    """A PostgreSQL array literal of float8, `{0.5,nan,-inf}`: Python's repr is the shortest
    text that reads back as the same double, and float8in reads `nan` and `inf` (any case)."""
    return "{" + ",".join([repr(float(v)) for v in values]) + "}"
