"""`register_table`: register one file as a table, from the launchpad or for a file dropped in the inbox.

The same options as `glaze upload`, through the same function (`upload_file`); the new table is `pending`,
so `new_tables_sensor` adds its partition and launches its enrichment on its next tick.
"""

from pathlib import Path

import dagster as dg
from pydantic import Field

from glaze_pipeline.core.intake.uploads import Uploaded, file_away, local_source, upload_file
from glaze_pipeline.defs.resources import RuntimeResource
from glaze_pipeline.errors import UserFacingError

REGISTER_TABLE_JOB = "register_table"


class RegisterTableConfig(dg.Config):
    path: str = Field(description="The CSV/TSV/Parquet file: a path where Dagster runs, or a file:// URL.")
    name: str | None = Field(default=None, description="Table name (slugged into the table id); default: file name.")
    url_column: str | None = Field(default=None, description="Column holding the URLs; detected when not given.")
    fields: str | None = Field(default=None, description="Comma-separated fields to fill, or 'all' (the default).")
    from_inbox: bool = Field(
        default=False, description="Set by the inbox sensor: move the file to inbox/.done or inbox/.failed after."
    )


@dg.op(tags={"kind": "postgres"})
def register_file(
    context: dg.OpExecutionContext, config: RegisterTableConfig, runtime: RuntimeResource
) -> dg.Output[None]:
    """Read the file, check it and store every row; a file that cannot be used fails the run with why."""
    rt = runtime.runtime
    inbox = rt.settings.inbox if config.from_inbox else None
    path: Path | None = None
    with rt.connection() as conn:
        try:
            path = local_source(config.path)
            uploaded = upload_file(conn, path, name=config.name, url_column=config.url_column, fields=config.fields)
        except UserFacingError as exc:
            conn.rollback()
            if inbox is not None and path is not None:
                file_away(path, inbox, "failed", str(exc))
            raise dg.Failure(description=str(exc), allow_retries=False) from None
        conn.commit()
    if inbox is not None:
        file_away(path, inbox, "done")
    context.log.info(_summary(path.name, uploaded))
    return dg.Output(None, metadata=_metadata(uploaded, config.path))  # the table id, counts and options, in the UI


def _summary(file_name: str, uploaded: Uploaded) -> str:
    c = uploaded.counts
    return (
        f"{file_name} -> table {uploaded.table_id} (URL column {uploaded.url_column!r}): {c.rows_in} rows in = "
        f"{c.accepted} accepted + {c.rejected} rejected + {c.duplicates} duplicates; its run starts on the next tick"
    )


def _metadata(uploaded: Uploaded, source: str) -> dict[str, str | int]:
    c = uploaded.counts
    return {
        "table_id": uploaded.table_id,
        "source": source,
        "url_column": uploaded.url_column,
        "wanted_fields": ", ".join(uploaded.wanted),
        "rows_in": c.rows_in,
        "accepted": c.accepted,
        "rejected": c.rejected,
        "duplicates": c.duplicates,
    }


@dg.job(name=REGISTER_TABLE_JOB, executor_def=dg.in_process_executor, tags={"glaze/size": "small"})
def register_table() -> None:
    """Register a file as a table (same options as `glaze upload`); its enrichment run follows by itself."""
    register_file()
