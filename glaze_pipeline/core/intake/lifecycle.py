"""No table left `running` or `queued` for good: a heartbeat from the run, and what to do with tables that lost theirs.

A run refreshes `glaze.tables.heartbeat_at` while it works. A run whose process was killed (SIGKILL, a
crashed container, a closed laptop) stops beating; `lost_tables` finds its table, and the caller (the
Dagster shell, which also marks the run failed) releases it as `failed` with the reason. A table marked
`queued` whose run request never reached Dagster is found by `queued_tables` and put back to `pending`.
`claim_table` is the one way a run takes a table: one atomic UPDATE, so of two runs started at once
only one holds it and the other is refused with the holder's run id.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from dataclasses import dataclass
from datetime import datetime

import psutil
import psycopg

from glaze_pipeline.core.intake.tables import TableNotFound, TableStatus
from glaze_pipeline.errors import UserFacingError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProcessIdentity:
    """Which process runs a run: a pid alone could be reused, so its start time goes with it."""

    host: str
    pid: int
    started: float

    @classmethod
    def current(cls) -> ProcessIdentity:
        return cls(socket.gethostname(), os.getpid(), psutil.Process().create_time())

    def tags(self) -> dict[str, str]:
        return {"glaze/host": self.host, "glaze/pid": str(self.pid), "glaze/pid_started": f"{self.started:.3f}"}

    @classmethod
    def from_tags(cls, tags: dict[str, str]) -> ProcessIdentity | None:
        try:
            return cls(tags["glaze/host"], int(tags["glaze/pid"]), float(tags["glaze/pid_started"]))
        except (KeyError, ValueError):
            return None

    def is_gone(self) -> bool | None:
        """True when this process surely ended; None when it cannot be known from here (another host)."""
        if self.host != socket.gethostname():
            return None
        try:
            return abs(psutil.Process(self.pid).create_time() - self.started) > 1.0  # the pid was reused
        except psutil.NoSuchProcess:
            return True
        except psutil.Error:
            return None


class TableBusy(UserFacingError):
    """Another run holds the table: starting a second one would pay for its requests twice."""


def claim_table(conn: psycopg.Connection, table_id: str, run_id: str) -> None:
    """Mark the table `running` for `run_id`, or raise TableBusy when another run holds it.

    One UPDATE decides: Postgres locks the row, so of two runs claiming at once the second re-reads the
    first's committed claim and gets nothing. A table `running` with no run id yet (just uploaded by
    `glaze enrich FILE`) or with this run's id is this run's to take. A holder that died is released
    first by the caller's lost-run check (`defs/lifecycle/runs.repair_tables`), never by this function.
    """
    taken = conn.execute(
        """UPDATE glaze.tables SET status = %s, last_run_id = %s, status_reason = NULL, heartbeat_at = now(),
               updated_at = now()
           WHERE table_id = %s AND (status <> %s OR last_run_id IS NULL OR last_run_id = %s) RETURNING 1""",
        (TableStatus.RUNNING, run_id, table_id, TableStatus.RUNNING, run_id),
    ).fetchone()
    if taken is not None:
        return
    holder = conn.execute(
        "SELECT last_run_id, extract(epoch FROM now() - coalesce(heartbeat_at, updated_at))::float8"
        " FROM glaze.tables WHERE table_id = %s",
        (table_id,),
    ).fetchone()
    if holder is None:
        raise TableNotFound(f"no table {table_id!r}: `glaze tables` lists the uploaded ones")
    raise TableBusy(
        f"table {table_id} is already being enriched by run {str(holder[0])[:8]} (last sign of life"
        f" {holder[1]:.0f} s ago); wait for it to finish (`glaze status {table_id}`) instead of paying for"
        " its requests twice; if that run was killed, it is released once noticed dead and you can start again"
    )


def queue_table(conn: psycopg.Connection, table_id: str) -> bool:
    """`pending` → `queued` for the sensor's run request; False when a run (`glaze enrich`) took it meanwhile."""
    cur = conn.execute(
        "UPDATE glaze.tables SET status = %s, status_reason = NULL, updated_at = now() WHERE table_id = %s"
        " AND status = %s",
        (TableStatus.QUEUED, table_id, TableStatus.PENDING),
    )
    return cur.rowcount > 0


def beat(conn: psycopg.Connection, table_id: str, run_id: str) -> None:
    conn.execute(
        "UPDATE glaze.tables SET heartbeat_at = now() WHERE table_id = %s AND last_run_id = %s AND status = %s",
        (table_id, run_id, TableStatus.RUNNING),
    )


class Heartbeat:
    """A thread that says "this run is alive" for its table every `every_s` seconds, until stopped."""

    def __init__(self, database_url: str, table_id: str, run_id: str, every_s: float) -> None:
        self._args = (database_url, table_id, run_id)
        self._every_s = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"glaze-heartbeat-{table_id}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        url, table_id, run_id = self._args
        while True:
            try:
                with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
                    beat(conn, table_id, run_id)
            except psycopg.Error as exc:  # a missed beat is fine; many in a row mark the run lost
                log.warning("heartbeat of table %s failed: %s", table_id, exc)
            if self._stop.wait(self._every_s):
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


@dataclass(frozen=True)
class TableRun:
    """A table in `running` or `queued`, with what is known about the run working on it."""

    table_id: str
    status: str
    run_id: str | None
    seconds_quiet: float  # since the last heartbeat (or the last status change when there is none)
    updated_at: datetime


def active_tables(conn: psycopg.Connection) -> list[TableRun]:
    rows = conn.execute(
        """SELECT table_id, status, last_run_id,
                  extract(epoch FROM now() - coalesce(heartbeat_at, updated_at))::float8, updated_at
           FROM glaze.tables WHERE status IN (%s, %s) ORDER BY table_id""",
        (TableStatus.RUNNING, TableStatus.QUEUED),
    ).fetchall()
    return [TableRun(*row) for row in rows]


def release_table(conn: psycopg.Connection, table_id: str, reason: str, *, run_id: str | None = None) -> bool:
    """Mark a `running`/`queued` table `failed` with the reason; a table another run has taken is left alone."""
    cur = conn.execute(
        """UPDATE glaze.tables SET status = %s, status_reason = %s, heartbeat_at = NULL, updated_at = now()
           WHERE table_id = %s AND status IN (%s, %s)
             AND (%s::text IS NULL OR last_run_id IS NULL OR last_run_id = %s OR status = %s)""",
        (
            TableStatus.FAILED,
            reason,
            table_id,
            TableStatus.RUNNING,
            TableStatus.QUEUED,
            run_id,
            run_id,
            TableStatus.QUEUED,
        ),
    )
    return cur.rowcount > 0


def requeue_table(conn: psycopg.Connection, table_id: str) -> bool:
    """A `queued` table whose run request was lost goes back to `pending`, so the sensor requests it again."""
    cur = conn.execute(
        "UPDATE glaze.tables SET status = %s, status_reason = %s, updated_at = now()"
        " WHERE table_id = %s AND status = %s",
        (TableStatus.PENDING, "requeued: its run request never reached Dagster", table_id, TableStatus.QUEUED),
    )
    return cur.rowcount > 0
