"""CVAT for images 1.1: one annotations.xml (labels in <meta>, then <image> elements holding shapes).

Shapes: <box> (rotation > 0 -> RotatedBox: CVAT turns the box clockwise about its centre, as Studio
does), <polygon>, <polyline>, <points>, and <mask> with CVAT's own RLE: run lengths over the mask's
left/top/width/height window, row-major, starting with a background run. Element attributes become
annotation attributes (occluded -> True, z_order/group_id when non-zero, source when not "manual"),
<attribute name="...">value</attribute> children too ("true"/"false" -> bool, as CVAT's checkboxes).
Polygons of one label sharing a group_id are one object (a multi-part Polygon), as CVAT's COCO export
treats them; export writes each part as a <polygon> of a shared group. Coordinates are written with
full precision (CVAT writes two decimals), so an export re-imports exactly.

supervision has no CVAT support, so this module parses the XML (with defusedxml) itself.
"""

from __future__ import annotations

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
    checked_size,
    collect_images,
    format_number,
    number,
    parse_xml,
    skip_or_raise,
    write_image,
)

SHAPE_TAGS = ("box", "polygon", "polyline", "points", "mask")
_ELEMENT_KEYS = ("source", "occluded", "z_order", "group_id")
"""Annotation attributes written as XML attributes of the shape element, not as <attribute> children."""


def read(path: Path, *, skip_bad: bool = False) -> Dataset:
    """A CVAT for images 1.1 annotations.xml, or a folder holding one (images in images/ beside it)."""
    path = Path(path)
    xml_path = path / "annotations.xml" if path.is_dir() else path
    if not xml_path.is_file():
        raise FormatError(f"{path}: no annotations.xml in this folder")
    root = parse_xml(xml_path)
    if root.tag != "annotations":
        raise FormatError(f"{xml_path}: not a CVAT file (root element <{root.tag}>, expected <annotations>)")
    images_dir = xml_path.parent / "images"
    image_root = images_dir if images_dir.is_dir() else xml_path.parent
    return collect_images(
        enumerate(root.iterfind("image")),
        lambda item, problems: _read_image(*item, xml_path, problems, skip_bad=skip_bad, image_root=image_root),
        image_root=image_root,
        skip_bad=skip_bad,
        labels=(name.text.strip() for name in root.iterfind("meta//labels/label/name") if name.text),
    )


def _read_image(
    index: int, element: Element, xml_path: Path, problems: list[str], *, skip_bad: bool, image_root: Path
) -> DatasetImage:
    name = element.get("name")
    where = f"{xml_path}: image {name or index}"
    if not name:
        raise FormatError(f"{where}: <image> has no name")
    width, height = (int(number(element.get(key), f"{where}: {key}")) for key in ("width", "height"))
    if width <= 0 or height <= 0:
        raise FormatError(f"{where}: size {width}x{height} is not positive")
    if element.find("mask") is not None:  # masks are built at the declared size
        checked_size((height, width), where, image_root=image_root, file_name=name)
    annotations: list[DatasetAnnotation] = []
    groups: dict[tuple[str, int], DatasetAnnotation] = {}
    for position, child in enumerate(element):
        try:
            ann = _read_shape(child, (height, width))
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
    return DatasetImage(name, width, height, annotations)


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
        raise FormatError(f"unsupported element; Studio reads {', '.join(SHAPE_TAGS)}")
    label = element.get("label")
    if not label:
        raise FormatError("missing label")
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
        else:
            shape = Points(_points(element.get("points")))
    except InvalidShapeError as exc:
        raise FormatError(str(exc)) from None
    check_inside(shape, size, element.tag)
    return DatasetAnnotation(label, shape, score, attributes)


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
    for name in dict.fromkeys([*dataset.labels, *(a.label for i in dataset.images for a in i.annotations)]):
        label = SubElement(labels, "label")
        SubElement(label, "name").text = name
        SubElement(label, "type").text = "any"
        SubElement(label, "attributes")
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
            for name, value in ann.attributes.items():
                if name not in _ELEMENT_KEYS:
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
        return [({"points": _points_text(shape.points)}, "points")]
    return [(_encode_mask(shape), "mask")]


def _points_text(points: tuple[tuple[float, float], ...]) -> str:
    return ";".join(f"{format_number(x)},{format_number(y)}" for x, y in points)
