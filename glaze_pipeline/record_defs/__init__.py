"""Requests: single-record API requests become small `enrich_record` runs, and no request is left hanging.

Served by their own code location (`glaze_pipeline.record_definitions`), not the main one: a run's process
imports its code location, and this one leaves out dbt and the table assets so that a run starts sooner.
"""
