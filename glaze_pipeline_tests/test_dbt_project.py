"""The dbt project says what the catalog and the status vocabulary say: the two cannot drift apart."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from glaze_pipeline.core.intake.tables import TableStatus
from glaze_pipeline.core.model.fields import CATALOG, FIELD_NAMES, Subject
from glaze_pipeline.core.model.status import Status
from glaze_pipeline.core.storage.db import LIBPQ_VARIABLES
from glaze_pipeline.defs.dbt.project import DBT_PROJECT_DIR

FIELD_STATUSES = [s.value for s in Status if s != Status.PARTIAL]  # PARTIAL describes rows, never a field
TABLE_STATUSES = [v for k, v in vars(TableStatus).items() if k.isupper()]


def _yml(path: str) -> dict[str, Any]:
    return yaml.safe_load((DBT_PROJECT_DIR / path).read_text())


def _column(path: str, column: str) -> dict[str, Any]:
    (model,) = _yml(path)["models"]
    (found,) = [c for c in model["columns"] if c["name"] == column]
    return found


def _accepted_values(path: str, column: str) -> list[str]:
    (values,) = [
        t["accepted_values"]["arguments"]["values"]
        for t in _column(path, column).get("data_tests", [])
        if isinstance(t, dict) and "accepted_values" in t
    ]
    return values


def test_the_field_lists_the_sql_loops_over_are_the_catalog():
    project_vars = _yml("dbt_project.yml")["vars"]
    assert project_vars["company_fields"] == [f.name for f in CATALOG.values() if f.subject == Subject.COMPANY]
    assert project_vars["person_fields"] == [f.name for f in CATALOG.values() if f.subject == Subject.PERSON]
    assert project_vars["integer_fields"] == [f.name for f in CATALOG.values() if f.sql_type == "integer"]


def test_stg_records_documents_every_catalog_field_as_the_catalog_does():
    (model,) = _yml("models/staging/stg_records.yml")["models"]
    documented = {c["name"]: c.get("description") for c in model["columns"]}
    missing = [f.name for f in CATALOG.values() if documented.get(f.name) != f.description]
    expected = "".join(f"      - name: {n}\n        description: {CATALOG[n].description}\n" for n in missing)
    assert not missing, f"stg_records.yml should document these fields as the catalog does:\n{expected}"


@pytest.mark.parametrize(
    ("path", "column", "expected"),
    [
        ("models/staging/stg_records.yml", "status", [s.value for s in Status]),
        ("models/intermediate/int_record_fields.yml", "status", FIELD_STATUSES),
        ("models/staging/stg_provider_calls.yml", "status", FIELD_STATUSES),
        ("models/staging/stg_tables.yml", "status", TABLE_STATUSES),
        ("models/staging/stg_field_values.yml", "field", list(FIELD_NAMES)),
        ("models/intermediate/int_record_fields.yml", "field", list(FIELD_NAMES)),
    ],
)
def test_accepted_values_are_the_vocabulary(path: str, column: str, expected: list[str]):
    assert _accepted_values(path, column) == expected, f"{path}: {column} should accept {expected}"


def test_the_profile_reads_only_libpq_variables_that_glaze_fills_from_its_one_url():
    profile = (DBT_PROJECT_DIR / "profiles.yml").read_text()
    read = set(re.findall(r"env_var\('([A-Z_]+)'", profile))
    assert read and read <= set(LIBPQ_VARIABLES)
