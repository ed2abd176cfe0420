"""`glaze demo`: a table of fictional companies, served from loopback, enriched through Dagster into Postgres.

The websites, the search API and the LinkedIn data API are all loopback simulators
(`sandbox/sites.py`, `sandbox/apis.py`): nothing leaves the machine and nothing is paid.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from glaze_pipeline.config import Settings, settings
from glaze_pipeline.core.intake.tables import TableStatus
from glaze_pipeline.core.intake.uploads import upload_file
from glaze_pipeline.sandbox.anthropic_sim import AnthropicSimulator
from glaze_pipeline.sandbox.apis import ApiSimulator
from glaze_pipeline.sandbox.sites import DEMO_SITES, SiteServer, demo_hosts, directory_pages
from glaze_pipeline.terminal import console, database, enrich_table, out, print_rows

DEMO_FIELDS = [
    "company_name",
    "company_description",
    "company_city",
    "company_country",
    "company_founded_year",
    "company_linkedin",
    "company_twitter",
    "company_email",
    "company_phone",
    "company_industry",
    "company_employee_range",
    "company_specialities",
]


ICP_RANKING = (
    "SELECT s.icp_score, c.name, c.industry, c.country, c.employee_range, s.reasons"
    " FROM glaze_marts.icp_scores s JOIN glaze_marts.companies c USING (normalized_url)"
    " WHERE c.table_ids LIKE %s ORDER BY s.icp_score DESC, c.name"
)


def write_demo_table(path: Path, hosts: list[str]) -> Path:
    """The demo upload: each company once in a different URL spelling, one duplicate, one bad row."""
    spellings = [
        "https://www.{h}/",
        "{h}",
        "http://{h}/?utm_source=newsletter",
        "HTTPS://{H}",
        "www.{h}",
        "{h}/",
    ]
    lines = ["company,website,notes"]
    for i, host in enumerate(hosts):
        url = spellings[i % len(spellings)].format(h=host, H=host.upper())
        lines.append(f"{host.split('.')[0].replace('-', ' ').title()},{url},")
    lines.append(f"Duplicate of the first,https://{hosts[0]},same company again")
    lines.append("A typo,not a url at all,rejected with a reason")
    path.write_text("\n".join(lines) + "\n")
    return path


def run_demo() -> None:
    s, table_id = _enrich_demo_table()
    _show_records(s, table_id)
    _show_icp_ranking(s, table_id)


def _enrich_demo_table() -> tuple[Settings, str]:
    """Serve the demo sites and vendor simulators on loopback, upload the demo table and enrich it."""
    hosts = demo_hosts()
    with (
        SiteServer(directory_pages(DEMO_SITES)) as site,
        ApiSimulator("search", api_key="demo-key") as search,
        ApiSimulator("linkedin", api_key="demo-key") as linkedin,
        AnthropicSimulator() as llm_sim,
    ):
        if not os.environ.get("ANTHROPIC_API_KEY"):
            os.environ["ANTHROPIC_API_KEY"] = "sandbox"  # the simulator accepts any key
            os.environ["ANTHROPIC_BASE_URL"] = llm_sim.base_url
            console.print(f"no ANTHROPIC_API_KEY: the LLM stage talks to the loopback simulator at {llm_sim.base_url}")
        # The demo's sites live on loopback: allow it explicitly and resolve their names there.
        os.environ["GLAZE_ALLOW_PRIVATE_NETWORKS"] = "1"
        os.environ["GLAZE_RESOLVE"] = site.resolve_spec(hosts)
        os.environ.update(search.env() | linkedin.env())  # the paid providers talk to the simulators
        s = settings()
        demo_dir = s.home / "demo"
        shutil.rmtree(demo_dir, ignore_errors=True)
        demo_dir.mkdir(parents=True)
        table_file = write_demo_table(demo_dir / "demo_companies.csv", hosts)
        console.print(
            f"[bold]demo[/]: {len(hosts)} fictional company sites on http://{site.address[0]}:{site.address[1]};"
            f" search API simulator on {search.base_url}, LinkedIn data API simulator on {linkedin.base_url}"
            " (loopback simulators: no real API is called, nothing is paid)"
        )
        with database(s) as conn:
            uploaded = upload_file(conn, table_file, fields=DEMO_FIELDS, status=TableStatus.RUNNING)
        c = uploaded.counts
        console.print(
            f"uploaded {table_file.name} → table {uploaded.table_id}: {c.rows_in} rows in = "
            f"{c.accepted} accepted + {c.rejected} rejected + {c.duplicates} duplicates"
        )
        enrich_table(s, uploaded.table_id)
        console.print(
            f"website pages served: {sum(site.hits.values())}; simulated paid calls: search {search.count(200)}"
            f" × ${s.apis['search'].price_usd:g}, LinkedIn {linkedin.count(200)} × ${s.apis['linkedin'].price_usd:g};"
            f" LLM simulator requests {llm_sim.counters.requests['messages']}"
        )
    return s, uploaded.table_id


def _show_records(s: Settings, table_id: str) -> None:
    with database(s) as conn:
        cur = conn.execute(
            "SELECT normalized_url, company_name, company_city, company_country, company_founded_year,"
            " company_email, company_industry, company_employee_range, status,"
            " cost_usd::numeric(10, 4) AS cost_usd"
            " FROM glaze.records WHERE table_id = %s ORDER BY normalized_url",
            (table_id,),
        )
        columns = [d.name for d in cur.description or []]
        rows = cur.fetchall()
    out.print(f"\n[bold]Enriched rows in Postgres[/] (glaze.records, table_id = '{table_id}'):")
    print_rows(columns, rows)
    out.print(
        "\nWhere to look next:\n"
        f"  SQL:    .venv/bin/glaze sql \"SELECT * FROM glaze.records WHERE table_id = '{table_id}'\"\n"
        f"  export: .venv/bin/glaze export {table_id} --format csv -o demo.csv\n"
        "  UI:     .venv/bin/glaze dev   (then open http://127.0.0.1:3000 → Runs)\n"
        '  marts:  .venv/bin/glaze sql "SELECT * FROM glaze_marts.companies"   (more in docs/sql.md)'
    )


def _show_icp_ranking(s: Settings, table_id: str) -> None:
    with database(s) as conn:  # a dbt mart, refreshed by `enrich_table` through Dagster
        cur = conn.execute(ICP_RANKING, (f"%{table_id}%",))
        columns, rows = [d.name for d in cur.description or []], cur.fetchall()
    out.print("\n[bold]Demo companies ranked by ICP score[/] (dbt mart glaze_marts.icp_scores):")
    out.print(f"[dim]{ICP_RANKING.replace('%s', repr(f'%{table_id}%'))}[/]")
    print_rows(columns, rows)
