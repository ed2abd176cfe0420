"""`refresh`: run config that makes an `enrich_table` run ask its providers again instead of the cache."""

import dataclasses

import dagster as dg
import psycopg
from pydantic import Field

from glaze_pipeline.core.intake.tables import TableInfo
from glaze_pipeline.core.pipeline.waterfall import TableWork


class RefreshResource(dg.ConfigurableResource):
    """Launchpad: `resources: {refresh: {config: {force: true}}}` asks every provider again for every asked
    field; `fields: [company_phone]` asks only for those (the schedule and `glaze refresh` set it).

    Fields the run does not ask for keep their landed values; a changed value keeps the old one as history.
    """

    fields: list[str] = Field(default_factory=list, description="Refresh only these fields (bypassing the cache).")
    force: bool = Field(default=False, description="Force refresh: bypass the cache and ledger for every asked field.")

    @property
    def active(self) -> bool:
        return self.force or bool(self.fields)

    def mark(self, conn: psycopg.Connection, info: TableInfo) -> TableInfo:
        """Make the run ask only for the refreshed fields (stored, so every step of the run sees them)."""
        if not self.fields:
            return info
        unknown = [f for f in self.fields if f not in info.wanted_fields]
        if unknown:
            raise dg.Failure(
                description=f"table {info.table_id} does not want {', '.join(unknown)}; refresh some of: "
                f"{', '.join(info.wanted_fields)}",
                allow_retries=False,
            )
        conn.execute("UPDATE glaze.tables SET run_fields = %s WHERE table_id = %s", (self.fields, info.table_id))
        return dataclasses.replace(info, run_fields=list(self.fields))

    def applied(self, work: TableWork) -> TableWork:
        return dataclasses.replace(work, fresh=True) if self.active else work
