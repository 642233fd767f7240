"""Recognise a Studio project file before opening it, and open read-only files without writing.

A studio.db is marked as Studio's on creation: SQLite's `application_id` (bytes 68-71 of the header) and
`user_version` (bytes 60-63). Opening checks the header first, reading the file as bytes, so a file that
belongs to another program, an empty file or a file that is no database is refused before SQLite (or
Studio's WAL pragma, which rewrites the header) touches it. A project made before the mark existed is
recognised by its `alembic_version` table and stamped when opened for writing.

A project whose file or folder cannot be written (read-only media, a read-only file) is opened with
SQLite's `mode=ro` (or `immutable=1` when not even SQLite's shared-memory file can be created), so it
can still be read and exported; a write then fails with one clear line.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from urllib.parse import quote

from studio.core.errors import ProjectError

APPLICATION_ID = 0x53545544
"""b"STUD": SQLite's application id for Studio projects (`file` and other tools can tell them apart)."""
FORMAT_VERSION = 1
"""SQLite's user_version of a Studio project: the file format, not the schema (Alembic keeps that)."""
_SQLITE_MAGIC = b"SQLite format 3\x00"
_STUDIO_TABLES = {"alembic_version", "media", "labels", "annotations", "runs"}


def writable(db: Path) -> bool:
    """Whether SQLite can write the project: the file and its folder (for the WAL and lock files)."""
    return os.access(db, os.W_OK) and os.access(db.parent, os.W_OK | os.X_OK)


def check(db: Path) -> bool:
    """Refuse a file that is not a Studio project; True if it is one made before projects were marked."""
    try:
        with db.open("rb") as file:
            header = file.read(100)
    except OSError as exc:
        raise ProjectError(f"cannot read {db}: {exc.strerror}") from None
    if not header:
        raise ProjectError(f"{db} is empty (0 bytes), not a Studio project; restore it from a backup or remove it")
    if not header.startswith(_SQLITE_MAGIC) or len(header) < 100:
        raise ProjectError(f"{db} is not a Studio project (not an SQLite database, or its header is damaged)")
    application_id = int.from_bytes(header[68:72], "big")
    user_version = int.from_bytes(header[60:64], "big")
    if application_id == APPLICATION_ID:
        if user_version > FORMAT_VERSION:
            raise ProjectError(f"{db} was saved by a newer Studio (file format {user_version}); upgrade Studio to open it")
        return False
    if application_id != 0 or user_version != 0:
        raise ProjectError(
            f"{db} belongs to another program (SQLite application id {application_id:#x}, user version "
            f"{user_version}), not Studio; it was left untouched"
        )
    tables = _table_names(db)
    if not tables >= _STUDIO_TABLES:
        raise ProjectError(f"{db} is an SQLite database of another program (no Studio tables); it was left untouched")
    return True


def _table_names(db: Path) -> set[str]:
    """The tables of `db`, read without writing anything (not even a journal)."""
    for options in ("mode=ro", "immutable=1"):
        try:
            connection = sqlite3.connect(f"file:{quote(str(db.resolve()))}?{options}", uri=True)
            try:
                return {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            finally:
                connection.close()
        except sqlite3.DatabaseError as exc:
            reason = str(exc)
    raise ProjectError(f"{db} is not a Studio project ({reason})")


def mark(db: Path) -> None:
    """Make a new, empty `db` a Studio project file (before any table or WAL setting exists)."""
    connection = sqlite3.connect(db)
    try:
        connection.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        connection.execute(f"PRAGMA user_version = {FORMAT_VERSION}")
        connection.commit()
    finally:
        connection.close()


STAMP_STATEMENTS = (f"PRAGMA application_id = {APPLICATION_ID}", f"PRAGMA user_version = {FORMAT_VERSION}")
"""Run on an open connection to mark a project made before projects were marked."""


def read_only_url(db: Path) -> str:
    """An SQLAlchemy URL that opens `db` without ever writing, even where its folder is read-only.

    A cleanly closed project has no WAL file: `immutable=1` reads it as it is and creates no side file.
    With a WAL file present (a writer has it open, or crashed), `mode=ro` reads the WAL too; it needs
    SQLite's shared-memory file, and where that cannot be made, `immutable=1` is all there is.
    """
    location = f"file:{quote(str(db.resolve()))}"
    options = "immutable=1"
    if db.with_name(db.name + "-wal").exists():
        try:
            probe = sqlite3.connect(f"{location}?mode=ro", uri=True)
            try:
                probe.execute("SELECT count(*) FROM sqlite_master").fetchone()
            finally:
                probe.close()
            options = "mode=ro"
        except sqlite3.OperationalError:
            pass
    return f"sqlite:///{location}?{options}&uri=true"
