"""One payment per request, whatever runs at once: real `glaze enrich` processes against a loopback simulator
that holds its answers until the test lets them go, so every interleaving here is forced, not hoped for."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import dagster as dg
import pytest
from aiohttp import web

from glaze_pipeline.core.intake.tables import TableStatus, table_info
from glaze_pipeline.core.intake.uploads import upload_file
from glaze_pipeline.sandbox.apis import ApiSimulator, company_facts, label_of
from glaze_pipeline_tests.helpers import write_table

pytestmark = pytest.mark.slow  # whole table runs in child processes

FIELDS = "company_employee_range,company_specialities"  # only LinkedIn fills these: one paid call per row
ROWS = 6
WAITING = "being paid for by another run"  # what a stage logs when it waits for another run's answers


class HeldSimulator(ApiSimulator):
    """The LinkedIn simulator, but every answer waits until `release` is set; `arrived` is set by the first ask."""

    def __init__(self) -> None:
        super().__init__("linkedin")
        self.arrived = threading.Event()
        self.release = threading.Event()

    async def _answer(self, read, request: web.Request) -> web.Response:
        self.arrived.set()
        await self._loop_wait(self.release)
        return await super()._answer(read, request)

    @staticmethod
    async def _loop_wait(event: threading.Event) -> None:
        import asyncio

        await asyncio.to_thread(event.wait, 120)


@pytest.fixture
def held(monkeypatch: pytest.MonkeyPatch, fresh_cache: str, fresh_ledger: None) -> Iterator[HeldSimulator]:
    with HeldSimulator() as sim:
        for name, value in sim.env().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("GLAZE_LINKEDIN_RATE_PER_S", "500")
        monkeypatch.setenv("GLAZE_LINKEDIN_CONCURRENCY", "4")
        monkeypatch.setenv("GLAZE_LINKEDIN_TIMEOUT_S", "300")  # a held answer is late, not lost: no retries
        try:
            yield sim
        finally:
            sim.release.set()


def _table(tmp_path: Path, name: str) -> Path:
    """The same LinkedIn pages in every table of a test: the same paid requests."""
    return write_table(tmp_path / f"{name}.csv", [f"https://www.linkedin.com/company/once-co-{i}" for i in range(ROWS)])


class Child:
    """`glaze enrich` in a process group of its own; its output goes to a file (a full pipe would stall it)."""

    def __init__(self, source: str, output: Path, **env: str) -> None:
        self.output = output
        with output.open("w") as sink:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "glaze_pipeline.cli", "enrich", source, "--fields", FIELDS, "--no-marts"],
                env=os.environ | env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def said(self) -> str:
        return self.output.read_text(errors="replace")

    def finish(self) -> tuple[int, str]:
        self.process.wait(timeout=300)
        return self.process.returncode, self.said()

    def wait_until(self, condition: Callable[[], bool], what: str) -> None:
        """Poll `condition` until it holds; fail with the child's output if it ends or takes too long."""
        deadline = time.monotonic() + 300
        while not condition():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{what} never happened; the child said:\n{self.said()}")
            time.sleep(0.1)

    def reached(self, sim: HeldSimulator) -> None:
        self.wait_until(sim.arrived.is_set, "the run reaching the simulator")


def _filled(conn, table_id: str) -> int:
    row = conn.execute(
        "SELECT count(*) FILTER (WHERE status = 'filled') FROM glaze.records WHERE table_id = %s", (table_id,)
    ).fetchone()
    conn.rollback()
    return int(row[0])


def _claims(conn) -> dict[str, int]:
    """Claims held now, by the pid part of their owner."""
    rows = conn.execute("SELECT split_part(owner, ':', 2), count(*) FROM glaze.paid_claims GROUP BY 1").fetchall()
    conn.rollback()
    return {f":{pid}:": int(n) for pid, n in rows}


def _paid(conn) -> dict[str, int]:
    rows = conn.execute(
        "SELECT entity, count(*) FROM glaze.provider_calls WHERE provider = 'linkedin' AND cost_usd > 0 GROUP BY 1"
    ).fetchall()
    conn.rollback()
    return {e: int(n) for e, n in rows}


def test_a_second_enrich_of_a_running_table_is_refused_and_nothing_is_paid_twice(servers, conn, held, tmp_path):
    first = Child(str(_table(tmp_path, "twice")), tmp_path / "first.log")
    first.reached(held)
    code, said = Child("twice", tmp_path / "second.log").finish()
    assert code != 0
    assert "table twice is already being enriched by run" in said and "Traceback" not in said
    held.release.set()
    code, said = first.finish()
    assert code == 0, said
    assert len(held.by_entity()) == ROWS and set(held.by_entity().values()) == {1}  # each page asked once…
    assert set(_paid(conn).values()) == {1}  # …and paid once
    assert table_info(conn, "twice").status == TableStatus.ENRICHED
    assert _filled(conn, "twice") == ROWS


def test_two_tables_asking_the_same_requests_at_once_pay_each_once(servers, conn, held, tmp_path):
    first = Child(str(_table(tmp_path, "one")), tmp_path / "one.log")
    first.reached(held)
    second = Child(str(_table(tmp_path, "other")), tmp_path / "other.log")
    # The second run finds every request claimed by the first: it says so and waits instead of paying.
    second.wait_until(lambda: WAITING in second.said(), "the second run waiting for the first one's answers")
    held.release.set()
    for child in (first, second):
        code, said = child.finish()
        assert code == 0, said
    assert len(held.by_entity()) == ROWS and set(held.by_entity().values()) == {1}
    assert set(_paid(conn).values()) == {1}
    assert _filled(conn, "one") == _filled(conn, "other") == ROWS  # the second read the first's answers


def test_a_killed_holders_claims_are_taken_over_after_the_lease(servers, conn, held, tmp_path):
    lease = {"GLAZE_LEASE_S": "1", "GLAZE_CLAIM_WAIT_S": "120"}
    doomed = Child(str(_table(tmp_path, "doomed")), tmp_path / "doomed.log", **lease)
    doomed.reached(held)
    os.killpg(doomed.process.pid, signal.SIGKILL)
    doomed.process.wait(10)
    asked_by_the_dead = held.count()
    assert _claims(conn) == {f":{doomed.process.pid}:": ROWS}  # the dead run still holds every request it claimed
    held.release.set()
    code, said = Child(str(_table(tmp_path, "heir")), tmp_path / "heir.log", **lease).finish()
    assert code == 0, said
    assert _claims(conn) == {}  # the heir took the dead run's claims over, then let go of them once answered…
    assert _filled(conn, "heir") == ROWS  # …instead of giving up on them (that would be provider_error rows)
    # Paid again: only the requests the killed run had in flight (its concurrency), nothing else twice.
    assert held.count() - asked_by_the_dead == ROWS
    assert asked_by_the_dead <= 4


# One Dagster run of `enrich_table` for one partition, on the instance under DAGSTER_HOME; says how it ended.
DAGSTER_RUN = """
import sys
import dagster as dg
from glaze_pipeline.definitions import defs

instance = dg.DagsterInstance.get()
job = defs.resolve_job_def("enrich_table")
result = job.execute_in_process(instance=instance, partition_key=sys.argv[1], raise_on_error=False)
failure = result.failure_data_for_node("source_rows") if not result.success else None
why = failure.error.to_string() if failure is not None and failure.error else ""
print("RUN", result.run_id, result.success, why.replace(chr(10), " "))
"""


def _fields(conn, table_id: str) -> list[tuple[object, ...]]:
    rows = conn.execute(
        "SELECT normalized_url, status, company_employee_range, company_specialities FROM glaze.records"
        " WHERE table_id = %s ORDER BY normalized_url",
        (table_id,),
    ).fetchall()
    conn.rollback()
    return rows


def test_two_dagster_runs_of_one_partition_at_once_land_and_pay_once(servers, conn, held, tmp_path, monkeypatch):
    home = tmp_path / "dagster"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    upload_file(conn, _table(tmp_path, "same"), fields=FIELDS.split(","), status=TableStatus.PENDING)
    conn.commit()
    dg.DagsterInstance.get().add_dynamic_partitions("tables", ["same"])
    runs = [
        subprocess.Popen([sys.executable, "-c", DAGSTER_RUN, "same"], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    # Launched together; the simulator holds every answer, so the run that took the table cannot finish before
    # the other one has been refused at its first step.
    while all(r.poll() is None for r in runs):
        time.sleep(0.1)
    refused = next(r for r in runs if r.poll() is not None)
    held.release.set()
    said = {r: (r.communicate(timeout=900)[0].splitlines() or ["?"])[-1].split(" ", 3) for r in runs}
    winner = next(said[r] for r in runs if r is not refused)
    assert winner[2] == "True" and said[refused][2] == "False", said
    assert f"table same is already being enriched by run {winner[1][:8]}" in said[refused][3]
    assert len(held.by_entity()) == ROWS and set(held.by_entity().values()) == {1}  # no paid call twice
    info = table_info(conn, "same")
    assert info.status == TableStatus.ENRICHED
    assert conn.execute("SELECT last_run_id FROM glaze.tables WHERE table_id = 'same'").fetchone()[0] == winner[1]
    # The final state is one run's: every row once, with the simulator's one answer for it.
    same = _fields(conn, "same")
    assert len(same) == ROWS and len({r[0] for r in same}) == ROWS
    assert all(r[1] == "filled" and r[2] == company_facts(label_of(str(r[0])))["band"] for r in same), same
