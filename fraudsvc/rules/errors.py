"""The two ways a rule can fail: refused at submission (`RuleError`) or failing on one transaction
(`Fault`, caught by the evaluator and turned into an error outcome, never raised to the caller)."""

from __future__ import annotations


class RuleError(ValueError):
    """A rule refused at submission: what is wrong and where (1-based line and column)."""

    def __init__(
        self, message: str, line: int = 1, column: int = 1, end_column: int | None = None
    ) -> None:
        self.message = message
        self.line = line
        self.column = column
        self.end_column = end_column
        where = f"column {column}" if line == 1 else f"line {line}, column {column}"
        super().__init__(f"{where}: {message}")


class Fault(Exception):
    """A rule failing on one transaction (division by zero, an attribute of the wrong type, a
    required value absent); the message names the sub-expression and its column."""
