"""A COCO results file lands on the images its ids meant, whatever was exported or imported between."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers_coco_yolo import make_images, write_noise_image

from studio.cli.main import main
from studio.core.errors import FormatError
from studio.db.project import Project
from studio.io.formats.transfer import export_dataset, import_dataset


def _gt(folder: Path, ids: list[int]) -> Path:
    """A GT file numbering the images against their order, so file ids and media ids disagree."""
    images = make_images(folder)
    document = {
        "images": [{"id": number, "file_name": p.name, "width": 64, "height": 48} for number, p in zip(ids, images, strict=False)],
        "categories": [{"id": 1, "name": "cat"}],
        "annotations": [{"id": 1, "image_id": ids[0], "category_id": 1, "bbox": [1, 1, 10, 10], "area": 100, "iscrowd": 0}],
    }
    path = folder / "instances_val.json"
    path.write_text(json.dumps(document))
    return path


def _results(path: Path, ids: list[int]) -> Path:
    path.write_text(json.dumps([{"image_id": n, "category_id": 1, "bbox": [2, 2, 5 + k, 5], "score": 0.5} for k, n in enumerate(ids)]))
    return path


def _placement(project: Project, run: str) -> dict[str, tuple[float, ...]]:
    names = {m.id: m.name for m in project.list_media()}
    return {names[a.media_id]: a.shape.bbox() for a in project.annotations(source=project.find_run(run).id)}


def test_results_land_on_the_same_images_before_and_after_an_export(tmp_path: Path, capsys) -> None:
    ids = [3, 1, 2, 4]  # media ids will be 1, 2, 3, 4: the export used to renumber and remap them
    gt = _gt(tmp_path / "data", ids)
    results = _results(tmp_path / "results.json", ids)
    project = str(tmp_path / "p")
    assert main(["new", project]) == 0
    assert main(["import", project, "-f", "coco", str(gt)]) == 0
    assert main(["import", project, "-f", "coco", str(results), "--run", "A"]) == 0
    assert main(["export", project, "-f", "coco", str(tmp_path / "out")]) == 0
    assert main(["import", project, "-f", "coco", str(results), "--run", "B"]) == 0
    with Project.open(project) as p:
        a, b = _placement(p, "A"), _placement(p, "B")
    assert a == b and len(a) == 4
    assert a["img0.jpg"] == (2, 2, 5, 5)  # image_id 3 is img0 in the GT file
    exported = json.loads((tmp_path / "out" / "annotations.json").read_text())
    assert {i["file_name"]: i["id"] for i in exported["images"]} == {"img0.jpg": 3, "img1.jpg": 1, "img2.jpg": 2, "img3.jpg": 4}


def test_new_images_get_numbers_no_file_ever_gave(project: Project, tmp_path: Path) -> None:
    gt = _gt(tmp_path / "data", [2, 7, 5, 6])
    import_dataset(project, "coco", gt)
    import_dataset(project, "coco", gt)  # a second import neither duplicates nor renumbers
    write_noise_image(tmp_path / "data" / "extra.jpg", seed=9)
    from studio.io.media import add_paths

    [extra] = add_paths(project, [tmp_path / "data" / "extra.jpg"]).added  # media id 5: file id 5 is img2's
    assert extra.id == 5
    export_dataset(project, "coco", tmp_path / "out", copy_images=False)
    exported = {i["file_name"]: i["id"] for i in json.loads((tmp_path / "out" / "annotations.json").read_text())["images"]}
    assert exported == {"img0.jpg": 2, "img1.jpg": 7, "img2.jpg": 5, "img3.jpg": 6, "extra.jpg": 8}
    # a results file computed on the export resolves through it: id 8 is the new image
    import_dataset(project, "coco", _results(tmp_path / "r.json", [8, 5]), run_name="on-export")
    assert set(_placement(project, "on-export")) == {"extra.jpg", "img2.jpg"}


def test_two_files_numbering_alike_need_the_gt_file_named(project: Project, tmp_path: Path) -> None:
    """Roboflow's splits each number their images from 0: a results file fits both."""
    train = _gt(tmp_path / "train", [0, 1, 2, 3])
    valid = tmp_path / "valid" / "instances_val.json"
    valid.parent.mkdir()
    for i in range(4):
        write_noise_image(tmp_path / "valid" / f"v{i}.jpg", seed=20 + i)
    valid.write_text(json.dumps({
        "images": [{"id": i, "file_name": f"v{i}.jpg", "width": 64, "height": 48} for i in range(4)],
        "categories": [{"id": 1, "name": "cat"}], "annotations": [],
    }))
    import_dataset(project, "coco", train)
    import_dataset(project, "coco", valid)
    results = _results(tmp_path / "results.json", [0, 1])
    with pytest.raises(FormatError, match="fit several coco files.*--gt-file"):
        import_dataset(project, "coco", results, run_name="model")
    assert project.counts()["runs"] == 0
    import_dataset(project, "coco", results, run_name="model", gt_file=valid)
    assert set(_placement(project, "model")) == {"v0.jpg", "v1.jpg"}


def test_a_deleted_image_keeps_its_number(project: Project, tmp_path: Path) -> None:
    gt = _gt(tmp_path / "data", [1, 2, 3, 4])
    import_dataset(project, "coco", gt)
    with project.transaction():
        from sqlalchemy import delete

        from studio.db.schema import MediaRow

        with project._session() as s:
            s.execute(delete(MediaRow).where(MediaRow.id == project.find_media(tmp_path / "data" / "img1.jpg").id))
    export_dataset(project, "coco", tmp_path / "out", copy_images=False)
    exported = json.loads((tmp_path / "out" / "annotations.json").read_text())
    assert 2 not in {i["id"] for i in exported["images"]}
    with pytest.raises(FormatError, match="image_id 2 was an image that is deleted"):
        import_dataset(project, "coco", _results(tmp_path / "r.json", [2]), run_name="model")
