"""Structured logs: one JSON object per line, from the CLI, the sensors and the runs, with no secret in them.

Every line has `service`, `timestamp`, `level` and `message`, plus context when there is some (`table`,
`run`, `step`, `provider`, counts). The core logs through the standard library (`logging.getLogger`);
structlog renders those records and its own the same way, through one processor chain, so a library's
warning and ours look alike. Secret values (API keys, passwords in URLs) are replaced by `***` in every
field, whatever logged them.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any, TextIO

import psycopg
import structlog
from psycopg.conninfo import conninfo_to_dict

from glaze_pipeline.config import Settings

MASK = "***"
# Libraries whose info lines say nothing a user acts on (alembic announces its dialect on every command).
_QUIET = ("alembic", "httpx", "httpcore", "scrapy", "asyncio", "urllib3")
_SECRET_FIELD = re.compile(r"(api_?key|token|secret|password|authorization)", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://[^:/@\s]*:)(?P<password>[^@\s]+)@", re.IGNORECASE)
_MIN_SECRET = 6  # shorter values would mask ordinary words


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is at the time, so a progress bar that redirects it keeps its place."""

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


class Redactor:
    """Masks known secret values anywhere in a log line, fields named like secrets, and URL passwords."""

    def __init__(self, secrets: Iterable[str | None]) -> None:
        self.secrets = sorted({s for s in secrets if s and len(s) >= _MIN_SECRET}, key=len, reverse=True)

    def clean(self, value: object) -> object:
        if isinstance(value, str):
            for secret in self.secrets:
                value = value.replace(secret, MASK)
            return _URL_PASSWORD.sub(rf"\g<scheme>{MASK}@", value)
        if isinstance(value, dict):
            return {k: MASK if _SECRET_FIELD.search(str(k)) else self.clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.clean(v) for v in value]
        return value

    def __call__(self, logger: object, method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        return {k: MASK if _SECRET_FIELD.search(k) else self.clean(v) for k, v in event.items()}


def settings_secrets(settings: Settings) -> list[str | None]:
    """Every secret a setting holds: API keys, and the passwords inside the database and Redis URLs."""
    secrets: list[str | None] = [settings.anthropic_api_key, *(api.api_key for api in settings.apis.values())]
    for url in (settings.database_url, settings.redis_url):
        if url and "://" in url and (match := _URL_PASSWORD.search(url)):
            secrets.append(match["password"])
        elif url:
            with contextlib.suppress(psycopg.ProgrammingError):  # unparsable: the database's error to report, not ours
                secrets.append(str(conninfo_to_dict(url).get("password") or ""))
    return secrets


def _dagster_context(logger: object, method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A run's record carries Dagster's metadata: the run, the step, the table (its partition), the plain message."""
    record = event.get("_record")
    meta = getattr(record, "dagster_meta", None)
    event.pop("dagster_meta", None)
    if not isinstance(meta, dict):
        return event
    event["service"] = "run"
    event["event"] = meta.get("orig_message") or event.get("event")
    event["run"] = meta.get("run_id")
    tags = meta.get("job_tags") or {}
    if tags.get("dagster/partition"):
        event["table"] = tags["dagster/partition"]
    step = meta.get("step_key")
    if step:
        event["step"] = step
        if step.endswith("_candidates"):
            event["provider"] = step.removesuffix("_candidates")
    return event


_state: dict[str, Any] = {}


def configure(service: str, settings: Settings | None = None, *, level: int | str | None = None) -> None:
    """Send every log record of this process to stderr as JSON lines. The first service named stays the
    process's own, and its level (default INFO) the process's; later calls (a run inside the CLI) add secrets.
    """
    _state.setdefault("service", service)
    redactor: Redactor = _state.setdefault("redactor", Redactor(()))
    if settings is not None:
        redactor.secrets = Redactor([*redactor.secrets, *settings_secrets(settings)]).secrets
    root = logging.getLogger()
    handler = _state.get("handler")
    if handler is None:
        handler = _state["handler"] = _StderrHandler()
        handler.setFormatter(_formatter(redactor))
        for old in [h for h in root.handlers if type(h) is logging.StreamHandler]:
            root.removeHandler(old)  # basicConfig's plain-text handler would print each line twice
        root.addHandler(handler)
        root.setLevel(level or logging.INFO)
        for name in _QUIET:
            logging.getLogger(name).setLevel(logging.WARNING)
        structlog.configure(
            processors=[*_shared(), structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
            logger_factory=structlog.stdlib.LoggerFactory(),
            wrapper_class=structlog.stdlib.BoundLogger,
            cache_logger_on_first_use=True,
        )
    elif level is not None:
        root.setLevel(level)


def _shared() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
    ]


def _formatter(redactor: Redactor) -> structlog.stdlib.ProcessorFormatter:
    def service(logger: object, method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        event.setdefault("service", _state.get("service", "glaze"))
        return event

    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_shared(), structlog.stdlib.ExtraAdder()],
        processors=[
            _dagster_context,
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            service,
            structlog.processors.format_exc_info,
            structlog.processors.EventRenamer("message"),
            redactor,
            structlog.processors.JSONRenderer(default=str, sort_keys=False),
        ],
    )


def get_logger(name: str = "glaze") -> structlog.stdlib.BoundLogger:
    """A structlog logger whose lines go through `configure`'s chain; bind context with `.bind(table=…)`."""
    return structlog.stdlib.get_logger(name)
