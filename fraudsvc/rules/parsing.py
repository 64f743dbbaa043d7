"""Rule text -> Python AST: size limits, the `@name` rewrite, and positions for messages.

`@name` is not Python syntax. The tokenizer finds each `@` operator token (never one inside a
string literal or a comment) directly followed by a name, and replaces the `@` with `_`: the
placeholder `_name` has the same length, so every column in the rewritten text is the column the
analyst typed. Names written by the analyst may not start with `_` (nor be non-ASCII, which
Python would NFKC-fold, e.g. a full-width low line into `_`), so a `_name` in the parsed tree
is always a list reference; `parse` checks that the tree's list references sit exactly where the
rewrite put them.
"""

from __future__ import annotations

import ast
import io
import tokenize
from dataclasses import dataclass

from fraudsvc.rules.errors import RuleError

MAX_LENGTH = 4000
LIST_PREFIX = "_"


@dataclass(frozen=True)
class Source:
    """The rule text as the analyst wrote it (line ends normalised) and the tree parsed from its
    rewrite; both have the same columns."""

    text: str
    tree: ast.Expression

    def position(self, node: ast.AST) -> tuple[int, int, int | None]:
        """1-based line and column (characters, not the AST's UTF-8 bytes) and end column."""
        line = getattr(node, "lineno", 1)
        row = self.text.split("\n")[line - 1].encode()
        column = len(row[: getattr(node, "col_offset", 0)].decode(errors="replace")) + 1
        end = getattr(node, "end_col_offset", None)
        same_line = getattr(node, "end_lineno", line) == line
        end_column = (
            len(row[:end].decode(errors="replace")) + 1 if end is not None and same_line else None
        )
        return line, column, end_column

    def error(self, node: ast.AST, message: str) -> RuleError:
        line, column, end_column = self.position(node)
        return RuleError(message, line, column, end_column)

    def segment(self, node: ast.AST) -> str:
        """The text of a node as the analyst wrote it (`@` restored), for run-time messages."""
        text = ast.get_source_segment(self.text, node) or ast.unparse(node)
        return text if len(text) <= 60 else text[:57] + "..."


def _line_starts(text: str) -> list[int]:
    starts = [0]
    for i, char in enumerate(text):
        if char == "\n":
            starts.append(i + 1)
    return starts


def _syntax_error(error: SyntaxError) -> RuleError:
    message = (error.msg or "invalid syntax").replace("(<unknown>, line 1)", "").strip()
    column = error.offset or 0
    if column < 1:  # the parser points past the end: "amount >"
        column = len((error.text or "").rstrip("\n")) + 1
    return RuleError(message, error.lineno or 1, column)


def _rewrite(text: str) -> tuple[str, set[tuple[int, int]]]:
    """Replace each `@name` by `_name`; return the text and the (line, column) of each."""
    chars = list(text)
    starts = _line_starts(text)
    rewritten: set[tuple[int, int]] = set()
    tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    for i, token in enumerate(tokens):
        (row, col), where = token.start, {"line": token.start[0], "column": token.start[1] + 1}
        if token.type == tokenize.NAME:
            if not token.string.isascii():
                raise RuleError(f"names must be ASCII: {token.string!r}", **where)
            if token.string.startswith(LIST_PREFIX):
                raise RuleError(f"names cannot start with '_': {token.string!r}", **where)
        elif token.type == tokenize.OP and "@" in token.string:
            after = tokens[i + 1] if i + 1 < len(tokens) else None
            if (
                token.string != "@"
                or after is None
                or after.type != tokenize.NAME
                or after.start != (row, col + 1)
            ):
                raise RuleError(
                    "'@' must be followed directly by a list name, as in `ip in @bad_networks`",
                    **where,
                )
            chars[starts[row - 1] + col] = LIST_PREFIX
            rewritten.add((row, col + 1))
    return "".join(chars), rewritten


def parse(text: str) -> Source:
    """Parse a rule into a Python expression tree, or raise RuleError with the position."""
    if not isinstance(text, str):
        raise RuleError(f"a rule is text, not {type(text).__name__}")
    # surrounding whitespace is dropped (Python's parser refuses a leading indent): positions
    # are columns of this text, which the compiled rule keeps as its `text`
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    if not text:
        raise RuleError("the rule is empty")
    if len(text) > MAX_LENGTH:
        raise RuleError(f"the rule is longer than {MAX_LENGTH} characters", column=MAX_LENGTH)
    try:
        rewritten, list_refs = _rewrite(text)
    except (tokenize.TokenError, SyntaxError) as error:
        # unbalanced brackets, an unfinished string, lines indented apart: Python's parser
        # says where, better
        try:
            ast.parse(text, mode="eval")
        except SyntaxError as syntax:
            raise _syntax_error(syntax) from None
        except (ValueError, RecursionError, MemoryError, UnicodeError):
            pass
        raise RuleError(
            f"the rule cannot be read: {error.args[0] if error.args else error}"
        ) from None
    try:
        tree = ast.parse(rewritten, mode="eval")
    except SyntaxError as error:
        raise _syntax_error(error) from None
    except (RecursionError, MemoryError):
        raise RuleError("the rule is nested too deeply") from None
    except (ValueError, UnicodeError) as error:  # null bytes, lone surrogates
        raise RuleError(f"the rule is not valid text: {error}") from None
    source = Source(text, tree)  # same columns as the rewritten text: messages show `@`
    found = {
        source.position(node)[:2]
        for node in ast.walk(tree)
        if isinstance(node, ast.Name) and node.id.startswith(LIST_PREFIX)
    }
    if found != list_refs:  # the tokenizer and the parser disagree: refuse rather than guess
        raise RuleError("'@' list references could not be located; check the quotes")
    return source
