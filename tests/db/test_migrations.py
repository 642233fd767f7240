"""The schema that migrations build is the ORM's, and projects of other Studio versions are handled safely."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

from studio.core.errors import ProjectError
from studio.db import Project, migrate
from studio.db.schema import Base


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_orm_schema_equals_what_the_migrations_build(project: Project) -> None:
    with project.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == []


def test_schema_head_constant_is_the_migrations_head() -> None:
    assert ScriptDirectory.from_config(migrate.alembic_config()).get_current_head() == migrate.SCHEMA_HEAD


def test_a_project_of_a_newer_studio_is_refused_and_left_untouched(tmp_path: Path) -> None:
    root = tmp_path / "future"
    with Project.create(root) as project:
        project.ensure_label("cat")
    db = root / "studio.db"
    with sqlite3.connect(db) as raw:
        raw.execute("UPDATE alembic_version SET version_num = 'ffff9999'")
    raw.close()
    before = _sha256(db)
    with pytest.raises(ProjectError, match="newer Studio.*ffff9999"):
        Project.open(root)
    assert _sha256(db) == before
    with sqlite3.connect(db) as raw:
        assert raw.execute("SELECT version_num FROM alembic_version").fetchone() == ("ffff9999",)
        assert raw.execute("SELECT name FROM labels").fetchall() == [("cat",)]
    raw.close()


def _migrate_to(db: Path, revision: str) -> None:
    engine = create_engine(f"sqlite:///{db}")
    config = migrate.alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
    engine.dispose()


def test_a_project_at_the_first_revision_is_upgraded_on_open_and_keeps_its_data(tmp_path: Path) -> None:
    root = tmp_path / "old"
    root.mkdir()
    _migrate_to(root / "studio.db", "0001")
    with sqlite3.connect(root / "studio.db") as raw:
        raw.execute("INSERT INTO labels (name, color) VALUES ('cat', '#4e79a7')")
    raw.close()
    with Project.open(root) as project:
        assert [label.name for label in project.labels()] == ["cat"]
        assert migrate.current_revision(project.engine) == migrate.SCHEMA_HEAD
        with project.engine.connect() as conn:  # upgraded, it is exactly a new project's schema
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
        assert diff == []


def test_0003_keeps_annotations_and_moves_remembered_coco_ids(tmp_path: Path) -> None:
    root = tmp_path / "old"
    root.mkdir()
    _migrate_to(root / "studio.db", "0002")
    with sqlite3.connect(root / "studio.db") as raw:
        raw.execute("INSERT INTO labels (name, color) VALUES ('cat', '#4e79a7')")
        raw.execute("INSERT INTO media (path, kind, width, height, size_bytes, mtime_ns, frame_count, status, review_state,"
                    " added_at) VALUES ('/d/a.jpg', 'image', 64, 48, 1, 0, 1, 'ok', 'todo', '2026-01-01')")
        raw.execute("""INSERT INTO settings (key, value) VALUES ('ids.coco', '{"v": {"images": {"139": [1, 0]}, "labels": {"7": "cat"}}}')""")
        raw.execute("INSERT INTO annotations (media_id, frame, label_id, kind, geometry, x, y, w, h, area, attributes,"
                    """ created_at, updated_at) VALUES (1, 0, 1, 'box', '{"kind": "box", "xyxy": [1, 2, 3, 4]}', 1, 2, 2, 2,"""
                    " 4, '{}', '2026-01-01', '2026-01-01')")
    raw.close()
    with Project.open(root) as project:
        # adding the columns must not rebuild media (with foreign keys on, that deleted every annotation)
        assert project.counts()["annotations"] == 1 and project.list_media()[0].labelled is False
        from studio.io.formats.transfer import import_dataset

        results = tmp_path / "results.json"
        results.write_text('[{"image_id": 139, "category_id": 7, "bbox": [1, 2, 3, 4], "score": 0.5}]')
        assert import_dataset(project, "coco", results, run_name="model").annotations == 1
        [prediction] = project.annotations(source=project.find_run("model").id)
        assert (prediction.media_id, project.get_label(prediction.label_id).name) == (1, "cat")
        assert project.get_setting("ids.coco") is None


def test_an_empty_database_file_is_upgraded_on_open(tmp_path: Path) -> None:
    root = tmp_path / "empty"
    root.mkdir()
    (root / "studio.db").touch()
    with Project.open(root) as project:
        assert migrate.current_revision(project.engine) == migrate.SCHEMA_HEAD
        assert project.counts()["media"] == 0


def test_tables_without_a_version_are_refused_clearly(tmp_path: Path) -> None:
    """A database with tables Studio did not make (or an unversioned copy) is not silently altered."""
    root = tmp_path / "foreign"
    root.mkdir()
    with sqlite3.connect(root / "studio.db") as raw:
        raw.execute("CREATE TABLE labels (id INTEGER PRIMARY KEY, title TEXT)")
        raw.execute("INSERT INTO labels (title) VALUES ('keep me')")
    raw.close()
    with pytest.raises(ProjectError, match="cannot open the project database"):
        Project.open(root)
    with sqlite3.connect(root / "studio.db") as raw:
        assert raw.execute("SELECT title FROM labels").fetchall() == [("keep me",)]
        assert raw.execute("SELECT name FROM sqlite_master WHERE name = 'alembic_version'").fetchall() == []
    raw.close()
