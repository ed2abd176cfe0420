"""Peak memory and time of hostile inputs: oversized uploads refused early, a 10^8-row query capped.

Each case runs in a fresh child process, so its peak RSS (VmHWM) is its own; the `baseline` case only
imports the modules, and every other figure is given beside it. The plain way of reading a query result
(psycopg fetchall of 10^6 rows, what `glaze sql` did before) runs in the same session for comparison.

    .venv/bin/python bench/hostile_input.py   # a database of its own on GLAZE_DATABASE_URL's server, else embedded
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

CASES = (
    "baseline",
    "csv_over_cap",
    "csv_50mb_cell",
    "csv_200k_rows",
    "parquet_bomb",
    "sql_plain_1e6",
    "sql_capped_1e8",
)


def _prepare(case: str, work: Path) -> Path:
    """The input file of a case (written once per session, in the work folder, never in the repo)."""
    path = work / f"{case}.{'parquet' if case.startswith('parquet') else 'csv'}"
    if path.exists():
        return path
    if case == "csv_over_cap":
        with path.open("wb") as f:
            f.write(b"url,notes\n")
            line = b"acme.example," + b"x" * 1000 + b"\n"
            for _ in range(100_000):  # ~100 MB, above the 64 MB cap this case sets
                f.write(line)
    elif case == "csv_50mb_cell":
        path.write_bytes(b"url,notes\nacme.example," + b"x" * 50_000_000 + b"\nglobex.example,ok\n")
    elif case == "csv_200k_rows":
        path.write_text("url,name\n" + "".join(f"https://company{i}.example/,Company {i}\n" for i in range(200_000)))
    elif case == "parquet_bomb":
        import polars as pl

        pl.DataFrame({"url": ["acme.example"], "blob": ["a" * 600_000_000]}).write_parquet(path, compression="zstd")
    return path


def _run_case(case: str, work: Path) -> dict[str, object]:
    from glaze_pipeline.config import UploadLimits, settings
    from glaze_pipeline.core.intake.ingest import UploadError, read_upload
    from glaze_pipeline.core.storage import readonly

    started = time.perf_counter()
    outcome = "-"
    if case.startswith(("csv", "parquet")):
        limits = UploadLimits(max_bytes=64 * 2**20) if case == "csv_over_cap" else settings().upload_limits
        try:
            parsed = read_upload(_prepare(case, work), limits=limits)
            outcome = f"accepted {parsed.counts.rows_in} rows"
        except UploadError as exc:
            outcome = "refused: " + str(exc).split(" (GLAZE_")[0][-70:]
    elif case.startswith("sql"):
        url = os.environ["GLAZE_DATABASE_URL"]  # the parent's own migrated database
        if case == "sql_plain_1e6":
            import psycopg

            with psycopg.connect(url) as conn:
                rows = conn.execute("SELECT generate_series(1, 1000000)").fetchall()
            outcome = f"{len(rows)} rows fetched"
        else:
            result = readonly.run_query(url, "SELECT generate_series(1, 100000000) AS n", max_rows=10_000)
            outcome = f"{len(result.rows)} rows, truncated={result.truncated}"
    seconds = time.perf_counter() - started
    return {"case": case, "outcome": outcome, "seconds": round(seconds, 2), "peak_rss_mb": round(_peak_rss_mb(), 1)}


def _peak_rss_mb() -> float:
    """This process's own high-water mark: VmHWM starts afresh at exec, while ru_maxrss keeps the parent's."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@contextlib.contextmanager
def _own_database(work: Path) -> Iterator[str]:
    """A migrated database of this run's own (on the configured server, or an embedded one), dropped after."""
    import psycopg

    from glaze_pipeline.config import settings
    from glaze_pipeline.core.storage import db, services

    embedded = settings({"GLAZE_HOME": str(work / "home")})
    base = os.environ.get("GLAZE_DATABASE_URL") or services.ensure_database(embedded)
    name = f"glaze_bench_{uuid.uuid4().hex[:8]}"
    url = psycopg.conninfo.make_conninfo(base, dbname=name)
    services.create_database_if_missing(url)
    try:
        db.migrate(url)
        yield url
    finally:
        with psycopg.connect(psycopg.conninfo.make_conninfo(base, dbname="postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not os.environ.get("GLAZE_DATABASE_URL"):
            services.stop_database(embedded)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--case", choices=CASES, help="run one case in this process (used by the parent)")
    parser.add_argument("--workdir", type=Path, help="where input files are written (default: a temp folder)")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="glaze-bench-hostile-"))
    if args.case:
        print(json.dumps(_run_case(args.case, work)))
        return
    for case in CASES:  # inputs are written here, in the parent, so writing them never counts
        if case.startswith(("csv", "parquet")):
            _prepare(case, work)
    results = []
    with _own_database(work) as url:
        for case in CASES:
            command = [sys.executable, __file__, "--case", case, "--workdir", str(work)]
            env = os.environ | {"GLAZE_DATABASE_URL": url}
            done = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
            results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    base = float(results[0]["peak_rss_mb"])
    print(f"{'case':<16} {'seconds':>8} {'peak RSS MB':>12} {'over baseline':>14}  outcome")
    for r in results:
        over = float(r["peak_rss_mb"]) - base
        print(f"{r['case']:<16} {r['seconds']:>8} {r['peak_rss_mb']:>12} {over:>14.1f}  {r['outcome']}")
    print(json.dumps({"bench": "hostile_input", "baseline_rss_mb": base, "cases": results}))


if __name__ == "__main__":
    main()
