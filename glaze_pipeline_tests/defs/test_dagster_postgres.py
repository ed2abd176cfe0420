"""Production runs Dagster on dagster-postgres storage (see dagster.yaml); the table job must run there too."""

import uuid
from pathlib import Path
from urllib.parse import quote

import dagster as dg
import psycopg
import pytest
import yaml
from psycopg import sql

from glaze_pipeline.core.intake.tables import TableStatus
from glaze_pipeline.core.intake.uploads import upload_file
from glaze_pipeline.core.storage import services
from glaze_pipeline.definitions import defs
from glaze_pipeline.sandbox.sites import DEMO_SITES, SiteServer, demo_hosts, directory_pages
from glaze_pipeline_tests.helpers import write_table

pytestmark = pytest.mark.slow  # runs the whole table job

PRODUCTION_INSTANCE = Path(__file__).resolve().parents[2] / "docker" / "dagster.yaml"


@pytest.fixture
def dagster_storage_url(servers):
    name = f"glaze_test_dagster_{uuid.uuid4().hex[:8]}"
    url = psycopg.conninfo.make_conninfo(servers.database_url, dbname=name)
    services.create_database_if_missing(url)
    info = psycopg.conninfo.conninfo_to_dict(url)
    yield info
    with psycopg.connect(psycopg.conninfo.make_conninfo(url, dbname="postgres"), autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def test_table_job_runs_on_dagster_postgres_storage(
    servers, conn, fresh_cache, dagster_storage_url, tmp_path, monkeypatch
):
    info = dagster_storage_url
    user, password = info.get("user") or "postgres", info.get("password") or ""
    host, port = info.get("host") or "127.0.0.1", info.get("port") or "5432"
    if host.startswith("/"):  # the embedded server listens on a Unix socket, which dagster.yaml's form cannot name
        url = f"postgresql://{user}:{quote(password)}@/{info['dbname']}?host={quote(host)}&port={port}"
        overrides = {"storage": {"postgres": {"postgres_url": url}}}
    else:  # a TCP server (CI): use the production dagster.yaml itself, filled from its env vars
        for key, value in {
            "DAGSTER_PG_USER": user,
            "DAGSTER_PG_PASSWORD": password,
            "DAGSTER_PG_HOST": host,
            "DAGSTER_PG_DB": info["dbname"],
        }.items():
            monkeypatch.setenv(key, value)
        overrides = yaml.safe_load(PRODUCTION_INSTANCE.read_text())
        overrides["storage"]["postgres"]["postgres_db"]["port"] = int(port)
    with SiteServer(directory_pages(DEMO_SITES)) as site:
        monkeypatch.setenv("GLAZE_RESOLVE", site.resolve_spec(demo_hosts()))
        uploaded = upload_file(
            conn,
            write_table(tmp_path / "pg_storage.csv", [f"https://{demo_hosts()[0]}"]),
            fields=["company_name"],
            status=TableStatus.RUNNING,
        )
        conn.commit()
        with dg.instance_for_test(overrides=overrides) as instance:
            assert type(instance.run_storage).__name__ == "PostgresRunStorage"
            instance.add_dynamic_partitions("tables", [uploaded.table_id])
            result = defs.resolve_job_def("enrich_table").execute_in_process(
                instance=instance, partition_key=uploaded.table_id
            )
            assert result.success
            assert instance.get_run_by_id(result.run_id) is not None
            event = instance.get_latest_materialization_event(dg.AssetKey("landed_records"))
            assert event is not None
    name = conn.execute("SELECT company_name FROM glaze.records WHERE table_id = %s", (uploaded.table_id,)).fetchone()
    assert name is not None and name[0]
