"""The console in a real browser (headless Chromium from Debian's `chromium` package, driven by Playwright):
log in, upload a table and pick its fields, watch its progress, download the export, try one URL."""

from __future__ import annotations

import csv
import io
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from glaze_pipeline.config import settings
from glaze_pipeline.sandbox.sites import SiteServer, synthetic_pages
from glaze_pipeline_tests.api.live import ApiServer, api_server, new_key

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.slow  # runs the whole table job behind the page


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        pytest.skip(f"no browser at {CHROMIUM}: `apt-get install -y chromium` (.ci/run installs it)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is a dev dependency: make setup")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def console(servers) -> Iterator[ApiServer]:
    with SiteServer(synthetic_pages) as site, pytest.MonkeyPatch.context() as mp:
        ip, port = site.address
        mp.setenv("GLAZE_RESOLVE", f"*.bench.example={ip}:{port}")
        with api_server() as server:
            yield server


def run_uploaded_tables() -> dg.DagsterInstance:
    """What the daemon does for an upload: the inbox sensor's tick, then the table's run, on the UI's instance."""
    from glaze_pipeline.definitions import defs
    from glaze_pipeline.defs.ingest.sensors import new_tables_sensor
    from glaze_pipeline.defs.resources import RuntimeResource
    from glaze_pipeline.runner import dagster_instance

    instance = dagster_instance(settings())
    with dg.build_sensor_context(instance=instance, resources={"runtime": RuntimeResource()}) as context:
        tick = new_tables_sensor(context)
    job = defs.resolve_job_def("enrich_table")
    for request in tick.run_requests:
        instance.add_dynamic_partitions("tables", [request.partition_key])
        job.execute_in_process(instance=instance, partition_key=request.partition_key)
    return instance


def test_console_upload_progress_download_and_try(browser, console, conn, tmp_path):
    token = new_key(conn, "console user")
    hosts = [f"co{uuid.uuid4().hex[:8]}.bench.example" for _ in range(3)]
    table = tmp_path / "console leads.csv"
    table.write_text("website,notes\n" + "".join(f"https://{h},=1+1\n" for h in hosts))

    page = browser.new_page()  # type: ignore[attr-defined]
    page.goto(console.url + "/")
    page.fill('input[name="api_key"]', token)
    page.click('form[action="/console/login"] button')
    assert page.locator("header .who").inner_text().startswith("key ")

    page.set_input_files('#upload input[name="file"]', str(table))
    page.check('#upload input[value="company_email"]')  # company_name is picked already
    page.click("#upload button[type=submit]")
    assert "3 rows in = 3 accepted + 0 rejected + 0 duplicates" in page.locator(".message").inner_text()
    row = page.locator("#tables tr[data-table='console_leads']")
    assert row.locator(".status").inner_text() == "pending"

    worker = threading.Thread(target=run_uploaded_tables)
    worker.start()
    # The page refreshes itself while the run goes: the bar shows the run's steps, then the table is done.
    page.wait_for_function(
        "() => { const bar = document.querySelector(\"tr[data-table='console_leads'] progress\");"
        " return bar && bar.max > 1 && bar.value < bar.max; }",
        timeout=120_000,
    )
    page.wait_for_function(
        "() => document.querySelector(\"tr[data-table='console_leads'] .status\").textContent === 'enriched'",
        timeout=120_000,
    )
    worker.join(timeout=120)
    assert "company_name 100%" in row.locator(".coverage").inner_text()
    bar = row.locator("progress")
    assert bar.get_attribute("value") == bar.get_attribute("max")
    assert row.locator("a", has_text="run").get_attribute("href").startswith(settings().api.dagster_url + "/runs/")

    with page.expect_download() as download_info:
        row.locator("a", has_text="CSV").click()
    download = download_info.value
    exported = list(csv.DictReader(io.StringIO(Path(download.path()).read_text())))
    assert download.suggested_filename == "console_leads_enriched.csv"
    assert [r["website"] for r in exported] == [f"https://{h}" for h in hosts]
    assert all(r["notes"] == "'=1+1" for r in exported)  # formula cells escaped as `glaze export` does
    assert exported[0]["company_name"] == hosts[0].split(".")[0].title()

    page.fill('form[action="/console/try"] input[name="url"]', f"https://{hosts[1]}")
    page.click('form[action="/console/try"] button[type=submit]')
    assert page.locator(".status").inner_text() == "completed"
    assert "(from the cache)" in page.content()
    assert page.locator("td.value").first.inner_text() == hosts[1].split(".")[0].title()
    page.close()


def test_console_refuses_a_wrong_key(browser, console):
    page = browser.new_page()  # type: ignore[attr-defined]
    page.goto(console.url + "/")
    page.fill('input[name="api_key"]', "glz_000000000000_" + "A" * 43)
    page.click('form[action="/console/login"] button')
    assert page.locator(".error").inner_text() == "That key is not valid."
    assert page.context.cookies() == []
    page.close()
