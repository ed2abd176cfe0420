"""A run for a partition whose table was never uploaded stops at its first step with a sentence, nothing else red."""

import dagster as dg
import pytest

from glaze_pipeline.definitions import defs
from glaze_pipeline.defs.ingest.tables import unknown_table_message
from glaze_pipeline.defs.lifecycle.runs import run_failure_reason


@pytest.mark.parametrize(
    ("job", "first_step"), [("enrich_table", "source_rows"), ("enrich_table_chunked", "table_chunks")]
)
def test_unknown_table_partition_fails_fast_with_what_to_do(servers, conn, job, first_step):
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("tables", ["never_uploaded"])  # as the backfill dialog does

    result = defs.resolve_job_def(job).execute_in_process(
        instance=instance, partition_key="never_uploaded", raise_on_error=False
    )

    assert not result.success
    failures = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    assert [e.step_key for e in failures] == [first_step]  # the first step; every other step never ran
    data = failures[0].step_failure_data
    assert data.user_failure_data.description == unknown_table_message("never_uploaded")
    assert "no table 'never_uploaded' was uploaded; upload it with `glaze upload" in data.error.message
    assert data.error.cause is None  # no TableNotFound traceback chained behind the sentence
    assert not any(e.event_type == dg.DagsterEventType.STEP_SUCCESS for e in result.all_events)
    assert not instance.has_dynamic_partition("tables", "never_uploaded")  # not left red in the catalog
    run = instance.get_run_by_id(result.run_id)
    assert "no table 'never_uploaded' was uploaded" in run_failure_reason(instance, run)
