"""Single-record requests in Postgres (`glaze.requests`): a durable queue with one row per request.

Life of a request: `queued` (written by the API) → claimed into a batch by the requests sensor (still
`queued`, with `batch_id` and `launched_at`) → `running` once its run starts → `completed` with its
result, or `failed` with a reason. Every change is announced on `EVENTS_CHANNEL` (payload: the request
id), and every new request on `QUEUE_CHANNEL`, so waiters wake without polling.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from glaze_pipeline.core.storage.api_keys import ledger_table, spent_today
from glaze_pipeline.errors import UserFacingError

QUEUE_CHANNEL = "glaze_requests_queued"
EVENTS_CHANNEL = "glaze_request_events"
OPEN = ("queued", "running")
DONE = ("completed", "failed")


class IdempotencyConflict(UserFacingError):
    """The Idempotency-Key was used before with a different body."""


@dataclass(frozen=True)
class EnrichRequest:
    request_id: uuid.UUID
    key_id: str
    input_url: str
    normalized_url: str
    entity_type: str
    row_key: str
    wanted_fields: list[str]
    status: str
    max_cost_usd: float | None
    budget_usd: float | None
    cost_usd: float
    cache_hit: bool
    result: dict[str, Any] | None
    error: str | None
    batch_id: str | None
    run_id: str | None
    attempts: int
    ledger_runs: list[str]
    timings: dict[str, float]
    created_at: datetime
    launched_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None

    @property
    def done(self) -> bool:
        return self.status in DONE


_COLUMNS = """request_id, key_id, input_url, normalized_url, entity_type, row_key, wanted_fields, status,
    max_cost_usd::float8 AS max_cost_usd, budget_usd::float8 AS budget_usd, cost_usd::float8 AS cost_usd, cache_hit,
    result, error, batch_id, run_id, attempts, ledger_runs, timings, created_at, launched_at, started_at, finished_at"""


@dataclass(frozen=True)
class NewRequest:
    """What the API accepted: one entity, the fields wanted of it, and the caller's limits."""

    key_id: str
    input_url: str
    normalized_url: str
    entity_type: str
    row_key: str
    wanted_fields: list[str]
    max_cost_usd: float | None = None
    idempotency_key: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # other body fields that make the request what it is

    def body_hash(self) -> str:
        body = [self.input_url, self.wanted_fields, self.max_cost_usd, self.extra]
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _cursor(conn: psycopg.Connection) -> psycopg.Cursor[EnrichRequest]:
    return conn.cursor(row_factory=class_row(EnrichRequest))


def create_request(
    conn: psycopg.Connection, new: NewRequest, *, answered: dict[str, Any] | None = None
) -> tuple[EnrichRequest, bool]:
    """Store a request (queued, or completed at once when `answered` from the cache); returns (request, created).

    With an Idempotency-Key already used by this key, the earlier request comes back instead
    (IdempotencyConflict when the body differs).
    """
    status = "completed" if answered is not None else "queued"
    if answered is not None:
        # Already answered from the cache: the row is a record of it, not a promise, so its commit need not
        # wait for the disk. A queued request's commit does: it is the only copy of the work to do.
        conn.execute("SET LOCAL synchronous_commit TO off")
    row = (
        _cursor(conn)
        .execute(
            f"""INSERT INTO glaze.requests (request_id, key_id, input_url, normalized_url, entity_type, row_key,
                    wanted_fields, status, max_cost_usd, idempotency_key, body_hash, cache_hit, result, finished_at)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, CASE WHEN %s THEN now() END)
                ON CONFLICT (key_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
                RETURNING {_COLUMNS}""",
            (
                uuid.uuid4(),
                new.key_id,
                new.input_url,
                new.normalized_url,
                new.entity_type,
                new.row_key,
                new.wanted_fields,
                status,
                new.max_cost_usd,
                new.idempotency_key,
                new.body_hash(),
                answered is not None,
                Jsonb(answered) if answered is not None else None,
                answered is not None,
            ),
        )
        .fetchone()
    )
    if row is not None:
        if status == "queued":
            conn.execute("SELECT pg_notify(%s, %s)", (QUEUE_CHANNEL, str(row.request_id)))
        return row, True
    earlier = conn.execute(
        "SELECT request_id, body_hash FROM glaze.requests WHERE key_id = %s AND idempotency_key = %s",
        (new.key_id, new.idempotency_key),
    ).fetchone()
    assert earlier is not None
    if earlier[1] != new.body_hash():
        raise IdempotencyConflict(
            "this Idempotency-Key was already used with a different body; send a new key for a new request"
        )
    found = get_request(conn, earlier[0], new.key_id)
    assert found is not None
    return found, False


def get_request(conn: psycopg.Connection, request_id: uuid.UUID | str, key_id: str | None) -> EnrichRequest | None:
    """The request, when it belongs to `key_id` (None: any owner, for the job and the sensor)."""
    try:
        rid = uuid.UUID(str(request_id))
    except ValueError:
        return None
    return (
        _cursor(conn)
        .execute(
            f"SELECT {_COLUMNS} FROM glaze.requests WHERE request_id = %s AND (%s::text IS NULL OR key_id = %s)",
            (rid, key_id, key_id),
        )
        .fetchone()
    )


def requests_by_id(conn: psycopg.Connection, ids: Sequence[uuid.UUID | str]) -> list[EnrichRequest]:
    rows = _cursor(conn).execute(
        f"SELECT {_COLUMNS} FROM glaze.requests WHERE request_id = ANY(%s) ORDER BY created_at",
        ([uuid.UUID(str(i)) for i in ids],),
    )
    return rows.fetchall()


def batch_requests(conn: psycopg.Connection, batch_id: str) -> list[EnrichRequest]:
    return (
        _cursor(conn)
        .execute(f"SELECT {_COLUMNS} FROM glaze.requests WHERE batch_id = %s ORDER BY created_at", (batch_id,))
        .fetchall()
    )


def list_requests(conn: psycopg.Connection, key_id: str, limit: int = 50) -> list[EnrichRequest]:
    return (
        _cursor(conn)
        .execute(
            f"SELECT {_COLUMNS} FROM glaze.requests WHERE key_id = %s ORDER BY created_at DESC LIMIT %s",
            (key_id, limit),
        )
        .fetchall()
    )


@dataclass(frozen=True)
class Batch:
    batch_id: str
    request_ids: list[str]


def claim_batch(conn: psycopg.Connection, *, limit: int, default_max_cost_usd: float) -> Batch | None:
    """Take the oldest unclaimed queued requests into one batch and give each its budget; None when none wait.

    Claiming (FOR UPDATE SKIP LOCKED, then `batch_id` set) puts a request in one batch only; the run key is
    the batch id, so a batch becomes one run only. `attempts` counts claims. A request's budget is its own
    limit, cut to what its key may still spend today: the ledger's spending plus the budgets of its
    requests already in flight never pass the key's daily cap.
    """
    with conn.transaction():
        rows = conn.execute(
            """SELECT r.request_id, r.key_id, coalesce(r.max_cost_usd::float8, %s), k.daily_cap_usd::float8,
                      r.ledger_runs
               FROM glaze.requests r JOIN glaze.api_keys k USING (key_id)
               WHERE r.status = 'queued' AND r.batch_id IS NULL
               ORDER BY r.created_at LIMIT %s FOR UPDATE OF r SKIP LOCKED""",
            (default_max_cost_usd, limit),
        ).fetchall()
        if not rows:
            return None
        ids = [str(r[0]) for r in rows]
        batch_id = uuid.uuid4().hex
        left: dict[str, float] = {}
        budgets = []
        for request_id, key_id, max_cost, cap, ledger_runs in rows:
            if key_id not in left:
                conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (ledger_table(key_id),))
                left[key_id] = cap - spent_today(conn, key_id) - _in_flight(conn, key_id)
            already = _spent_by_request(conn, ledger_runs, key_id)
            budget = max(0.0, min(max_cost - already, left[key_id]))
            left[key_id] -= budget
            budgets.append((budget, request_id))
        with conn.cursor() as cur:
            cur.executemany(
                """UPDATE glaze.requests SET budget_usd = %s, batch_id = %s, launched_at = now(),
                       attempts = attempts + 1, updated_at = now()
                   WHERE request_id = %s""",
                [(b, batch_id, rid) for b, rid in budgets],
            )
    return Batch(batch_id, ids)


def _in_flight(conn: psycopg.Connection, key_id: str) -> float:
    """Budgets handed to the key's claimed, unfinished requests: money they may still spend."""
    row = conn.execute(
        """SELECT coalesce(sum(budget_usd), 0)::float8 FROM glaze.requests
           WHERE key_id = %s AND status IN ('queued', 'running') AND batch_id IS NOT NULL""",
        (key_id,),
    ).fetchone()
    return float(row[0]) if row else 0.0


def _spent_by_request(conn: psycopg.Connection, ledger_runs: list[str], key_id: str) -> float:
    if not ledger_runs:
        return 0.0
    row = conn.execute(
        "SELECT coalesce(sum(cost_usd), 0)::float8 FROM glaze.provider_calls WHERE run_id = ANY(%s) AND table_id = %s",
        (ledger_runs, ledger_table(key_id)),
    ).fetchone()
    return float(row[0]) if row else 0.0


def ledger_costs(conn: psycopg.Connection, ledger_runs: list[str], table_id: str, row_key: str) -> dict[str, float]:
    """What the ledger says one entity's calls cost under these ledger runs, per provider."""
    if not ledger_runs:
        return {}
    rows = conn.execute(
        """SELECT provider, sum(cost_usd)::float8 FROM glaze.provider_calls
           WHERE run_id = ANY(%s) AND table_id = %s AND row_key = %s GROUP BY provider HAVING sum(cost_usd) > 0""",
        (ledger_runs, table_id, row_key),
    ).fetchall()
    return {provider: round(float(cost), 10) for provider, cost in rows}


def start_batch(conn: psycopg.Connection, batch_id: str, run_id: str) -> list[EnrichRequest]:
    """The run began: its requests are `running` and know their run; returns them (already finished ones left out)."""
    with conn.transaction():
        rows = (
            _cursor(conn)
            .execute(
                f"""UPDATE glaze.requests SET status = 'running', run_id = %s, started_at = now(), updated_at = now()
                    WHERE batch_id = %s AND status IN ('queued', 'running') RETURNING {_COLUMNS}""",
                (run_id, batch_id),
            )
            .fetchall()
        )
        _announce(conn, [r.request_id for r in rows])
    return rows


def add_ledger_runs(conn: psycopg.Connection, ledger_runs: dict[str, str]) -> None:
    """Remember under which ledger run id each request's paid calls are recorded (request id → ledger run)."""
    with conn.cursor() as cur:
        cur.executemany(
            """UPDATE glaze.requests SET ledger_runs = array_append(ledger_runs, %s)
               WHERE request_id = %s AND NOT (%s = ANY(ledger_runs))""",
            [(run, uuid.UUID(rid), run) for rid, run in ledger_runs.items()],
        )


def complete_requests(conn: psycopg.Connection, results: dict[str, dict[str, Any]]) -> None:
    """Write each request's result (request id → result, its cost in `costs.total_usd`) and announce it."""
    with conn.transaction():
        with conn.cursor() as cur:
            cur.executemany(
                """UPDATE glaze.requests SET status = 'completed', result = %s, cost_usd = %s, error = NULL,
                       finished_at = now(), updated_at = now()
                   WHERE request_id = %s AND status <> 'completed'""",
                [(Jsonb(r), r["costs"]["total_usd"], uuid.UUID(rid)) for rid, r in results.items()],
            )
        _announce(conn, list(results))


def record_timings(conn: psycopg.Connection, ids: Iterable[str], timings: dict[str, float]) -> None:
    conn.execute(
        "UPDATE glaze.requests SET timings = timings || %s WHERE request_id = ANY(%s)",
        (Jsonb(timings), [uuid.UUID(i) for i in ids]),
    )


def fail_requests(
    conn: psycopg.Connection, reason: str, *, batch_id: str | None = None, run_id: str | None = None
) -> int:
    """Mark every unfinished request of a batch or a run failed with `reason`; returns how many."""
    with conn.transaction():
        rows = conn.execute(
            """UPDATE glaze.requests SET status = 'failed', error = %s, finished_at = now(), updated_at = now()
               WHERE status IN ('queued', 'running') AND (batch_id = %s OR run_id = %s) RETURNING request_id""",
            (reason, batch_id, run_id),
        ).fetchall()
        _announce(conn, [r[0] for r in rows])
    return len(rows)


def requeue_batch(conn: psycopg.Connection, batch_id: str, *, max_attempts: int, reason: str) -> tuple[int, int]:
    """A batch whose run never finished them: back to the queue, or failed after `max_attempts`. (requeued, failed)"""
    with conn.transaction():
        failed = conn.execute(
            """UPDATE glaze.requests SET status = 'failed', error = %s, finished_at = now(), updated_at = now()
               WHERE batch_id = %s AND status IN ('queued', 'running') AND attempts >= %s RETURNING request_id""",
            (reason, batch_id, max_attempts),
        ).fetchall()
        requeued = conn.execute(
            """UPDATE glaze.requests SET status = 'queued', batch_id = NULL, launched_at = NULL, run_id = NULL,
                   budget_usd = NULL, updated_at = now()
               WHERE batch_id = %s AND status IN ('queued', 'running') RETURNING request_id""",
            (batch_id,),
        ).fetchall()
        _announce(conn, [r[0] for r in failed + requeued])
    return len(requeued), len(failed)


def stale_batches(conn: psycopg.Connection, older_than_s: float) -> list[str]:
    """Batches with unfinished requests, launched longer ago than `older_than_s`: their run should have them."""
    rows = conn.execute(
        """SELECT DISTINCT batch_id FROM glaze.requests
           WHERE status IN ('queued', 'running') AND batch_id IS NOT NULL
             AND launched_at < now() - make_interval(secs => %s)""",
        (older_than_s,),
    ).fetchall()
    return [r[0] for r in rows]


def has_queued(conn: psycopg.Connection) -> bool:
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM glaze.requests WHERE status = 'queued' AND batch_id IS NULL)"
    ).fetchone()
    return bool(row and row[0])


def _announce(conn: psycopg.Connection, ids: Iterable[uuid.UUID | str]) -> None:
    for rid in ids:
        conn.execute("SELECT pg_notify(%s, %s)", (EVENTS_CHANNEL, str(rid)))
