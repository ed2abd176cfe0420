"""Dagster resources: configuration read once per run, Postgres connections, the cache, and stage files."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import polars as pl
import psycopg
from pydantic import PrivateAttr

from glaze_pipeline.config import Settings, settings
from glaze_pipeline.core.pipeline.spending import Budget, Spending
from glaze_pipeline.core.storage import db, services
from glaze_pipeline.core.storage.cache import ProviderCache, connect_cache
from glaze_pipeline.core.storage.ledger import Ledger

TABLES = dg.DynamicPartitionsDefinition(name="tables")


class GlazeResource(dg.ConfigurableResource):
    """Everything a run needs from the environment: settings, Postgres (migrated) and the Redis cache.

    Values come from GLAZE_* variables when the resource is first used, never at import.
    The budgets default to GLAZE_MAX_COST_USD / GLAZE_MAX_COST_PER_ROW_USD; run config overrides them
    (`resources: {glaze: {config: {max_cost_usd: 5}}}`, which `glaze enrich --max-cost` sets).
    """

    max_cost_usd: float | None = None
    max_cost_per_row_usd: float | None = None

    _settings: Settings | None = PrivateAttr(default=None)
    _database_url: str | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # Fresh per run: a long-lived code server must see configuration changes between runs.
        self._settings = settings()
        self._database_url = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = settings()
        return self._settings

    @property
    def database_url(self) -> str:
        if self._database_url is None:
            url = services.ensure_database(self.settings)
            db.migrate(url)
            self._database_url = url
        return self._database_url

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        with db.connect(self.database_url) as conn:
            yield conn

    def redis_url(self) -> str | None:
        try:
            return services.ensure_redis(self.settings)
        except services.ServiceError:
            return None  # the cache and the limiter degrade; the ledger still prevents paying twice

    def cache(self) -> ProviderCache:
        s = self.settings
        return connect_cache(
            self.redis_url(), prefix=s.redis_prefix, ttl_s=s.cache_ttl_s, negative_ttl_s=s.negative_cache_ttl_s
        )

    def spending(self, run_id: str, table_id: str) -> Spending:
        """The ledger and this run's budget, with what the run already paid (earlier stages, step retries)."""
        s = self.settings
        ledger = Ledger(self.database_url, run_id=run_id, table_id=table_id)
        spent, by_row = ledger.spent()
        budget = Budget(
            self.max_cost_usd if self.max_cost_usd is not None else s.max_cost_usd,
            self.max_cost_per_row_usd if self.max_cost_per_row_usd is not None else s.max_cost_per_row_usd,
            spent,
            by_row,
        )
        return Spending(ledger, budget, s.cache_ttl_s, s.negative_cache_ttl_s)


class StageIOManager(dg.ConfigurableIOManager):
    """Stage frames as Parquet, one file per asset and partition, under GLAZE_HOME/stages (DuckDB reads them)."""

    base_dir: str | None = None

    def _path(self, key: dg.AssetKey, partition: str | None) -> Path:
        base = Path(self.base_dir) if self.base_dir else settings().stages
        return base.joinpath(*key.path) / f"{partition or '_unpartitioned'}.parquet"

    def handle_output(self, context: dg.OutputContext, obj: pl.DataFrame | None) -> None:
        if obj is None:
            return
        path = self._path(context.asset_key, context.partition_key if context.has_partition_key else None)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".parquet.partial")
        obj.write_parquet(partial)
        partial.replace(path)  # readers never see half a file
        context.add_output_metadata({"path": str(path), "rows": obj.height})

    def load_input(self, context: dg.InputContext) -> pl.DataFrame:
        path = self._path(context.asset_key, context.partition_key if context.has_partition_key else None)
        return pl.read_parquet(path)
