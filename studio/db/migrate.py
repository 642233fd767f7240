"""Bring a project database to the schema this Studio knows, or refuse a newer one clearly."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, inspect, text

from studio.core.errors import ProjectError

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
SCHEMA_HEAD = "0007"
"""The newest revision in migrations/versions; a test checks they agree. Lets an up-to-date project
open without importing Alembic (it costs ~0.1 s)."""


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def alembic_config():  # noqa: ANN201 - alembic is imported lazily, see SCHEMA_HEAD
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def upgrade(engine: Engine) -> None:
    """Run pending migrations; raise ProjectError for a schema newer than this Studio."""
    current = current_revision(engine)
    if current == SCHEMA_HEAD:
        return
    from alembic import command
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    config = alembic_config()
    if current is not None:
        try:
            ScriptDirectory.from_config(config).get_revision(current)
        except CommandError:
            raise ProjectError(
                f"this project was saved by a newer Studio (schema {current}, this Studio knows up to "
                f"{SCHEMA_HEAD}); upgrade Studio to open it"
            ) from None
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            # pysqlite runs DDL outside any transaction: a migration failing half way would leave half a
            # schema. An explicit BEGIN makes the whole upgrade atomic (and excludes a second migrator).
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
