"""The one place that reads configuration: environment variables become a frozen `Settings`.

Read when a command or a Dagster resource starts, never at import time, so a
test or the demo can point everything elsewhere by setting variables first.
"""

from __future__ import annotations

import ipaddress
import math
import os
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from glaze_pipeline.errors import UserFacingError

PACKAGE_DIR = Path(__file__).resolve().parent
WATERFALL_FILE = PACKAGE_DIR / "waterfall.toml"


class ConfigError(UserFacingError, ValueError):
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


def dollars(name: str, value: float) -> float:
    """A budget or a price: a finite number of US dollars, zero or more (NaN would switch every comparison off)."""
    if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ConfigError(f"{name} must be a finite amount of US dollars, 0 or more, got {value!r}")
    return float(value)


def _dollars(env: dict[str, str], name: str, default: float) -> float:
    return dollars(name, _float(env, name, default))


@dataclass(frozen=True)
class ApiSettings:
    """One paid HTTP provider: where it is, its key, its price and the limits its plan allows.

    The key is kept out of repr() so a logged Settings never shows it.
    """

    name: str
    api_key: str | None = field(repr=False)
    base_url: str
    price_usd: float  # per billed call
    rate_per_s: float
    rate_per_min: float  # 0: no per-minute limit
    concurrency: int
    burst: int  # requests that may go back to back after an idle spell (see core/providers/limiter.py)
    timeout_s: float

    @property
    def key_variable(self) -> str:
        return f"GLAZE_{self.name.upper()}_API_KEY"


@dataclass(frozen=True)
class RetrySettings:
    """How hard one paid call is tried: attempts, backoff, and how long a Retry-After may make us wait."""

    max_attempts: int = 4
    backoff_base_s: float = 0.5
    backoff_max_s: float = 8.0
    total_cap_s: float = 60.0  # attempts and waits of one call together
    retry_after_cap_s: float = 30.0  # a longer Retry-After fails the call fast as rate_limited
    breaker_failures: int = 10  # consecutive failed attempts that open the circuit
    breaker_cooldown_s: float = 30.0


@dataclass(frozen=True)
class ServiceSettings:
    """The single-record API and its sensor: how long to hold a request open, the UI's address."""

    requests_wait_s: float = 4.0  # the requests sensor listens this long for new requests within one tick
    max_wait_s: float = 30.0  # the most `?wait=` may hold a POST open
    dagster_url: str = "http://127.0.0.1:3000"  # runs link to {dagster_url}/runs/<run id>


# Defaults per paid provider: price per billed call, rate per second and per minute, concurrency, burst.
_API_DEFAULTS: dict[str, tuple[str, float, float, float, int, int]] = {
    "linkedin": ("https://web-scraping-api2.p.rapidapi.com", 0.01, 5.0, 0.0, 8, 1),
    "search": ("https://google.serper.dev", 0.001, 50.0, 0.0, 16, 1),
}


@dataclass(frozen=True)
class UploadLimits:
    """The largest upload glaze reads: checked before a file is parsed (bytes) or stored (rows, cells)."""

    max_bytes: int = 512 * 1024 * 1024
    max_rows: int = 5_000_000
    max_cell_bytes: int = 64 * 1024


@dataclass(frozen=True)
class RefreshSettings:
    """When a landed value is old enough to ask for again, and when the refresh schedule looks."""

    after_days: float = 30.0  # every field, unless `after` names the field or its provider
    after: dict[str, float] = field(default_factory=dict)  # field or provider name -> days
    cron: str = "0 3 * * *"

    def age_days(self, field_name: str, provider: str) -> float:
        return self.after.get(field_name, self.after.get(provider, self.after_days))


def _refresh_settings(env: dict[str, str]) -> RefreshSettings:
    after: dict[str, float] = {}
    for item in filter(None, (p.strip() for p in env.get("GLAZE_REFRESH_AFTER", "").split(","))):
        name, sep, days = item.partition("=")
        try:
            after[name.strip()] = float(days)
        except ValueError:
            sep = ""
        if not sep or after.get(name.strip(), 0) <= 0:
            raise ConfigError(f"GLAZE_REFRESH_AFTER: {item!r} is not NAME=DAYS (e.g. company_phone=7,linkedin=14)")
    cron = env.get("GLAZE_REFRESH_CRON") or "0 3 * * *"
    if len(cron.split()) != 5:
        raise ConfigError(f"GLAZE_REFRESH_CRON: {cron!r} is not a five-field cron expression such as '0 3 * * *'")
    after_days = _float(env, "GLAZE_REFRESH_AFTER_DAYS", 30.0)
    if after_days <= 0:
        raise ConfigError("GLAZE_REFRESH_AFTER_DAYS must be above 0")
    return RefreshSettings(after_days, after, cron)


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
    llm_max_tokens_per_field: int = 200  # output room per asked field (max_tokens = 64 + this × fields)
    waterfall_order: tuple[str, ...] = field(default=("website",))
    apis: dict[str, ApiSettings] = field(default_factory=dict)
    retry: RetrySettings = field(default_factory=RetrySettings)
    max_cost_usd: float = 10.0  # per run, all paid providers together
    max_cost_per_row_usd: float = 0.10
    limiter_fallback_workers: int = 4  # when Redis is down, each process takes 1/N of a provider's limits
    readonly_database_url: str | None = field(default=None, repr=False)  # None: the main URL as glaze_reader
    sql_max_rows: int = 10_000  # the most rows one read-only query returns (glaze sql, the API)
    upload_limits: UploadLimits = field(default_factory=UploadLimits)
    run_lost_after_s: float = 180.0  # a running table with no sign of life for this long is marked failed
    lease_s: float = 15.0  # a killed process's limiter permits and paid-request claims outlive it this long
    claim_wait_s: float = 300.0  # the longest wait, without progress, for another run's answer to a paid request
    in_process_max_rows: int = 5_000  # up to this many accepted rows, a table's steps run in one process
    chunk_rows: int = 20_000  # entities per chunk of the chunked table job (memory and landing unit)
    api: ServiceSettings = field(default_factory=lambda: ServiceSettings())
    refresh: RefreshSettings = field(default_factory=lambda: RefreshSettings())

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    @property
    def inbox(self) -> Path:
        return self.home / "inbox"

    @property
    def stages(self) -> Path:
        return self.home / "stages"

    @property
    def exports(self) -> Path:
        """Where `glaze sql --duckdb` may read exported files (beside the stage files), e.g. a mart as Parquet."""
        return self.home / "exports"


@contextmanager
def scoped_env(**values: str) -> Iterator[None]:
    """Set environment variables for a block (settings are read when a run starts), then put them back."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def parse_resolve(spec: str) -> dict[str, tuple[str, int]]:
    """Read GLAZE_RESOLVE's form, "a.example=127.0.0.1:8081,b.example=[::1]:8082", into host → (ip, port)."""
    overrides: dict[str, tuple[str, int]] = {}
    for entry in spec.split(","):
        entry = entry.strip()
        if not entry:
            continue
        host, sep, address = entry.partition("=")
        ip, colon, port = address.strip().rpartition(":")
        ip = ip.removeprefix("[").removesuffix("]")
        if not sep or not colon or not host.strip() or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"GLAZE_RESOLVE entry {entry!r} must look like 'host.example=127.0.0.1:8081'")
        try:
            ipaddress.ip_address(ip)
        except ValueError as exc:
            raise ConfigError(f"GLAZE_RESOLVE entry {entry!r} must map the name to an IP address and port") from exc
        overrides[host.strip()] = (ip, int(port))
    return overrides


def _private_networks(env: dict[str, str]) -> tuple[bool, tuple[str, ...]]:
    """GLAZE_ALLOW_PRIVATE_NETWORKS: a yes/no word, or a comma list of CIDRs that are allowed."""
    raw = env.get("GLAZE_ALLOW_PRIVATE_NETWORKS", "").strip().lower()
    if raw in {"1", "true", "yes", "on"}:
        return True, ()
    if raw in {"", "0", "false", "no", "off"}:
        return False, ()
    networks = tuple(n.strip() for n in raw.split(",") if n.strip())
    for network in networks:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError as exc:
            raise ConfigError(
                f"GLAZE_ALLOW_PRIVATE_NETWORKS must be 1/0 or CIDRs like '10.0.0.0/8', got {network!r}"
            ) from exc
    return False, networks


def _upload_limits(env: dict[str, str]) -> UploadLimits:
    limits = UploadLimits(
        max_bytes=_int(env, "GLAZE_MAX_UPLOAD_MB", 512) * 1024 * 1024,
        max_rows=_int(env, "GLAZE_MAX_UPLOAD_ROWS", 5_000_000),
        max_cell_bytes=_int(env, "GLAZE_MAX_CELL_KB", 64) * 1024,
    )
    if min(limits.max_bytes, limits.max_rows, limits.max_cell_bytes) <= 0:
        raise ConfigError("GLAZE_MAX_UPLOAD_MB, GLAZE_MAX_UPLOAD_ROWS and GLAZE_MAX_CELL_KB must be at least 1")
    return limits


def _llm_tokens_per_field(env: dict[str, str]) -> int:
    value = _int(env, "GLAZE_LLM_MAX_TOKENS_PER_FIELD", 200)
    if value < 50:
        raise ConfigError("GLAZE_LLM_MAX_TOKENS_PER_FIELD must be at least 50: one fact with its quote needs that")
    return value


def load_waterfall_order(path: Path = WATERFALL_FILE) -> tuple[str, ...]:
    """Provider order is configuration in the repo (not an env var): it shapes the asset graph."""
    data = tomllib.loads(path.read_text())
    order = tuple(data.get("waterfall", {}).get("order", ()))
    if not order:
        raise ConfigError(f"{path}: [waterfall] order must list at least one provider")
    return order


def _api_settings(env: dict[str, str], name: str) -> ApiSettings:
    base_url, price, rate, per_min, concurrency, burst = _API_DEFAULTS[name]
    prefix = f"GLAZE_{name.upper()}_"
    api = ApiSettings(
        name=name,
        api_key=env.get(prefix + "API_KEY", "").strip() or None,
        base_url=(env.get(prefix + "BASE_URL", "").strip() or base_url).rstrip("/"),
        price_usd=_dollars(env, prefix + "PRICE_USD", price),
        rate_per_s=_float(env, prefix + "RATE_PER_S", rate),
        rate_per_min=_float(env, prefix + "RATE_PER_MIN", per_min),
        concurrency=_int(env, prefix + "CONCURRENCY", concurrency),
        burst=_int(env, prefix + "BURST", burst),
        timeout_s=_float(env, prefix + "TIMEOUT_S", 20.0),
    )
    if not api.rate_per_s > 0 or api.concurrency <= 0 or api.burst < 1:
        raise ConfigError(f"{prefix}RATE_PER_S and {prefix}CONCURRENCY must be > 0 and {prefix}BURST at least 1")
    return api


def glaze_home(env: dict[str, str]) -> Path:
    """GLAZE_HOME, else the user's data folder (`$XDG_DATA_HOME/glaze`, by default `~/.local/share/glaze`):
    the same home whichever folder a command runs in, so no command quietly starts a second database.
    """
    if env.get("GLAZE_HOME"):
        return Path(env["GLAZE_HOME"]).expanduser().resolve()
    data = env.get("XDG_DATA_HOME") or str(Path(env.get("HOME") or Path.home()) / ".local" / "share")
    return (Path(data).expanduser() / "glaze").resolve()


def _retry_settings(env: dict[str, str]) -> RetrySettings:
    return RetrySettings(
        max_attempts=max(1, _int(env, "GLAZE_API_MAX_ATTEMPTS", 4)),
        total_cap_s=_float(env, "GLAZE_API_RETRY_TOTAL_S", 60.0),
        retry_after_cap_s=_float(env, "GLAZE_API_RETRY_AFTER_CAP_S", 30.0),
        breaker_failures=max(1, _int(env, "GLAZE_BREAKER_FAILURES", 10)),
        breaker_cooldown_s=_float(env, "GLAZE_BREAKER_COOLDOWN_S", 30.0),
    )


def _service_settings(env: dict[str, str]) -> ServiceSettings:
    return ServiceSettings(
        requests_wait_s=max(0.0, _float(env, "GLAZE_REQUESTS_WAIT_S", 4.0)),
        max_wait_s=max(0.0, _float(env, "GLAZE_API_MAX_WAIT_S", 30.0)),
        dagster_url=(env.get("GLAZE_DAGSTER_URL") or "http://127.0.0.1:3000").rstrip("/"),
    )


def settings(environ: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if environ is None else environ)
    home = glaze_home(env)
    allow_all_private, networks = _private_networks(env)
    resolve = env.get("GLAZE_RESOLVE", "")
    parse_resolve(resolve)  # a typo fails the command now, not inside a run
    sql_max_rows = _int(env, "GLAZE_SQL_MAX_ROWS", 10_000)
    run_lost_after_s = _float(env, "GLAZE_RUN_LOST_AFTER_S", 180.0)
    chunk_rows = _int(env, "GLAZE_CHUNK_ROWS", 20_000)
    if chunk_rows < 1:
        raise ConfigError("GLAZE_CHUNK_ROWS must be at least 1 (entities per chunk of a chunked table run)")
    if sql_max_rows < 1 or run_lost_after_s < 10:
        raise ConfigError("GLAZE_SQL_MAX_ROWS must be at least 1 and GLAZE_RUN_LOST_AFTER_S at least 10")
    lease_s, claim_wait_s = _float(env, "GLAZE_LEASE_S", 15.0), _float(env, "GLAZE_CLAIM_WAIT_S", 300.0)
    if not (0.5 <= lease_s <= 3600 and 0 <= claim_wait_s <= 86_400):  # also refuses nan
        raise ConfigError("set GLAZE_LEASE_S between 0.5 and 3600 seconds and GLAZE_CLAIM_WAIT_S between 0 and 86400")
    return Settings(
        home=home,
        database_url=env.get("GLAZE_DATABASE_URL") or None,
        redis_url=env.get("GLAZE_REDIS_URL") or None,
        redis_prefix=env.get("GLAZE_REDIS_PREFIX") or "glaze:",
        allow_private_networks=allow_all_private,
        allowed_networks=networks,
        resolve_overrides=resolve,
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
        llm_max_tokens_per_field=_llm_tokens_per_field(env),
        waterfall_order=load_waterfall_order(),
        apis={name: _api_settings(env, name) for name in _API_DEFAULTS},
        retry=_retry_settings(env),
        max_cost_usd=_dollars(env, "GLAZE_MAX_COST_USD", 10.0),
        max_cost_per_row_usd=_dollars(env, "GLAZE_MAX_COST_PER_ROW_USD", 0.10),
        limiter_fallback_workers=max(1, _int(env, "GLAZE_LIMITER_FALLBACK_WORKERS", 4)),
        readonly_database_url=env.get("GLAZE_READONLY_DATABASE_URL") or None,
        sql_max_rows=sql_max_rows,
        upload_limits=_upload_limits(env),
        run_lost_after_s=run_lost_after_s,
        lease_s=lease_s,
        claim_wait_s=claim_wait_s,
        in_process_max_rows=max(0, _int(env, "GLAZE_IN_PROCESS_MAX_ROWS", 5_000)),
        chunk_rows=chunk_rows,
        api=_service_settings(env),
        refresh=_refresh_settings(env),
    )
