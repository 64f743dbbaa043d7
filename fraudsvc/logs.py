"""Logging: loguru for everything, as JSON lines for services or short text for commands.

Standard-library logging (uvicorn, arq, MLflow, asyncio) is routed through loguru, so every line
has one format and one level setting (LOG_LEVEL).
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Literal

from loguru import logger

NOISY_LOGGERS = {
    "alembic": logging.WARNING,
    "mlflow.store.db.utils": logging.WARNING,
    "mlflow.utils.uv_utils": logging.WARNING,
    # "Failed to resolve installed pip version": uv environments have no pip, by design
    "mlflow.utils.environment": logging.ERROR,
    "urllib3": logging.WARNING,
}


class InterceptHandler(logging.Handler):
    """Hands standard-library records to loguru, keeping the caller's level and logger name."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        logger.opt(depth=6, exception=record.exc_info).bind(logger_name=record.name).log(
            level, record.getMessage()
        )


def setup_logging(level: str, fmt: Literal["json", "text"]) -> None:
    # MLflow otherwise installs its own stream handler on import, bypassing this format
    os.environ.setdefault("MLFLOW_CONFIGURE_LOGGING", "false")
    logger.remove()
    if fmt == "json":
        logger.add(sys.stderr, level=level, serialize=True, backtrace=False, diagnose=False)
    else:
        logger.add(
            sys.stderr,
            level=level,
            format="<green>{time:HH:mm:ss}</green> <level>{level: <7}</level> {message}",
            backtrace=False,
            diagnose=False,
        )
    logging.basicConfig(handlers=[InterceptHandler()], level=0, force=True)
    # libraries that installed their own handlers before this ran hand over to the root handler
    for name in ("mlflow", "uvicorn", "uvicorn.error", "uvicorn.access", "arq"):
        library = logging.getLogger(name)
        library.handlers.clear()
        library.propagate = True
    for name, noisy_level in NOISY_LOGGERS.items():
        logging.getLogger(name).setLevel(noisy_level)
