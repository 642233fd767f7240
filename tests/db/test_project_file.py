"""Damaged or foreign project files are refused untouched; read-only projects can still be read."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from pathlib import Path

import pytest

from studio.cli.main import main
from studio.core.errors import ProjectError
from studio.db import Project, project_file
from tests.conftest import write_image


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("studio: error: ") and err.count("\n") == 1, err
    return err


def test_a_new_project_carries_studios_application_id(tmp_path):
    Project.create(tmp_path / "p").close()
    with sqlite3.connect(tmp_path / "p" / "studio.db") as raw:
        assert raw.execute("PRAGMA application_id").fetchone() == (project_file.APPLICATION_ID,)
        assert raw.execute("PRAGMA user_version").fetchone() == (project_file.FORMAT_VERSION,)
    raw.close()


@pytest.mark.parametrize("application_id", [0, 0x4750_4B47])  # an unmarked database; a GeoPackage's id
def test_another_programs_database_named_studio_db_is_refused_untouched(tmp_path, capsys, application_id):
    root = tmp_path / "other"
    root.mkdir()
    with sqlite3.connect(root / "studio.db") as raw:
        raw.execute(f"PRAGMA application_id = {application_id}")
        raw.execute("CREATE TABLE media (id INTEGER PRIMARY KEY, note TEXT)")  # even a table name Studio uses
        raw.execute("INSERT INTO media (note) VALUES ('keep me')")
    raw.close()
    before = _digest(root)
    assert main(["info", str(root)]) == 1
    assert "another program" in _one_error_line(capsys)
    assert _digest(root) == before  # no tables added, no WAL switch, no side files


def test_an_empty_studio_db_is_refused_in_one_line(tmp_path, capsys):
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "studio.db").touch()
    assert main(["info", str(tmp_path / "p")]) == 1
    assert "is empty (0 bytes)" in _one_error_line(capsys)
    assert (tmp_path / "p" / "studio.db").stat().st_size == 0


def test_a_project_made_before_the_mark_is_recognised_and_stamped(tmp_path):
    with Project.create(tmp_path / "p") as project:
        project.ensure_label("cat")
    db = tmp_path / "p" / "studio.db"
    with sqlite3.connect(db) as raw:  # as Studio wrote projects before they were marked
        raw.execute("PRAGMA application_id = 0")
        raw.execute("PRAGMA user_version = 0")
    raw.close()
    assert project_file.check(db) is True
    with Project.open(tmp_path / "p") as project:
        assert [label.name for label in project.labels()] == ["cat"]
    with sqlite3.connect(db) as raw:
        assert raw.execute("PRAGMA application_id").fetchone() == (project_file.APPLICATION_ID,)
    raw.close()
    assert project_file.check(db) is False


def _project_with_an_annotation(tmp_path: Path) -> Path:
    root = tmp_path / "p"
    assert main(["new", str(root)]) == 0
    image = write_image(root / "a.png", 32, 24)
    assert main(["add", str(root), str(image)]) == 0
    with Project.open(root) as project:
        from studio.core.shapes import Box
        from studio.core.types import Annotation

        media = project.list_media()[0]
        project.add_annotation(Annotation(media.id, project.ensure_label("cat").id, Box(1, 1, 10, 10)))
    return root


def test_a_read_only_project_is_read_and_exported_and_never_written(tmp_path, capsys, monkeypatch):
    """The file and its folder cannot be written (read-only media): info and export work, edits fail in one line."""
    root = _project_with_an_annotation(tmp_path)
    # tests run as root on CI machines too, where chmod alone does not stop writes: say what os.access would
    monkeypatch.setattr(project_file, "writable", lambda db: False)
    before = _digest(root)
    capsys.readouterr()
    assert main(["info", str(root), "--json"]) == 0
    assert '"annotations": 1' in capsys.readouterr().out
    assert main(["export", str(root), "--format", "coco", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out").is_dir()
    capsys.readouterr()
    assert main(["add", str(root), str(write_image(tmp_path / "b.png"))]) == 1
    assert "is open read-only" in _one_error_line(capsys)
    with Project.open(root) as project:
        assert project.read_only
        with pytest.raises(ProjectError, match="read-only"):
            project.ensure_label("dog")
    assert _digest(root) == before


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes read-only files anyway")
def test_a_project_in_a_read_only_folder_opens_read_only(tmp_path, capsys):
    root = _project_with_an_annotation(tmp_path)
    for path in [root, *root.iterdir()]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        assert main(["info", str(root), "--json"]) == 0
        assert '"annotations": 1' in capsys.readouterr().out
    finally:
        for path in [root, *root.iterdir()]:
            path.chmod(0o755 if path.is_dir() else 0o644)
