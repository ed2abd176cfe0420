"""The plain-Python heart of glaze-pipeline: no Dagster import below this package."""
