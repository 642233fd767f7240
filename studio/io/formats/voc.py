"""Pascal VOC: one XML per image (Annotations/<id>.xml, images in JPEGImages/, regions in SegmentationObject/).

Coordinates. A <bndbox> is read and written as the box's corners in Studio's frame (x1 = xmin,
x2 = xmax, the origin at the top-left corner of the top-left pixel): the numbers CVAT, datumaro,
Roboflow and labelme2voc write, and the only reading under which their 0-based files (xmin=0,
xmax=width) lie inside the image and every file round-trips exactly, decimals included. The VOC
devkit meant 1-based inclusive pixel indices (x1 = xmin - 1, x2 = xmax), which supervision follows;
on a devkit file our boxes are one pixel larger on the left and top edges, and supervision reads a
Studio export one pixel larger there too. Datumaro reads as we do. The one exception is Roboflow's
<polygon> (x1, y1, x2, y2, ... children), which supervision writes 1-based: it is read 1-based.

Empty elements, as labelme2voc writes them (<pose/>, <difficult/>, <truncated/>, <occluded/>), mean
absent. A <filename> without an extension (ImageNet) is matched to the image with that stem.
<part> (VOC person layout), <actions> and <point> (VOC action classification) are kept as the
attributes `parts` ([{"name", "box": [x1, y1, x2, y2]}]), `actions` ({name: bool}) and `point`
([x, y]), and written back as those elements.

Why not supervision's pascal_voc module: it reads a whole images+annotations folder pair into
Detections, which have no place for difficult/truncated/occluded/pose, parts or actions, sorts label
names instead of keeping first-seen order, reads every image to learn its size, and rounds boxes on
export. Here the XML is parsed with defusedxml directly and each bad object is reported by file and index.

Regions. Polygons, rotated boxes and masks are written as their bounding boxes (all VOC detection tools
read) and also painted into SegmentationObject/<id>.png, VOC's instance segmentation: a palette PNG whose
pixel value i marks the i-th <object> of the XML (0 background, 255 void). On import an object with
pixels there becomes a Mask; others stay boxes. Where regions overlap, the later object keeps the
pixels, and objects after the 254th of an image stay boxes (the PNG holds one byte per pixel).
Segmentation PNGs are read in palette, grey or RGB form (CVAT/datumaro write RGB in VOC's colours).
An image with segmentation PNGs but no XML (labelme2voc's instance and semantic output) gets one Mask
per object of SegmentationObject, labelled by SegmentationClass, or one Mask per class when there is
no SegmentationObject; class numbers are named by labelmap.txt (datumaro), class_names.txt
(labelme2voc) or VOC's 20 classes.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from xml.etree.ElementTree import Element, ElementTree, SubElement, indent

import numpy as np

from studio.core import geometry
from studio.core.errors import FormatError, InvalidShapeError
from studio.core.shapes import Box, Mask, Polygon, RotatedBox, Shape
from studio.core.types import IMAGE_SUFFIXES
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
_STANDARD = {*_FLAGS, "pose", "score", "parts", "actions", "point"}
"""Attributes written as VOC's own elements, not in CVAT's <attributes> block."""
_MAX_OBJECTS = 254
"""Object indexes a SegmentationObject PNG can hold (one byte a pixel; 0 is background, 255 void)."""
_VOID = 255
SEGMENTATION_OBJECT = "SegmentationObject"
SEGMENTATION_CLASS = "SegmentationClass"
VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)
"""Class numbers of a SegmentationClass PNG when the dataset has no labelmap.txt or class_names.txt."""


@dataclass
class _Layout:
    xml_files: list[Path]
    xml_root: Path
    image_root: Path
    root: Path | None
    """The dataset folder holding Segmentation*/ (None for a loose XML file)."""
    png_only: list[str]
    """Ids (paths below Segmentation*/, no suffix) of images with segmentation PNGs but no XML."""


@dataclass
class _Classes:
    """Names of the class numbers of SegmentationClass PNGs, and the colour of each number in RGB PNGs."""

    names: list[str]
    colours: dict[int, int]
    """0xRRGGBB -> class number."""


def read(path: Path, *, skip_bad: bool = False) -> Dataset:
    """A VOC folder (Annotations/ + JPEGImages/ + Segmentation*/, or XMLs beside their images) or one XML."""
    layout = _locate(Path(path))
    classes = _classes(layout.root) if layout.root is not None else None

    def read_one(item: tuple[Path | None, str], problems: list[str]) -> DatasetImage:
        xml_path, image_id = item
        if xml_path is None:
            assert classes is not None
            return _read_png_only(image_id, layout, classes)
        return _read_file(xml_path, layout, classes, problems, skip_bad=skip_bad)

    items = [(xml, xml.relative_to(layout.xml_root).with_suffix("").as_posix()) for xml in layout.xml_files]
    items += [(None, image_id) for image_id in layout.png_only]
    return collect_images(items, read_one, image_root=layout.image_root, skip_bad=skip_bad)


def _locate(path: Path) -> _Layout:
    """Where the XML files, images and segmentation PNGs of a VOC file or folder are."""
    if path.is_file():
        sibling_images = path.parent.parent / "JPEGImages"
        if path.parent.name == "Annotations" and sibling_images.is_dir():
            return _Layout([path], path.parent, sibling_images, path.parent.parent, [])
        return _Layout([path], path.parent, path.parent, None, [])
    has_annotations = (path / "Annotations").is_dir()
    has_segmentation = any((path / folder).is_dir() for folder in (SEGMENTATION_OBJECT, SEGMENTATION_CLASS))
    xml_root = path / "Annotations" if has_annotations else path
    image_root = path / "JPEGImages" if (has_annotations or has_segmentation) and (path / "JPEGImages").is_dir() else path
    xml_files = sorted(xml_root.rglob("*.xml"))
    root = path if has_annotations or has_segmentation else None
    png_only: list[str] = []
    if root is not None:
        with_xml = {xml.relative_to(xml_root).with_suffix("").as_posix() for xml in xml_files}
        ids = {
            png.relative_to(root / folder).with_suffix("").as_posix(): None
            for folder in (SEGMENTATION_OBJECT, SEGMENTATION_CLASS)
            for png in sorted((root / folder).rglob("*.png"))
        }
        png_only = [image_id for image_id in ids if image_id not in with_xml]
    if not xml_files and not png_only:
        raise FormatError(f"{path}: no Pascal VOC .xml files (expected Annotations/*.xml or *.xml) nor segmentation PNGs")
    return _Layout(xml_files, xml_root, image_root, root, png_only)


def _read_file(
    xml_path: Path, layout: _Layout, classes: _Classes | None, problems: list[str], *, skip_bad: bool
) -> DatasetImage:
    root = parse_xml(xml_path)
    if root.tag != "annotation":
        raise FormatError(f"{xml_path}: not a Pascal VOC file (root element <{root.tag}>, expected <annotation>)")
    sub_folder = xml_path.parent.relative_to(layout.xml_root)
    file_name = _text(root, "filename")
    if not file_name:
        raise FormatError(f"{xml_path}: missing <filename>")
    width = height = None
    size = root.find("size")
    if size is not None:  # some tools write 0 or nothing for an unknown size
        width, height = (_optional_int(size, key, f"{xml_path}: <size>") for key in ("width", "height"))
    known = (height, width) if width and height else None
    image_id = xml_path.relative_to(layout.xml_root).with_suffix("").as_posix()
    objects = classes_png = None
    if layout.root is not None and classes is not None:
        objects = _segmentation(layout.root / SEGMENTATION_OBJECT / f"{image_id}.png", _INSTANCE_COLOURS, known)
        if objects is None:
            classes_png = _segmentation(layout.root / SEGMENTATION_CLASS / f"{image_id}.png", classes.colours, known)
    annotations = []
    for index, obj in enumerate(root.findall("object")):
        try:
            ann = _read_object(obj, f"{xml_path}: object {index}", known)
        except FormatError as exc:
            skip_or_raise(problems, str(exc), skip_bad)
            continue
        if objects is not None and (pixels := objects == index + 1).any():
            ann.shape = geometry.encode_mask(pixels)
        annotations.append(ann)
    if classes_png is not None:
        assert classes is not None
        annotations += _class_masks(classes_png, classes, layout.root / SEGMENTATION_CLASS / f"{image_id}.png")
    name = _image_name((sub_folder / file_name).as_posix(), layout.image_root)
    return DatasetImage(name, width, height, annotations)


def _optional_int(element: Element, tag: str, where: str) -> int | None:
    """A size field: None when empty or 0 (unknown), FormatError when not a non-negative number."""
    text = _text(element, tag)
    value = int(number(text, f"{where}<{tag}>")) if text else 0
    if value < 0:
        raise FormatError(f"{where}<{tag}> is negative: {text}")
    return value or None


def _image_name(file_name: str, image_root: Path) -> str:
    """The image's path; a name without an image suffix (ImageNet's <filename>) gets the suffix of the
    file with that stem in the image folder, when there is one."""
    path = PurePosixPath(file_name)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return file_name
    folder = image_root / path.parent
    found = sorted(p.name for p in folder.glob(glob.escape(path.name) + ".*") if p.suffix.lower() in IMAGE_SUFFIXES)
    return (path.parent / found[0]).as_posix() if found else file_name


def _read_object(obj: Element, where: str, size: tuple[int, int] | None) -> DatasetAnnotation:
    label = _text(obj, "name")
    if not label:
        raise FormatError(f"{where}: missing <name>")
    where = f"{where} ({label!r})"
    shape: Shape = _read_box(obj, where)
    if obj.find("polygon") is not None:
        shape = _read_polygon(obj.find("polygon"), where)  # type: ignore[arg-type]
    check_inside(shape, size, where)
    attributes: dict[str, Any] = {}
    for flag in _FLAGS:
        if _flag(obj, flag, where):
            attributes[flag] = True
    pose = _text(obj, "pose")
    if pose and pose != _DEFAULT_POSE:
        attributes["pose"] = pose
    parts = [{"name": _text(part, "name"), "box": list(_corners(_read_box(part, f"{where}: <part>")))} for part in obj.findall("part")]
    if parts:
        attributes["parts"] = parts
    actions = obj.find("actions")
    if actions is not None:
        attributes["actions"] = {action.tag: _flag(actions, action.tag, f"{where}: <actions>") for action in actions}
    point = obj.find("point")
    if point is not None:
        attributes["point"] = [number(_text(point, axis), f"{where}: <point><{axis}>") for axis in ("x", "y")]
    for attribute in obj.findall("attributes/attribute"):
        name = _text(attribute, "name")
        if not name:
            raise FormatError(f"{where}: an <attribute> has no <name>")
        attributes[name] = attribute_value(_text(attribute, "value"))
    score = number(_text(obj, "score"), f"{where}: <score>") if _text(obj, "score") else None
    return DatasetAnnotation(label, shape, score, attributes)


def _read_box(element: Element, where: str) -> Box:
    """The <bndbox> of an object or part, as corners (see the module docstring for the convention)."""
    box = element.find("bndbox")
    if box is None:
        raise FormatError(f"{where}: missing <bndbox>")
    xmin, ymin, xmax, ymax = (number(_text(box, tag), f"{where}: <{tag}>") for tag in ("xmin", "ymin", "xmax", "ymax"))
    try:
        return Box(xmin, ymin, xmax, ymax)
    except InvalidShapeError as exc:
        raise FormatError(f"{where}: {exc}") from None


def _read_polygon(element: Element, where: str) -> Polygon:
    """Roboflow's <polygon><x1/><y1/><x2/>...: 1-based vertices, as supervision writes and reads them."""
    values = [number((child.text or "").strip(), f"{where}: <polygon><{child.tag}>") for child in element]
    if len(values) % 2 or len(values) < 6:
        raise FormatError(f"{where}: <polygon> needs x and y of at least 3 vertices, got {len(values)} values")
    vertices = np.maximum(np.asarray(values).reshape(-1, 2) - 1, 0.0)
    return Polygon([vertices.tolist()])


def _flag(element: Element, tag: str, where: str) -> bool:
    """A 0/1 element; empty (<difficult/>, as labelme2voc writes) or absent means 0."""
    text = _text(element, tag)
    return bool(text) and bool(number(text, f"{where}: <{tag}>"))


def _corners(box: Box) -> tuple[float, float, float, float]:
    return (box.x1, box.y1, box.x2, box.y2)


def _classes(root: Path) -> _Classes:
    """Class names and colours: datumaro's labelmap.txt (`name:r,g,b:parts:actions`), labelme2voc's
    class_names.txt (one name a line, line i is class i), else VOC's classes; colours default to VOC's."""
    colours = dict(_INSTANCE_COLOURS)
    labelmap, class_names = root / "labelmap.txt", root / "class_names.txt"
    if labelmap.is_file():
        names = []
        for line in _lines(labelmap):
            if line.startswith("#"):
                continue
            name, _, rest = line.partition(":")
            colour = rest.split(":")[0].strip()
            if colour:
                try:
                    red, green, blue = (int(value) for value in colour.split(","))
                except ValueError:
                    raise FormatError(f"{labelmap}: colour of {name!r} is not r,g,b: {colour!r}") from None
                colours[(red << 16) | (green << 8) | blue] = len(names)
            names.append(name.strip())
        return _Classes(names, colours)
    if class_names.is_file():
        return _Classes(_lines(class_names), colours)
    return _Classes(list(VOC_CLASSES), colours)


def _lines(path: Path) -> list[str]:
    try:
        return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise FormatError(f"{path}: cannot read ({exc})") from None


def _segmentation(png: Path, colours: dict[int, int], size: tuple[int, int] | None) -> np.ndarray | None:
    """The number (object or class) of every pixel of a segmentation PNG, None when there is none.

    Palette and grey PNGs hold the numbers; RGB ones (CVAT, datumaro) hold the numbers' colours."""
    from PIL import Image, UnidentifiedImageError

    if not png.is_file():
        return None
    try:
        with Image.open(png) as image:
            if image.mode in ("P", "L"):
                numbers = np.asarray(image)
            elif image.mode in ("RGB", "RGBA"):
                numbers = _numbers_of_colours(np.asarray(image.convert("RGB")), colours, png)
            else:
                raise FormatError(f"{png}: expected a palette, grey or RGB PNG of object or class numbers, got mode {image.mode}")
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError, ImportError) as exc:
        # ImportError: once ultralytics is imported, its patched Image.open retries an unreadable file
        # after importing pi_heif, which may be absent
        raise FormatError(f"{png}: not a readable PNG ({exc})") from None
    if size is not None and numbers.shape != size:
        raise FormatError(f"{png}: {numbers.shape[1]}x{numbers.shape[0]} but the XML says {size[1]}x{size[0]}")
    return numbers


def _numbers_of_colours(rgb: np.ndarray, colours: dict[int, int], png: Path) -> np.ndarray:
    keys = (rgb[..., 0].astype(np.int32) << 16) | (rgb[..., 1].astype(np.int32) << 8) | rgb[..., 2]
    unique, inverse = np.unique(keys, return_inverse=True)
    unknown = [key for key in unique.tolist() if key not in colours]
    if unknown:
        red, green, blue = unknown[0] >> 16, (unknown[0] >> 8) & 255, unknown[0] & 255
        raise FormatError(f"{png}: colour ({red}, {green}, {blue}) is not one of the dataset's object or class colours")
    return np.array([colours[key] for key in unique.tolist()], dtype=np.uint8)[inverse].reshape(keys.shape)


def _read_png_only(image_id: str, layout: _Layout, classes: _Classes) -> DatasetImage:
    """An image described only by segmentation PNGs (labelme2voc): its objects, or its class regions."""
    assert layout.root is not None
    object_png = layout.root / SEGMENTATION_OBJECT / f"{image_id}.png"
    class_png = layout.root / SEGMENTATION_CLASS / f"{image_id}.png"
    class_numbers = _segmentation(class_png, classes.colours, None)
    objects = _segmentation(object_png, _INSTANCE_COLOURS, None if class_numbers is None else class_numbers.shape)
    if objects is None:
        assert class_numbers is not None  # the id came from one of the two folders
        annotations = _class_masks(class_numbers, classes, class_png)
    elif class_numbers is None:
        raise FormatError(f"{object_png}: no {SEGMENTATION_CLASS}/{image_id}.png or XML to name its objects' classes")
    else:
        annotations = []
        for index in np.unique(objects).tolist():
            pixels = objects == index
            numbers = class_numbers[pixels]
            numbers = numbers[numbers != _VOID]
            if index in (0, _VOID) or not numbers.size:
                continue
            number_of_class = int(np.bincount(numbers).argmax())  # an object's pixels share one class
            if number_of_class:
                annotations.append(DatasetAnnotation(_class_name(number_of_class, classes, class_png), geometry.encode_mask(pixels)))
    height, width = (objects if objects is not None else class_numbers).shape  # type: ignore[union-attr]
    return DatasetImage(_image_name(image_id, layout.image_root), width, height, annotations)


def _class_masks(class_numbers: np.ndarray, classes: _Classes, png: Path) -> list[DatasetAnnotation]:
    """One Mask per class present in a SegmentationClass PNG (0 background and 255 void left out)."""
    return [
        DatasetAnnotation(_class_name(number, classes, png), geometry.encode_mask(class_numbers == number))
        for number in np.unique(class_numbers).tolist()
        if number not in (0, _VOID)
    ]


def _class_name(class_number: int, classes: _Classes, png: Path) -> str:
    if class_number >= len(classes.names):
        raise FormatError(f"{png}: class {class_number} is not named ({len(classes.names)} classes known)")
    return classes.names[class_number]


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
            written.append(_write_segmentation(image, out / SEGMENTATION_OBJECT / f"{image_id}.png"))
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

    Written out here because no dependency ships it; it makes the PNGs look like VOC's own, and reads
    the RGB PNGs CVAT and datumaro write.
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
_INSTANCE_COLOURS = {
    (_VOC_PALETTE[3 * i] << 16) | (_VOC_PALETTE[3 * i + 1] << 8) | _VOC_PALETTE[3 * i + 2]: i for i in range(256)
}
"""0xRRGGBB of VOC's palette -> its index: how an RGB segmentation PNG is read back into numbers."""


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


def _bndbox(parent: Element, corners: tuple[float, float, float, float] | list[float]) -> None:
    box = SubElement(parent, "bndbox")
    for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), corners, strict=True):
        SubElement(box, tag).text = format_number(value)


def _object_element(ann: DatasetAnnotation) -> Element:
    obj = Element("object")
    SubElement(obj, "name").text = ann.label
    SubElement(obj, "pose").text = str(ann.attributes.get("pose", _DEFAULT_POSE))
    for flag in _FLAGS:
        SubElement(obj, flag).text = "1" if ann.attributes.get(flag) else "0"
    x, y, w, h = ann.shape.bbox()
    _bndbox(obj, (x, y, x + w, y + h))
    for part in ann.attributes.get("parts") or []:
        element = SubElement(obj, "part")
        SubElement(element, "name").text = str(part["name"])
        _bndbox(element, part["box"])
    if isinstance(actions := ann.attributes.get("actions"), dict):
        element = SubElement(obj, "actions")
        for action, present in actions.items():
            SubElement(element, action).text = "1" if present else "0"
    if isinstance(point := ann.attributes.get("point"), list) and len(point) == 2:
        element = SubElement(obj, "point")
        SubElement(element, "x").text, SubElement(element, "y").text = (format_number(v) for v in point)
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
