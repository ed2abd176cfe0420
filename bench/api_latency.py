"""Single-record API latency over HTTP: cache hits, and misses through the requests sensor and enrich_record.

Starts everything a deployment runs: `glaze api` (uvicorn), the Dagster daemon (sensors, run queue, runs
launched by the code server), a loopback website server and the paid-provider simulators at latency 0.
Then, one request at a time:

- misses: `POST /v1/enrich?wait=60` for sites nobody asked about → sensor → run → result; where the time
  goes comes from the request's own timestamps (queued → claimed by the sensor → run started → steps done
  → written back), and the CPU seconds the run's process used before its op (`launch_cpu`: interpreter,
  code location, run set-up) and in its steps (`steps_cpu`), which a busy machine does not inflate;
- hits: the same URLs again, answered from the cache with no run, beside `GET /healthz` (the HTTP floor);
  each URL's first hit (the full cache walk) is counted apart from the repeats (remembered by the API).

Goals (the reference design): hit p50 < 10 ms, miss p50 < 5 s. Nothing is written to the repo; the
database and Redis keys it makes are dropped at the end.

    .venv/bin/python bench/api_latency.py --misses 8 --hits 200
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

DAEMON_YAML = """\
telemetry:
  enabled: false
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
  config:
    dequeue_interval_seconds: 1
    dequeue_use_threads: true
sensors:
  use_threads: true
  num_workers: 4
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def simulator(vendor: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "glaze_pipeline.sandbox.apis", vendor, "--latency", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    return proc, json.loads(proc.stdout.readline())["base_url"]


def wait_until_up(url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not come up within {timeout:.0f} s")


def breakdown(conn: Any, request_id: str) -> dict[str, float]:
    row = conn.execute(
        """SELECT extract(epoch FROM launched_at - created_at), extract(epoch FROM started_at - launched_at),
                  (timings ->> 'steps_s')::float8, extract(epoch FROM finished_at - started_at),
                  extract(epoch FROM finished_at - created_at),
                  (timings ->> 'launch_cpu_s')::float8, (timings ->> 'steps_cpu_s')::float8
           FROM glaze.requests WHERE request_id = %s""",
        (uuid.UUID(request_id),),
    ).fetchone()
    sensor, launch, steps, run, total, launch_cpu, steps_cpu = (float(v or 0) for v in row)
    parts = {"sensor_wait": sensor, "run_launch": launch, "steps": steps, "write_back": run - steps, "total": total}
    # CPU seconds of the run's process before its op and during the steps: what load does not inflate.
    return parts | {"launch_cpu": launch_cpu, "steps_cpu": steps_cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--misses", type=int, default=8, help="misses, one at a time (the first is a warm-up)")
    parser.add_argument("--hits", type=int, default=200, help="cache hits, one at a time")
    parser.add_argument("--requests-wait", default=None, help="GLAZE_REQUESTS_WAIT_S for the sensor (default: 4)")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="glaze-bench-api-"))
    token = uuid.uuid4().hex[:8]
    env = dict(os.environ)
    env |= {"GLAZE_HOME": str(home), "GLAZE_REDIS_PREFIX": f"glaze_bench_{token}:", "GLAZE_ALLOW_PRIVATE_NETWORKS": "1"}
    env |= {"GLAZE_CRAWL_START_DELAY_S": "0", "DAGSTER_HOME": str(home / "dagster")}
    if args.requests_wait is not None:
        env["GLAZE_REQUESTS_WAIT_S"] = args.requests_wait
    os.environ.update(env)

    import psycopg

    from glaze_pipeline.config import settings
    from glaze_pipeline.core.storage import db, services
    from glaze_pipeline.core.storage.api_keys import create_key
    from glaze_pipeline.sandbox.sites import SiteServer, synthetic_pages

    base = services.ensure_database(settings())
    bench_db = f"glaze_bench_{token}"
    database_url = psycopg.conninfo.make_conninfo(base, dbname=bench_db)
    services.create_database_if_missing(database_url)
    os.environ["GLAZE_DATABASE_URL"] = env["GLAZE_DATABASE_URL"] = database_url
    db.migrate(database_url)
    procs: list[subprocess.Popen[str]] = []
    site = SiteServer(synthetic_pages).start()
    try:
        ip, port = site.address
        env["GLAZE_RESOLVE"] = f"*.bench.example={ip}:{port}"
        for vendor in ("search", "linkedin"):
            proc, url = simulator(vendor)
            procs.append(proc)
            env |= {f"GLAZE_{vendor.upper()}_BASE_URL": url, f"GLAZE_{vendor.upper()}_API_KEY": "sim-key"}
        api = start_api_and_daemon(home, env, procs)
        wait_until_up(f"{api}/healthz")
        with db.connect(database_url) as conn:
            _, key = create_key(conn, "bench", rate_per_min=1_000_000, burst=100_000)
            conn.commit()
        report = measure(api, key, database_url, args)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        site.stop()
        clean_up(base, bench_db, env["GLAZE_REDIS_PREFIX"])
    print(f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    report["load_avg_1m"] = round(os.getloadavg()[0], 1)
    print(json.dumps(report))


def start_api_and_daemon(home: Path, env: dict[str, str], procs: list[subprocess.Popen[str]]) -> str:
    """`glaze api` and the Dagster daemon (both code locations of workspace.yaml) as subprocesses; the API's URL."""
    (home / "dagster").mkdir(parents=True, exist_ok=True)
    (home / "dagster" / "dagster.yaml").write_text(DAEMON_YAML)
    api_port = free_port()
    bin_dir = Path(sys.executable).parent
    logs = {name: (home / f"{name}.log").open("w") for name in ("api", "daemon")}
    print(f"logs: {home}/api.log, {home}/daemon.log", file=sys.stderr)
    api_cmd = [str(bin_dir / "glaze"), "api", "--port", str(api_port)]
    procs.append(subprocess.Popen(api_cmd, env=env, stdout=logs["api"], stderr=subprocess.STDOUT, text=True))
    daemon_cmd = [str(bin_dir / "dagster-daemon"), "run", "-w", "workspace.yaml"]
    cwd = Path(__file__).resolve().parents[1]
    procs.append(
        subprocess.Popen(daemon_cmd, env=env, cwd=cwd, stdout=logs["daemon"], stderr=subprocess.STDOUT, text=True)
    )
    return f"http://127.0.0.1:{api_port}"


def clean_up(base_url: str, bench_db: str, redis_prefix: str) -> None:
    """Drop the bench's database and its Redis keys."""
    import psycopg
    import redis

    from glaze_pipeline.config import settings
    from glaze_pipeline.core.storage import services

    with psycopg.connect(psycopg.conninfo.make_conninfo(base_url, dbname="postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{bench_db}" WITH (FORCE)')
    client = redis.Redis.from_url(settings().redis_url or services.ensure_redis(settings()))
    keys = list(client.scan_iter(match=redis_prefix + "*", count=1000))
    if keys:
        client.delete(*keys)


def measure(api: str, key: str, database_url: str, args: argparse.Namespace) -> dict[str, Any]:
    import psycopg

    fields = ["company_name", "company_email", "company_industry"]
    urls = [f"https://co{uuid.uuid4().hex[:10]}.bench.example" for _ in range(args.misses)]
    miss_s: list[float] = []
    parts: list[dict[str, float]] = []
    with httpx.Client(base_url=api, headers={"X-API-Key": key}, timeout=120) as client:
        client.get("/healthz")
        for i, url in enumerate(urls):
            started = time.perf_counter()
            answer = client.post("/v1/enrich", params={"wait": 60}, json={"url": url, "fields": fields})
            body = answer.json()
            deadline = time.monotonic() + (600 if i == 0 else 120)  # the first waits for the daemon to load the code
            while body["status"] in ("queued", "running") and time.monotonic() < deadline:
                body = client.get(f"/v1/enrich/{body['request_id']}").json()
                time.sleep(0.05)
            elapsed = time.perf_counter() - started
            if body["status"] != "completed":
                raise SystemExit(f"miss {i} ended {body['status']}: {body.get('error')}")
            if i == 0:
                continue  # warm-up: the daemon's first tick and the code server's first run
            miss_s.append(elapsed)
            with psycopg.connect(database_url) as conn:
                parts.append(breakdown(conn, body["request_id"]))
        floor_s: list[float] = []
        hit_s: list[float] = []
        first_hit_s: list[float] = []
        for i in range(args.hits):
            started = time.perf_counter()
            client.get("/healthz")
            floor_s.append(time.perf_counter() - started)
            started = time.perf_counter()
            answer = client.post("/v1/enrich", json={"url": urls[i % len(urls)], "fields": fields})
            # A URL's first hit walks the cache (gap analysis, MGETs, merge, checks); later ones are remembered.
            (first_hit_s if i < len(urls) else hit_s).append(time.perf_counter() - started)
            if answer.status_code != 200 or not answer.json()["cache_hit"]:
                raise SystemExit(f"hit {i} was not a cache hit: {answer.status_code}")
    return report(floor_s, hit_s, first_hit_s, miss_s, parts)


def report(
    floor_s: list[float],
    hit_s: list[float],
    first_hit_s: list[float],
    miss_s: list[float],
    parts: list[dict[str, float]],
) -> dict[str, Any]:
    """The human table, and the figures for the final JSON line."""

    def row(name: str, values: list[float]) -> None:
        p50, p95, top = (1000 * v for v in (pct(values, 0.5), pct(values, 0.95), max(values)))
        print(f"{name:<28}{len(values):>6}{p50:>11.1f}{p95:>11.1f}{top:>11.1f}")

    print(f"{'':<28}{'n':>6}{'p50 ms':>11}{'p95 ms':>11}{'max ms':>11}")
    row("GET /healthz (HTTP floor)", floor_s)
    row("POST /v1/enrich, cache hit", hit_s)
    row("  the URL's first hit", first_hit_s)
    row("POST /v1/enrich, miss", miss_s)
    print("\nwhere a miss's time goes (median of each part, s):")
    medians = {part: statistics.median(p[part] for p in parts) for part in parts[0]}
    for part, value in medians.items():
        print(f"  {part:<12}{value:>8.3f}")
    return {
        "bench": "api_latency",
        "hits": len(hit_s),
        "hit_p50_ms": round(pct(hit_s, 0.5) * 1000, 2),
        "hit_p95_ms": round(pct(hit_s, 0.95) * 1000, 2),
        "first_hit_p50_ms": round(pct(first_hit_s, 0.5) * 1000, 2),
        "floor_p50_ms": round(pct(floor_s, 0.5) * 1000, 2),
        "misses": len(miss_s),
        "miss_p50_s": round(pct(miss_s, 0.5), 3),
        "miss_p95_s": round(pct(miss_s, 0.95), 3),
        "miss_parts_p50_s": {k: round(v, 3) for k, v in medians.items()},
        "goal_hit_p50_ms": 10,
        "goal_miss_p50_s": 5,
    }


if __name__ == "__main__":
    main()
