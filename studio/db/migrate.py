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


def require_current(engine: Engine) -> None:
    """For a read-only open: the schema must already be this Studio's (nothing may be migrated)."""
    current = current_revision(engine)
    if current != SCHEMA_HEAD:
        raise ProjectError(
            f"this project (schema {current}) must be upgraded to schema {SCHEMA_HEAD} before this Studio can use "
            "it, and it is read-only; open it once from a writable copy"
        )

def create_schema(engine: Engine) -> None:
    """Build a new, empty database's schema from the ORM in one transaction and stamp it at the head.

    Replaying every migration on an empty database costs ~0.2 s (Alembic's import and one DDL step per
    revision) for the same result: tests/db/test_migrations.py checks that the ORM equals what the
    migrations build, so creating from the ORM is safe. Existing databases still upgrade with Alembic.
    """
    from studio.db.schema import Base

    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")  # see upgrade(): all of the schema or none of it
        Base.metadata.create_all(conn)
        conn.exec_driver_sql("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
        conn.execute(text("INSERT INTO alembic_version (version_num) VALUES (:head)"), {"head": SCHEMA_HEAD})


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
