"""`glaze dev` (Dagster webserver + daemon) as a child process, for the benches and tests that need it running.

It gets a temporary GLAZE_HOME, a database of its own (on GLAZE_DATABASE_URL's server, or the embedded
one under that home), a Redis key prefix of its own, and the demo companies' websites on loopback
(GLAZE_RESOLVE). Leaving the `with` block sends SIGTERM to `glaze dev`, as a terminal's Ctrl-C would,
waits for it, gives its session 60 s to empty and records which processes are still there (there should
be none); then the
database it created is dropped, its Redis keys deleted and its home removed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Self

import psycopg
import redis
from psycopg import sql

from glaze_pipeline.config import settings
from glaze_pipeline.core.storage import services
from glaze_pipeline.sandbox.sites import DEMO_SITES, SiteServer, demo_hosts, directory_pages


def wait_until(check: Callable[[], bool], what: str, timeout_s: float, every_s: float = 0.5) -> float:
    """Seconds until `check()` held; TimeoutError after `timeout_s`. For the state of another process,
    which offers nothing to wait on but polling it."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if check():
            return time.monotonic() - started
        time.sleep(every_s)
    raise TimeoutError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - our own loopback server
            return True
    except OSError:
        return False


def processes_in_session(session_id: int) -> list[str]:
    """The pids still in a session (`glaze dev` starts one of its own, so this is all it started)."""
    found = subprocess.run(["pgrep", "-s", str(session_id)], capture_output=True, text=True, check=False)  # noqa: S603, S607
    return found.stdout.split()


class GlazeDev:
    """`with GlazeDev(port) as dev:` the UI answers on http://127.0.0.1:port and the daemon runs."""

    def __init__(self, port: int, env: Mapping[str, str] | None = None, startup_timeout_s: float = 900) -> None:
        self.port = port
        self.extra_env = dict(env or {})
        self.startup_timeout_s = startup_timeout_s
        self.home = Path(tempfile.mkdtemp(prefix="glaze-dev-"))
        self.inbox = self.home / "inbox"
        self.env: dict[str, str] = {}
        self.database_url = ""
        self.startup_s = 0.0
        self.left_after_sigterm: list[str] = []
        self._created_database: str | None = None
        self._redis: tuple[str, str] | None = None
        self._site: SiteServer | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def graphql_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/graphql"

    def __enter__(self) -> Self:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def _start(self) -> None:
        base = os.environ.get("GLAZE_DATABASE_URL")
        env = os.environ | {"GLAZE_HOME": str(self.home), "GLAZE_ALLOW_PRIVATE_NETWORKS": "1"}
        env |= {"GLAZE_CRAWL_START_DELAY_S": "0"}
        if base:
            self.database_url = psycopg.conninfo.make_conninfo(base, dbname=f"glaze_dev_{uuid.uuid4().hex[:10]}")
            services.create_database_if_missing(self.database_url)
            self._created_database = self.database_url
            env["GLAZE_DATABASE_URL"] = self.database_url
        if redis_url := os.environ.get("GLAZE_REDIS_URL"):
            prefix = f"glaze_dev_{uuid.uuid4().hex[:10]}:"
            self._redis = (redis_url, prefix)
            env["GLAZE_REDIS_PREFIX"] = prefix
        self._site = SiteServer(directory_pages(DEMO_SITES)).start()
        env["GLAZE_RESOLVE"] = self._site.resolve_spec(demo_hosts())
        self.env = env | self.extra_env
        glaze = Path(sys.executable).with_name("glaze")
        self._process = subprocess.Popen(  # noqa: S603 - our own CLI
            [str(glaze), "dev", "--port", str(self.port)], env=self.env, start_new_session=True
        )
        process = self._process
        ui = f"http://127.0.0.1:{self.port}/server_info"
        self.startup_s = wait_until(lambda: answers(ui) or process.poll() is not None, "the UI", self.startup_timeout_s)
        if process.poll() is not None:
            raise RuntimeError(f"glaze dev ended (exit code {process.returncode}) before the UI answered")
        self.database_url = self.database_url or services.ensure_database(settings(self.env))
        self.inbox.mkdir(exist_ok=True)

    def glaze(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run the CLI against this instance (same home, database and Redis prefix)."""
        glaze = Path(sys.executable).with_name("glaze")
        return subprocess.run([str(glaze), *args], env=self.env, capture_output=True, text=True, check=False)  # noqa: S603

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                os.kill(process.pid, signal.SIGTERM)
                process.wait(timeout=120)
            # `dg dev` has returned; its webserver, daemon, code servers and runs end within moments after.
            with contextlib.suppress(TimeoutError):
                wait_until(lambda: not processes_in_session(process.pid), "glaze dev's processes to end", 60)
            self.left_after_sigterm = processes_in_session(process.pid)
        if self._site is not None:
            self._site.stop()
            self._site = None
        self._clean_up()

    def _clean_up(self) -> None:
        if self._created_database is not None:
            admin = psycopg.conninfo.make_conninfo(self._created_database, dbname="postgres")
            name = psycopg.conninfo.conninfo_to_dict(self._created_database)["dbname"]
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(str(name))))
            self._created_database = None
        elif self.env and not os.environ.get("GLAZE_DATABASE_URL"):
            services.stop_database(settings(self.env))  # the embedded server `glaze dev` started under our home
        if self._redis is not None:
            url, prefix = self._redis
            client = redis.Redis.from_url(url)
            keys = list(client.scan_iter(match=prefix + "*", count=1000))
            if keys:
                client.delete(*keys)
            self._redis = None
        elif self.env and not os.environ.get("GLAZE_REDIS_URL"):
            services.stop_redis(settings(self.env))
        shutil.rmtree(self.home, ignore_errors=True)
