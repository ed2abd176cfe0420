"""The thin Dagster shell: one folder per domain, each calling the plain core."""
