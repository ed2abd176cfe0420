"""A real `glaze enrich` stopped mid-run (SIGKILL, Ctrl-C): the table and the Dagster run end in a state the
next command, the sensor and the UI understand."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
from click.testing import CliRunner

from glaze_pipeline.cli import main
from glaze_pipeline.core.intake.tables import TableStatus, table_info
from glaze_pipeline_tests.helpers import RoutedSite, html, write_table

pytestmark = pytest.mark.slow

HOST = "stalled.example"


def _wait_for(condition, what: str, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _start_enrich(servers, tmp_path: Path, site: RoutedSite, name: str) -> tuple[subprocess.Popen[bytes], Path]:
    """`glaze enrich` in its own process group, stuck on a site that answers only when released."""
    source = write_table(tmp_path / f"{name}.csv", [f"https://{HOST}"])
    env = os.environ | {
        "GLAZE_RESOLVE": f"{HOST}={site.ip}:{site.port}",
        "GLAZE_FETCH_TIMEOUT_S": "300",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "glaze_pipeline.cli", "enrich", str(source), "--fields", "company_name"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own group: the signal reaches the crawler children too, as from a terminal
    )
    _wait_for(lambda: bool(site.log) or process.poll() is not None, "the run to reach the website")
    assert process.poll() is None, process.communicate()
    return process, source


@pytest.fixture
def stalled_site():
    with RoutedSite("127.0.0.1") as site:

        def stall(seen: int):
            site.release.wait(300)
            return html("<title>Stalled</title>")

        site.routes[(HOST, "/")] = stall
        site.routes[("*", "/robots.txt")] = lambda seen: (404, {}, b"")
        yield site


def _run_of(servers, table_id: str, conn) -> dg.DagsterRun:
    os.environ["DAGSTER_HOME"] = str(servers.home / "dagster")
    instance = dg.DagsterInstance.get()
    row = conn.execute("SELECT last_run_id FROM glaze.tables WHERE table_id = %s", (table_id,)).fetchone()
    conn.rollback()
    run = instance.get_run_by_id(row[0]) if row and row[0] else None
    assert run is not None
    return run


def test_sigkill_leaves_nothing_running_for_the_next_command(servers, conn, tmp_path, stalled_site):
    process, _ = _start_enrich(servers, tmp_path, stalled_site, "killed_mid_run")
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert table_info(conn, "killed_mid_run").status == TableStatus.RUNNING  # what the kill left behind
    conn.rollback()
    assert _run_of(servers, "killed_mid_run", conn).status == dg.DagsterRunStatus.STARTED

    listed = CliRunner().invoke(main, ["tables"])  # any next command looks first
    assert listed.exit_code == 0, listed.output
    assert "killed_mid_run failed" in listed.output and "is gone" in listed.output
    info = table_info(conn, "killed_mid_run")
    assert info.status == TableStatus.FAILED and "glaze enrich killed_mid_run" in (info.status_reason or "")
    conn.rollback()
    assert _run_of(servers, "killed_mid_run", conn).status == dg.DagsterRunStatus.FAILURE  # the UI shows it failed


def test_ctrl_c_fails_the_run_and_says_how_to_go_on(servers, conn, tmp_path, stalled_site):
    process, _ = _start_enrich(servers, tmp_path, stalled_site, "interrupted_run")
    os.killpg(process.pid, signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr.decode()
    message = stderr.decode()
    assert "Traceback" not in message and "glaze enrich interrupted_run" in message
    info = table_info(conn, "interrupted_run")
    assert info.status == TableStatus.FAILED and "Ctrl-C" in (info.status_reason or "")
    conn.rollback()
    assert _run_of(servers, "interrupted_run", conn).status == dg.DagsterRunStatus.FAILURE
