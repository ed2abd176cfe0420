"""Requests: single-record API requests become small `enrich_record` runs, and no request is left hanging."""
