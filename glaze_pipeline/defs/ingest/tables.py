"""The partition a run was launched for must be an uploaded table; a run for any other key stops at its first step."""

from __future__ import annotations

import dagster as dg
import psycopg

from glaze_pipeline.core.intake.tables import TableInfo, TableNotFound, table_info
from glaze_pipeline.defs.resources import TABLES


def unknown_table_message(table_id: str) -> str:
    return (
        f"no table {table_id!r} was uploaded; upload it with `glaze upload FILE --name {table_id}` "
        "(or drop the file in the inbox, or launch the register_table job), and its run starts by itself"
    )


def uploaded_table(context: dg.AssetExecutionContext | dg.OpExecutionContext, conn: psycopg.Connection) -> TableInfo:
    """The run's table, or a Failure that says how to upload it (no retry, no traceback chain).

    A partition typed into the backfill dialog for a table that was never uploaded is removed again, so
    it does not stay red in the catalog; the run's own failure says why.
    """
    key = context.partition_key
    try:
        return table_info(conn, key)
    except TableNotFound:
        pass
    assert TABLES.name is not None
    if context.instance.has_dynamic_partition(TABLES.name, key):
        context.instance.delete_dynamic_partition(TABLES.name, key)
    raise dg.Failure(description=unknown_table_message(key), allow_retries=False)
