"""Logging: loguru for everything, as JSON lines for services or short text for commands.

Standard-library logging (uvicorn, arq, MLflow, asyncio) is routed through loguru, so every line
has one format and one level setting (LOG_LEVEL).
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from typing import TYPE_CHECKING, Literal

import msgspec
from loguru import logger

if TYPE_CHECKING:
    from loguru import Message

NOISY_LOGGERS = {
    "alembic": logging.WARNING,
    "mlflow.store.db.utils": logging.WARNING,
    "mlflow.utils.uv_utils": logging.WARNING,
    # "Failed to resolve installed pip version": uv environments have no pip, by design
    "mlflow.utils.environment": logging.ERROR,
    "urllib3": logging.WARNING,
    "httpx": logging.WARNING,  # one line per request of the replay client
    "arq.worker": logging.WARNING,  # two lines per job; the job logs its own outcome
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


def _json_sink(message: Message) -> None:
    """One flat JSON object per line: time, level, message, logger, then the bound context."""
    record = message.record
    line: dict[str, object] = {
        "time": record["time"].isoformat(),
        "level": record["level"].name,
        "message": record["message"],
        "logger": record["extra"].get("logger_name", record["name"]),
    }
    for key, value in record["extra"].items():
        if key != "logger_name":
            line[key] = value
    if record["exception"] is not None:
        exc_type, exc_value, exc_tb = record["exception"]
        line["exception"] = "".join(traceback.format_exception(exc_type, exc_value, exc_tb))
    sys.stderr.write(msgspec.json.encode(line, enc_hook=str).decode() + "\n")


def setup_logging(level: str, fmt: Literal["json", "text"]) -> None:
    # MLflow otherwise installs its own stream handler on import, bypassing this format
    os.environ.setdefault("MLFLOW_CONFIGURE_LOGGING", "false")
    logger.remove()
    if fmt == "json":
        logger.add(_json_sink, level=level, backtrace=False, diagnose=False)
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
