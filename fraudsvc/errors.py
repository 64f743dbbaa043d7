"""Domain errors of the request path; `fraudsvc.api.errors` turns them into HTTP answers."""

from __future__ import annotations


class NoModel(RuntimeError):
    """No model is loaded; the message says why and how to get one."""


class Conflict(RuntimeError):
    """The transaction id is taken by a different transaction."""

    def __init__(self, message: str, fields: list[str]) -> None:
        super().__init__(message)
        self.fields = fields


class NotFound(LookupError):
    """The transaction (or what was asked of it) does not exist; the message says which."""
