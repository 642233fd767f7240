"""Alembic environment: Studio always runs migrations on a connection it opened (see studio.db.migrate)."""

from alembic import context

from studio.db.schema import Base

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
)
with context.begin_transaction():
    context.run_migrations()
