"""The record code location: the requests sensor, `enrich_record` and the sensors that leave no request hanging.

A second, small code location beside `glaze_pipeline.definitions`, listed next to it in `workspace.yaml`.
Every `enrich_record` run is a new process that imports its code location before its op starts; this
one leaves out dbt, the table assets and their jobs, so a single-record run starts in a fraction of the
main location's import time. Its runs use the same core waterfall, resources and run logger.
"""

from __future__ import annotations

import dagster as dg

from glaze_pipeline.defs.resources import RuntimeResource, json_console
from glaze_pipeline.record_defs.jobs import enrich_record
from glaze_pipeline.record_defs.sensors import failed_request_runs_sensor, queued_requests_sensor

LOCATION_NAME = "glaze_pipeline_records"


def build_record_definitions() -> dg.Definitions:
    return dg.Definitions(
        jobs=[enrich_record],
        sensors=[queued_requests_sensor, failed_request_runs_sensor],
        resources={"runtime": RuntimeResource()},
        loggers={"console": json_console},
    )


defs = build_record_definitions()
