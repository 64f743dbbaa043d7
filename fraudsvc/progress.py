"""Numbered, timed stages for long commands, so a person sees where the work is."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from loguru import logger


class Stages:
    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0
        self.started = time.perf_counter()
        self.timings: dict[str, float] = {}

    @contextmanager
    def stage(self, title: str) -> Iterator[None]:
        self.done += 1
        prefix = f"[{self.done}/{self.total}]"
        logger.info("{} {} ...", prefix, title)
        started = time.perf_counter()
        yield
        elapsed = time.perf_counter() - started
        self.timings[title] = elapsed
        logger.info("{} {}: done in {:.1f} s", prefix, title, elapsed)

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started
