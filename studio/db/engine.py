"""Engines for project databases: SQLite tuned for a desktop app, or any other SQLAlchemy URL."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import Engine, create_engine, event

BUSY_TIMEOUT_MS = 10_000
"""How long a writer waits for another process's write (imports commit in chunks, so seconds at most)."""


def _sqlite_read_only_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA query_only=ON")  # refuse any write, even one the file's mode would allow
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.close()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL: readers (thumbnail workers, the GUI) never block the writer, and a crash mid-write leaves
    # the last committed state. synchronous=FULL makes every commit durable even on power loss.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.close()


def _json_text(value: Any) -> str:
    # dict keys that are not strings (ids) become strings, as the standard json module does
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY).decode()


# Every shape and attribute set is a JSON column: orjson decodes them ~5x faster than the json module,
# which is most of the time of an export or a 1M-annotation read.
_JSON_CODEC = {"json_serializer": _json_text, "json_deserializer": orjson.loads}


def make_engine(url: str, *, read_only: bool = False) -> Engine:
    """An engine for `url`; SQLite connections get WAL, foreign keys and a busy timeout.

    `read_only` (SQLite): set no pragma that writes (WAL is a header change) and refuse writes.
    """
    if url.startswith("sqlite"):
        connect_args = {"check_same_thread": False, "timeout": BUSY_TIMEOUT_MS / 1000}
        engine = create_engine(url, connect_args=connect_args, **_JSON_CODEC)
        event.listen(engine, "connect", _sqlite_read_only_pragmas if read_only else _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, **_JSON_CODEC)
