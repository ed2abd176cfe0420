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
from glaze_pipeline.core import db, services
from glaze_pipeline.core.cache import ProviderCache, connect_cache

TABLES = dg.DynamicPartitionsDefinition(name="tables")


class GlazeResource(dg.ConfigurableResource):
    """Everything a run needs from the environment: settings, Postgres (migrated) and the Redis cache.

    Values come from GLAZE_* variables when the resource is first used, never at import.
    """

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

    def cache(self) -> ProviderCache:
        s = self.settings
        try:
            url: str | None = services.ensure_redis(s)
        except services.ServiceError:
            url = None
        return connect_cache(url, prefix=s.redis_prefix, ttl_s=s.cache_ttl_s, negative_ttl_s=s.negative_cache_ttl_s)


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
