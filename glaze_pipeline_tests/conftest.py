"""Shared fixtures: real PostgreSQL and Redis for the whole session, in a database and keyspace of their own.

With GLAZE_DATABASE_URL / GLAZE_REDIS_URL set (CI), tests create a fresh database
and key prefix on those servers and drop them at the end; otherwise they start
the embedded servers under a temporary GLAZE_HOME, exactly as `glaze` does.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import redis
from psycopg import sql

from glaze_pipeline.config import settings
from glaze_pipeline.core.storage import db, services
from glaze_pipeline.sandbox.sites import DEMO_SITES, SiteServer, demo_hosts, directory_pages

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
PAID_API_VARIABLES = (
    *(f"GLAZE_{api}_{part}" for api in ("LINKEDIN", "SEARCH") for part in ("API_KEY", "BASE_URL", "PRICE_USD")),
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_BASE_URL",
    "GLAZE_MAX_COST_USD",
    "GLAZE_MAX_COST_PER_ROW_USD",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that uses the servers is an integration test; say so, so `-m "not integration"` can leave it out."""
    for item in items:
        if "servers" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.integration)


@dataclass(frozen=True)
class TestServers:
    home: Path
    database_url: str
    redis_url: str
    redis_prefix: str


def _drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def servers() -> Iterator[TestServers]:
    token = uuid.uuid4().hex[:10]
    # Not under pytest's tmp root: every pytest session re-locks that folder, which would cut off an
    # embedded PostgreSQL (running as its own system user) of a concurrent session.
    home = Path(tempfile.mkdtemp(prefix="glaze-test-"))
    configured_db = os.environ.get("GLAZE_DATABASE_URL")
    configured_redis = os.environ.get("GLAZE_REDIS_URL")
    embedded = settings({"GLAZE_HOME": str(home)})
    base_db = configured_db or services.ensure_database(embedded)
    db_name = f"glaze_test_{token}"
    database_url = psycopg.conninfo.make_conninfo(base_db, dbname=db_name)
    services.create_database_if_missing(database_url)
    redis_url = configured_redis or services.ensure_redis(embedded)
    prefix = f"glaze_test_{token}:"

    saved = {
        k: os.environ.get(k)
        for k in (
            "GLAZE_HOME",
            "GLAZE_DATABASE_URL",
            "GLAZE_REDIS_URL",
            "GLAZE_REDIS_PREFIX",
            "GLAZE_ALLOW_PRIVATE_NETWORKS",
            "GLAZE_RESOLVE",
            "GLAZE_CRAWL_START_DELAY_S",
            *PAID_API_VARIABLES,
        )
    }
    os.environ.update(
        GLAZE_HOME=str(home),
        GLAZE_DATABASE_URL=database_url,
        GLAZE_REDIS_URL=redis_url,
        GLAZE_REDIS_PREFIX=prefix,
        GLAZE_ALLOW_PRIVATE_NETWORKS="1",
        # Loopback sites need no politeness pause; the Retry-After and robots tests set their own.
        GLAZE_CRAWL_START_DELAY_S="0",
    )
    os.environ.pop("GLAZE_RESOLVE", None)
    for name in PAID_API_VARIABLES:  # a developer's real keys never reach a test: simulators only
        os.environ.pop(name, None)
    db.migrate(database_url)
    try:
        yield TestServers(home, database_url, redis_url, prefix)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        _drop_database(psycopg.conninfo.make_conninfo(base_db, dbname="postgres"), db_name)
        client = redis.Redis.from_url(redis_url)
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        if keys:
            client.delete(*keys)
        if not configured_db:
            services.stop_database(embedded)
        if not configured_redis:
            services.stop_redis(embedded)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture
def conn(servers: TestServers) -> Iterator[psycopg.Connection]:
    with db.connect(servers.database_url) as connection:
        yield connection


@pytest.fixture
def shared_corpus() -> Path:
    corpus = SHARED / "corpus" / "sites"
    if not corpus.is_dir():
        pytest.skip(f"evaluation corpus not found at {corpus} (../shared is absent in this checkout)")
    return corpus


@pytest.fixture
def fresh_cache(servers: TestServers, monkeypatch: pytest.MonkeyPatch) -> str:
    """A key prefix of this test's own, so cached answers from other tests never leak in."""
    prefix = f"{servers.redis_prefix}{uuid.uuid4().hex[:8]}:"
    monkeypatch.setenv("GLAZE_REDIS_PREFIX", prefix)
    return prefix


@pytest.fixture
def demo_site(monkeypatch: pytest.MonkeyPatch, fresh_cache: str) -> Iterator[SiteServer]:
    """The demo companies' websites on loopback, their names resolved there."""
    with SiteServer(directory_pages(DEMO_SITES)) as site:
        monkeypatch.setenv("GLAZE_RESOLVE", site.resolve_spec(demo_hosts()))
        yield site


@pytest.fixture
def fresh_ledger(servers: TestServers) -> Iterator[None]:
    """Paid answers recorded by this test are forgotten after it: the ledger, unlike the cache, has no prefix."""
    yield
    with db.connect(servers.database_url, autocommit=True) as connection:
        connection.execute("DELETE FROM glaze.provider_calls")
