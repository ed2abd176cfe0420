"""Big tables: chunked runs end to end (every stage, merge, checks, landing), landing against simpler writers,
peak memory of the process tree, and the chunked job on 1 vs 2 Celery workers.

The LinkedIn simulator runs in its own process; the table asks for fields only LinkedIn fills, so
every row goes through the paid stage, the merge and landing. Cold: every row paid (simulator at
latency 0). Cached: the same table again, every answer from the Redis cache. Landing: the table's
records written again to fresh table ids by glaze's writer (COPY + one upsert), by row-by-row
INSERT … ON CONFLICT, and by a batched executemany upsert. Workers: a smaller table at latency L,
the Celery job with one worker, then with two. The last line is one JSON object.

    GLAZE_DATABASE_URL=… GLAZE_REDIS_URL=… .venv/bin/python bench/scale.py --rows 100000
    … bench/scale.py --rows 1000000 --skip-workers
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psutil

FIELDS = ["company_employee_range", "company_specialities"]


class TreeRss:
    """Peak resident memory summed over this process and every descendant (workers, simulator), sampled."""

    def __init__(self, every_s: float = 0.2) -> None:
        self.peak = 0
        self.every_s = every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.wait(self.every_s):
            total = 0
            for proc in [me, *me.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    total += proc.memory_info().rss
            self.peak = max(self.peak, total)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak / 2**20


def start_simulator(latency: float) -> tuple[subprocess.Popen, str]:
    command = [sys.executable, "-m", "glaze_pipeline.sandbox.apis", "linkedin", "--latency", str(latency)]
    sim = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert sim.stdout is not None
    return sim, json.loads(sim.stdout.readline())["base_url"]


def upload_table(url: str, home: Path, name: str, rows: int) -> str:
    from glaze_pipeline.core.intake.tables import TableStatus
    from glaze_pipeline.core.intake.uploads import upload_file
    from glaze_pipeline.core.storage import db

    path = home / f"{name}.csv"
    with path.open("w") as out:
        out.write("website\n")
        out.writelines(f"https://www.linkedin.com/company/{name}-{i}\n" for i in range(rows))
    with db.connect(url) as conn:
        table_id = upload_file(conn, path, fields=FIELDS, status=TableStatus.RUNNING).table_id
        conn.commit()
    path.unlink()
    return table_id


def chunked_run(table_id: str, chunk: int) -> float:
    from glaze_pipeline.config import settings
    from glaze_pipeline.core.pipeline.chunks import enrich_table_in_chunks
    from glaze_pipeline.core.pipeline.runtime import BudgetLimits, open_runtime

    started = time.perf_counter()
    with open_runtime(settings()) as runtime:
        run_id = uuid.uuid4().hex
        enrich_table_in_chunks(runtime, table_id, run_id, size=chunk, limits=BudgetLimits(1e9, 1e9))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000, help="rows of the big table")
    parser.add_argument("--chunk", type=int, default=20_000, help="entities per chunk (GLAZE_CHUNK_ROWS)")
    parser.add_argument("--landing-rows", type=int, default=20_000, help="records written by each landing method")
    parser.add_argument("--worker-rows", type=int, default=4_000, help="rows of the 1- vs 2-worker table")
    parser.add_argument("--latency", type=float, default=0.05, help="simulator latency L for the worker runs")
    parser.add_argument("--skip-workers", action="store_true", help="leave out the 1- vs 2-worker runs")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a stopped bench still drops its database

    home = Path(tempfile.mkdtemp(prefix="glaze-scale-"))
    os.environ |= {"GLAZE_HOME": str(home), "GLAZE_REDIS_PREFIX": f"glaze_bench_{uuid.uuid4().hex[:8]}:"}
    database = own_database()
    try:
        run(args, home)
    finally:
        database.drop()


class own_database:
    """A database of the bench's own on the configured server (dropped at the end), so it touches nobody's data."""

    def __init__(self) -> None:
        import psycopg
        from psycopg.conninfo import make_conninfo

        admin = os.environ.get("GLAZE_DATABASE_URL")
        if not admin:
            raise SystemExit("set GLAZE_DATABASE_URL to a PostgreSQL server the bench may create a database on")
        self.admin: str = admin
        self.name = f"glaze_bench_scale_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.name}"')
        os.environ["GLAZE_DATABASE_URL"] = make_conninfo(self.admin, dbname=self.name)

    def drop(self) -> None:
        import psycopg

        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


def run(args: argparse.Namespace, home: Path) -> None:
    from glaze_pipeline.config import settings
    from glaze_pipeline.core.pipeline.runtime import open_database

    url = open_database(settings())
    rss = TreeRss()
    sim, base_url = start_simulator(0.0)
    os.environ |= {
        "GLAZE_LINKEDIN_BASE_URL": base_url,
        "GLAZE_LINKEDIN_API_KEY": "sim-key",
        "GLAZE_LINKEDIN_RATE_PER_S": "1000000",
        "GLAZE_LINKEDIN_CONCURRENCY": "64",
        "GLAZE_LINKEDIN_PRICE_USD": "0.0001",
    }
    figures: dict[str, object] = {"bench": "scale", "rows": args.rows, "chunk": args.chunk}
    try:
        tag = uuid.uuid4().hex[:6]
        table_id = upload_table(url, home, f"big{tag}", args.rows)
        cold_s = chunked_run(table_id, args.chunk)
        cached_s = chunked_run(table_id, args.chunk)
        cpu = psutil.Process().cpu_times()
        figures |= {
            "cold_rows_per_s": round(args.rows / cold_s, 1),
            "cached_rows_per_s": round(args.rows / cached_s, 1),
            "bench_process_cpu_s": round(cpu.user + cpu.system, 1),
        }
        print(f"{args.rows} rows in chunks of {args.chunk}: cold {args.rows / cold_s:9.1f} rows/s (simulator at 0 ms)")
        print(f"{args.rows} rows, cached re-run, landing included:  {args.rows / cached_s:9.1f} rows/s")
        figures |= landing_ratios(url, table_id, args.landing_rows)
    finally:
        sim.terminate()
        sim.wait(10)
    if not args.skip_workers:
        figures |= worker_runs(url, home, args.worker_rows, args.latency)
    figures["peak_rss_mb_process_tree"] = round(rss.stop(), 1)
    print(f"peak RSS over the process tree: {figures['peak_rss_mb_process_tree']} MB")
    print("(the machine is shared with other agents' work: figures are indicative)")
    print(json.dumps(figures))


def landing_ratios(url: str, table_id: str, rows: int) -> dict[str, float]:
    """The same records written by glaze's writer, row by row, and by a batched executemany upsert."""
    import polars as pl
    from psycopg import sql

    from glaze_pipeline.core.model.fields import FIELD_NAMES
    from glaze_pipeline.core.storage import db
    from glaze_pipeline.core.storage.landing import _upsert_records

    columns = ("row_key", "input_url", "normalized_url", "entity_type", *FIELD_NAMES, "provenance", "cost_usd")
    with db.connect(url) as conn:
        found = conn.execute(
            sql.SQL("SELECT {} , status FROM glaze.records WHERE table_id = %s ORDER BY row_key LIMIT %s").format(
                sql.SQL(", ").join(sql.Identifier(c) for c in columns)
            ),
            (table_id, rows),
        ).fetchall()
        frame = pl.DataFrame(
            [(*r[:-3], json.dumps(r[-3]), float(r[-2]), r[-1]) for r in found],
            schema=[*columns, "status"],
            orient="row",
            infer_schema_length=None,
        )
        copies = [_copy_table(conn, table_id, f"{table_id}_{m}") for m in ("copy", "row", "many")]
        conn.commit()
        timings = {}
        started = time.perf_counter()
        with conn.transaction():
            _upsert_records(conn, copies[0], frame)
        timings["copy_upsert"] = time.perf_counter() - started
        insert = sql.SQL(
            "INSERT INTO glaze.records ({cols}, table_id, enriched_at) VALUES ({marks}, %s, now())"
            " ON CONFLICT (table_id, row_key) DO UPDATE SET provenance = EXCLUDED.provenance"
        ).format(
            cols=sql.SQL(", ").join(sql.Identifier(c) for c in (*columns, "status")),
            marks=sql.SQL(", ").join(sql.Placeholder() for _ in (*columns, "status")),
        )
        values = [list(r) for r in frame.iter_rows()]
        started = time.perf_counter()
        with conn.transaction():
            for row in values:
                conn.execute(insert, (*row, copies[1]))
        timings["row_by_row"] = time.perf_counter() - started
        started = time.perf_counter()
        with conn.transaction(), conn.cursor() as cur:
            cur.executemany(insert, [(*row, copies[2]) for row in values])
        timings["executemany"] = time.perf_counter() - started
        for copy in copies:
            conn.execute("DELETE FROM glaze.tables WHERE table_id = %s", (copy,))
        conn.commit()
    n = frame.height
    print(f"landing {n} records: glaze COPY + upsert {n / timings['copy_upsert']:9.1f} rows/s")
    print(f"                     row-by-row INSERT   {n / timings['row_by_row']:9.1f} rows/s")
    print(f"                     executemany upsert  {n / timings['executemany']:9.1f} rows/s")
    return {
        "landing_rows": n,
        "landing_copy_rows_per_s": round(n / timings["copy_upsert"], 1),
        "landing_vs_row_by_row": round(timings["row_by_row"] / timings["copy_upsert"], 2),
        "landing_vs_executemany": round(timings["executemany"] / timings["copy_upsert"], 2),
    }


def _copy_table(conn, table_id: str, new_id: str) -> str:
    """A glaze.tables row like `table_id`'s under another id, for the landing comparison to write to."""
    conn.execute(
        "INSERT INTO glaze.tables SELECT (jsonb_populate_record(NULL::glaze.tables,"
        " to_jsonb(t) || jsonb_build_object('table_id', %s::text))).* FROM glaze.tables t WHERE table_id = %s",
        (new_id, table_id),
    )
    return new_id


def worker_runs(url: str, home: Path, rows: int, latency: float) -> dict[str, float]:
    """The Celery job over a fresh table with one worker, then with two; providers at latency L."""
    sim, base_url = start_simulator(latency)
    os.environ |= {"GLAZE_LINKEDIN_BASE_URL": base_url, "GLAZE_LINKEDIN_CONCURRENCY": "8"}
    os.environ["GLAZE_CHUNK_ROWS"] = str(max(rows // 8, 1))
    figures = {}
    try:
        for count in (1, 2):
            table_id = upload_table(url, home, f"big{uuid.uuid4().hex[:6]}", rows)
            seconds = celery_run(home, table_id, count)
            figures[f"workers_{count}_rows_per_s"] = round(rows / seconds, 1)
            print(
                f"Celery job, {count} worker(s), {rows} rows at L = {latency * 1000:g} ms: {rows / seconds:8.1f} rows/s"
            )
    finally:
        sim.terminate()
        sim.wait(10)
    return figures


def celery_run(home: Path, table_id: str, count: int) -> float:
    import dagster as dg

    from glaze_pipeline.defs.merge.chunked import chunked_on_workers, workers_run_config

    redis_url = os.environ.get("GLAZE_REDIS_URL") or "redis://127.0.0.1:6379/0"
    prefix = f"glaze_bench_celery_{uuid.uuid4().hex[:8]}:"
    run_config = workers_run_config(redis_url, prefix)
    run_config["resources"] = {"budget": {"config": {"max_cost_usd": 1e6, "max_cost_per_row_usd": 1.0}}}
    source = run_config["execution"]["config"]["config_source"]
    config_dir = home / f"celery_{prefix[-9:-1]}"
    config_dir.mkdir()
    lines = [f"broker_url = {redis_url!r}", f"result_backend = {redis_url!r}"]
    lines += [f"{key} = {value!r}" for key, value in source.items()]
    (config_dir / "dagster_celery_config.py").write_text("\n".join(lines) + "\n")
    (home / f"dagster_{count}").mkdir()
    instance = dg.DagsterInstance.local_temp(str(home / f"dagster_{count}"))
    instance.add_dynamic_partitions("tables", [table_id])
    env = os.environ | {"PYTHONPATH": str(config_dir)}
    workers = []
    for i in range(count):
        log = (home / f"w{count}_{i}.log").open("w")
        command = [sys.executable, "-m", "celery", "-A", "dagster_celery.app", "worker", "--pool", "solo"]
        command += ["-Q", "dagster", "-n", f"bench{i}@%h", "--without-gossip", "--without-mingle", "-l", "INFO"]
        workers.append(subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT))
    try:
        for i in range(count):  # timed from when every worker is ready, not from their start-up
            while "ready." not in (home / f"w{count}_{i}.log").read_text():
                time.sleep(0.2)
        started = time.perf_counter()
        with dg.execute_job(
            dg.reconstructable(chunked_on_workers),
            instance=instance,
            run_config=run_config,
            tags={"dagster/partition": table_id},
        ) as result:
            if not result.success:
                raise SystemExit(f"the Celery run failed: see {home}")
        return time.perf_counter() - started
    finally:
        for worker in workers:
            worker.terminate()
            worker.wait(30)
        forget_keys(redis_url, prefix)


def forget_keys(redis_url: str, prefix: str) -> None:
    """Remove the bench's own Celery keys (its prefix only) from the shared Redis."""
    import redis

    client = redis.Redis.from_url(redis_url)
    for key in client.scan_iter(match=f"{prefix}*", count=1000):
        client.delete(key)


if __name__ == "__main__":
    main()
