"""The main Project operations behave the same on PostgreSQL (a team's shared server) as on SQLite.

Set STUDIO_TEST_POSTGRES_URL (e.g. postgresql+psycopg://postgres@/postgres?host=/tmp/pg) to a server
where the user may create databases; `bash .ci/run` starts a throw-away one. Each test works in a new
database that it drops at the end.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from studio.core.errors import NotFoundError, ProjectError, StudioError
from studio.core.shapes import Box, Polygon
from studio.core.types import Annotation, MediaInfo
from studio.db import Project, migrate


def exercise_project(project: Project) -> None:
    """Add media, labels, annotations, a run; edit, undo, filter, roll back: what the GUI and CLI do."""
    media = project.add_media([MediaInfo(str(project.root / f"img{i}.jpg"), "image", 64, 48, 10, 1) for i in range(3)])
    assert project.add_media([MediaInfo(str(project.root / "img0.jpg"), "image", 64, 48, 10, 1)]) == media[:1]
    cat = project.ensure_label("cat")
    dog = project.ensure_label("dog")
    drawn = project.add_annotation(
        Annotation(media_id=media[0].id, label_id=cat.id, shape=Polygon([[(1, 1), (9, 1), (5, 8)]]), attributes={"a": 1})
    )
    assert drawn.created_at is not None and drawn.created_at.tzinfo is not None
    edited = project.update_annotation(dataclasses.replace(drawn, shape=Box(2, 2, 20, 20), label_id=dog.id))
    stored = project.get_annotation(drawn.id)
    assert stored.shape == Box(2, 2, 20, 20)
    assert stored.updated_at == edited.updated_at and stored.updated_at.tzinfo == UTC
    (deleted,) = project.delete_annotations([drawn.id])
    assert project.add_annotation(deleted) == stored  # undo brings back the same id and values
    with pytest.raises(NotFoundError):
        project.update_annotation(dataclasses.replace(stored, id=10_000))

    run = project.create_run("yolo", params={"conf": 0.25})
    assert project.create_run("yolo").name == "yolo-2"
    boxes = [Annotation(media_id=media[1].id, label_id=cat.id, shape=Box(i, i, i + 5, i + 5), run_id=run.id, score=0.5)
             for i in range(20)]
    assert project.add_annotations(boxes, batch_size=7) == 20
    assert project.counts() == {"media": 3, "annotations": 1, "labels": 2, "runs": 2, "predictions": 20, "answers": 0, "embeddings": 0, "tracks": 0}
    assert [m.name for m in project.list_media(unannotated=True)] == ["img1.jpg", "img2.jpg"]
    assert project.count_media(label_id=dog.id) == 1
    assert project.count_media(name_contains="IMG2") == 1
    project.set_review_state(media[2].id, "done")
    assert project.count_media(review_state="done") == 1

    with pytest.raises(StudioError, match="used by"):
        project.delete_label(cat.id)
    assert project.merge_labels(dog.id, cat.id) == 1
    project.delete_run(run.id)
    assert project.counts()["predictions"] == 0

    with pytest.raises(RuntimeError), project.transaction():
        project.ensure_label("bird")
        project.add_annotations([dataclasses.replace(boxes[0], run_id=None)])
        raise RuntimeError("half way")
    assert project.counts() == {"media": 3, "annotations": 1, "labels": 1, "runs": 1, "predictions": 0, "answers": 0, "embeddings": 0, "tracks": 0}
    project.set_tags(media[0].id, ["night"])
    project.set_setting("view", {"zoom": 2})
    assert (project.tags(media[0].id), project.get_setting("view")) == (["night"], {"zoom": 2})


def test_main_operations_on_sqlite(project: Project) -> None:
    """The same scenario on SQLite, so a failure on PostgreSQL alone points at the database."""
    exercise_project(project)


@pytest.mark.postgres
def test_main_operations_on_postgres(postgres_url: str, tmp_path: Path) -> None:
    with Project.connect(postgres_url, tmp_path) as project:
        exercise_project(project)
    with Project.connect(postgres_url, tmp_path) as project:  # reopened: schema is current, data is there
        assert migrate.current_revision(project.engine) == migrate.SCHEMA_HEAD
        assert project.counts()["annotations"] == 1


@pytest.mark.postgres
def test_postgres_schema_equals_the_orm(postgres_url: str, tmp_path: Path) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from studio.db.schema import Base

    with Project.connect(postgres_url, tmp_path) as project, project.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata) == []


@pytest.mark.postgres
def test_unreachable_postgres_is_a_project_error(postgres_url: str, tmp_path: Path) -> None:
    wrong = make_url(postgres_url).set(database="studio_no_such_database")
    with pytest.raises(ProjectError, match="cannot open the project database"):
        Project.connect(wrong.render_as_string(hide_password=False), tmp_path)
