"""Ingest: uploaded tables become partitions; `source_rows` turns one into the entities to enrich."""
