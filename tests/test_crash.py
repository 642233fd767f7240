"""A process killed in the middle of a large import leaves a project that opens, intact, with all or none of it."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from studio.core.types import MediaInfo
from studio.db import Project

IMPORTED = 20_000

# The child imports IMPORTED boxes in one transaction, as `studio import` does. With "pause" it prints
# "started" half way through and waits there to be killed; without, it runs to the end. Its small page
# cache makes SQLite spill uncommitted pages into the WAL file, as an import of a million boxes does.
CHILD = textwrap.dedent(
    """
    import sys, time
    from sqlalchemy import Engine, event
    from studio.core.shapes import Box
    from studio.core.types import Annotation
    from studio.db import Project

    root, media_id, label_id, pause = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "pause"
    event.listen(Engine, "connect", lambda dbapi_connection, _: dbapi_connection.execute("PRAGMA cache_size=20"))

    def boxes():
        for i in range({n}):
            if i == {n} // 2:
                print("started", flush=True)
                while pause:
                    time.sleep(1)
            yield Annotation(media_id=media_id, label_id=label_id, shape=Box(i % 50, 1, i % 50 + 10, 12))

    with Project.open(root) as project, project.transaction():
        project.add_annotations(boxes(), batch_size=1000)
    print("committed", flush=True)
    """
).format(n=IMPORTED)


@pytest.fixture
def prepared(tmp_path: Path) -> tuple[Path, int, int]:
    root = tmp_path / "project"
    with Project.create(root) as project:
        (media,) = project.add_media([MediaInfo(str(root / "a.jpg"), "image", 64, 48, 1, 1)])
        label = project.ensure_label("cat")
    return root, media.id, label.id


def _start_import(root: Path, media_id: int, label_id: int, *, pause: bool) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(root), str(media_id), str(label_id), "pause" if pause else "run"],
        stdout=subprocess.PIPE,
        text=True,
    )


def _check_after_crash(root: Path) -> int:
    """Open the project as the user would next; return how many annotations it holds."""
    with Project.open(root) as project:
        annotations = project.counts()["annotations"]
        assert project.labels()[0].name == "cat"
    with sqlite3.connect(root / "studio.db") as raw:
        assert raw.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert raw.execute("PRAGMA foreign_key_check").fetchall() == []
    raw.close()
    assert annotations in (0, IMPORTED), f"a partial import survived: {annotations} of {IMPORTED}"
    return annotations


def test_kill_in_the_middle_of_an_import_keeps_none_of_it(prepared: tuple[Path, int, int]) -> None:
    root, media_id, label_id = prepared
    child = _start_import(root, media_id, label_id, pause=True)
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "started"
    wal = root / "studio.db-wal"
    assert wal.exists() and wal.stat().st_size > 0  # uncommitted pages have reached the disk
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    assert _check_after_crash(root) == 0
    # and the project keeps working: the same import run to the end is all there
    finished = _start_import(root, media_id, label_id, pause=False)
    out, _ = finished.communicate(timeout=120)
    assert "committed" in out
    assert _check_after_crash(root) == IMPORTED


@pytest.mark.parametrize("delay", [0.5, 1.5])
def test_kill_at_any_moment_keeps_all_or_none(prepared: tuple[Path, int, int], delay: float) -> None:
    """Killed at arbitrary moments (start-up, inserting, committing, done): never a part."""
    root, media_id, label_id = prepared
    child = _start_import(root, media_id, label_id, pause=False)
    time.sleep(delay)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    _check_after_crash(root)
