"""A real uvicorn server on loopback serving the API, and small helpers the API tests share."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import dagster as dg
import httpx
import psycopg
import uvicorn

from glaze_pipeline.api.app import create_app
from glaze_pipeline.config import settings
from glaze_pipeline.core.storage.api_keys import create_key
from glaze_pipeline.defs.resources import RuntimeResource
from glaze_pipeline.record_defs.sensors import queued_requests_sensor


@dataclass(frozen=True)
class ApiServer:
    url: str
    server: uvicorn.Server

    def client(self, token: str | None = None, **kwargs: object) -> httpx.Client:
        headers = {"X-API-Key": token} if token is not None else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, **kwargs)  # type: ignore[arg-type]


@contextmanager
def api_server() -> Iterator[ApiServer]:
    """`glaze api` in a thread of this process, on a free loopback port, with the settings of the environment now."""
    config = uvicorn.Config(create_app(settings()), host="127.0.0.1", port=0, log_level="info", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="glaze-test-api", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the API server did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield ApiServer(f"http://127.0.0.1:{port}", server)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def new_key(conn: psycopg.Connection, name: str = "test", **limits: object) -> str:
    _, token = create_key(conn, name, **limits)  # type: ignore[arg-type]
    conn.commit()
    return token


def sensor_tick(instance: dg.DagsterInstance, cursor: str | None = None) -> dg.SensorResult:
    """One evaluation of the requests sensor, as the daemon would run it."""
    with dg.build_sensor_context(instance=instance, cursor=cursor, resources={"runtime": RuntimeResource()}) as context:
        result = queued_requests_sensor(context)
    assert isinstance(result, dg.SensorResult)
    return result


def run_batch(instance: dg.DagsterInstance, run_request: dg.RunRequest) -> dg.ExecuteInProcessResult:
    """Execute the enrich_record run a sensor requested, in this process, with its config and tags.

    The job comes from the record code location, as the daemon's run would."""
    from glaze_pipeline.record_definitions import defs

    job = defs.resolve_job_def("enrich_record")
    config = run_request.run_config
    return job.execute_in_process(
        run_config=config if isinstance(config, dict) else config.to_config_dict(),
        instance=instance,
        tags=run_request.tags,
        raise_on_error=False,
    )
