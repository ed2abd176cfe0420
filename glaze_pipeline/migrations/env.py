"""Alembic environment: runs migrations on the connection `glaze_pipeline.core.storage.db.migrate` hands in."""

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, version_table_schema="glaze", transactional_ddl=True)
with context.begin_transaction():
    context.run_migrations()
