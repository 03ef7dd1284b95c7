"""Alembic environment: run programmatically by db.migrate() with a live
connection in config.attributes["connection"] (no alembic.ini, no URL here)."""
from alembic import context

from ykt_tools.backoffice.schema import metadata

conn = context.config.attributes["connection"]
context.configure(connection=conn, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
