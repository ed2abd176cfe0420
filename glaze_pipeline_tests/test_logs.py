"""Structured logs: every line one JSON object with service, timestamp, level and message; no secret ever."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import structlog

from glaze_pipeline import logs
from glaze_pipeline.config import settings
from glaze_pipeline.sandbox.apis import ApiSimulator
from glaze_pipeline.sandbox.sites import DEMO_SITES, SiteServer, demo_hosts, directory_pages
from glaze_pipeline_tests.helpers import write_table

SECRET = "sk-glaze-test-0123456789abcdef"


def _lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _split(stderr: str) -> tuple[list[dict[str, object]], list[str]]:
    """stderr holds log lines (JSON) and the CLI's own words to the user (counts, notes); nothing else."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    return _lines("\n".join(line for line in lines if line.startswith("{"))), [
        line for line in lines if not line.startswith("{")
    ]


def test_the_chain_masks_secrets_wherever_they_appear() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs._formatter(logs.Redactor([SECRET])))
    logger = logging.getLogger("glaze.test.redaction")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        logger.warning("calling the search API with key %s", SECRET, extra={"table": "leads", "rows": 3})
        logger.info("connecting", extra={"url": "postgresql://glaze:hunter2-pw@db:5432/glaze", "api_key": "abc"})
        try:
            raise RuntimeError(f"401 from vendor for {SECRET}")
        except RuntimeError:
            logger.exception("paid call failed")
    finally:
        logger.removeHandler(handler)
    lines = _lines(stream.getvalue())
    assert SECRET not in stream.getvalue() and "hunter2-pw" not in stream.getvalue()
    first, second, third = lines
    assert first["message"] == "calling the search API with key ***"
    assert (first["level"], first["table"], first["rows"]) == ("warning", "leads", 3)
    assert {"service", "timestamp", "level", "message"} <= set(first)
    assert second["url"] == "postgresql://glaze:***@db:5432/glaze" and second["api_key"] == "***"
    assert "RuntimeError: 401 from vendor for ***" in str(third["exception"])


def test_settings_name_their_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "GLAZE_HOME": "/tmp/glaze-x",
        "GLAZE_SEARCH_API_KEY": SECRET,
        "ANTHROPIC_API_KEY": "sk-ant-another-secret",
        "GLAZE_DATABASE_URL": "host=db user=glaze password=libpq-secret dbname=glaze",
        "GLAZE_REDIS_URL": "redis://:redis-secret-pw@cache:6379/0",
    }
    secrets = set(logs.settings_secrets(settings(env)))
    assert {SECRET, "sk-ant-another-secret", "libpq-secret", "redis-secret-pw"} <= secrets


@pytest.mark.slow
def test_a_cli_run_logs_json_lines_without_the_key_and_says_each_warning_once(servers, fresh_cache, tmp_path: Path):
    """A real `glaze enrich` in its own process, with a paid provider's key set: stderr is JSON lines only."""
    hosts = demo_hosts()[:2]
    table = write_table(tmp_path / "logged.csv", [f"https://{h}" for h in hosts])
    env = {k: v for k, v in os.environ.items() if k not in ("ANTHROPIC_API_KEY", "DAGSTER_HOME")}
    with SiteServer(directory_pages(DEMO_SITES)) as site, ApiSimulator("linkedin", api_key=SECRET) as linkedin:
        env |= linkedin.env() | {"GLAZE_RESOLVE": site.resolve_spec(hosts), "GLAZE_LINKEDIN_RATE_PER_S": "100"}
        command = [sys.executable, "-m", "glaze_pipeline.cli", "-v", "enrich", str(table)]
        fields = ["--fields", "company_name,company_employee_range,company_funding"]
        done = subprocess.run(command + fields, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert SECRET not in done.stdout + done.stderr
    lines, words = _split(done.stderr)
    assert all({"service", "timestamp", "level", "message"} <= set(line) for line in lines)
    # No log record escapes the chain in another format (Dagster's "… - dagster - WARNING - …", plain logging).
    assert not [w for w in words if " - dagster - " in w or w.startswith(("WARNING", "INFO", "DEBUG", "ERROR"))]
    # The upload is said first; only the lost-run check's release of another test's dead table may come before.
    own = [w for w in words if not (w.startswith("table ") and " failed: interrupted" in w)]
    assert own[0].startswith("logged.csv → table logged")
    assert "note company_funding: no configured provider fills it; llm would (set ANTHROPIC_API_KEY)" in words
    assert {"cli", "run"} <= {line["service"] for line in lines}, done.stderr[-6000:]
    skipped = [line for line in lines if "ANTHROPIC_API_KEY is not set" in str(line["message"])]
    assert len(skipped) == 1  # said once: not again in Dagster's own format, not again by the CLI
    assert done.stderr.count("ANTHROPIC_API_KEY is not set: llm skipped;") == 1
    assert skipped[0]["level"] == "warning" and skipped[0]["table"] == "logged" and skipped[0]["provider"] == "llm"
    assert skipped[0]["run"]
    assert "company_employee_range" in done.stdout  # the summary (stdout) is not a log line


def test_structlog_loggers_use_the_same_chain(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("cli")
    structlog.contextvars.bind_contextvars(table="leads")
    try:
        logs.get_logger("glaze.test").warning("budget reached", spent_usd=1.5)
    finally:
        structlog.contextvars.unbind_contextvars("table")
    (line,) = _lines(capsys.readouterr().err)
    assert (line["message"], line["table"], line["spent_usd"]) == ("budget reached", "leads", 1.5)
    assert line["level"] == "warning"
