"""`source_rows`: the distinct entities of one uploaded table, with input hints."""

import dagster as dg
import polars as pl

from glaze_pipeline.core.intake.lifecycle import claim_table
from glaze_pipeline.core.intake.tables import load_source_rows
from glaze_pipeline.core.pipeline.coverage import coverage_notes, field_coverage
from glaze_pipeline.core.pipeline.waterfall import TableWork
from glaze_pipeline.defs.ingest.tables import uploaded_table
from glaze_pipeline.defs.lifecycle.runs import repair_tables
from glaze_pipeline.defs.refresh.resources import RefreshResource
from glaze_pipeline.defs.resources import TABLES, RuntimeResource


@dg.asset(partitions_def=TABLES, group_name="ingest", kinds={"postgres", "polars"})
def source_rows(
    context: dg.AssetExecutionContext, runtime: RuntimeResource, refresh: RefreshResource
) -> dg.Output[pl.DataFrame]:
    """One row per distinct entity of the uploaded table (duplicates enriched once), hints as columns.

    Before any provider runs, it says which wanted fields no configured provider can fill.
    """
    rt = runtime.runtime
    with rt.connection() as conn:
        info = uploaded_table(context, conn)
        # One live run per table, whoever launched it (CLI, sensor, launchpad, backfill): a holder that died is
        # released first, then the claim refuses this run if another live one holds the table.
        repair_tables(context.instance, conn, rt.settings.run_lost_after_s)
        claim_table(conn, info.table_id, context.run_id)
        conn.commit()
        info = refresh.mark(conn, info)
        rows = load_source_rows(conn, info)
    work = refresh.applied(TableWork.of(info, rows))
    coverage = field_coverage(
        rt.providers(), work.asked, rows["entity_type"].unique().to_list(), set(work.hints["field"].to_list())
    )
    notes = coverage_notes(coverage)
    context.log.info(
        f"table {info.table_id}: {info.rows_in} rows in = {info.accepted} accepted + {info.rejected} rejected"
        f" + {info.duplicates} duplicates; asking for: {', '.join(work.asked)}"
        + (" (refresh: providers are asked again, not the cache)" if work.fresh else "")
    )
    for note in notes:  # info, not warning: the CLI says it before the run, and a warning would be said twice
        context.log.info(note)
    return dg.Output(
        rows,
        metadata={
            "rows_in": info.rows_in,
            "accepted": info.accepted,
            "rejected": info.rejected,
            "duplicates": info.duplicates,
            "entities": rows.height,
            "wanted_fields": ", ".join(info.wanted_fields),
            "asked_fields": ", ".join(work.asked),
            "fields_no_provider_fills": "; ".join(notes) or "none",
        },
    )
