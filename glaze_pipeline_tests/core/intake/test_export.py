"""The export shows each value's confidence beside it, landed or kept only as a candidate."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from glaze_pipeline.core.intake.export import confidence_column_names, enriched_column_names, field_confidence
from glaze_pipeline.core.intake.tables import TableInfo


def info(columns: list[str], wanted: list[str]) -> TableInfo:
    return TableInfo("t", "t", "website", columns, wanted, [], 1, 1, 0, 0, "enriched", datetime.now(UTC))


def test_each_enriched_column_has_a_confidence_column_prefixed_like_it() -> None:
    table = info(["website", "company_name", "company_email_confidence"], ["company_name", "company_email"])
    assert enriched_column_names(table) == {"company_name": "glaze_company_name", "company_email": "company_email"}
    assert confidence_column_names(table) == {
        "company_name": "glaze_company_name_confidence",
        "company_email": "glaze_company_email_confidence",  # the user's table already has this name
    }


def test_confidence_of_a_landed_value_and_of_one_kept_only_as_a_candidate() -> None:
    provenance = {
        "company_name": {"status": "filled", "confidence": 98, "source": "website"},
        "company_country": {"status": "low_confidence", "value": "IO", "confidence": 41, "source": "website"},
        "company_email": {"status": "not_found"},
    }
    assert field_confidence(provenance, "company_name") == "98"
    assert field_confidence(json.dumps(provenance), "company_country") == "41"  # the cell itself stays empty
    assert field_confidence(provenance, "company_email") is None
    assert field_confidence(None, "company_name") is None  # a rejected input row has no record
