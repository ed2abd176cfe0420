"""Small runs with the daemon running: an 8-row inbox file from sensor tick to landed, then 4 cached tables.

Starts `glaze dev` on a temporary GLAZE_HOME (its own database on GLAZE_DATABASE_URL's server, or the
embedded one) with the demo sites on loopback, drops files in its inbox and times them until `glaze.tables`
says `enriched`; then sends SIGTERM to `glaze dev` and checks that its process group is gone.
`--before` forces the multiprocess executor for every table (GLAZE_IN_PROCESS_MAX_ROWS=0).

    .venv/bin/python bench/small_runs.py [--before] [--port 3931]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import psycopg

from glaze_pipeline.config import settings
from glaze_pipeline.core.storage import services
from glaze_pipeline.sandbox.sites import DEMO_SITES, SiteServer, demo_hosts, directory_pages

ROOT = Path(__file__).resolve().parents[1]


def wait_for(check, what: str, timeout_s: float, every_s: float = 0.5) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if check():
            return time.monotonic() - started
        time.sleep(every_s)  # polling an outside process: nothing to wait on but its state
    raise SystemExit(f"timed out after {timeout_s:.0f} s waiting for {what}")


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except OSError:
        return False


def enriched(database_url: str, table_ids: list[str]) -> bool:
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT count(*) FROM glaze.tables WHERE table_id = ANY(%s) AND status = 'enriched'", (table_ids,)
        ).fetchone()
    return rows is not None and rows[0] == len(table_ids)


def table_csv(path: Path, hosts: list[str]) -> Path:
    path.write_text("website\n" + "".join(f"https://{h}\n" for h in hosts))
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--before", action="store_true", help="force the multiprocess executor (the old way)")
    parser.add_argument("--port", type=int, default=3931)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="glaze-bench-small-"))
    base = os.environ.get("GLAZE_DATABASE_URL")
    database_url = psycopg.conninfo.make_conninfo(base, dbname=f"glaze_bench_{uuid.uuid4().hex[:8]}") if base else None
    if database_url:
        services.create_database_if_missing(database_url)
    hosts = (demo_hosts() * 8)[:8]
    with SiteServer(directory_pages(DEMO_SITES)) as site:
        env = os.environ | {"GLAZE_HOME": str(home), "GLAZE_RESOLVE": site.resolve_spec(demo_hosts())}
        env |= {"GLAZE_ALLOW_PRIVATE_NETWORKS": "1", "GLAZE_CRAWL_START_DELAY_S": "0"}
        env |= {"GLAZE_IN_PROCESS_MAX_ROWS": "0"} if args.before else {}
        env |= {"GLAZE_DATABASE_URL": database_url} if database_url else {}
        glaze = ROOT / ".venv" / "bin" / "glaze"
        dev = subprocess.Popen([str(glaze), "dev", "--port", str(args.port)], env=env, start_new_session=True)
        try:
            ui = f"http://127.0.0.1:{args.port}/server_info"
            startup = wait_for(lambda: answers(ui) or dev.poll() is not None, "the UI", 900)
            if dev.poll() is not None:
                raise SystemExit(f"glaze dev ended (exit code {dev.returncode}) before the UI answered")
            url = database_url or services.ensure_database(settings(env))
            inbox = home / "inbox"
            inbox.mkdir(exist_ok=True)
            table_csv(home / ".eight.csv", hosts).rename(inbox / "eight_rows.csv")
            eight = wait_for(lambda: enriched(url, ["eight_rows"]), "the 8-row table", 900)
            names = [f"cached_{i}" for i in range(4)]
            for name in names:
                table_csv(home / f".{name}.csv", hosts).rename(inbox / f"{name}.csv")
            cached = wait_for(lambda: enriched(url, names), "the 4 cached tables", 1800)
        finally:
            if dev.poll() is None:
                os.kill(dev.pid, signal.SIGTERM)
                dev.wait(timeout=120)
        left = subprocess.run(["pgrep", "-s", str(dev.pid)], capture_output=True, text=True).stdout.split()
    figures = {
        "mode": "before (multiprocess)" if args.before else "after (in process up to GLAZE_IN_PROCESS_MAX_ROWS)",
        "ui_startup_s": round(startup, 1),
        "eight_rows_drop_to_landed_s": round(eight, 1),
        "four_cached_tables_drop_to_landed_s": round(cached, 1),
        "processes_left_after_sigterm": len(left),
    }
    print("| figure | value |\n|---|---|")
    for key, value in figures.items():
        print(f"| {key} | {value} |")
    print(json.dumps(figures), file=sys.stdout)


if __name__ == "__main__":
    main()
