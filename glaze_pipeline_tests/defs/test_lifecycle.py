"""No table left `running` or `queued` for good: failed and canceled runs, dead processes, lost run requests.

Runs are real Dagster runs in a real instance; a dead process is a real process that ended.
"""

from __future__ import annotations

import subprocess
import sys
import uuid

import dagster as dg
import psutil
import pytest

from glaze_pipeline.core.intake.lifecycle import ProcessIdentity
from glaze_pipeline.core.intake.tables import TableStatus, set_status, table_info
from glaze_pipeline.core.intake.uploads import upload_file
from glaze_pipeline.defs.jobs import ENRICH_TABLE_JOB
from glaze_pipeline.defs.lifecycle.runs import repair_tables
from glaze_pipeline.defs.lifecycle.sensors import lost_table_runs, table_run_canceled, table_run_failed
from glaze_pipeline.defs.resources import RuntimeResource
from glaze_pipeline_tests.helpers import demo_urls, write_table

LOST_AFTER_S = 60.0


@pytest.fixture
def instance() -> dg.DagsterInstance:
    return dg.DagsterInstance.ephemeral()


@pytest.fixture
def table_id(conn, tmp_path) -> str:
    uploaded = upload_file(conn, write_table(tmp_path / f"life_{uuid.uuid4().hex[:6]}.csv", demo_urls()[:2]))
    conn.commit()
    return uploaded.table_id


def _run(
    instance: dg.DagsterInstance, table_id: str, status: dg.DagsterRunStatus, tags: dict[str, str] | None = None
) -> dg.DagsterRun:
    from glaze_pipeline.definitions import defs

    return instance.create_run_for_job(
        defs.resolve_job_def(ENRICH_TABLE_JOB),
        status=status,
        tags={"dagster/partition": table_id, **(tags or {})},
    )


def _quiet_for(conn, table_id: str, seconds: int) -> None:
    conn.execute(
        "UPDATE glaze.tables SET heartbeat_at = now() - make_interval(secs => %s),"
        " updated_at = now() - make_interval(secs => %s) WHERE table_id = %s",
        (seconds, seconds, table_id),
    )
    conn.commit()


def _dead_process() -> ProcessIdentity:
    """The identity of a process that really ran on this host and has ended."""
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    identity = ProcessIdentity(ProcessIdentity.current().host, child.pid, psutil.Process(child.pid).create_time())
    child.communicate(b"")
    return identity


def _evaluate(sensor, instance: dg.DagsterInstance, run: dg.DagsterRun, kind: dg.DagsterEventType) -> None:
    """Evaluate a run-status sensor on the event Dagster really stored for `run`."""
    (record,) = instance.all_logs(run.run_id, of_type=kind)
    assert record.dagster_event is not None
    with dg.build_run_status_sensor_context(
        sensor_name=sensor.name,
        dagster_event=record.dagster_event,
        dagster_instance=instance,
        dagster_run=instance.get_run_by_id(run.run_id),
        resources={"runtime": RuntimeResource()},
    ) as context:
        sensor(context.for_run_failure() if kind == dg.DagsterEventType.RUN_FAILURE else context)


def _repairs(instance: dg.DagsterInstance, conn, table_id: str) -> list:
    """This table's repairs (tables other tests left behind in the shared database are repaired too)."""
    return [r for r in repair_tables(instance, conn, LOST_AFTER_S) if r.table_id == table_id]


# --- runs that fail say why ------------------------------------------------------------------------------


def test_a_failed_run_marks_its_table_failed_with_the_reason(conn, instance, table_id):
    set_status(conn, table_id, TableStatus.QUEUED)
    conn.commit()
    run = _run(instance, table_id, dg.DagsterRunStatus.STARTED)
    instance.report_run_failed(run, "the website stage ran out of disk")
    _evaluate(table_run_failed, instance, run, dg.DagsterEventType.RUN_FAILURE)
    info = table_info(conn, table_id)
    assert info.status == TableStatus.FAILED
    assert "the website stage ran out of disk" in (info.status_reason or "")
    assert f"glaze enrich {table_id}" in (info.status_reason or "")


def test_a_canceled_run_releases_its_table(conn, instance, table_id):
    run = _run(instance, table_id, dg.DagsterRunStatus.STARTED)
    set_status(conn, table_id, TableStatus.RUNNING, run.run_id)
    conn.commit()
    instance.report_run_canceled(run, "canceled in the UI")
    _evaluate(table_run_canceled, instance, run, dg.DagsterEventType.RUN_CANCELED)
    info = table_info(conn, table_id)
    assert info.status == TableStatus.FAILED and "canceled" in (info.status_reason or "")


def test_a_later_run_is_not_overwritten_by_an_old_failure(conn, instance, table_id):
    old = _run(instance, table_id, dg.DagsterRunStatus.STARTED)
    newer = _run(instance, table_id, dg.DagsterRunStatus.STARTED)
    set_status(conn, table_id, TableStatus.RUNNING, newer.run_id)
    conn.commit()
    instance.report_run_failed(old, "old news")
    _evaluate(table_run_failed, instance, old, dg.DagsterEventType.RUN_FAILURE)
    assert table_info(conn, table_id).status == TableStatus.RUNNING


# --- runs whose process died ---------------------------------------------------------------------------------


def test_a_run_whose_process_is_gone_is_failed_at_once(conn, instance, table_id):
    run = _run(instance, table_id, dg.DagsterRunStatus.STARTED, _dead_process().tags())
    set_status(conn, table_id, TableStatus.RUNNING, run.run_id)  # fresh heartbeat: only the pid tells
    conn.commit()
    (repair,) = _repairs(instance, conn, table_id)
    assert repair.table_id == table_id and "is gone" in repair.reason
    assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE
    info = table_info(conn, table_id)
    assert info.status == TableStatus.FAILED and "interrupted" in (info.status_reason or "")


def test_a_run_whose_process_lives_is_left_alone_however_quiet(conn, instance, table_id):
    run = _run(instance, table_id, dg.DagsterRunStatus.STARTED, ProcessIdentity.current().tags())
    set_status(conn, table_id, TableStatus.RUNNING, run.run_id)
    _quiet_for(conn, table_id, 3600)
    assert _repairs(instance, conn, table_id) == []
    assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED


def test_a_run_elsewhere_is_lost_once_its_heartbeat_stops(conn, instance, table_id):
    """A daemon-launched run (no pid glaze can check): the heartbeat decides."""
    run = _run(instance, table_id, dg.DagsterRunStatus.STARTED)
    set_status(conn, table_id, TableStatus.RUNNING, run.run_id)
    conn.commit()
    assert _repairs(instance, conn, table_id) == []  # it beat just now
    _quiet_for(conn, table_id, 600)
    (repair,) = _repairs(instance, conn, table_id)
    assert "no sign of life for 600 s" in repair.reason
    assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE
    assert table_info(conn, table_id).status == TableStatus.FAILED


def test_the_sensor_repairs_through_the_daemon(conn, instance, table_id, monkeypatch):
    run = _run(instance, table_id, dg.DagsterRunStatus.STARTED)
    set_status(conn, table_id, TableStatus.RUNNING, run.run_id)
    _quiet_for(conn, table_id, 600)
    monkeypatch.setenv("GLAZE_RUN_LOST_AFTER_S", "60")
    with dg.build_sensor_context(instance=instance, resources={"runtime": RuntimeResource()}) as context:
        result = lost_table_runs(context)
    assert "repaired" in str(result.skip_message)
    assert table_info(conn, table_id).status == TableStatus.FAILED


def test_the_heartbeat_keeps_a_live_run_alive(conn, instance, table_id, servers):
    from glaze_pipeline.core.intake.lifecycle import Heartbeat

    run = _run(instance, table_id, dg.DagsterRunStatus.STARTED)
    set_status(conn, table_id, TableStatus.RUNNING, run.run_id)
    _quiet_for(conn, table_id, 600)
    heartbeat = Heartbeat(servers.database_url, table_id, run.run_id, every_s=3600)  # beats once on start
    heartbeat.stop()
    assert _repairs(instance, conn, table_id) == []


# --- lost run requests -----------------------------------------------------------------------------------------


def test_a_queued_table_whose_request_never_reached_dagster_is_requeued(conn, instance, table_id):
    set_status(conn, table_id, TableStatus.QUEUED)
    _quiet_for(conn, table_id, 600)
    (repair,) = _repairs(instance, conn, table_id)
    assert repair.action == "requeued"
    assert table_info(conn, table_id).status == TableStatus.PENDING


def test_a_queued_table_with_its_run_waiting_is_left_alone(conn, instance, table_id):
    set_status(conn, table_id, TableStatus.QUEUED)
    conn.commit()
    _run(instance, table_id, dg.DagsterRunStatus.NOT_STARTED)  # waiting in the run queue
    _quiet_for(conn, table_id, 0)
    conn.execute(
        "UPDATE glaze.tables SET heartbeat_at = NULL, updated_at = now() - interval '10 minutes' WHERE table_id = %s",
        (table_id,),
    )
    conn.commit()
    # The run was created after the table was marked queued: its request arrived.
    assert _repairs(instance, conn, table_id) == []
    assert table_info(conn, table_id).status == TableStatus.QUEUED
