"""The Project service on SQLite: what a user does to a project is saved, undoable and all-or-nothing."""

from __future__ import annotations

import dataclasses
import sqlite3
from datetime import UTC
from pathlib import Path

import pytest
from sqlalchemy import text

from studio.core.errors import NotFoundError, ProjectError, StudioError
from studio.core.shapes import Box, Polygon
from studio.core.types import PALETTE, Annotation, Media, MediaInfo
from studio.db import Project


def _add_images(project: Project, *names: str) -> list[Media]:
    infos = [MediaInfo(str(project.root / name), "image", 64, 48, 1000, 1) for name in names]
    return project.add_media(infos)


def _box(media: Media, label_id: int, *, x: float = 1, run_id: int | None = None, score: float | None = None) -> Annotation:
    return Annotation(media_id=media.id, label_id=label_id, shape=Box(x, 2, x + 10, 20), run_id=run_id, score=score)


def test_a_drawn_annotation_survives_closing_and_reopening(tmp_path: Path) -> None:
    root = tmp_path / "p"
    with Project.create(root) as project:
        (media,) = _add_images(project, "a.jpg")
        cat = project.ensure_label("cat")
        drawn = project.add_annotation(
            Annotation(media_id=media.id, label_id=cat.id, shape=Polygon([[(1, 1), (9, 1), (5, 8)]]),
                       attributes={"occluded": True}, created_by="ann")
        )
    with Project.open(root) as project:
        (stored,) = project.annotations(media.id)
        assert stored == drawn
        assert stored.created_at is not None and stored.created_at.tzinfo is not None
        assert stored.created_at.utcoffset().total_seconds() == 0
        assert project.get_media(media.id).path == "a.jpg"  # inside the project: stored relative


def test_open_accepts_the_db_file_and_refuses_a_non_project(tmp_path: Path) -> None:
    Project.create(tmp_path / "p").close()
    Project.open(tmp_path / "p" / "studio.db").close()
    with pytest.raises(ProjectError, match="not a Studio project"):
        Project.open(tmp_path / "nothing")
    with pytest.raises(ProjectError, match="already holds a project"):
        Project.create(tmp_path / "p")


def test_a_corrupt_database_file_is_a_clear_project_error(tmp_path: Path) -> None:
    root = tmp_path / "broken"
    root.mkdir()
    (root / "studio.db").write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(ProjectError, match="not a Studio project .not an SQLite database"):
        Project.open(root)
    assert (root / "studio.db").read_bytes() == b"this is not a database at all" * 100


def test_sqlite_runs_with_foreign_keys_wal_and_full_sync(project: Project) -> None:
    with project.engine.connect() as conn:
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL


def test_update_saves_the_new_shape_and_keeps_created_at(project: Project) -> None:
    (media,) = _add_images(project, "a.jpg")
    label = project.ensure_label("cat")
    ann = project.add_annotation(_box(media, label.id))
    edited = project.update_annotation(dataclasses.replace(ann, shape=Box(5, 5, 50, 40)))
    stored = project.get_annotation(ann.id)
    assert stored.shape == Box(5, 5, 50, 40)
    assert stored.created_at == ann.created_at
    assert stored.updated_at == edited.updated_at > ann.updated_at


def test_update_can_relabel_and_move_an_annotation(project: Project) -> None:
    """Label, frame and media are indexed columns, saved only when they change: they must still be saved."""
    first, second = _add_images(project, "a.jpg", "b.jpg")
    cat, dog = project.ensure_label("cat"), project.ensure_label("dog")
    ann = project.add_annotation(_box(first, cat.id))
    project.update_annotation(dataclasses.replace(ann, label_id=dog.id))
    assert project.label_counts() == {dog.id: 1}
    assert [m.name for m in project.list_media(label_id=dog.id)] == ["a.jpg"]
    project.update_annotation(dataclasses.replace(ann, label_id=dog.id, media_id=second.id, frame=3))
    assert project.annotations(second.id, frame=3)[0].id == ann.id
    assert project.annotations(first.id) == []
    with pytest.raises(StudioError, match="missing media, label or run"):
        project.update_annotation(dataclasses.replace(ann, label_id=999))
    assert project.get_annotation(ann.id).label_id == dog.id


def test_update_of_an_unknown_or_unsaved_annotation_is_refused(project: Project) -> None:
    (media,) = _add_images(project, "a.jpg")
    label = project.ensure_label("cat")
    with pytest.raises(NotFoundError):
        project.update_annotation(dataclasses.replace(_box(media, label.id), id=999))
    with pytest.raises(StudioError, match="never saved"):
        project.update_annotation(_box(media, label.id))
    assert project.counts()["annotations"] == 0


def test_delete_then_undo_restores_the_same_annotation(project: Project) -> None:
    (media,) = _add_images(project, "a.jpg")
    label = project.ensure_label("cat")
    first, second = (project.add_annotation(_box(media, label.id, x=x)) for x in (1, 30))
    deleted = project.delete_annotations([first.id])
    assert deleted == [first]
    assert project.annotations(media.id) == [second]
    restored = project.add_annotation(deleted[0])
    assert restored.id == first.id
    assert project.get_annotation(first.id) == first
    assert project.annotations(media.id) == [first, second]
    with pytest.raises(StudioError, match="reuses an id"):  # a second undo of the same delete
        project.add_annotation(deleted[0])
    assert project.counts()["annotations"] == 2


def test_an_annotation_on_a_missing_media_or_label_is_refused(project: Project) -> None:
    (media,) = _add_images(project, "a.jpg")
    label = project.ensure_label("cat")
    with pytest.raises(StudioError, match="missing media, label or run"):
        project.add_annotation(dataclasses.replace(_box(media, label.id), media_id=999))
    with pytest.raises(StudioError, match="missing media, label or run"):
        project.add_annotations([_box(media, label.id), _box(media, 999)])
    assert project.counts()["annotations"] == 0


def test_labels_rename_recolour_and_refusals(project: Project) -> None:
    cat, dog = project.ensure_label("cat"), project.ensure_label("dog")
    assert (cat.color, dog.color) == PALETTE[:2]  # new labels take distinct palette colours
    assert project.ensure_label(" cat ") == cat
    assert project.rename_label(cat.id, "Cat").name == "Cat"
    assert project.rename_label(cat.id, "Cat").name == "Cat"  # renaming to its own name is no clash
    with pytest.raises(StudioError, match="exists already"):
        project.rename_label(cat.id, "dog")
    assert project.recolor_label(dog.id, "#123abc").color == "#123abc"
    with pytest.raises(StudioError, match="#rrggbb"):
        project.recolor_label(dog.id, "red")
    with pytest.raises(StudioError, match="non-empty"):
        project.rename_label(dog.id, "  ")
    assert [(label.name, label.color) for label in project.labels()] == [("Cat", PALETTE[0]), ("dog", "#123abc")]


def test_merge_moves_annotations_and_removes_the_source_label(project: Project) -> None:
    (media,) = _add_images(project, "a.jpg")
    cat, kitten, dog = (project.ensure_label(n) for n in ("cat", "kitten", "dog"))
    project.add_annotations([_box(media, kitten.id), _box(media, kitten.id, x=5), _box(media, cat.id)])
    assert project.merge_labels(kitten.id, cat.id) == 2
    assert project.find_label("kitten") is None
    assert project.label_counts() == {cat.id: 3}
    with pytest.raises(NotFoundError):
        project.merge_labels(kitten.id, dog.id)
    assert project.label_counts() == {cat.id: 3}


def test_deleting_a_label_in_use_is_refused(project: Project) -> None:
    (media,) = _add_images(project, "a.jpg")
    cat, unused = project.ensure_label("cat"), project.ensure_label("unused")
    project.add_annotation(_box(media, cat.id))
    with pytest.raises(StudioError, match="used by 1 annotations"):
        project.delete_label(cat.id)
    assert project.find_label("cat") == cat
    project.delete_label(unused.id)
    assert project.labels() == [cat]
    with pytest.raises(NotFoundError):
        project.delete_label(unused.id)


def test_runs_get_fresh_names_and_deleting_one_removes_only_its_predictions(project: Project) -> None:
    (media,) = _add_images(project, "a.jpg")
    label = project.ensure_label("cat")
    first, second = project.create_run("yolo"), project.create_run("yolo")
    assert (first.name, second.name) == ("yolo-1", "yolo-2")
    assert first.created_at.tzinfo is not None and first.status == "running"
    with pytest.raises(StudioError, match="exists already"):
        project.create_run("sam", name="yolo-1")
    project.add_annotation(_box(media, label.id))
    project.add_annotations([_box(media, label.id, run_id=first.id, score=0.9)] * 3)
    project.add_annotation(_box(media, label.id, run_id=second.id, score=0.5))
    assert project.counts() == {"media": 1, "annotations": 1, "labels": 1, "runs": 2, "predictions": 4, "answers": 0, "embeddings": 0, "tracks": 0}
    assert len(project.annotations(media.id, source=first.id, min_score=0.8)) == 3
    assert project.label_counts() == {label.id: 1}
    assert project.label_counts(first.id) == {label.id: 3}
    assert project.label_counts("all") == {label.id: 5}

    project.delete_run(first.id)
    assert project.create_run("yolo").name == "yolo-1"  # the name is free again, nothing is overwritten
    assert [a.run_id for a in project.annotations(source="all")] == [None, second.id]
    finished = project.finish_run(second.id, "complete", {"images": 1})
    assert finished.finished_at is not None and finished.stats == {"images": 1}
    with pytest.raises(NotFoundError, match="runs: yolo-2, yolo-1"):
        project.find_run("nope")


def test_media_filters(project: Project) -> None:
    images = _add_images(project, "cats/a.jpg", "cats/b_1.jpg", "dogs/c%.jpg", "dogs/d.png")
    cat, dog = project.ensure_label("cat"), project.ensure_label("dog")
    run = project.create_run("yolo")
    project.add_annotation(_box(images[0], cat.id))
    project.add_annotation(_box(images[2], dog.id))
    project.add_annotation(_box(images[3], cat.id, run_id=run.id, score=0.7))  # a prediction is not a label
    project.set_review_state(images[1].id, "done")

    def names(**filters: object) -> list[str]:
        found = [m.name for m in project.list_media(**filters)]  # type: ignore[arg-type]
        assert project.count_media(**filters) == len(found)  # type: ignore[arg-type]
        return found

    assert names() == ["a.jpg", "b_1.jpg", "c%.jpg", "d.png"]
    assert names(name_contains="CATS/") == ["a.jpg", "b_1.jpg"]
    assert names(name_contains="%") == ["c%.jpg"]  # wildcards are literal
    assert names(name_contains="_") == ["b_1.jpg"]
    assert names(label_id=cat.id) == ["a.jpg"]
    assert names(unannotated=True) == ["b_1.jpg", "d.png"]
    assert names(review_state="done") == ["b_1.jpg"]
    assert names(unannotated=True, review_state="todo") == ["d.png"]
    assert [m.name for m in project.list_media(offset=1, limit=2)] == ["b_1.jpg", "c%.jpg"]


def test_adding_a_path_twice_stores_it_once(project: Project) -> None:
    (first,) = _add_images(project, "a.jpg")
    again = _add_images(project, "a.jpg")
    assert again == [first]
    assert project.find_media(project.root / "a.jpg") == first
    assert project.find_media("a.jpg") == first
    assert project.counts()["media"] == 1


def test_transaction_rolls_back_everything_on_error(project: Project) -> None:
    (media,) = _add_images(project, "keep.jpg")
    before = project.counts()
    with pytest.raises(RuntimeError), project.transaction():
        (other,) = _add_images(project, "new.jpg")
        label = project.ensure_label("cat")
        project.add_annotations([_box(other, label.id)] * 100)
        project.create_run("yolo")
        with project.transaction():  # nested: part of the outer one
            project.set_setting("last", 1)
        raise RuntimeError("the import failed half way")
    assert project.counts() == before
    assert project.get_setting("last") is None
    assert [m.id for m in project.list_media()] == [media.id]


def test_transaction_commits_when_it_ends_well(project: Project) -> None:
    with project.transaction():
        (media,) = _add_images(project, "a.jpg")
        label = project.ensure_label("cat")
        project.add_annotations([_box(media, label.id)] * 10)
    assert project.counts()["annotations"] == 10


def test_tags_settings_caption(project: Project) -> None:
    (media,) = _add_images(project, "a.jpg")
    assert project.set_tags(media.id, ["night", " rain ", "night", ""]) == ["night", "rain"]
    assert project.tags(media.id) == ["night", "rain"]
    project.set_setting("view", {"zoom": 2.5})
    project.set_setting("view", {"zoom": 3})
    assert project.get_setting("view") == {"zoom": 3}
    assert project.get_setting("missing", "default") == "default"
    assert project.set_caption(media.id, "a cat").caption == "a cat"
    with pytest.raises(NotFoundError):
        project.set_caption(999, "x")


def test_timestamps_are_utc_aware_when_read_back(project: Project) -> None:
    (media,) = _add_images(project, "a.jpg")
    label = project.ensure_label("cat")
    project.add_annotations([_box(media, label.id)])
    (ann,) = project.annotations()
    assert ann.created_at is not None and ann.created_at.tzinfo == UTC
    with sqlite3.connect(project.root / "studio.db") as raw:
        stored = raw.execute("SELECT created_at FROM annotations").fetchone()[0]
    assert stored.startswith(ann.created_at.strftime("%Y-%m-%d %H:%M:%S"))  # stored as UTC


def test_media_inside_a_project_reached_through_a_symlink_is_stored_relative(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    through_link = tmp_path / "link" / "p"
    with Project.create(through_link) as project:
        (media,) = project.add_media([MediaInfo(str(through_link / "sub" / "a.jpg"), "image", 8, 8, 1, 1)])
        assert media.path == "sub/a.jpg"  # the project can be moved or shared with its images
        outside = project.add_media([MediaInfo(str(tmp_path / "elsewhere.jpg"), "image", 8, 8, 1, 1)])
        assert outside[0].path == (tmp_path / "elsewhere.jpg").as_posix()


def test_deleting_more_annotations_than_one_query_takes(project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    """A select-all on a long video deletes more ids than SQLite accepts in one statement (32,766)."""
    import studio.db.project

    monkeypatch.setattr(studio.db.project, "IDS_PER_QUERY", 4)
    (media,) = _add_images(project, "a.jpg")
    label = project.ensure_label("cat")
    project.add_annotations([_box(media, label.id, x=x) for x in range(10)])
    ids = [ann.id for ann in project.annotations(media.id)]
    deleted = project.delete_annotations(ids[::-1][:9])
    assert [ann.id for ann in deleted] == ids[1:]
    assert [ann.id for ann in project.annotations(media.id)] == ids[:1]
