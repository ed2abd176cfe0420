"""`source_rows`: the distinct entities of one uploaded table, with input hints."""

import dagster as dg
import polars as pl

from glaze_pipeline.core.intake.tables import TableStatus, load_source_rows, set_status, table_info
from glaze_pipeline.defs.resources import TABLES, RuntimeResource


@dg.asset(partitions_def=TABLES, group_name="ingest", kinds={"postgres", "polars"})
def source_rows(context: dg.AssetExecutionContext, runtime: RuntimeResource) -> dg.Output[pl.DataFrame]:
    """One row per distinct entity of the uploaded table (duplicates enriched once), hints as columns."""
    with runtime.runtime.connection() as conn:
        info = table_info(conn, context.partition_key)
        set_status(conn, info.table_id, TableStatus.RUNNING, context.run_id)
        rows = load_source_rows(conn, info)
    context.log.info(
        f"table {info.table_id}: {info.rows_in} rows in = {info.accepted} accepted + {info.rejected} rejected"
        f" + {info.duplicates} duplicates; wanted fields: {', '.join(info.wanted_fields)}"
    )
    return dg.Output(
        rows,
        metadata={
            "rows_in": info.rows_in,
            "accepted": info.accepted,
            "rejected": info.rejected,
            "duplicates": info.duplicates,
            "entities": rows.height,
            "wanted_fields": ", ".join(info.wanted_fields),
        },
    )
