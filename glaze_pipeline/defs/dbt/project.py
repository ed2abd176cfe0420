"""The dbt project (dbt/ at the repository root) and its manifest, which the Dagster assets are built from.

`dagster dev` re-parses the project on every load (`prepare_if_dev`); CI and the Docker image build the
manifest ahead (`dagster-dbt project prepare-and-package --file glaze_pipeline/defs/dbt/project.py`), and
anything else that finds it missing or older than the project's files parses it once (about 7 s) before
loading. Parsing needs no database.
"""

from __future__ import annotations

import logging
from pathlib import Path

from dagster_dbt import DbtProject

DBT_PROJECT_DIR = Path(__file__).resolve().parents[3] / "dbt"
_SOURCES = ("dbt_project.yml", "profiles.yml", "models", "seeds", "macros", "tests")

log = logging.getLogger(__name__)

glaze_dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR)


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


def prepare_manifest(project: DbtProject = glaze_dbt_project) -> DbtProject:
    """The project with an up-to-date manifest: parsed under `dagster dev`, or when missing or stale."""
    project.prepare_if_dev()
    if manifest_is_stale(project):
        log.info("parsing the dbt project in %s (its manifest is missing or older than its files)", project.project_dir)
        project.preparer.prepare(project)
    return project
