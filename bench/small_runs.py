"""Small runs with the daemon running: an 8-row inbox file from drop to landed, then a backfill of 4 cached tables.

Starts `glaze dev` on a temporary GLAZE_HOME (its own database on GLAZE_DATABASE_URL's server, or the
embedded one) with the demo sites on loopback (`glaze_pipeline/sandbox/dev.py`). It drops an 8-row file in
its inbox and times it until `glaze.tables` says `enriched`, with where the seconds went (from the run
records). Then, as a user does in the UI (`glaze_pipeline/sandbox/ui_api.py`, Dagster's GraphQL API), it
stops the new-tables sensor, uploads 4 tables of the same (now cached) companies, adds their partitions and
launches one backfill of `enrich_table` over them, timed from the launch until its 4 runs have finished and
the tables are `enriched`. Last, SIGTERM to `glaze dev` and the processes of its session still there after.
`--before`: the multiprocess executor for the inbox table (GLAZE_IN_PROCESS_MAX_ROWS=0). The backfill's runs
take the job's config (forkserver processes) either way: a job backfill ignores the run config it is given.

    .venv/bin/python bench/small_runs.py [--before] [--port 3931]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import dagster as dg
import psycopg

from glaze_pipeline.sandbox.dev import GlazeDev, wait_until
from glaze_pipeline.sandbox.sites import demo_hosts
from glaze_pipeline.sandbox.ui_api import DagsterUi


def enriched(database_url: str, table_ids: list[str]) -> bool:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT count(*) FROM glaze.tables WHERE table_id = ANY(%s) AND status = 'enriched'", (table_ids,)
        ).fetchone()
    return rows is not None and rows[0] == len(table_ids)


def table_csv(path: Path, hosts: list[str]) -> Path:
    """The same companies in every table, with the table's name in a second column: the inbox sensor keys a
    file's run by its content hash, and a file with the content of one registered before is never registered."""
    path.write_text("website,batch\n" + "".join(f"https://{h},{path.stem.lstrip('.')}\n" for h in hosts))
    return path


def breakdown(dagster_home: Path, dropped_at: float) -> dict[str, float]:
    """Where the 8-row table's seconds went, from the run records: each run's wait for its sensor tick
    (created), for the queue and its process start (started), and its steps (ended)."""
    instance = dg.DagsterInstance.from_config(str(dagster_home))
    records = sorted(instance.get_run_records(), key=lambda r: r.create_timestamp.timestamp())
    seconds: dict[str, float] = {}
    previous = dropped_at
    for record in records:
        job = record.dagster_run.job_name
        if job not in ("register_table", "enrich_table") or record.start_time is None or record.end_time is None:
            continue
        created = record.create_timestamp.timestamp()
        seconds[f"{job}: sensor tick"] = round(created - previous, 1)
        seconds[f"{job}: queue + run process start"] = round(record.start_time - created, 1)
        seconds[f"{job}: steps"] = round(record.end_time - record.start_time, 1)
        previous = record.end_time
    return seconds


def cached_backfill(dev: GlazeDev, hosts: list[str]) -> float:
    """Seconds from launching one backfill over 4 uploaded tables of cached companies to all 4 landed."""
    ui = DagsterUi(dev.port)
    ui.stop_sensor("new_tables_sensor")  # the backfill's runs are the only ones
    names = [f"cached_{i}" for i in range(4)]
    for name in names:
        done = dev.glaze("upload", str(table_csv(dev.home / f"{name}.csv", hosts)), "--name", name)
        if done.returncode != 0:
            raise SystemExit(done.stderr)
        ui.add_partition(name)
    started = time.monotonic()
    runs, _ = ui.wait_for_backfill(ui.launch_backfill(names), len(names), 1800)
    if set(runs.values()) != {"SUCCESS"} or not enriched(dev.database_url, names):
        raise SystemExit(f"the backfill did not land every table: {runs}")
    took = time.monotonic() - started
    ui.wait_until_idle(900)  # the marts run that follows, before glaze dev is stopped
    return took


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--before", action="store_true", help="force the multiprocess executor (the old way)")
    parser.add_argument("--port", type=int, default=3931)
    args = parser.parse_args()
    hosts = (demo_hosts() * 8)[:8]
    env = {"GLAZE_IN_PROCESS_MAX_ROWS": "0"} if args.before else {}
    with GlazeDev(args.port, env) as dev:
        url = dev.database_url
        table_csv(dev.home / ".eight_rows.csv", hosts).rename(dev.inbox / "eight_rows.csv")
        dropped_at = time.time()
        eight = wait_until(lambda: enriched(url, ["eight_rows"]), "the 8-row table", 900)
        parts = breakdown(dev.home / "dagster", dropped_at)
        cached = cached_backfill(dev, hosts)
    figures = {
        "mode": "before (multiprocess)" if args.before else "after (in process up to GLAZE_IN_PROCESS_MAX_ROWS)",
        "ui_startup_s": round(dev.startup_s, 1),
        "eight_rows_drop_to_landed_s": round(eight, 1),
        "four_cached_tables_backfill_launch_to_landed_s": round(cached, 1),
        "processes_left_after_sigterm": len(dev.left_after_sigterm),
    }
    figures |= {f"eight_rows {part} s": value for part, value in parts.items()}
    print("| figure | value |\n|---|---|")
    for key, value in figures.items():
        print(f"| {key} | {value} |")
    print(json.dumps(figures), file=sys.stdout)


if __name__ == "__main__":
    main()
