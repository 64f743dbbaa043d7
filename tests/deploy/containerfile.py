"""Just enough Containerfile parsing for the tests: instructions grouped by build stage.

Line continuations are joined and comments dropped; arguments stay as written (a JSON array
stays a string). `ENV` values are read in their `KEY=value` form only, the form the
Containerfile uses.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Instruction:
    keyword: str
    """Upper-case instruction name: FROM, RUN, COPY, ENV..."""
    arguments: str
    line: int
    """Line number of the instruction's first line."""


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def env(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for instruction in self.all("ENV"):
            for item in shlex.split(instruction.arguments):
                key, sep, value = item.partition("=")
                assert sep, f"line {instruction.line}: ENV {item!r} is not KEY=value"
                values[key] = value
        return values


def instructions(path: Path) -> list[Instruction]:
    result: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue  # a comment inside a continued instruction
        if not pending:
            start = number
        pending.append(line.removesuffix("\\").strip())
        if not line.endswith("\\"):
            keyword, _, arguments = " ".join(pending).partition(" ")
            result.append(Instruction(keyword.upper(), arguments.strip(), start))
            pending = []
    assert not pending, f"{path}: the last instruction ends with a continuation"
    return result


def stages(path: Path) -> list[Stage]:
    """Build stages in order; ARG values declared before the first FROM are substituted."""
    args: dict[str, str] = {}
    result: list[Stage] = []
    for instruction in instructions(path):
        if instruction.keyword == "ARG" and not result:
            key, _, value = instruction.arguments.partition("=")
            args[key] = value
        elif instruction.keyword == "FROM":
            words = instruction.arguments.split()
            base = words[0]
            for key, value in args.items():
                base = base.replace("${" + key + "}", value).replace("$" + key, value)
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            result.append(Stage(base=base, name=name))
        else:
            assert result, f"line {instruction.line}: {instruction.keyword} before any FROM"
            result[-1].instructions.append(instruction)
    return result
