"""The embedded servers, exercised even when the session runs on configured ones (as CI does)."""

import shutil
import tempfile
from pathlib import Path

import psycopg
import pytest
import redis

from glaze_pipeline.config import settings
from glaze_pipeline.core.storage import services


@pytest.fixture
def private_home():
    home = Path(tempfile.mkdtemp(prefix="glaze-services-"))
    yield home
    s = settings({"GLAZE_HOME": str(home)})
    services.stop_database(s)
    services.stop_redis(s)
    shutil.rmtree(home, ignore_errors=True)


def test_embedded_servers_start_answer_and_stop(private_home):
    s = settings({"GLAZE_HOME": str(private_home)})
    pg, rd = services.services_up(s)
    assert pg.embedded and rd.embedded
    with psycopg.connect(pg.url or "") as conn:
        assert conn.execute("SELECT current_database()").fetchone() == ("glaze",)
    assert redis.Redis.from_url(rd.url or "").ping()
    # A second `up` (another process, another command) reuses the running servers.
    assert [x.url for x in services.services_up(s)] == [pg.url, rd.url]

    states = services.services_down(s)
    assert [x.running for x in states] == [False, False]


def test_configured_urls_are_used_as_given_and_never_stopped(servers):
    s = settings(
        {
            "GLAZE_HOME": str(servers.home),
            "GLAZE_DATABASE_URL": servers.database_url,
            "GLAZE_REDIS_URL": servers.redis_url,
        }
    )
    assert services.ensure_database(s) == servers.database_url
    assert services.ensure_redis(s) == servers.redis_url
    assert services.stop_database(s) is False and services.stop_redis(s) is False
    assert all(state.running and not state.embedded for state in services.services_status(s))


def test_redact_hides_passwords():
    assert services.redact("postgresql://glaze:s3cret@db:5432/glaze") == "postgresql://glaze:***@db:5432/glaze"
    assert "s3cret" not in services.redact("redis://:s3cret@cache:6379/0")
