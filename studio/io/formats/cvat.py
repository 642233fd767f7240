"""CVAT for images 1.1: one annotations.xml (labels in <meta>, then <image> elements holding shapes).

Shapes: <box> (rotation > 0 -> RotatedBox: CVAT turns the box clockwise about its centre, as Studio
does), <polygon>, <polyline>, <points>, <ellipse> (-> a Polygon of 64 vertices: Studio has no ellipse),
<skeleton> (-> Points, one per <points> element, with the keypoint names in the attribute `keypoints`
and COCO visibility: outside 0, occluded 1, else 2), and <mask> with CVAT's own RLE: run lengths over the
mask's left/top/width/height window, row-major, starting with a background run. <tag> elements become
the image's tags. Element attributes become annotation attributes (occluded -> True, z_order/group_id
when non-zero, source when not "manual"), <attribute name="...">value</attribute> children too
("true"/"false" -> bool, as CVAT's checkboxes). Polygons of one label sharing a group_id are one object
(a multi-part Polygon), as CVAT's COCO export treats them; export writes each part as a <polygon> of a
shared group. Coordinates are written with full precision (CVAT writes two decimals), so an export
re-imports exactly.

Project exports (<meta><project>) give each image a `subset` and put its file in images/<subset>/; the
image is looked up there. An element Studio cannot hold (a <cuboid>, a shape without a label) is
skipped and counted in the import report, never the reason a file is refused. A "CVAT for video" file
(<track> elements) is refused in one line until Studio has tracks.

supervision has no CVAT support, so this module parses the XML (with defusedxml) itself.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element, ElementTree, SubElement, indent

import numpy as np

from studio.core import geometry
from studio.core.errors import FormatError, InvalidShapeError
from studio.core.shapes import Box, Mask, Points, Polygon, Polyline, RotatedBox, Shape
from studio.io.formats.base import (
    Dataset,
    DatasetAnnotation,
    DatasetImage,
    attribute_text,
    attribute_value,
    check_inside,
    collect_images,
    ellipse_vertices,
    format_number,
    number,
    parse_xml,
    skip_or_raise,
    write_image,
)

SHAPE_TAGS = ("box", "polygon", "polyline", "points", "mask", "ellipse", "skeleton")
_ELEMENT_KEYS = ("source", "occluded", "z_order", "group_id")
"""Annotation attributes written as XML attributes of the shape element, not as <attribute> children."""
KEYPOINTS = "keypoints"
"""Attribute holding the names of a skeleton's points, in order."""


class _Unsupported(Exception):
    """An element Studio cannot hold: skipped and counted, whatever `skip_bad` says."""


def read(path: Path, *, skip_bad: bool = False) -> Dataset:
    """A CVAT for images 1.1 annotations.xml, or a folder holding one (images in images/ beside it)."""
    path = Path(path)
    xml_path = path / "annotations.xml" if path.is_dir() else path
    if not xml_path.is_file():
        raise FormatError(f"{path}: no annotations.xml in this folder")
    root = parse_xml(xml_path)
    if root.tag != "annotations":
        raise FormatError(f"{xml_path}: not a CVAT file (root element <{root.tag}>, expected <annotations>)")
    tracks = len(root.findall("track"))
    if tracks:
        raise FormatError(
            f"{xml_path}: a CVAT for video file ({tracks} <track> elements); Studio does not read tracks yet, "
            "export the task from CVAT as 'CVAT for images 1.1'"
        )
    images_dir = xml_path.parent / "images"
    image_root = images_dir if images_dir.is_dir() else xml_path.parent
    unsupported: Counter[str] = Counter()
    dataset = collect_images(
        enumerate(root.iterfind("image")),
        lambda item, problems: _read_image(*item, xml_path, image_root, unsupported, problems, skip_bad=skip_bad),
        image_root=image_root,
        skip_bad=skip_bad,
        labels=(
            name.text.strip()
            for label in root.iterfind("meta//labels/label")
            if label.find("parent") is None and (name := label.find("name")) is not None and name.text
        ),
    )
    dataset.problems += [f"{xml_path}: skipped {count} {what} (Studio cannot hold them)" for what, count in unsupported.items()]
    return dataset


def _read_image(
    index: int,
    element: Element,
    xml_path: Path,
    image_root: Path,
    unsupported: Counter[str],
    problems: list[str],
    *,
    skip_bad: bool,
) -> DatasetImage:
    name = element.get("name")
    where = f"{xml_path}: image {name or index}"
    if not name:
        raise FormatError(f"{where}: <image> has no name")
    width, height = (int(number(element.get(key), f"{where}: {key}")) for key in ("width", "height"))
    if width <= 0 or height <= 0:
        raise FormatError(f"{where}: size {width}x{height} is not positive")
    subset = element.get("subset")
    if subset and (image_root / subset / name).is_file():
        name = f"{subset}/{name}"  # a project export: images/<subset>/<name>
    annotations: list[DatasetAnnotation] = []
    tags: list[str] = []
    groups: dict[tuple[str, int], DatasetAnnotation] = {}
    for position, child in enumerate(element):
        if child.tag == "tag" and child.get("label"):
            tags.append(child.get("label"))  # type: ignore[arg-type]
            continue
        try:
            ann = _read_shape(child, (height, width))
        except _Unsupported as exc:
            unsupported[str(exc)] += 1
            continue
        except FormatError as exc:
            skip_or_raise(problems, f"{where}: shape {position} <{child.tag}>{_label_of(child)}: {exc}", skip_bad)
            continue
        group_id = ann.attributes.get("group_id")
        if not isinstance(ann.shape, Polygon) or group_id is None:
            annotations.append(ann)
        elif (ann.label, group_id) in groups:
            _add_part(groups[(ann.label, group_id)], ann)
        else:
            groups[(ann.label, group_id)] = ann
            annotations.append(ann)
    return DatasetImage(name, width, height, annotations, tags=tags)


def _label_of(element: Element) -> str:
    return f" ({element.get('label')!r})" if element.get("label") else ""


def _add_part(whole: DatasetAnnotation, part: DatasetAnnotation) -> None:
    """Merge a polygon into the object of its group, keeping the object's own attributes first."""
    assert isinstance(whole.shape, Polygon) and isinstance(part.shape, Polygon)
    whole.shape = Polygon([*whole.shape.parts, *part.shape.parts])
    whole.attributes = {**part.attributes, **whole.attributes}
    whole.score = whole.score if whole.score is not None else part.score


def _read_shape(element: Element, size: tuple[int, int]) -> DatasetAnnotation:
    if element.tag not in SHAPE_TAGS:
        raise _Unsupported(f"<{element.tag}> elements")
    label = element.get("label")
    if not label:
        raise _Unsupported(f"<{element.tag}> elements without a label")
    attributes = _attributes(element)
    score = None if element.get("score") is None else number(element.get("score"), "score")
    try:
        if element.tag == "box":
            xtl, ytl, xbr, ybr = (number(element.get(key), key) for key in ("xtl", "ytl", "xbr", "ybr"))
            rotation = number(element.get("rotation", 0), "rotation")
            if rotation:
                shape: Shape = RotatedBox((xtl + xbr) / 2, (ytl + ybr) / 2, xbr - xtl, ybr - ytl, rotation)
            else:
                shape = Box(xtl, ytl, xbr, ybr)
        elif element.tag == "mask":
            shape = _decode_mask(element, size)
        elif element.tag == "polygon":
            shape = Polygon([_points(element.get("points"))])
        elif element.tag == "polyline":
            shape = Polyline(_points(element.get("points")))
        elif element.tag == "ellipse":
            cx, cy, rx, ry = (number(element.get(key), key) for key in ("cx", "cy", "rx", "ry"))
            rotation = number(element.get("rotation", 0), "rotation")
            shape = Polygon([ellipse_vertices((cx, cy), (abs(rx), abs(ry)), angle=rotation)])
        elif element.tag == "skeleton":
            shape, attributes[KEYPOINTS] = _skeleton(element)
        else:
            shape = Points(_points(element.get("points")))
    except InvalidShapeError as exc:
        raise FormatError(str(exc)) from None
    check_inside(shape, size, element.tag)
    return DatasetAnnotation(label, shape, score, attributes)


def _skeleton(element: Element) -> tuple[Points, list[str]]:
    """A <skeleton>'s <points> children -> Points with COCO visibility, and the keypoint names."""
    names, points, visibility = [], [], []
    for child in element.iterfind("points"):
        xy = _points(child.get("points"))
        if len(xy) != 1 or not child.get("label"):
            raise FormatError("each <points> of a skeleton needs a label and one point")
        names.append(child.get("label") or "")
        points.append(xy[0])
        visibility.append(0 if child.get("outside") == "1" else 1 if child.get("occluded") == "1" else 2)
    if not points:
        raise FormatError("a <skeleton> without <points>")
    return Points(points, visibility), names


def _attributes(element: Element) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    if element.get("occluded") == "1":
        attributes["occluded"] = True
    for key in ("z_order", "group_id"):
        value = int(number(element.get(key, 0), key))
        if value:
            attributes[key] = value
    if element.get("source", "manual") != "manual":
        attributes["source"] = element.get("source")
    for child in element.iterfind("attribute"):
        name = child.get("name")
        if not name:
            raise FormatError("an <attribute> has no name")
        attributes[name] = attribute_value((child.text or "").strip())
    return attributes


def _points(text: str | None) -> list[tuple[float, float]]:
    if not text:
        raise FormatError("missing points")
    pairs = [pair.split(",") for pair in text.split(";")]
    if any(len(pair) != 2 for pair in pairs):
        raise FormatError(f"points must be 'x,y;x,y;...', got {text[:60]!r}")
    return [(number(x, "x"), number(y, "y")) for x, y in pairs]


def _decode_mask(element: Element, size: tuple[int, int]) -> Mask:
    """CVAT's mask RLE -> full-image Mask."""
    left, top, width, height = (int(number(element.get(key), key)) for key in ("left", "top", "width", "height"))
    counts = [int(number(value, "rle")) for value in (element.get("rle") or "").split(",")]
    if any(count < 0 for count in counts) or sum(counts) != width * height or width <= 0 or height <= 0:
        raise FormatError(f"rle does not cover the {width}x{height} mask window")
    image_height, image_width = size
    if left < 0 or top < 0 or left + width > image_width or top + height > image_height:
        raise FormatError(f"mask window at ({left}, {top}) of {width}x{height} lies outside the image")
    window = np.repeat(np.arange(len(counts)) % 2, counts).astype(bool).reshape(height, width)
    full = np.zeros(size, dtype=bool)
    full[top : top + height, left : left + width] = window
    return geometry.encode_mask(full)


def _encode_mask(mask: Mask) -> dict[str, str]:
    """Mask -> CVAT's rle/left/top/width/height over the mask's bounding pixels."""
    pixels = geometry.decode_mask(mask)
    ys, xs = np.nonzero(pixels)
    left, top, right, bottom = (int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())) if len(xs) else (0, 0, 0, 0)
    flat = pixels[top : bottom + 1, left : right + 1].ravel()
    edges = np.concatenate(([0], np.flatnonzero(np.diff(flat)) + 1, [flat.size]))
    runs = np.diff(edges).tolist()
    if flat[0]:
        runs.insert(0, 0)  # CVAT's runs start with background
    return {
        "rle": ", ".join(map(str, runs)),
        "left": str(left), "top": str(top), "width": str(right - left + 1), "height": str(bottom - top + 1),
    }


def write(dataset: Dataset, out: Path, *, copy_images: bool = True) -> list[Path]:
    """OUT/annotations.xml, and OUT/images/<file_name> when copying images."""
    out = Path(out)
    root = Element("annotations")
    SubElement(root, "version").text = "1.1"
    task = SubElement(SubElement(root, "meta"), "task")
    SubElement(task, "size").text = str(len(dataset.images))
    SubElement(task, "mode").text = "annotation"
    labels = SubElement(task, "labels")
    skeletons = {a.label: _keypoints(a) for i in dataset.images for a in i.annotations if _keypoints(a)}
    for name in dict.fromkeys([*dataset.labels, *(a.label for i in dataset.images for a in i.annotations)]):
        label = SubElement(labels, "label")
        SubElement(label, "name").text = name
        SubElement(label, "type").text = "skeleton" if name in skeletons else "any"
        SubElement(label, "attributes")
    for parent, keypoints in skeletons.items():  # CVAT declares a skeleton's points as labels of their own
        for keypoint in keypoints:
            label = SubElement(labels, "label")
            SubElement(label, "name").text = keypoint
            SubElement(label, "type").text = "points"
            SubElement(label, "attributes")
            SubElement(label, "parent").text = parent
    written: list[Path] = []
    for index, image in enumerate(dataset.images):
        element = SubElement(root, "image", id=str(index), name=image.file_name)
        element.set("width", str(image.width or 0))
        element.set("height", str(image.height or 0))
        _write_shapes(element, image.annotations)
        if copy_images:
            write_image(image, out / "images" / image.file_name)
            written.append(out / "images" / image.file_name)
    out.mkdir(parents=True, exist_ok=True)
    tree = ElementTree(root)
    indent(tree)
    tree.write(out / "annotations.xml", encoding="utf-8", xml_declaration=True)
    return [out / "annotations.xml", *written]


def _write_shapes(image: Element, annotations: list[DatasetAnnotation]) -> None:
    used = [a.attributes["group_id"] for a in annotations if isinstance(a.attributes.get("group_id"), int)]
    next_group = max(used, default=0) + 1
    for ann in annotations:
        elements = _geometry(ann)
        group_id = ann.attributes.get("group_id")
        if group_id is None and len(elements) > 1:  # the parts of one polygon form a group
            group_id, next_group = next_group, next_group + 1
        for geometry_attributes, tag in elements:
            element = SubElement(image, tag, label=ann.label)
            element.set("source", str(ann.attributes.get("source", "manual")))
            element.set("occluded", "1" if ann.attributes.get("occluded") else "0")
            for key, value in geometry_attributes.items():
                element.set(key, value)
            element.set("z_order", str(ann.attributes.get("z_order", 0)))
            if group_id is not None:
                element.set("group_id", str(group_id))
            if ann.score is not None:
                element.set("score", format_number(ann.score))  # CVAT ignores it; Studio reads it back
            if tag == "skeleton":
                _write_skeleton_points(element, ann)
            for name, value in ann.attributes.items():
                if name not in _ELEMENT_KEYS and not (tag == "skeleton" and name == KEYPOINTS):
                    SubElement(element, "attribute", name=name).text = attribute_text(value)


def _geometry(ann: DatasetAnnotation) -> list[tuple[dict[str, str], str]]:
    """(XML attributes of the geometry, element tag) of each element an annotation is written as."""
    shape = ann.shape
    if isinstance(shape, Box):
        corners = (shape.x1, shape.y1, shape.x2, shape.y2)
        return [(dict(zip(("xtl", "ytl", "xbr", "ybr"), map(format_number, corners), strict=True)), "box")]
    if isinstance(shape, RotatedBox):
        corners = (shape.cx - shape.w / 2, shape.cy - shape.h / 2, shape.cx + shape.w / 2, shape.cy + shape.h / 2)
        box = dict(zip(("xtl", "ytl", "xbr", "ybr"), map(format_number, corners), strict=True))
        return [({**box, "rotation": format_number(shape.angle % 360)}, "box")]
    if isinstance(shape, Polygon):
        return [({"points": _points_text(part)}, "polygon") for part in shape.parts]
    if isinstance(shape, Polyline):
        return [({"points": _points_text(shape.points)}, "polyline")]
    if isinstance(shape, Points):
        return [({}, "skeleton")] if _keypoints(ann) else [({"points": _points_text(shape.points)}, "points")]
    return [(_encode_mask(shape), "mask")]


def _keypoints(ann: DatasetAnnotation) -> list[str]:
    """The keypoint names of a Points annotation read from a <skeleton> (one per point), else []."""
    names = ann.attributes.get(KEYPOINTS)
    fits = isinstance(ann.shape, Points) and isinstance(names, list) and len(names) == len(ann.shape.points)
    return [str(name) for name in names] if fits else []  # type: ignore[union-attr]


def _write_skeleton_points(skeleton: Element, ann: DatasetAnnotation) -> None:
    assert isinstance(ann.shape, Points)
    visibility = ann.shape.visibility or (2,) * len(ann.shape.points)
    for name, point, visible in zip(_keypoints(ann), ann.shape.points, visibility, strict=True):
        element = SubElement(skeleton, "points", label=name, source="manual")
        element.set("outside", "1" if visible == 0 else "0")
        element.set("occluded", "1" if visible == 1 else "0")
        element.set("points", _points_text((point,)))


def _points_text(points: tuple[tuple[float, float], ...]) -> str:
    return ";".join(f"{format_number(x)},{format_number(y)}" for x, y in points)
