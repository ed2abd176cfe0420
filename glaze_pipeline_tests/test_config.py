"""Where glaze keeps its home: the same from every folder, and a word before anything new is started."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from glaze_pipeline.cli import main
from glaze_pipeline.config import settings
from glaze_pipeline.core.pipeline.runtime import open_database
from glaze_pipeline.core.storage import services


def test_without_glaze_home_every_folder_finds_the_same_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"XDG_DATA_HOME": str(tmp_path / "data"), "HOME": str(tmp_path / "user")}
    homes = set()
    for folder in ("project", "project/sub/deeper", "elsewhere"):
        (tmp_path / folder).mkdir(parents=True)
        monkeypatch.chdir(tmp_path / folder)
        homes.add(settings(env).home)
    assert homes == {tmp_path / "data" / "glaze"}
    assert settings({"HOME": str(tmp_path / "user")}).home == tmp_path / "user" / ".local" / "share" / "glaze"
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert settings(env | {"GLAZE_HOME": "../project/.glaze"}).home == tmp_path / "project" / ".glaze"


def test_a_reading_command_in_a_home_without_a_database_says_where_it_looked_and_starts_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("GLAZE_HOME", "GLAZE_DATABASE_URL", "GLAZE_REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    old = tmp_path / "project"
    (old / ".glaze" / "postgres").mkdir(parents=True)  # a home the old default (./.glaze) left behind
    monkeypatch.chdir(old)
    for command in (["export", "leads", "-o", str(tmp_path / "out.csv")], ["tables"], ["status", "leads"]):
        result = CliRunner().invoke(main, command)
        assert result.exit_code == 2, result.output
        assert f"no glaze database under {tmp_path / 'data' / 'glaze'}" in result.output
        assert f"GLAZE_HOME={old / '.glaze'}" in result.output
    assert not (tmp_path / "data" / "glaze" / "postgres").exists()  # no second, empty server was started


def test_a_new_empty_database_is_announced_before_it_is_created(
    servers, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    name = f"glaze_new_{uuid.uuid4().hex[:8]}"
    url = psycopg.conninfo.make_conninfo(servers.database_url, dbname=name)
    services.create_database_if_missing(url)
    monkeypatch.setenv("GLAZE_DATABASE_URL", url)
    try:
        with caplog.at_level(logging.WARNING):
            open_database(settings())
        assert any("has no glaze tables yet: creating them" in r.getMessage() for r in caplog.records)
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            open_database(settings())  # the second time there is nothing new to say
        assert not [r for r in caplog.records if "no glaze" in r.getMessage()]
    finally:
        admin = psycopg.conninfo.make_conninfo(servers.database_url, dbname="postgres")
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(psycopg.sql.SQL("DROP DATABASE {} WITH (FORCE)").format(psycopg.sql.Identifier(name)))
