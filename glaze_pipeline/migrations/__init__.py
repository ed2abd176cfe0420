"""Alembic migrations for the `glaze` schema: the only way its tables change."""
