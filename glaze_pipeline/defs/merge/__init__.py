"""Merge: the best value per field, validated, then landed in Postgres once the table check passes."""
