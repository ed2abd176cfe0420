"""What a run needs, opened in one place and closed again: database, Redis (or its absence), cache, providers, spending.

The Dagster resources, the CLI, the dry run, the demo and the benches all open
their runtime here, so they can never disagree on how the pieces are built.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

from glaze_pipeline.config import Settings, dollars
from glaze_pipeline.core.model.provider import Provider
from glaze_pipeline.core.pipeline.spending import Budget, Spending
from glaze_pipeline.core.providers.registry import build_provider
from glaze_pipeline.core.storage import db, services
from glaze_pipeline.core.storage.cache import ProviderCache, connect_cache
from glaze_pipeline.core.storage.ledger import Ledger
from glaze_pipeline.errors import UserFacingError

log = logging.getLogger(__name__)


class NoDatabase(UserFacingError, LookupError):
    """A command that only reads found no database under GLAZE_HOME: it says where it looked instead of starting one."""


@dataclass(frozen=True)
class BudgetLimits:
    """A run's spending limits; None means the configured default (GLAZE_MAX_COST_USD / _PER_ROW_USD)."""

    max_cost_usd: float | None = None
    max_cost_per_row_usd: float | None = None

    def __post_init__(self) -> None:
        """Refused here, where every source of a budget passes (flags, run config, API requests), not per call."""
        for name in ("max_cost_usd", "max_cost_per_row_usd"):
            value = getattr(self, name)
            if value is not None:
                dollars(name, value)

    def resolve(self, settings: Settings) -> tuple[float, float]:
        run = settings.max_cost_usd if self.max_cost_usd is None else self.max_cost_usd
        row = settings.max_cost_per_row_usd if self.max_cost_per_row_usd is None else self.max_cost_per_row_usd
        return run, row


@dataclass
class Runtime:
    """The opened pieces of one run (or one command); see `open_runtime`."""

    settings: Settings
    database_url: str
    redis_url: str | None  # None: Redis is unreachable; cache and limiter degrade, the ledger still guards money
    cache: ProviderCache

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        with db.connect(self.database_url) as conn:
            yield conn

    def provider(self, name: str) -> Provider:
        return build_provider(name, self.settings, redis_url=self.redis_url, database_url=self.database_url)

    def providers(self) -> list[Provider]:
        return [self.provider(name) for name in self.settings.waterfall_order]

    @contextmanager
    def spending(self, run_id: str, table_id: str, limits: BudgetLimits | None = None) -> Iterator[Spending]:
        """The ledger and this run's budget, starting from what the run already paid (earlier stages, retries)."""
        s = self.settings
        ledger = Ledger(self.database_url, run_id=run_id, table_id=table_id)
        try:
            spent, by_row = ledger.spent()
            max_run, max_row = (limits or BudgetLimits()).resolve(s)
            budget = Budget(max_run, max_row, spent, by_row)
            ttls = (s.cache_ttl_s, s.negative_cache_ttl_s)
            yield Spending(ledger, budget, *ttls, lease_s=s.lease_s, claim_wait_s=s.claim_wait_s)
        finally:
            ledger.close()

    def close(self) -> None:
        self.cache.close()


def open_database(settings: Settings, *, create: bool = True) -> str:
    """The database URL, with the embedded server started and every migration applied.

    A new, empty database is announced (a warning in the log); with `create=False` (commands that only
    read) there is none to start, and the user is told where glaze looked.
    """
    if not services.database_exists(settings):
        where = f"no glaze database under {settings.home} (GLAZE_HOME)"
        if not create:
            raise NoDatabase(f"{where} yet, so no tables to read; {_elsewhere(settings)}")
        log.warning("%s yet: starting a new, empty one; %s", where, _elsewhere(settings))
    url = services.ensure_database(settings)
    if settings.database_url and not db.holds_glaze(url):
        log.warning("database %s has no glaze tables yet: creating them", services.redact(url))
    db.migrate(url)
    return url


def _elsewhere(settings: Settings) -> str:
    """Where else a user's tables may be: an older home in this folder, or the variable that picks one."""
    legacy = Path.cwd() / ".glaze"
    if (legacy / "postgres").is_dir() and legacy.resolve() != settings.home:
        return f"./.glaze holds an older one: set GLAZE_HOME={legacy.resolve()} to use it"
    return "if your tables are elsewhere, set GLAZE_HOME to that folder (docs/configuration.md)"


def open_redis(settings: Settings) -> str | None:
    """Redis's URL, or None when it cannot be reached (the run goes on without cache and shared limiter)."""
    try:
        return services.ensure_redis(settings)
    except services.ServiceError:
        return None


@contextmanager
def open_runtime(settings: Settings) -> Iterator[Runtime]:
    runtime = connect_runtime(settings)
    try:
        yield runtime
    finally:
        runtime.close()


def connect_runtime(settings: Settings) -> Runtime:
    """Open a runtime the caller closes (`Runtime.close`); `open_runtime` is the `with` form."""
    database_url = open_database(settings)
    redis_url = open_redis(settings)
    s = settings
    cache = connect_cache(redis_url, prefix=s.redis_prefix, ttl_s=s.cache_ttl_s, negative_ttl_s=s.negative_cache_ttl_s)
    return Runtime(settings, database_url, redis_url, cache)
