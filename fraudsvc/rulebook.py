"""The live rules and lists of this process: loaded from the database, reloaded when they change.

The scoring path reads `Rulebook.current`, one immutable (ruleset, lists) pair that a reload
replaces in a single assignment, so a transaction is judged by one consistent state. A reload
follows `pg_notify('fraudsvc_rules')` (sent by triggers on the lists, their entries and the live
pointer) within a second in every process, and a poll every FRAUDSVC_RULES_POLL_SECONDS catches
what a lost notification or connection would miss: it reads the number those triggers advance
in the changing transaction (`rules_generation`) and reloads only when it moved, since
re-reading large lists for nothing every poll cost the event loop a pause each time. Entries
are read in chunks; compiling rules and building large lists (100,000 entries: about a second)
runs in a thread, off the event loop.

A live rule that cannot be compiled any more (its list was deleted, the served model lost a
feature it reads) does not stop the others: it stays in the ruleset as a rule that fails on
every transaction, which the error metrics and their alert make visible.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

import asyncpg
from loguru import logger

from fraudsvc.db import lists as db_lists
from fraudsvc.db import rulesets as db_rulesets
from fraudsvc.db.engine import DB, OUTAGE_ERRORS, DatabaseUnavailable
from fraudsvc.features import DECLARATION
from fraudsvc.model.loader import ModelHolder
from fraudsvc.rules.language import CompiledRule, RuleError, compile_rule
from fraudsvc.rules.lists import ListSnapshot, build_lists
from fraudsvc.rules.ruleset import EMPTY, Compiled, Ruleset, RuleSpec
from fraudsvc.rules.runtime import Context, ListLookup
from fraudsvc.rules.schema import ListKind, Schema, transaction_schema
from fraudsvc.telemetry.metrics import WebMetrics

CHANNEL = "fraudsvc_rules"
RELOAD_ERRORS: tuple[type[BaseException], ...] = (*OUTAGE_ERRORS, DatabaseUnavailable)


@dataclass(frozen=True)
class Live:
    ruleset: Ruleset
    lists: ListSnapshot


class Broken(CompiledRule):
    """A live rule that no longer compiles: every evaluation is an error saying why."""

    def __init__(self, text: str, why: str) -> None:
        def fail(context: Context, lists: ListLookup) -> object:
            raise RuntimeError(why)

        super().__init__(text, fail, frozenset(), frozenset(), frozenset())


def schema_for(models: ModelHolder) -> Schema:
    """What rules may name: the contract's fields and the served model's features (the default
    declaration's when no model is loaded)."""
    bundle = models.current
    names = bundle.declaration.names if bundle is not None else DECLARATION.names
    return transaction_schema(names)


def compile_live(
    version: int, specs: list[RuleSpec], schema: Schema, kinds: dict[str, ListKind]
) -> Ruleset:
    compiled = []
    for spec in specs:
        try:
            rule: CompiledRule = compile_rule(spec.expression, schema, kinds)
        except RuleError as error:
            rule = Broken(spec.expression, f"the rule no longer compiles: {error}")
            logger.error("live rule {} no longer compiles: {}", spec.id, error)
        compiled.append(Compiled(spec, rule))
    return Ruleset(version, tuple(compiled))


class Rulebook:
    def __init__(self, models: ModelHolder, metrics: WebMetrics, poll_seconds: float) -> None:
        self.models = models
        self.metrics = metrics
        self.poll_seconds = poll_seconds
        self.current = Live(EMPTY, build_lists({}, []))
        self.problem: str | None = "the rules have not been loaded yet"
        self.generation = -1
        """`rules_generation` when the current rules were read (-1: never)."""
        self._changed = asyncio.Event()
        self._listener: asyncpg.Connection | None = None
        models.listeners.append(self._model_event)

    def _model_event(self, event: str) -> None:
        if event == "loaded":  # another model, maybe other features: recompile
            self._changed.set()

    async def load(self) -> None:
        """Read the live ruleset and every list, compile, swap in."""
        stored = await db_rulesets.live()
        kinds, rows = await db_lists.snapshot_rows()
        schema = schema_for(self.models)

        def build() -> Live:
            snapshot = build_lists(kinds, rows)
            if stored is None:
                return Live(EMPTY, snapshot)
            return Live(compile_live(stored.version, stored.rules, schema, kinds), snapshot)

        live = await asyncio.to_thread(build)
        self.current = live
        self.problem = None
        for rejected in live.lists.rejected:
            logger.warning("list entry left out: {}", rejected)
        self._publish(live)

    def _publish(self, live: Live) -> None:
        m = self.metrics
        m.ruleset_version.set({}, live.ruleset.version)
        m.live_rules.set({"mode": "live"}, sum(c.spec.mode == "live" for c in live.ruleset.rules))
        m.live_rules.set(
            {"mode": "shadow"}, sum(c.spec.mode == "shadow" for c in live.ruleset.rules)
        )
        for name, named in live.lists.lists.items():
            m.list_entries.set({"list": name}, len(named))
        for c in live.ruleset.rules:  # every live rule's series exist from its first moment
            m.rule_hits.add({"rule": c.spec.id, "mode": c.spec.mode, "action": c.spec.action}, 0)
            m.rule_errors.add({"rule": c.spec.id, "mode": c.spec.mode}, 0)

    async def run(self) -> None:
        """Reload on every notification or model change, and when a poll finds the rules'
        generation moved (a notification lost with its connection), until cancelled."""
        stale = True  # the first round reloads: load() may have failed at startup
        while True:
            try:
                await self._listen()
                generation = await db_lists.generation()  # before the read: nothing slips by
                if stale or generation != self.generation:
                    await self.load()
                    self.generation = generation
                    stale = False
            except RELOAD_ERRORS as exc:
                self.problem = f"the rules could not be loaded: {exc}"
                logger.warning("rules not reloaded, PostgreSQL unavailable: {}", exc)
                await self._drop_listener()
            except Exception:
                logger.exception("rules reload failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), self.poll_seconds)
            stale = stale or self._changed.is_set()
            self._changed.clear()

    async def _listen(self) -> None:
        if self._listener is not None and not self._listener.is_closed():
            return
        settings = DB.config
        self._listener = await asyncpg.connect(
            dsn=settings["dsn"], timeout=settings.get("timeout", 5.0)
        )
        await self._listener.add_listener(CHANNEL, self._notified)

    def _notified(self, *_: object) -> None:
        self._changed.set()

    async def _drop_listener(self) -> None:
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()
            self._listener = None

    async def close(self) -> None:
        await self._drop_listener()
