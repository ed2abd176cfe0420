"""The dbt project (dbt/ at the repository root) and its manifest, which the Dagster dbt assets are built from.

The manifest is parsed whenever it is missing or older than a file of the project: while you edit models under
`glaze dev` (the development case `DbtProject.prepare_if_dev` covers), in a fresh clone, and in tests. CI and the
Docker image build it ahead (`python -m glaze_pipeline.defs.dbt.project`), so a deployed code location loads
without parsing. We parse with the dbt beside this interpreter rather than through `prepare_if_dev`, which runs
whatever `dbt` is first on PATH (none when the virtualenv is not activated) and re-parses on every load even
when nothing changed. Parsing needs no database.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from dagster_dbt import DbtCliResource, DbtProject

DBT_PROJECT_DIR = Path(__file__).resolve().parents[3] / "dbt"
# dbt-core is a dependency of this package, so its executable sits beside this interpreter, PATH or not.
DBT_EXECUTABLE = Path(sys.executable).with_name("dbt")
_SOURCES = ("dbt_project.yml", "profiles.yml", "models", "seeds", "macros", "tests")

log = logging.getLogger(__name__)

glaze_dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR)


def dbt_cli() -> DbtCliResource:
    return DbtCliResource(project_dir=glaze_dbt_project, dbt_executable=str(DBT_EXECUTABLE))


def manifest_is_stale(project: DbtProject = glaze_dbt_project) -> bool:
    """True when the manifest is missing or a file of the project changed after it was written."""
    if not project.manifest_path.exists():
        return True
    built = project.manifest_path.stat().st_mtime
    for name in _SOURCES:
        path = project.project_dir / name
        files = path.rglob("*") if path.is_dir() else [path]
        if any(f.is_file() and f.stat().st_mtime > built for f in files):
            return True
    return False


def prepare_manifest(*, force: bool = False) -> DbtProject:
    """The project, its manifest parsed first if it is missing or stale (or when forced)."""
    project = glaze_dbt_project
    if force or manifest_is_stale(project):
        log.info("parsing the dbt project in %s", project.project_dir)
        dbt_cli().cli(["parse", "--quiet"], target_path=project.target_path).wait()
    return project


if __name__ == "__main__":
    prepare_manifest(force=True)
    print(f"dbt manifest: {glaze_dbt_project.manifest_path}")
