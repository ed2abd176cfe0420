"""The one place that reads configuration: environment variables become a frozen `Settings`.

Read when a command or a Dagster resource starts, never at import time, so a
test or the demo can point everything elsewhere by setting variables first.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
WATERFALL_FILE = PACKAGE_DIR / "waterfall.toml"


class ConfigError(ValueError):
    """A setting is malformed; the message names the variable and what it expects."""


def _int(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a whole number, got {raw!r}") from exc


def _float(env: dict[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from exc


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str | None  # None: the embedded PostgreSQL under home
    redis_url: str | None  # None: the embedded Redis under home
    redis_prefix: str
    allow_private_networks: bool
    allowed_networks: tuple[str, ...]
    resolve_overrides: str  # curl --resolve style, for sandbox sites: "host=127.0.0.1:8080,..."
    cache_ttl_s: int
    negative_cache_ttl_s: int
    min_confidence: int
    max_reject_rate: float
    fetch_concurrency: int
    fetch_timeout_s: float
    fetch_max_bytes: int
    crawl_max_pages: int = 4
    crawl_start_delay_s: float = 1.0
    anthropic_api_key: str | None = field(default=None, repr=False)
    anthropic_base_url: str | None = None
    llm_model: str = "claude-haiku-4-5"
    llm_batch_threshold: int = 50
    llm_poll_interval_s: float = 30.0
    llm_concurrency: int = 8
    waterfall_order: tuple[str, ...] = field(default=("website",))

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    @property
    def inbox(self) -> Path:
        return self.home / "inbox"

    @property
    def stages(self) -> Path:
        return self.home / "stages"


def load_waterfall_order(path: Path = WATERFALL_FILE) -> tuple[str, ...]:
    """Provider order is configuration in the repo (not an env var): it shapes the asset graph."""
    data = tomllib.loads(path.read_text())
    order = tuple(data.get("waterfall", {}).get("order", ()))
    if not order:
        raise ConfigError(f"{path}: [waterfall] order must list at least one provider")
    return order


def settings(environ: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if environ is None else environ)
    home = Path(env.get("GLAZE_HOME") or ".glaze").expanduser().resolve()
    private = env.get("GLAZE_ALLOW_PRIVATE_NETWORKS", "").strip().lower()
    allow_all_private = private in {"1", "true", "yes", "on"}
    networks = (
        ()
        if allow_all_private or private in {"", "0", "false", "no", "off"}
        else tuple(n.strip() for n in private.split(",") if n.strip())
    )
    return Settings(
        home=home,
        database_url=env.get("GLAZE_DATABASE_URL") or None,
        redis_url=env.get("GLAZE_REDIS_URL") or None,
        redis_prefix=env.get("GLAZE_REDIS_PREFIX") or "glaze:",
        allow_private_networks=allow_all_private,
        allowed_networks=networks,
        resolve_overrides=env.get("GLAZE_RESOLVE", ""),
        cache_ttl_s=_int(env, "GLAZE_CACHE_TTL_DAYS", 7) * 86_400,
        negative_cache_ttl_s=_int(env, "GLAZE_NEGATIVE_CACHE_TTL_HOURS", 24) * 3_600,
        min_confidence=_int(env, "GLAZE_MIN_CONFIDENCE", 70),
        max_reject_rate=_float(env, "GLAZE_MAX_REJECT_RATE", 0.5),
        fetch_concurrency=_int(env, "GLAZE_FETCH_CONCURRENCY", 64),
        fetch_timeout_s=_float(env, "GLAZE_FETCH_TIMEOUT_S", 15.0),
        fetch_max_bytes=_int(env, "GLAZE_FETCH_MAX_BYTES", 3_000_000),
        crawl_max_pages=_int(env, "GLAZE_CRAWL_MAX_PAGES", 4),
        crawl_start_delay_s=_float(env, "GLAZE_CRAWL_START_DELAY_S", 1.0),
        anthropic_api_key=env.get("ANTHROPIC_API_KEY") or None,
        anthropic_base_url=env.get("ANTHROPIC_BASE_URL") or None,
        llm_model=env.get("GLAZE_LLM_MODEL") or "claude-haiku-4-5",
        llm_batch_threshold=_int(env, "GLAZE_LLM_BATCH_THRESHOLD", 50),
        llm_poll_interval_s=_float(env, "GLAZE_LLM_POLL_INTERVAL_S", 30.0),
        llm_concurrency=_int(env, "GLAZE_LLM_CONCURRENCY", 8),
        waterfall_order=load_waterfall_order(),
    )
