"""Pascal VOC import and export through the project service and the CLI.

The helpers at the top (project building and comparison) are shared by the labelme and CVAT tests.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from conftest import write_image
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from studio.cli.main import main
from studio.core import geometry
from studio.core.errors import FormatError, StudioError
from studio.core.shapes import Box, Mask, Polygon, Shape
from studio.core.types import Annotation
from studio.db.project import Project
from studio.io.formats import voc
from studio.io.formats.transfer import export_dataset, import_dataset
from studio.io.media import add_paths

WIDTH, HEIGHT = 64, 48

Snapshot = dict[str, list[tuple[str, Shape, float | None, dict[str, Any]]]]


def add_annotated(project: Project, folder: Path, shapes: dict[str, list[tuple[str, Shape, dict[str, Any]]]]) -> None:
    """Write one noise image per key of `shapes` into `folder`, add them, and annotate them."""
    paths = [write_image(folder / name, WIDTH, HEIGHT, seed=i) for i, name in enumerate(shapes)]
    add_paths(project, paths)
    media = {name: project.find_media(path) for name, path in zip(shapes, paths, strict=True)}
    project.add_annotations(
        Annotation(media_id=media[name].id, label_id=project.ensure_label(label).id, shape=shape, attributes=attrs)
        for name, anns in shapes.items()
        for label, shape, attrs in anns
    )


def snapshot(project: Project, source: str | int = "human") -> Snapshot:
    """Annotations per media file name with label names, in a stable order: comparable across projects."""
    names = {label.id: label.name for label in project.labels()}
    media = {m.id: m.name for m in project.list_media()}
    result: Snapshot = {name: [] for name in media.values()}
    for ann in project.annotations(source=source):  # type: ignore[arg-type]
        result[media[ann.media_id]].append((names[ann.label_id], ann.shape, ann.score, ann.attributes))
    return {name: sorted(anns, key=lambda a: (a[0], a[1].kind, a[1].bbox())) for name, anns in result.items()}


def _numbers(value: Any) -> list[float]:
    if isinstance(value, (list, tuple)):
        return [n for item in value for n in _numbers(item)]
    return [float(value)] if isinstance(value, (int, float)) else []


def assert_same_shape(a: Shape, b: Shape) -> None:
    """Same kind; coordinates within 1e-6 of the image size; masks equal but for their 1-px boundary."""
    assert a.kind == b.kind, (a, b)
    if isinstance(a, Mask) and isinstance(b, Mask):
        pixels_a, pixels_b = geometry.decode_mask(a), geometry.decode_mask(b)
        kernel = np.ones((3, 3), np.uint8)
        boundary = cv2.dilate(pixels_a.astype(np.uint8), kernel) != cv2.erode(pixels_a.astype(np.uint8), kernel)
        assert not np.any((pixels_a != pixels_b) & ~boundary)
        return
    np.testing.assert_allclose(_numbers(a.to_json()), _numbers(b.to_json()), rtol=1e-6, atol=1e-6 * WIDTH)


def assert_same(before: Snapshot, after: Snapshot) -> None:
    assert before.keys() == after.keys()
    for name in before:
        assert [(a[0], a[3]) for a in before[name]] == [(a[0], a[3]) for a in after[name]], name
        for (_, shape_a, score_a, _), (_, shape_b, score_b, _) in zip(before[name], after[name], strict=True):
            assert_same_shape(shape_a, shape_b)
            assert score_a == pytest.approx(score_b)


def round_trip(project: Project, format_name: str, tmp_path: Path, *, copy_images: bool = True) -> Project:
    """Export `project` in a format and import the result into a new project, which is returned."""
    out = tmp_path / f"{format_name}-export-{len(list(tmp_path.iterdir()))}"
    export_dataset(project, format_name, out, copy_images=copy_images)
    second = Project.create(out.with_name(out.name + "-project"))
    report = import_dataset(second, format_name, out)
    assert report.skipped == []
    return second


# ---- Pascal VOC ----------------------------------------------------------------------------------------

VOC_SHAPES: dict[str, list[tuple[str, Shape, dict[str, Any]]]] = {
    "a/img0.jpg": [
        ("cat", Box(1.5, 2.25, 30.125, 40.0), {"difficult": True, "pose": "Left", "colour": "grey", "verified": False}),
        ("dog", Box(0.0, 0.0, 64.0, 48.0), {"truncated": True, "occluded": True}),
    ],
    "b/img1.jpg": [("dog", Polygon([[(10, 10), (30, 12), (20, 40)]]), {}), ("cat", Box(40, 2, 60, 20), {})],
    "b/empty.jpg": [],
}


def test_round_trip_keeps_boxes_regions_and_attributes(project: Project, tmp_path: Path) -> None:
    add_annotated(project, tmp_path / "src", VOC_SHAPES)
    second = round_trip(project, "voc", tmp_path)
    after = snapshot(second)
    expected = snapshot(project)
    dog = VOC_SHAPES["b/img1.jpg"][0][1]  # a polygon comes back as its pixels, from SegmentationObject
    expected["img1.jpg"] = [("cat", Box(40, 2, 60, 20), None, {}), ("dog", geometry.encode_mask(geometry.rasterize(dog, (HEIGHT, WIDTH))), None, {})]
    assert_same(expected, after)
    third = round_trip(second, "voc", tmp_path)
    assert_same(after, snapshot(third))
    second.close()
    third.close()


def test_export_layout(project: Project, tmp_path: Path) -> None:
    add_annotated(project, tmp_path / "src", VOC_SHAPES)
    export_dataset(project, "voc", tmp_path / "out")
    ids = (tmp_path / "out/ImageSets/Main/default.txt").read_text().split()
    assert sorted(ids) == ["empty", "img0", "img1"]  # media outside the project are named by file name
    assert all((tmp_path / "out/Annotations" / f"{i}.xml").is_file() for i in ids)
    assert (tmp_path / "out/JPEGImages/img0.jpg").is_file()
    xml = (tmp_path / "out/Annotations/img0.xml").read_text()
    # corners as they are (CVAT's and datumaro's convention): x1=1.5 -> xmin 1.5, x2=64 -> xmax 64
    assert "<xmin>1.5</xmin>" in xml and "<xmax>64</xmax>" in xml and "<difficult>1</difficult>" in xml
    assert "<segmented>0</segmented>" in xml  # boxes only
    segmented = (tmp_path / "out/Annotations/img1.xml").read_text()
    assert "<segmented>1</segmented>" in segmented and "<xmin>10</xmin><ymin>10</ymin><xmax>30</xmax><ymax>40</ymax>" in segmented.replace("\n", "").replace(" ", "")
    assert (tmp_path / "out/ImageSets/Segmentation/default.txt").read_text() == "img1\n"
    with Image.open(tmp_path / "out/SegmentationObject/img1.png") as png:
        assert png.mode == "P" and png.getpalette()[3:6] == [128, 0, 0]  # VOC's colour for object 1
        objects = np.asarray(png)
    assert set(np.unique(objects)) == {0, 1}  # the dog (object 1) only: the cat is a box


@pytest.mark.parametrize("format_name", ["voc", "labelme", "cvat"])
def test_project_sub_folders_are_kept(project: Project, tmp_path: Path, format_name: str) -> None:
    """Media inside the project folder keep their sub-folders, so same-named images do not collide."""
    add_annotated(project, project.root / "media", {"a/x.jpg": [("cat", Box(1, 1, 5, 5), {})], "b/x.jpg": []})
    out = tmp_path / "out"
    export_dataset(project, format_name, out)
    assert len([p for p in out.rglob("x.jpg")]) == 2
    with Project.create(tmp_path / "second") as second:
        report = import_dataset(second, format_name, out)
        assert (report.images_added, report.annotations) == (2, 1)
        paths = {Path(m.path).parent.name: m for m in second.list_media()}
        [ann] = second.annotations()
        assert ann.media_id == paths["a"].id


def test_video_frames_export_as_images(project: Project, tmp_path: Path) -> None:
    """An annotated video frame becomes an image of its own, and imports back as one."""
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 5, (WIDTH, HEIGHT))
    for value in range(6):
        writer.write(np.full((HEIGHT, WIDTH, 3), value * 40, np.uint8))
    writer.release()
    [media] = add_paths(project, [video]).added
    label = project.ensure_label("ship")
    project.add_annotation(Annotation(media_id=media.id, frame=3, label_id=label.id, shape=Box(2, 3, 20, 30)))
    export_dataset(project, "voc", tmp_path / "out")
    frame = cv2.imread(str(tmp_path / "out/JPEGImages/clip_000003.jpg"))
    assert frame is not None and frame.shape == (HEIGHT, WIDTH, 3) and abs(int(frame.mean()) - 120) <= 3
    with Project.create(tmp_path / "second") as second:
        import_dataset(second, "voc", tmp_path / "out")
        assert snapshot(second) == {"clip_000003.jpg": [("ship", Box(2, 3, 20, 30), None, {})]}


def _voc_xml(filename: str, objects: str, *, size: str = "<size><width>64</width><height>48</height><depth>3</depth></size>") -> str:
    return f"<annotation><folder>JPEGImages</folder><filename>{filename}</filename>{size}{objects}</annotation>"


def _voc_object(name: str, box: tuple[Any, Any, Any, Any], extra: str = "") -> str:
    xmin, ymin, xmax, ymax = box
    return (
        f"<object><name>{name}</name>{extra}<bndbox><xmin>{xmin}</xmin><ymin>{ymin}</ymin>"
        f"<xmax>{xmax}</xmax><ymax>{ymax}</ymax></bndbox></object>"
    )


@pytest.fixture
def voc_folder(tmp_path: Path) -> Path:
    """A VOC devkit layout written by hand: Annotations/, JPEGImages/, ImageSets/Main/."""
    root = tmp_path / "VOC2012"
    for i in range(2):
        write_image(root / f"JPEGImages/{i:06d}.jpg", WIDTH, HEIGHT, seed=i)
    (root / "Annotations").mkdir()
    (root / "Annotations/000000.xml").write_text(_voc_xml("000000.jpg", _voc_object("person", (1, 2, 30, 40), "<difficult>1</difficult><pose>Frontal</pose>") + _voc_object("car", (10, 10, 64, 48))))
    (root / "Annotations/000001.xml").write_text(_voc_xml("000001.jpg", _voc_object("bird", (5, 5, 6, 6), "<truncated>0</truncated>")))
    (root / "ImageSets/Main").mkdir(parents=True)
    (root / "ImageSets/Main/train.txt").write_text("000000\n000001\n")
    objects = np.zeros((HEIGHT, WIDTH), np.uint8)
    objects[5:20, 3:12] = 255  # VOC2012 draws a void border around each object
    objects[6:19, 4:11] = 1  # the person, object 1
    (root / "SegmentationObject").mkdir()
    Image.fromarray(objects).save(root / "SegmentationObject/000000.png")
    return root


def test_hand_written_devkit_folder(project: Project, voc_folder: Path) -> None:
    dataset = voc.read(voc_folder)
    assert dataset.labels == ["person", "car", "bird"]  # first-seen order
    report = import_dataset(project, "voc", voc_folder)
    assert (report.images, report.images_added, report.annotations) == (2, 2, 3)
    anns = snapshot(project)
    person = anns["000000.jpg"][1]
    assert anns["000000.jpg"][0] == ("car", Box(10, 10, 64, 48), None, {})
    assert person[0] == "person" and person[3] == {"difficult": True, "pose": "Frontal"}
    assert isinstance(person[1], Mask) and np.argwhere(geometry.decode_mask(person[1])).min(axis=0).tolist() == [6, 4]
    assert geometry.area(person[1]) == 13 * 7  # the void border is not the person's
    assert anns["000001.jpg"] == [("bird", Box(5, 5, 6, 6), None, {})]


def test_boxes_differ_from_supervision_by_its_documented_offset(voc_folder: Path) -> None:
    """supervision reads <bndbox> 1-based (x1 = xmin - 1); Studio reads corners as CVAT and datumaro write
    them. The difference is exactly one pixel on the left and top edges, nothing else."""
    import supervision as sv

    for png in (voc_folder / "SegmentationObject").iterdir():  # compare the <bndbox> convention alone
        png.unlink()
    reference = sv.DetectionDataset.from_pascal_voc(str(voc_folder / "JPEGImages"), str(voc_folder / "Annotations"))
    ours = {image.file_name: image for image in voc.read(voc_folder).images}
    for path, _, detections in reference:
        boxes = sorted(tuple(ann.shape.to_json()["xyxy"]) for ann in ours[Path(path).name].annotations)
        theirs = sorted((x1 + 1, y1 + 1, x2, y2) for x1, y1, x2, y2 in detections.xyxy.tolist())
        np.testing.assert_allclose(boxes, theirs)


def test_single_xml_beside_its_image(project: Project, tmp_path: Path) -> None:
    write_image(tmp_path / "shots/cat.jpg", WIDTH, HEIGHT)
    xml = tmp_path / "shots/cat.xml"
    xml.write_text(_voc_xml("cat.jpg", _voc_object("cat", (1, 1, 10, 10))))
    assert import_dataset(project, "voc", xml).annotations == 1
    assert import_dataset(project, "voc", tmp_path / "shots").annotations == 1  # the folder form too
    assert project.counts()["annotations"] == 2


def test_cli_import_and_export(tmp_path: Path, voc_folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project_dir = tmp_path / "cli-project"
    assert main(["new", str(project_dir)]) == 0
    assert main(["import", str(project_dir), str(voc_folder), "--format", "voc"]) == 0
    assert main(["export", str(project_dir), str(tmp_path / "cli-out"), "--format", "voc"]) == 0
    assert "exported 3 annotations on 2 images" in capsys.readouterr().out
    assert main(["import", str(project_dir), str(tmp_path / "cli-out/Annotations/000000.xml"), "--format", "voc"]) == 0
    with Project.open(project_dir) as project:
        assert project.counts()["annotations"] == 5
    (tmp_path / "bad.xml").write_text("<annotation><filename>x.jpg</filename")
    assert main(["import", str(project_dir), str(tmp_path / "bad.xml"), "--format", "voc"]) == 1
    error = capsys.readouterr().err.strip()
    assert "bad.xml" in error and "not valid XML" in error and "\n" not in error


BAD_VOC = {
    "truncated": ("<annotation><filename>000000.jpg</filename><object><name>a", "not valid XML"),
    "wrong root": ("<doc><filename>000000.jpg</filename></doc>", "not a Pascal VOC file"),
    "no filename": (_voc_xml("", _voc_object("a", (1, 1, 5, 5))), "missing <filename>"),
    "no bndbox": (_voc_xml("000000.jpg", "<object><name>a</name></object>"), "missing <bndbox>"),
    "no name": (_voc_xml("000000.jpg", _voc_object("", (1, 1, 5, 5))), "missing <name>"),
    "text coordinate": (_voc_xml("000000.jpg", _voc_object("a", (1, "left", 5, 5))), "<ymin>: expected a number"),
    "reversed box": (_voc_xml("000000.jpg", _voc_object("a", (9, 1, 5, 5))), "negative size"),
    "outside image": (_voc_xml("000000.jpg", _voc_object("a", (1, 1, 90, 5))), "box lies outside the 64x48 image"),
    "image not found": (_voc_xml("nowhere.jpg", _voc_object("a", (1, 1, 5, 5))), "not found"),
    "wrong size": (_voc_xml("000000.jpg", "", size="<size><width>10</width><height>10</height></size>"), "dataset says 10x10"),
    "entity bomb": (
        '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "xxxxxxxxxx"><!ENTITY y "&x;&x;&x;&x;&x;&x;">]>'
        "<annotation><filename>&y;</filename></annotation>",
        "not valid XML",
    ),
}


@pytest.mark.parametrize("case", BAD_VOC)
def test_bad_file_changes_nothing_and_names_the_file(project: Project, voc_folder: Path, case: str) -> None:
    text, message = BAD_VOC[case]
    bad = voc_folder / "Annotations/zz_bad.xml"
    bad.write_text(text)
    before = project.counts()
    with pytest.raises(StudioError) as error:
        import_dataset(project, "voc", voc_folder)
    assert message in str(error.value)
    assert any(name in str(error.value) for name in ("zz_bad.xml", "nowhere.jpg", "000000.jpg"))  # file or image
    assert project.counts() == before

    report = import_dataset(project, "voc", voc_folder, skip_bad=True)
    assert report.annotations == 3 and len(report.skipped) == 1 and message in report.skipped[0]


@pytest.mark.parametrize(
    ("pixels", "message"),
    [
        (np.full((HEIGHT, WIDTH, 3), 7, np.uint8), "colour (7, 7, 7) is not one of the dataset's object or class colours"),
        (np.zeros((10, 10), np.uint8), "10x10 but the XML says 64x48"),
        (None, "not a readable PNG"),
    ],
)
def test_bad_segmentation_png_changes_nothing(project: Project, voc_folder: Path, pixels: np.ndarray | None, message: str) -> None:
    png = voc_folder / "SegmentationObject/000000.png"
    if pixels is None:
        png.write_bytes(b"\x89PNG truncated")
    else:
        Image.fromarray(pixels).save(png)
    with pytest.raises(FormatError, match="000000.png") as error:
        import_dataset(project, "voc", voc_folder)
    assert message in str(error.value) and project.counts()["annotations"] == 0


def test_skip_bad_keeps_the_good_objects_of_a_file(project: Project, voc_folder: Path) -> None:
    (voc_folder / "Annotations/000001.xml").write_text(
        _voc_xml("000001.jpg", _voc_object("bird", (5, 5, 6, 6)) + _voc_object("bird", ("x", 5, 6, 6)))
    )
    report = import_dataset(project, "voc", voc_folder, skip_bad=True)
    assert report.annotations == 3
    assert report.skipped == [f"{voc_folder / 'Annotations/000001.xml'}: object 1 ('bird'): <xmin>: expected a number, got 'x'"]


def test_empty_folder_is_reported(project: Project, tmp_path: Path) -> None:
    (tmp_path / "nothing").mkdir()
    with pytest.raises(FormatError, match="no Pascal VOC .xml files"):
        import_dataset(project, "voc", tmp_path / "nothing")


_xml_text = st.one_of(st.none(), st.sampled_from(["", "1", "-3", "2.5", "nan", "1e999", "cat", "<", "&amp;"]), st.text(max_size=8))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    fields=st.lists(st.tuples(st.sampled_from(["name", "xmin", "ymin", "xmax", "ymax", "difficult", "pose", "score", "width", "height", "filename"]), _xml_text), max_size=12),
    cut=st.integers(min_value=0, max_value=400),
)
def test_reader_raises_only_format_errors(tmp_path: Path, fields: list[tuple[str, str | None]], cut: int) -> None:
    """Whatever the structure (fields missing, garbage values, truncated), read gives a Dataset or FormatError."""
    from xml.sax.saxutils import escape

    def element(tag: str, value: str | None) -> str:
        return f"<{tag}/>" if value is None else f"<{tag}>{escape(value)}</{tag}>"

    by_tag = dict(fields)
    box = "".join(element(t, by_tag[t]) for t in ("xmin", "ymin", "xmax", "ymax") if t in by_tag)
    obj = "".join(element(t, by_tag[t]) for t in ("name", "difficult", "pose", "score") if t in by_tag)
    size = "".join(element(t, by_tag[t]) for t in ("width", "height") if t in by_tag)
    text = f"<annotation>{element('filename', by_tag.get('filename', 'a.jpg'))}<size>{size}</size><object>{obj}<bndbox>{box}</bndbox></object></annotation>"
    path = tmp_path / "fuzz.xml"
    path.write_text(text[: len(text) - cut // 4] if cut % 2 else text)
    for skip_bad in (False, True):
        with contextlib.suppress(FormatError):
            voc.read(path, skip_bad=skip_bad)
