"""CVAT for images 1.1 import and export through the project service and the CLI."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import numpy as np
import pytest
from conftest import write_image
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_labelme import TWO_PART, ring_mask
from test_voc import HEIGHT, WIDTH, add_annotated, assert_same, round_trip, snapshot

from studio.cli.main import main
from studio.core import geometry
from studio.core.errors import FormatError, StudioError
from studio.core.shapes import Box, Mask, Points, Polygon, Polyline, RotatedBox, Shape
from studio.db.project import Project
from studio.io.formats import cvat
from studio.io.formats.base import Dataset, DatasetAnnotation, DatasetImage
from studio.io.formats.transfer import export_dataset, import_dataset

PROJECT_SHAPES: dict[str, list[tuple[str, Shape, dict[str, Any]]]] = {
    "img0.jpg": [
        ("cat", Box(1.5, 2.25, 30.125, 40.0), {"occluded": True, "colour": "grey", "verified": True}),
        ("cat", TWO_PART, {}),
        ("dog", ring_mask(), {"z_order": 2}),
    ],
    "img1.jpg": [
        ("car", RotatedBox(32, 24, 20, 10, 30), {"source": "auto"}),
        ("lane", Polyline([(0, 0), (10.5, 20), (30, 47)]), {"group_id": 4}),
        ("paws", Points([(1, 1), (2, 3), (4, 5)]), {}),
    ],
    "img2.jpg": [],
}


def test_round_trip_keeps_every_kind_and_attribute(project: Project, tmp_path: Path) -> None:
    add_annotated(project, tmp_path / "src", PROJECT_SHAPES)
    with round_trip(project, "cvat", tmp_path) as second:
        expected = snapshot(project)
        # the two parts of the polygon are written as one group; reading them back names the group
        expected["img0.jpg"] = [(*a[:3], {"group_id": 1} if a[1] == TWO_PART else a[3]) for a in expected["img0.jpg"]]
        after = snapshot(second)
        assert_same(expected, after)
        assert ring_mask() in [a[1] for a in after["img0.jpg"]]  # pixel-exact
        with round_trip(second, "cvat", tmp_path) as third:
            assert_same(after, snapshot(third))


def test_run_scores_survive(project: Project, tmp_path: Path) -> None:
    add_annotated(project, tmp_path / "src", {"a.jpg": [("cat", Box(1, 1, 5, 5), {})]})
    import_dataset(project, "cvat", _write_cvat(tmp_path / "scored", '<box label="cat" xtl="1" ytl="2" xbr="3" ybr="4" score="0.75"/>', name="a.jpg"), run_name="model")
    export_dataset(project, "cvat", tmp_path / "out", source="model", copy_images=False)
    import_dataset(project, "cvat", tmp_path / "out", run_name="again")
    assert [a[2] for a in snapshot(project, project.find_run("again").id)["a.jpg"]] == [0.75]


def _write_cvat(folder: Path, shapes: str, *, name: str = "frame_000.jpg", labels: tuple[str, ...] = ("cat", "dog", "car")) -> Path:
    """annotations.xml as CVAT writes it for a task, around the given shape elements."""
    meta = "".join(f"<label><name>{label}</name><color>#ff0000</color><attributes/></label>" for label in labels)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "annotations.xml").write_text(
        f'<?xml version="1.0" encoding="utf-8"?>\n<annotations><version>1.1</version><meta><task><id>7</id>'
        f"<name>t</name><size>1</size><labels>{meta}</labels></task></meta>"
        f'<image id="0" name={quoteattr(name)} width="{WIDTH}" height="{HEIGHT}">{shapes}</image></annotations>'
    )
    return folder / "annotations.xml"


HAND_SHAPES = (
    '<box label="cat" source="manual" occluded="1" xtl="1.50" ytl="2.00" xbr="20.00" ybr="30.00" z_order="1">'
    '<attribute name="colour">black</attribute><attribute name="sleeping">true</attribute></box>'
    '<box label="car" source="auto" occluded="0" xtl="22" ytl="14" xbr="42" ybr="34" rotation="45.5" z_order="0"/>'
    '<polygon label="dog" source="manual" occluded="0" points="1.00,1.00;10.00,1.00;10.00,10.00" z_order="0" group_id="3"/>'
    '<polygon label="dog" source="manual" occluded="0" points="20,20;30,20;30,30" z_order="0" group_id="3"/>'
    '<polyline label="cat" source="manual" occluded="0" points="0,0;5,5;9,2" z_order="0"/>'
    '<points label="dog" source="manual" occluded="0" points="3.5,4.5;6,7" z_order="0"/>'
    '<mask label="car" source="semi-auto" occluded="0" rle="1, 2, 3, 2" left="2" top="3" width="4" height="2" z_order="0"/>'
)


@pytest.fixture
def cvat_folder(tmp_path: Path) -> Path:
    """A CVAT export: annotations.xml with images/ beside it."""
    root = tmp_path / "cvat_task"
    write_image(root / "images/frame_000.jpg", WIDTH, HEIGHT)
    _write_cvat(root, HAND_SHAPES, labels=("cat", "dog", "car", "unused"))
    return root


def test_hand_written_file(project: Project, cvat_folder: Path) -> None:
    assert cvat.read(cvat_folder).labels == ["cat", "dog", "car", "unused"]  # <meta> order
    report = import_dataset(project, "cvat", cvat_folder)
    assert (report.images, report.images_added, report.annotations) == (1, 1, 6)
    anns = {(a[0], a[1].kind): a for a in snapshot(project)["frame_000.jpg"]}
    assert anns[("cat", "box")][1:] == (Box(1.5, 2, 20, 30), None, {"occluded": True, "z_order": 1, "colour": "black", "sleeping": True})
    assert anns[("car", "rotated_box")][1] == RotatedBox(32, 24, 20, 20, 45.5)
    assert anns[("car", "rotated_box")][3] == {"source": "auto"}
    assert anns[("dog", "polygon")][1] == Polygon([[(1, 1), (10, 1), (10, 10)], [(20, 20), (30, 20), (30, 30)]])
    assert anns[("cat", "polyline")][1] == Polyline([(0, 0), (5, 5), (9, 2)])
    assert anns[("dog", "points")][1] == Points([(3.5, 4.5), (6, 7)])
    pixels = geometry.decode_mask(anns[("car", "mask")][1])
    # rle 1, 2, 3, 2 over a 4x2 window, row-major from background: 0 1 1 0 / 0 0 1 1
    assert np.argwhere(pixels).tolist() == [[3, 3], [3, 4], [4, 4], [4, 5]]


def test_cvat_data_round_trips(project: Project, cvat_folder: Path, tmp_path: Path) -> None:
    import_dataset(project, "cvat", cvat_folder)
    with round_trip(project, "cvat", tmp_path) as second:
        assert_same(snapshot(project), snapshot(second))
    xml = next(tmp_path.glob("cvat-export-*/annotations.xml")).read_text()
    # the window shrinks to the mask's own pixels (columns 3-5): 1 1 0 / 0 1 1, so runs 0, 2, 2, 2
    assert 'rle="0, 2, 2, 2" left="3" top="3" width="3" height="2"' in xml and 'rotation="45.5"' in xml


def test_cli_import_and_export(tmp_path: Path, cvat_folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project_dir = tmp_path / "cli-project"
    assert main(["new", str(project_dir)]) == 0
    assert main(["import", str(project_dir), str(cvat_folder / "annotations.xml"), "-f", "cvat"]) == 0
    assert main(["export", str(project_dir), str(tmp_path / "cli-out"), "-f", "cvat"]) == 0
    assert "exported 6 annotations on 1 images" in capsys.readouterr().out
    assert (tmp_path / "cli-out/images/frame_000.jpg").is_file()
    assert main(["import", str(project_dir), str(tmp_path / "missing"), "-f", "cvat"]) == 1
    assert "missing: no such file or folder" in capsys.readouterr().err


def _image(shapes: str, *, size: str = f'width="{WIDTH}" height="{HEIGHT}"', name: str = "frame_000.jpg") -> str:
    return f'<annotations><version>1.1</version><image id="0" name="{name}" {size}>{shapes}</image></annotations>'


BAD_CVAT: dict[str, tuple[str, str]] = {
    "truncated": ('<annotations><image id="0" name="frame_000.jpg" width="64"', "not valid XML"),
    "wrong root": ("<annotation><filename>x.jpg</filename></annotation>", "not a CVAT file"),
    "image without name": (_image("", name=""), "<image> has no name"),
    "text size": (_image("", size='width="wide" height="48"'), "width: expected a number"),
    "text coordinate": (_image('<box label="cat" xtl="a" ytl="1" xbr="5" ybr="5"/>'), "xtl: expected a number"),
    "missing coordinate": (_image('<box label="cat" xtl="1" ytl="1" xbr="5"/>'), "ybr: expected a number, got None"),
    "broken points": (_image('<polygon label="cat" points="1,2;3;4,5"/>'), "points must be 'x,y;x,y;...'"),
    "two-point polygon": (_image('<polygon label="cat" points="1,2;3,4"/>'), "polygon part needs at least 3 points"),
    "short rle": (_image('<mask label="cat" rle="1, 2" left="0" top="0" width="4" height="2"/>'), "rle does not cover the 4x2 mask window"),
    "mask outside": (_image('<mask label="cat" rle="0, 8" left="62" top="0" width="4" height="2"/>'), "lies outside the image"),
    "box outside": (_image('<box label="cat" xtl="1" ytl="1" xbr="80" ybr="5"/>'), "box lies outside the 64x48 image"),
    "video file": ('<annotations><version>1.1</version><track id="0" label="cat"/></annotations>', "Studio does not read tracks yet"),
    "image not found": (_image("", name="nowhere.jpg"), "nowhere.jpg: image is not in the project"),
    "entity bomb": (
        '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "xxxxxxxxxx"><!ENTITY y "&x;&x;&x;&x;">]><annotations>&y;</annotations>',
        "not valid XML",
    ),
}


@pytest.mark.parametrize("case", BAD_CVAT)
def test_bad_file_changes_nothing_and_names_the_file(project: Project, tmp_path: Path, case: str) -> None:
    write_image(tmp_path / "frame_000.jpg", WIDTH, HEIGHT)
    text, message = BAD_CVAT[case]
    bad = tmp_path / "bad_annotations.xml"
    bad.write_text(text)
    add_annotated(project, tmp_path / "src", {"kept.jpg": [("cat", Box(1, 1, 5, 5), {})]})
    before = project.counts()
    with pytest.raises(StudioError) as error:
        import_dataset(project, "cvat", bad)
    assert message in str(error.value)
    assert "bad_annotations.xml" in str(error.value) or "nowhere.jpg" in str(error.value)
    assert project.counts() == before


def test_skip_bad_imports_the_good_shapes_and_images(project: Project, cvat_folder: Path) -> None:
    xml = (cvat_folder / "annotations.xml").read_text()
    bad_shape = '<box label="cat" xtl="1" ytl="1" xbr="oops" ybr="5"/>'
    bad_image = '<image id="1" name="frame_001.jpg" width="64"></image>'
    (cvat_folder / "annotations.xml").write_text(xml.replace("</image>", bad_shape + "</image>" + bad_image))
    report = import_dataset(project, "cvat", cvat_folder, skip_bad=True)
    assert report.annotations == 6 and len(report.skipped) == 2
    assert "image frame_000.jpg: shape 7 <box> ('cat'): xbr: expected a number, got 'oops'" in report.skipped[0]
    assert "image frame_001.jpg: height: expected a number, got None" in report.skipped[1]


_value = st.one_of(st.none(), st.sampled_from(["", "0", "1", "3.5", "-2", "nan", "1,2;3,4;5,6", "1, 2, 3, 2", "x"]), st.text(max_size=6))
_element = st.tuples(
    st.sampled_from([*cvat.SHAPE_TAGS, "tag", "attribute"]),
    st.dictionaries(
        st.sampled_from(["label", "xtl", "ytl", "xbr", "ybr", "rotation", "points", "rle", "left", "top", "width", "height", "group_id", "z_order", "score", "occluded"]),
        _value,
        max_size=8,
    ),
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(elements=st.lists(_element, max_size=5), image=st.dictionaries(st.sampled_from(["name", "width", "height"]), _value))
def test_reader_raises_only_format_errors(tmp_path: Path, elements: list[tuple[str, dict[str, str | None]]], image: dict[str, str | None]) -> None:
    def attributes(values: dict[str, str | None]) -> str:
        return " ".join(f"{key}={quoteattr(value)}" for key, value in values.items() if value is not None)

    shapes = "".join(f"<{tag} {attributes(values)}/>" for tag, values in elements)
    path = tmp_path / "fuzz.xml"
    path.write_text(f"<annotations><image {attributes(image)}>{shapes}</image></annotations>")
    for skip_bad in (False, True):
        with contextlib.suppress(FormatError):
            cvat.read(path, skip_bad=skip_bad)


def test_mask_rle_round_trips_any_pattern(tmp_path: Path) -> None:
    """CVAT's RLE written and read back gives the same pixels, whatever the pattern (edges, holes, empty)."""
    rng = np.random.default_rng(0)
    patterns = [rng.random((HEIGHT, WIDTH)) < density for density in (0.0, 0.05, 0.5, 1.0)]
    masks = [DatasetAnnotation("x", geometry.encode_mask(pixels)) for pixels in patterns]
    cvat.write(Dataset(["x"], [DatasetImage("a.jpg", WIDTH, HEIGHT, masks)]), tmp_path, copy_images=False)
    [image] = cvat.read(tmp_path).images
    for pixels, ann in zip(patterns, image.annotations, strict=True):
        assert isinstance(ann.shape, Mask) and (geometry.decode_mask(ann.shape) == pixels).all()
