"""What every job gets in its arq context: the shared resources of the worker process."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from fraudsvc.jobs.queue import ExplainQueue
from fraudsvc.model.loader import ModelHolder
from fraudsvc.settings import Settings
from fraudsvc.telemetry.metrics import WorkerMetrics


@dataclass
class WorkerState:
    settings: Settings
    models: ModelHolder
    queue: ExplainQueue
    pool: ProcessPoolExecutor
    metrics: WorkerMetrics
