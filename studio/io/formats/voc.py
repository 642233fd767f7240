"""Pascal VOC: one XML per image (Annotations/<id>.xml, images in JPEGImages/, regions in SegmentationObject/).

Coordinates. VOC's <bndbox> holds 1-based, inclusive pixel indices (the devkit's convention): the box
covering pixels 0..9 of a row in Studio's corner frame (x1=0, x2=10) is written xmin=1, xmax=10. So
import does x1 = xmin - 1, x2 = xmax, and export the inverse; integer files round-trip exactly and agree
with supervision's VOC loader/saver. (ultralytics' VOC.yaml converter subtracts 1 from both ends, a box
one pixel narrower; we follow the devkit and supervision.) Sub-pixel boxes are written with decimals
rather than rounded, so nothing drawn in Studio is moved by an export.

Why not supervision's pascal_voc module: it reads a whole images+annotations folder pair into
Detections, which have no place for difficult/truncated/occluded/pose or other attributes, sorts label
names instead of keeping first-seen order, reads every image to learn its size, and rounds boxes on
export. Here the XML is parsed with defusedxml directly and each bad object is reported by file and index.

Regions. Polygons, rotated boxes and masks are written as their bounding boxes (all VOC detection tools
read) and also painted into SegmentationObject/<id>.png, VOC's instance segmentation: a palette PNG whose
pixel value i marks the i-th <object> of the XML (0 background, 255 void). On import an object with
pixels there becomes a Mask; others stay boxes. Where regions overlap, the later object keeps the
pixels, and objects after the 254th of an image stay boxes (the PNG holds one byte per pixel).
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any
from xml.etree.ElementTree import Element, ElementTree, SubElement, indent

import numpy as np

from studio.core import geometry
from studio.core.errors import FormatError, InvalidShapeError, MediaError
from studio.core.shapes import Box, Mask, Polygon, RotatedBox
from studio.io import safe_files
from studio.io.formats.base import (
    Dataset,
    DatasetAnnotation,
    DatasetImage,
    attribute_text,
    attribute_value,
    check_inside,
    collect_images,
    format_number,
    number,
    parse_xml,
    skip_or_raise,
    unique_stem,
    write_image,
)

_FLAGS = ("difficult", "truncated", "occluded")
"""0/1 object flags of VOC; stored as attributes only when set, as absent means 0 for VOC tools."""
_DEFAULT_POSE = "Unspecified"
_STANDARD = {*_FLAGS, "pose", "score"}
_MAX_OBJECTS = 254
"""Object indexes a SegmentationObject PNG can hold (one byte a pixel; 0 is background, 255 void)."""


def read(path: Path, *, skip_bad: bool = False) -> Dataset:
    """A VOC folder (Annotations/ + JPEGImages/, or XMLs beside their images) or one XML file."""
    xml_files, xml_root, image_root = _locate(Path(path))
    segmentation_root = xml_root.parent / "SegmentationObject" if xml_root.name == "Annotations" else None
    return collect_images(
        xml_files,
        lambda xml_path, problems: _read_file(
            xml_path, xml_path.parent.relative_to(xml_root), problems, skip_bad=skip_bad, segmentation_root=segmentation_root
        ),
        image_root=image_root,
        skip_bad=skip_bad,
    )


def _locate(path: Path) -> tuple[list[Path], Path, Path]:
    """The XML files, the folder their sub-paths are relative to, and the folder images are in."""
    if path.is_file():
        sibling_images = path.parent.parent / "JPEGImages"
        if path.parent.name == "Annotations" and sibling_images.is_dir():
            return [path], path.parent, sibling_images
        return [path], path.parent, path.parent
    xml_root = path / "Annotations" if (path / "Annotations").is_dir() else path
    image_root = path / "JPEGImages" if xml_root != path else path
    xml_files = safe_files.files_under(xml_root, [".xml"])
    if not xml_files:
        raise FormatError(f"{path}: no Pascal VOC .xml files (expected Annotations/*.xml or *.xml)")
    return xml_files, xml_root, image_root


def _read_file(
    xml_path: Path, sub_folder: Path, problems: list[str], *, skip_bad: bool, segmentation_root: Path | None
) -> DatasetImage:
    root = parse_xml(xml_path)
    if root.tag != "annotation":
        raise FormatError(f"{xml_path}: not a Pascal VOC file (root element <{root.tag}>, expected <annotation>)")
    file_name = _text(root, "filename")
    if not file_name:
        raise FormatError(f"{xml_path}: missing <filename>")
    width = height = None
    size = root.find("size")
    if size is not None:  # some tools write 0 for an unknown size
        width = int(number(_text(size, "width"), f"{xml_path}: <size><width>")) or None
        height = int(number(_text(size, "height"), f"{xml_path}: <size><height>")) or None
        if min(width or 0, height or 0) < 0:
            raise FormatError(f"{xml_path}: negative image <size> {width}x{height}")
    png = None if segmentation_root is None else segmentation_root / sub_folder / f"{xml_path.stem}.png"
    objects = _read_segmentation(png, (height, width) if width and height else None) if png and png.is_file() else None
    annotations = []
    for index, obj in enumerate(root.findall("object")):
        try:
            ann = _read_object(obj, f"{xml_path}: object {index}", (height, width) if width and height else None)
        except FormatError as exc:
            skip_or_raise(problems, str(exc), skip_bad)
            continue
        if objects is not None and (pixels := objects == index + 1).any():
            ann.shape = geometry.encode_mask(pixels)
        annotations.append(ann)
    return DatasetImage((sub_folder / file_name).as_posix(), width, height, annotations)


def _read_object(obj: Element, where: str, size: tuple[int, int] | None) -> DatasetAnnotation:
    label = _text(obj, "name")
    if not label:
        raise FormatError(f"{where}: missing <name>")
    where = f"{where} ({label!r})"
    box = obj.find("bndbox")
    if box is None:
        raise FormatError(f"{where}: missing <bndbox>")
    xmin, ymin, xmax, ymax = (number(_text(box, tag), f"{where}: <{tag}>") for tag in ("xmin", "ymin", "xmax", "ymax"))
    try:
        shape = Box(xmin - 1, ymin - 1, xmax, ymax)
    except InvalidShapeError as exc:
        raise FormatError(f"{where}: {exc}") from None
    check_inside(shape, size, where)
    attributes: dict[str, Any] = {}
    for flag in _FLAGS:
        if obj.find(flag) is not None and number(_text(obj, flag), f"{where}: <{flag}>"):
            attributes[flag] = True
    pose = _text(obj, "pose")
    if pose and pose != _DEFAULT_POSE:
        attributes["pose"] = pose
    for attribute in obj.findall("attributes/attribute"):
        name = _text(attribute, "name")
        if not name:
            raise FormatError(f"{where}: an <attribute> has no <name>")
        attributes[name] = attribute_value(_text(attribute, "value"))
    score = None if obj.find("score") is None else number(_text(obj, "score"), f"{where}: <score>")
    return DatasetAnnotation(label, shape, score, attributes)


def _read_segmentation(png: Path, size: tuple[int, int] | None) -> np.ndarray:
    """The object index of every pixel, from a SegmentationObject PNG (palette or grey values)."""
    from PIL import Image, UnidentifiedImageError

    from studio.io.media import image_size

    try:  # the header first: a 70-byte PNG can declare a size whose decoding takes gigabytes
        width, height = image_size(png, str(png))
    except MediaError as exc:
        raise FormatError(f"{png}: not a readable PNG ({str(exc).rpartition(': ')[2]})") from None
    if size is not None and (height, width) != size:
        raise FormatError(f"{png}: {width}x{height} but the XML says {size[1]}x{size[0]}")
    try:
        with Image.open(png) as image:
            if image.mode not in ("P", "L"):
                raise FormatError(f"{png}: expected an indexed (palette) PNG of object numbers, got mode {image.mode}")
            objects = np.asarray(image)
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as exc:
        raise FormatError(f"{png}: not a readable PNG ({exc})") from None
    if size is not None and objects.shape != size:
        raise FormatError(f"{png}: {objects.shape[1]}x{objects.shape[0]} but the XML says {size[1]}x{size[0]}")
    return objects


def _text(element: Element, tag: str) -> str:
    child = element.find(tag)
    return (child.text or "").strip() if child is not None else ""


def write(dataset: Dataset, out: Path, *, copy_images: bool = True) -> list[Path]:
    """OUT/Annotations/<id>.xml per image, OUT/ImageSets/Main/default.txt, OUT/JPEGImages/ when copying."""
    out = Path(out)
    written: list[Path] = []
    ids: list[str] = []  # VOC's image ids, in order, for ImageSets
    segmented: list[str] = []
    taken: set[str] = set()
    for image in dataset.images:
        image_id = unique_stem(image.file_name, taken)
        ids.append(image_id)
        xml_path = out / "Annotations" / f"{image_id}.xml"
        xml_path.parent.mkdir(parents=True, exist_ok=True)
        tree = ElementTree(_annotation_element(image))
        indent(tree)
        tree.write(xml_path, encoding="utf-8", xml_declaration=True)
        written.append(xml_path)
        if copy_images:
            write_image(image, out / "JPEGImages" / image.file_name)
            written.append(out / "JPEGImages" / image.file_name)
        if _has_regions(image):
            written.append(_write_segmentation(image, out / "SegmentationObject" / f"{image_id}.png"))
            segmented.append(image_id)
    for image_set, listed in (("Main", ids), ("Segmentation", segmented)):
        if listed or image_set == "Main":
            written.append(out / "ImageSets" / image_set / "default.txt")
            written[-1].parent.mkdir(parents=True, exist_ok=True)
            written[-1].write_text("".join(f"{image_id}\n" for image_id in listed), encoding="utf-8")
    return written


def _has_regions(image: DatasetImage) -> bool:
    return image.width is not None and image.height is not None and any(
        isinstance(ann.shape, (Polygon, RotatedBox, Mask)) for ann in image.annotations[:_MAX_OBJECTS]
    )


def _write_segmentation(image: DatasetImage, png: Path) -> Path:
    """SegmentationObject PNG: pixel value i where the i-th object's region is, with VOC's palette."""
    from PIL import Image

    assert image.width is not None and image.height is not None  # _has_regions checked
    objects = np.zeros((image.height, image.width), dtype=np.uint8)
    for index, ann in enumerate(image.annotations[:_MAX_OBJECTS], 1):
        if isinstance(ann.shape, (Polygon, RotatedBox, Mask)):
            objects[geometry.rasterize(ann.shape, (image.height, image.width))] = index
    png.parent.mkdir(parents=True, exist_ok=True)
    picture = Image.fromarray(objects)
    picture.putpalette(_VOC_PALETTE)  # makes it a palette ("P") image, as VOC's are
    picture.save(png)
    return png


def _voc_palette() -> list[int]:
    """The devkit's colour map (VOClabelcolormap.m): the bits of an index spread over R, G and B.

    Written out here because no dependency ships it; it only makes the PNGs look like VOC's own.
    """
    palette = []
    for index in range(256):
        red = green = blue = 0
        for bit in range(8):
            red |= ((index >> (3 * bit)) & 1) << (7 - bit)
            green |= ((index >> (3 * bit + 1)) & 1) << (7 - bit)
            blue |= ((index >> (3 * bit + 2)) & 1) << (7 - bit)
        palette += [red, green, blue]
    return palette


_VOC_PALETTE = _voc_palette()


def _annotation_element(image: DatasetImage) -> Element:
    root = Element("annotation")
    path = PurePosixPath(image.file_name)
    SubElement(root, "folder").text = "JPEGImages" if path.parent == PurePosixPath(".") else f"JPEGImages/{path.parent}"
    SubElement(root, "filename").text = path.name
    size = SubElement(root, "size")
    SubElement(size, "width").text = str(image.width or 0)
    SubElement(size, "height").text = str(image.height or 0)
    SubElement(size, "depth").text = "3"
    SubElement(root, "segmented").text = "1" if _has_regions(image) else "0"
    for ann in image.annotations:
        root.append(_object_element(ann))
    return root


def _object_element(ann: DatasetAnnotation) -> Element:
    obj = Element("object")
    SubElement(obj, "name").text = ann.label
    SubElement(obj, "pose").text = str(ann.attributes.get("pose", _DEFAULT_POSE))
    for flag in _FLAGS:
        SubElement(obj, flag).text = "1" if ann.attributes.get(flag) else "0"
    x, y, w, h = ann.shape.bbox()
    box = SubElement(obj, "bndbox")
    for tag, value in (("xmin", x + 1), ("ymin", y + 1), ("xmax", x + w), ("ymax", y + h)):
        SubElement(box, tag).text = format_number(value)
    if ann.score is not None:
        SubElement(obj, "score").text = format_number(ann.score)
    extra = {k: v for k, v in ann.attributes.items() if k not in _STANDARD}
    if extra:
        # CVAT's VOC export writes attributes this way; other VOC tools ignore the element.
        attributes = SubElement(obj, "attributes")
        for name, value in extra.items():
            attribute = SubElement(attributes, "attribute")
            SubElement(attribute, "name").text = name
            SubElement(attribute, "value").text = attribute_text(value)
    return obj
