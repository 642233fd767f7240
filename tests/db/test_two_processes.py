"""Two processes, one project, nothing lost: real processes (multiprocessing) write at the same moment.

On SQLite always; on PostgreSQL too when STUDIO_TEST_POSTGRES_URL is set (see test_postgres.py).
"""

from __future__ import annotations

import json
import multiprocessing
import sqlite3
from pathlib import Path

import pytest

from studio.core.errors import ProjectError
from studio.db import Project
from studio.db.project import BUSY_MESSAGE
from tests.conftest import write_image

LABELS = [f"new-label-{i}" for i in range(150)]
CONTEXT = multiprocessing.get_context("spawn")  # a fresh interpreter, as a second Studio would be


def _open(target: str) -> Project:
    return Project.connect(target, Path(".")) if "://" in target else Project.open(target)


def _create_labels(target: str, start: multiprocessing.synchronize.Barrier, order: int) -> list[int]:
    with _open(target) as project:
        start.wait()
        names = LABELS if order == 0 else LABELS[::-1]
        return [project.ensure_label(name).id for name in names]


def _report(worker, results, target: str, start, order: int, *args: object) -> None:
    try:
        results.put((order, worker(target, start, order, *args)))
    except BaseException as exc:  # the parent reports what went wrong in the child
        results.put((order, f"{type(exc).__name__}: {exc}"))


def _race(target: str, worker, *args: object) -> list[object]:
    """Run `worker` in two new processes that start writing at the same moment; their results in order."""
    start, results = CONTEXT.Barrier(2), CONTEXT.Queue()
    processes = [CONTEXT.Process(target=_report, args=(worker, results, target, start, order, *args)) for order in range(2)]
    for process in processes:
        process.start()
    answers = dict(results.get(timeout=240) for _ in processes)
    for process in processes:
        process.join(timeout=60)
    return [answers[order] for order in range(2)]


def _check_labels(target: str) -> None:
    first, second = _race(target, _create_labels)
    assert sorted(first) == sorted(second)  # both got the same label for each name
    with _open(target) as project:
        assert sorted(label.name for label in project.labels()) == sorted(LABELS)


@pytest.mark.slow
def test_two_processes_creating_the_same_new_labels_both_succeed(tmp_path):
    Project.create(tmp_path / "p").close()
    _check_labels(str(tmp_path / "p"))


@pytest.mark.slow
def test_two_processes_creating_the_same_new_labels_on_postgres(postgres_url):
    Project.connect(postgres_url, Path(".")).close()
    _check_labels(postgres_url)


def _import_coco(target: str, start: multiprocessing.synchronize.Barrier, order: int, folder: str) -> int:
    from studio.io.formats.transfer import import_dataset

    with _open(target) as project:
        start.wait()
        return import_dataset(project, "coco", Path(folder) / f"part{order}.json").annotations


def _coco_parts(folder: Path, images_per_part: int) -> None:
    """Two COCO files over different images with different image ids, and a label both create."""
    for part in range(2):
        images, annotations = [], []
        for i in range(images_per_part):
            image_id = part * images_per_part + i + 1
            write_image(folder / f"img{image_id}.png", 8, 8, seed=image_id)
            images.append({"id": image_id, "file_name": f"img{image_id}.png", "width": 8, "height": 8})
            annotations.append({"id": image_id, "image_id": image_id, "category_id": 1, "bbox": [1, 1, 4, 4],
                                "area": 16, "iscrowd": 0})
        document = {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "shared"}]}
        (folder / f"part{part}.json").write_text(json.dumps(document))


def _check_coco_ids(target: str, folder: Path) -> None:
    _coco_parts(folder, 200)
    assert _race(target, _import_coco, str(folder)) == [200, 200]
    with _open(target) as project:
        remembered = [row.number for row in project.file_ids("coco") if row.kind == "image"]
        assert sorted(remembered) == list(range(1, 401))
        assert project.counts()["annotations"] == 400 and [label.name for label in project.labels()] == ["shared"]


@pytest.mark.slow
def test_parallel_coco_imports_keep_every_remembered_image_id(tmp_path):
    Project.create(tmp_path / "p").close()
    _check_coco_ids(str(tmp_path / "p"), tmp_path)


@pytest.mark.slow
def test_parallel_coco_imports_keep_every_remembered_image_id_on_postgres(postgres_url, tmp_path):
    Project.connect(postgres_url, Path(".")).close()
    _check_coco_ids(postgres_url, tmp_path)


def test_a_writer_blocked_by_another_process_gets_one_clear_line(tmp_path, monkeypatch):
    from studio.db import engine

    monkeypatch.setattr(engine, "BUSY_TIMEOUT_MS", 200)
    with Project.create(tmp_path / "p"):
        pass
    holder = sqlite3.connect(tmp_path / "p" / "studio.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process in the middle of a write
    try:
        with Project.open(tmp_path / "p", read_only=False) as project:
            with pytest.raises(ProjectError) as caught:
                project.ensure_label("cat")
            assert str(caught.value) == BUSY_MESSAGE
    finally:
        holder.rollback()
        holder.close()
