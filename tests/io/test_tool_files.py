"""Files written by other tools (tests/data/formats; its README says where each comes from): what a user
importing them sees, their geometry, and their round trips through Studio."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from studio.core import geometry
from studio.core.shapes import Box, Mask, Polygon, Polyline, RotatedBox, Shape
from studio.core.types import Annotation
from studio.db.project import Project
from studio.io.formats.transfer import export_dataset, import_dataset

DATA = Path(__file__).parent.parent / "data" / "formats"


def annotations_by_image(project: Project) -> dict[str, list[tuple[str, Shape, dict[str, Any]]]]:
    names = {label.id: label.name for label in project.labels()}
    media = {m.id: m.name for m in project.list_media()}
    result: dict[str, list] = {name: [] for name in media.values()}
    for ann in project.annotations():
        result[media[ann.media_id]].append((names[ann.label_id], ann.shape, ann.attributes))
    return {name: sorted(anns, key=lambda a: (a[0], a[1].bbox())) for name, anns in result.items()}


def reimported(project: Project, format_name: str, tmp_path: Path, **options: Any) -> Project:
    out = tmp_path / f"{format_name}-out"
    export_dataset(project, format_name, out, **options)
    second = Project.create(tmp_path / f"{format_name}-second")
    assert import_dataset(second, format_name, out).skipped == []
    return second


# ---- Pascal VOC --------------------------------------------------------------------------------------


def test_labelme2voc_empty_elements_read_as_absent(project: Project, tmp_path: Path) -> None:
    report = import_dataset(project, "voc", DATA / "labelme2voc_bbox")
    assert (report.images, report.annotations) == (1, 2)
    assert annotations_by_image(project)["street.jpg"] == [
        ("car", Box(0, 10.5, 30, 40), {}),  # <difficult/>, <truncated/>, <pose/> empty: absent
        ("person", Box(40, 2, 64, 48), {}),
    ]
    second = reimported(project, "voc", tmp_path)
    assert annotations_by_image(second) == annotations_by_image(project)
    xml = (tmp_path / "voc-out/Annotations/street.xml").read_text()
    assert "<xmin>0</xmin>" in xml and "<ymin>10.5</ymin>" in xml and "<xmax>64</xmax>" in xml  # numbers kept
    second.close()


def test_roboflow_zero_based_boxes_round_trip_exactly(project: Project, tmp_path: Path) -> None:
    report = import_dataset(project, "voc", DATA / "roboflow_voc")
    assert (report.images, report.annotations) == (1, 2)
    assert annotations_by_image(project)["pets_jpg.rf.3f1a9c.jpg"] == [
        ("cat", Box(0, 0, 25, 30), {}),
        ("dog", Box(30, 10, 64, 48), {"truncated": True}),
    ]
    second = reimported(project, "voc", tmp_path)
    assert annotations_by_image(second) == annotations_by_image(project)
    xml = (tmp_path / "voc-out/Annotations/pets_jpg.rf.3f1a9c.xml").read_text().replace(" ", "").replace("\n", "")
    assert "<xmin>0</xmin><ymin>0</ymin><xmax>25</xmax><ymax>30</ymax>" in xml
    second.close()


def test_datumaro_voc_rgb_segmentation_parts_and_actions(project: Project, tmp_path: Path) -> None:
    report = import_dataset(project, "voc", DATA / "datumaro_voc")
    assert (report.images, report.annotations) == (1, 2)
    [(cat_label, cat, cat_attributes), (person_label, person, person_attributes)] = annotations_by_image(project)["2007_000001.jpg"]
    # SegmentationObject is RGB in VOC's colours: (128, 0, 0) everywhere is object 1, the cat
    assert (cat_label, cat_attributes) == ("cat", {"truncated": True})
    assert isinstance(cat, Mask) and geometry.decode_mask(cat).all()
    assert person_label == "person" and person == Box(4, 5, 6, 7)
    assert person_attributes["parts"] == [{"name": "head", "box": [5.5, 6.0, 7.5, 8.0]}]
    assert person_attributes["actions"] == {
        "other": True, "jumping": False, "phoning": True, "playinginstrument": False, "reading": True,
        "ridingbike": False, "ridinghorse": True, "running": False, "takingphoto": True, "usingcomputer": False,
        "walking": True,
    }
    second = reimported(project, "voc", tmp_path)
    [_, (_, person_again, attributes_again)] = annotations_by_image(second)["2007_000001.jpg"]
    assert (person_again, attributes_again) == (person, person_attributes)
    second.close()


def test_voc2012_action_point_kept(project: Project, tmp_path: Path) -> None:
    import_dataset(project, "voc", DATA / "voc2012_action")
    [(label, shape, attributes)] = annotations_by_image(project)["2012_000001.jpg"]
    assert (label, shape) == ("person", Box(8, 4, 40, 46))
    assert attributes["point"] == [24.0, 12.0] and attributes["actions"]["phoning"] is True
    second = reimported(project, "voc", tmp_path)
    assert annotations_by_image(second) == annotations_by_image(project)
    second.close()


def test_supervision_polygon_read_one_based(project: Project) -> None:
    import_dataset(project, "voc", DATA / "supervision_voc")
    [(label, shape, _)] = annotations_by_image(project)["blob.jpg"]
    # supervision traced the pixels 12..39 x 10..29 and wrote the vertices + 1
    assert label == "blob" and shape == Polygon([[(12, 10), (12, 29), (39, 29), (39, 10)]])


def test_imagenet_filename_without_extension(project: Project) -> None:
    report = import_dataset(project, "voc", DATA / "imagenet_voc")
    assert (report.images, report.images_added, report.annotations) == (1, 1, 1)
    assert annotations_by_image(project) == {"n01440764_10026.JPEG": [("n01440764", Box(3, 5, 50, 40), {})]}


def test_labelme2voc_instance_pngs_without_xml(project: Project) -> None:
    report = import_dataset(project, "voc", DATA / "labelme2voc_instance")
    assert (report.images, report.annotations) == (1, 3)
    anns = annotations_by_image(project)["room.jpg"]
    assert [label for label, _, _ in anns] == ["chair", "chair", "person"]
    assert [geometry.area(shape) for _, shape, _ in anns] == [18 * 18, 18 * 18, 55 * 20]  # void (255) is no object
    assert {label.name for label in project.labels()} == {"chair", "person"}


def test_labelme2voc_semantic_pngs_become_one_mask_per_class(project: Project) -> None:
    import_dataset(project, "voc", DATA / "labelme2voc_semantic")
    anns = annotations_by_image(project)["field.jpg"]
    assert [(label, geometry.area(shape)) for label, shape, _ in anns] == [("grass", 18 * 64), ("sky", 20 * 64)]


# ---- YOLO --------------------------------------------------------------------------------------------


def _class_lines(folder: Path) -> list[str]:
    return sorted(line for path in (folder / "labels").rglob("*.txt") for line in path.read_text().splitlines())


def test_datumaro_yolov8_keeps_every_class_and_its_id(project: Project, tmp_path: Path) -> None:
    project.ensure_label("zebra")  # a label the dataset does not know, made first
    report = import_dataset(project, "yolo", DATA / "datumaro_yolov8")
    assert (report.images, report.annotations) == (1, 2)
    assert sorted(report.labels_created) == [f"label_{i}" for i in range(10)]  # unused classes too
    export_dataset(project, "yolo", tmp_path / "out")
    names = yaml.safe_load((tmp_path / "out/data.yaml").read_text())["names"]
    assert names == {**{i: f"label_{i}" for i in range(10)}, 10: "zebra"}  # ids as in the source, new after
    assert [line.split()[0] for line in _class_lines(tmp_path / "out")] == ["2", "4"]


def test_export_of_some_labels_keeps_their_ids(project: Project, tmp_path: Path) -> None:
    import_dataset(project, "yolo", DATA / "datumaro_yolov8")
    export_dataset(project, "yolo", tmp_path / "out", labels=["label_4"])
    names = yaml.safe_load((tmp_path / "out/data.yaml").read_text())["names"]
    assert names == {0: "unused_0", 1: "unused_1", 2: "unused_2", 3: "unused_3", 4: "label_4"}
    assert [line.split()[0] for line in _class_lines(tmp_path / "out")] == ["4"]


def test_darknet_obj_data_layout_from_cvat(project: Project, tmp_path: Path) -> None:
    report = import_dataset(project, "yolo", DATA / "datumaro_yolo_darknet")
    assert (report.images, report.annotations, len(report.labels_created)) == (1, 2, 10)
    [(label_a, box_a, _), (label_b, box_b, _)] = annotations_by_image(project)["1.jpg"]
    assert (label_a, label_b) == ("label_2", "label_4")
    np.testing.assert_allclose(box_a.bbox(), (0.0, 2.0, 4.0, 2.0), atol=1e-4)  # cx 0.133333 * 15 = 2, w 4
    np.testing.assert_allclose(box_b.bbox(), (3.0, 3.0, 2.0, 3.0), atol=1e-4)
    assert import_dataset(project, "yolo", DATA / "datumaro_yolo_darknet/obj.data").annotations == 2  # the file too


def test_roboflow_yaml_with_parent_paths_and_an_absent_split(project: Project, tmp_path: Path) -> None:
    report = import_dataset(project, "yolo", DATA / "roboflow_yolo")
    assert (report.images, report.annotations) == (2, 3)
    assert [label.name for label in project.labels()] == ["cat", "dog", "fox"]  # dog is declared, not used
    second = reimported(project, "yolo", tmp_path)
    assert annotations_by_image(second).keys() == annotations_by_image(project).keys()
    assert yaml.safe_load((tmp_path / "yolo-out/data.yaml").read_text())["names"] == {0: "cat", 1: "dog", 2: "fox"}
    second.close()


def test_label_studio_images_labels_and_classes_txt(project: Project) -> None:
    report = import_dataset(project, "yolo", DATA / "label_studio_yolo")
    assert (report.images, report.annotations, report.skipped) == (2, 1, [])
    assert annotations_by_image(project)["c1.jpg"] == [("car", Box(24, 18, 40, 30), {})]
    assert [label.name for label in project.labels()] == ["airplane", "boat", "car"]


def test_run_exports_five_columns_that_ultralytics_loads(project: Project, tmp_path: Path, monkeypatch) -> None:
    from ultralytics.data.utils import check_det_dataset, verify_image_label

    from studio.io.media import add_paths

    [media] = add_paths(project, [DATA / "roboflow_yolo/train/images/a_jpg.rf.11aa.jpg"]).added
    run = project.create_run("test", name="detector")
    label = project.ensure_label("fox")
    project.add_annotations([Annotation(media_id=media.id, label_id=label.id, shape=Box(1, 2, 30, 40), run_id=run.id, score=0.75)])
    export_dataset(project, "yolo", tmp_path / "out", source="detector")
    monkeypatch.chdir(tmp_path)
    assert check_det_dataset("out/data.yaml")["nc"] == 1
    [label_file] = [p for p in (tmp_path / "out/labels").rglob("*.txt") if p.read_text()]
    assert len(label_file.read_text().split()) == 5  # no confidence column unless asked (--scores)
    image = next((tmp_path / "out/images").rglob(label_file.stem + ".*"))
    *_, found, empty, corrupt, message = verify_image_label((str(image), str(label_file), "", False, 1, 0, 0, False))
    assert (found, empty, corrupt, message) == (1, 0, 0, "")


def test_scores_option_is_refused_where_scores_are_always_written(project: Project, tmp_path: Path) -> None:
    from studio.core.errors import StudioError

    with pytest.raises(StudioError, match="voc always writes them"):
        export_dataset(project, "voc", tmp_path / "out", scores=True)
    assert not (tmp_path / "out").exists()


# ---- CVAT --------------------------------------------------------------------------------------------


def test_cvat_project_with_subsets_tags_ellipse_skeleton(project: Project) -> None:
    report = import_dataset(project, "cvat", DATA / "cvat_project")
    assert (report.images, report.images_added, report.annotations, report.tagged) == (2, 2, 3, 1)
    assert report.skipped == [f"{DATA / 'cvat_project/annotations.xml'}: skipped 1 <cuboid> elements (Studio cannot hold them)"]
    # declared labels, not the skeleton's points, which are keypoint names
    assert [label.name for label in project.labels()] == ["ball", "box", "blurry", "hand"]
    media = {m.name: m for m in project.list_media()}
    assert media["a.jpg"].path.endswith("images/Train/a.jpg") and media["b.jpg"].path.endswith("images/Validation/b.jpg")
    assert project.tags(media["a.jpg"].id) == ["blurry"]
    anns = annotations_by_image(project)
    [(ball_label, ball, ball_attributes), (box_label, box, _)] = anns["a.jpg"]
    assert (box_label, box) == ("box", Box(2, 3, 20.5, 30.25))
    assert ball_label == "ball" and ball_attributes == {"occluded": True} and isinstance(ball, Polygon)
    assert geometry.area(ball) == pytest.approx(np.pi * 10 * 5, rel=0.01)
    [(hand_label, hand, hand_attributes)] = anns["b.jpg"]
    assert hand_label == "hand" and hand_attributes == {"keypoints": ["wrist", "thumb", "index"]}
    assert hand.points == ((10, 40), (14, 30), (20, 28)) and hand.visibility == (2, 1, 0)


def test_cvat_skeleton_and_ellipse_round_trip(project: Project, tmp_path: Path) -> None:
    import_dataset(project, "cvat", DATA / "cvat_project")
    second = reimported(project, "cvat", tmp_path)
    before, after = annotations_by_image(project), annotations_by_image(second)
    assert after["b.jpg"] == before["b.jpg"]
    np.testing.assert_allclose(after["a.jpg"][0][1].parts[0], before["a.jpg"][0][1].parts[0], atol=1e-6)
    xml = (tmp_path / "cvat-out/annotations.xml").read_text()
    assert '<skeleton label="hand"' in xml and "<parent>hand</parent>" in xml
    second.close()


def test_datumaro_cvat_task_skips_unlabelled_shapes_and_reads_skeletons(project: Project) -> None:
    report = import_dataset(project, "cvat", DATA / "datumaro_cvat/images_task/train.xml")
    # img0: a box and a skeleton (the unlabelled polyline skipped); img1: points and a skeleton
    assert (report.images, report.annotations) == (2, 4)
    assert report.skipped == [
        f"{DATA / 'datumaro_cvat/images_task/train.xml'}: skipped 1 <polyline> elements without a label (Studio cannot hold them)",
        f"{DATA / 'datumaro_cvat/images_task/train.xml'}: skipped 1 <polygon> elements without a label (Studio cannot hold them)",
    ]
    skeleton = next(shape for _, shape, attributes in annotations_by_image(project)["img1.jpg"] if "keypoints" in attributes)
    assert skeleton.points == ((3, 3), (4, 4), (5, 5), (6, 6)) and skeleton.visibility == (2, 2, 0, 2)


def test_cvat_video_file_fails_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from studio.cli.main import main

    project_dir = tmp_path / "p"
    assert main(["new", str(project_dir)]) == 0
    assert main(["import", str(project_dir), str(DATA / "datumaro_cvat/video_task"), "--format", "cvat"]) == 1
    error = capsys.readouterr().err.strip()
    assert error.startswith("studio: error: ") and "<track>" in error and "\n" not in error
    with Project.open(project_dir) as project:
        assert project.counts() == {"media": 0, "annotations": 0, "labels": 0, "runs": 0, "predictions": 0, "answers": 0, "embeddings": 0, "tracks": 0}


# ---- labelme -----------------------------------------------------------------------------------------


def test_labelme_degenerate_polygon_oriented_rectangle_and_fractional_mask(project: Project, tmp_path: Path) -> None:
    report = import_dataset(project, "labelme", DATA / "labelme/shapes.json")
    assert (report.images, report.annotations) == (1, 4)
    anns = {label: (shape, attributes) for label, shape, attributes in annotations_by_image(project)["shapes.jpg"]}
    assert anns["wire"] == (Polyline([(5, 5), (30, 9)]), {"shape_type": "polygon"})
    plate, plate_attributes = anns["plate"]
    assert isinstance(plate, RotatedBox) and plate_attributes == {"shape_type": "oriented_rectangle"}
    np.testing.assert_allclose(plate.corners(), [(20, 10), (40, 20), (35, 30), (15, 20)], atol=1e-9)
    # labelme rounds the corner (10.6, 21.5) to (11, 22) and keeps the PNG's 8x6 size: ink at rows 1..4, cols 2..6
    stain = geometry.decode_mask(anns["stain"][0])
    rows, cols = np.nonzero(stain)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (23, 26, 13, 17)
    second = reimported(project, "labelme", tmp_path)
    assert annotations_by_image(second) == annotations_by_image(project)
    exported = json.loads((tmp_path / "labelme-out/shapes.json").read_text())
    assert sorted(s["shape_type"] for s in exported["shapes"]) == ["mask", "oriented_rectangle", "polygon", "rectangle"]
    second.close()


def test_labelme_embedded_image_first_and_flags_as_tags(project: Project) -> None:
    report = import_dataset(project, "labelme", DATA / "labelme/embedded.json")
    assert (report.images, report.images_added, report.annotations, report.tagged) == (1, 1, 1, 1)
    [media] = project.list_media()
    # the file at imagePath is 64x48 now; the image the box was drawn on is the embedded 32x24 one
    assert (media.width, media.height) == (32, 24) and media.path.startswith("imported/")
    assert project.tags(media.id) == ["indoor"]  # flags set to true; "night" is false
