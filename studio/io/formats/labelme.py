"""labelme JSON (labelme 5.x and 7): one .json per image, beside the image or carrying it as imageData.

Read as current labelme reads them (labelme/_label_file.py, _utils/shape.py). Shape types:
rectangle -> Box; polygon -> Polygon, and a polygon of 2 points (or 1), which labelme saves after
vertex edits and still opens, -> Polyline (Points) keeping shape_type="polygon"; oriented_rectangle
(4 corners) -> RotatedBox (a Polygon when the corners are not a rectangle) keeping its shape_type;
circle (centre, then a point on the circle) -> Polygon of ELLIPSE_VERTICES vertices, the first one being
the point on the circle, with attribute shape_type="circle" so export writes a circle again;
line / linestrip -> Polyline (a line keeps shape_type="line"); point / points -> Points; mask (base64
PNG of the region from its first corner) -> Mask of the whole image, its corners rounded and the PNG
clipped to the image exactly as labelme's shapes_to_label places it.

The image. As labelme, a file's embedded imageData is the image its shapes were drawn on: the image file
at imagePath is used only when it has the same size, otherwise the embedded image is imported. The
image-level `flags` set to true become the image's tags. A shape's `description` and `flags` become attributes, and so does the
`group_id` of lines and points (they cannot merge); a `score` key and an `attributes` object, which
Studio writes and labelme keeps as extra shape data, are read back.

Instances. As labelme's own labelme2coco does, shapes sharing (label, group_id) are ONE object: polygons
merge into one multi-part Polygon; mixed kinds or any mask are united pixel-wise into a Mask. Export
splits a multi-part Polygon back into polygons sharing a group_id.

Why not supervision's labelme module: it reads only rectangles and polygons (as float32 boxes/masks),
drops circles, lines, points, masks, descriptions and flags, and on export writes masks as polygons.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import posixpath
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import numpy as np

from studio.core import geometry
from studio.core.errors import FormatError, InvalidShapeError
from studio.core.shapes import Box, Mask, Points, Polygon, Polyline, RotatedBox, Shape
from studio.io.formats.base import (
    ELLIPSE_VERTICES,
    Dataset,
    DatasetAnnotation,
    DatasetImage,
    check_inside,
    collect_images,
    ellipse_vertices,
    number,
    skip_or_raise,
    unique_stem,
    write_image,
)

LABELME_VERSION = "5.5.0"
"""Written into exported files: the labelme file format these files follow."""
SHAPE_TYPES = ("rectangle", "polygon", "oriented_rectangle", "circle", "line", "linestrip", "point", "points", "mask")
_POINT_COUNTS: dict[str, tuple[int, int | None]] = {
    "rectangle": (2, None), "polygon": (1, None), "oriented_rectangle": (4, 4), "circle": (2, 2), "line": (2, 2),
    "linestrip": (2, None), "point": (1, 1), "points": (1, None), "mask": (2, 2),
}
"""(fewest, most) points of each shape type; labelme 3 rectangles had four corners, so no most for them."""
_AREA_TYPES = {"rectangle", "polygon", "oriented_rectangle", "circle", "mask"}
"""Kinds that merge into one instance when they share (label, group_id); lines and points cannot."""
_KEPT_TYPES = ("circle", "line", "polygon", "oriented_rectangle")
"""shape_types kept as an attribute, so export writes the shape as labelme had it."""
_OWN_KEYS = {"label", "points", "group_id", "shape_type", "flags", "description", "mask", "score", "attributes"}


@dataclass
class _Piece:
    """One labelme shape, read; pieces of the same instance are merged afterwards."""

    label: str
    shape_type: str
    shape: Shape
    group_id: int | None
    score: float | None
    attributes: dict[str, Any] = field(default_factory=dict)


def read(path: Path, *, skip_bad: bool = False) -> Dataset:
    """A labelme .json file, or a folder searched recursively for them."""
    path = Path(path)
    if path.is_file():
        files, root = [path], path.parent
    else:
        files, root = sorted(path.rglob("*.json")), path
        if not files:
            raise FormatError(f"{path}: no labelme .json files in this folder")
    return collect_images(
        files,
        lambda json_path, problems: _read_file(json_path, json_path.parent.relative_to(root), problems, skip_bad=skip_bad),
        image_root=root,
        skip_bad=skip_bad,
    )


def _read_file(json_path: Path, sub_folder: Path, problems: list[str], *, skip_bad: bool) -> DatasetImage:
    try:
        data = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise FormatError(f"{json_path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("shapes"), list):
        raise FormatError(f"{json_path}: not a labelme file (expected an object with a 'shapes' list)")
    image_path = data.get("imagePath")
    if not isinstance(image_path, str) or not image_path.strip():
        raise FormatError(f"{json_path}: missing imagePath")
    # labelme itself turns Windows separators into '/'; imagePath is relative to the .json
    file_name = posixpath.normpath((sub_folder / PureWindowsPath(image_path).as_posix()).as_posix())
    width, height = (_optional_size(data, key, json_path) for key in ("imageWidth", "imageHeight"))
    embedded = _image_data(data, json_path)
    if embedded is not None:  # labelme shows imageData, and checks the stated size against it
        embedded_size = _encoded_size(embedded, json_path)
        if (width or embedded_size[0], height or embedded_size[1]) != embedded_size:
            raise FormatError(f"{json_path}: imageWidth/imageHeight {width}x{height} differ from imageData's {embedded_size[0]}x{embedded_size[1]}")
        width, height = embedded_size
    size = (height, width) if width and height else None
    pieces = []
    for index, raw in enumerate(data["shapes"]):
        try:
            pieces.append(_read_shape(raw, size))
        except FormatError as exc:
            skip_or_raise(problems, f"{json_path}: shape {index}{_label_of(raw)}: {exc}", skip_bad)
    annotations = []
    for group in _instances(pieces):
        try:
            annotations.append(_merge(group, size))
        except FormatError as exc:
            skip_or_raise(problems, f"{json_path}: group {group[0].group_id} ({group[0].label!r}): {exc}", skip_bad)
    return DatasetImage(file_name, width, height, annotations, embedded=embedded, tags=_image_flags(data, json_path))


def _image_flags(data: dict[str, Any], json_path: Path) -> list[str]:
    """The image-level flags that are set (labelme's classification flags), as tags."""
    flags = data.get("flags") or {}
    if not isinstance(flags, dict) or not all(isinstance(v, bool) for v in flags.values()):
        raise FormatError(f"{json_path}: flags must map names to true/false")
    return [name for name, value in flags.items() if value]


def _encoded_size(encoded: bytes, json_path: Path) -> tuple[int, int]:
    """(width, height) of an encoded image, from its header."""
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(encoded)) as image:
            return image.size
    except (OSError, UnidentifiedImageError, ValueError, ImportError) as exc:  # ImportError: see voc._segmentation
        raise FormatError(f"{json_path}: imageData is not an image ({exc})") from None


def _optional_size(data: dict[str, Any], key: str, json_path: Path) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise FormatError(f"{json_path}: {key} must be a positive whole number, got {value!r}")
    return value


def _image_data(data: dict[str, Any], json_path: Path) -> bytes | None:
    encoded = data.get("imageData")
    if encoded is None:
        return None
    decoded = _base64(encoded)
    if not decoded:
        raise FormatError(f"{json_path}: imageData is not base64-encoded image data")
    return decoded


def _base64(encoded: Any) -> bytes | None:
    """Bytes of a base64 string (line breaks allowed), None when it is not one."""
    if not isinstance(encoded, str):
        return None
    try:
        return base64.b64decode("".join(encoded.split()), validate=True)
    except (binascii.Error, ValueError):
        return None


def _label_of(raw: Any) -> str:
    label = raw.get("label") if isinstance(raw, dict) else None
    return f" ({label!r})" if isinstance(label, str) else ""


def _read_shape(raw: Any, size: tuple[int, int] | None) -> _Piece:
    if not isinstance(raw, dict):
        raise FormatError("a shape must be a JSON object")
    label = raw.get("label")
    if not isinstance(label, str) or not label:
        raise FormatError("missing label")
    shape_type = raw.get("shape_type") or "polygon"  # labelme 3 files have no shape_type: polygons
    if shape_type not in SHAPE_TYPES:
        raise FormatError(f"unknown shape_type {shape_type!r}; expected one of {', '.join(SHAPE_TYPES)}")
    points = _points(raw.get("points"))
    group_id = raw.get("group_id")
    if group_id is not None and (isinstance(group_id, bool) or not isinstance(group_id, int)):
        raise FormatError(f"group_id must be a whole number or null, got {group_id!r}")
    attributes = _attributes(raw)
    score = None if raw.get("score") is None else number(raw["score"], "score")
    try:
        shape = _shape(shape_type, points, raw.get("mask"), size)
    except InvalidShapeError as exc:
        raise FormatError(f"{shape_type}: {exc}") from None
    check_inside(shape, size, shape_type)
    if shape_type in _KEPT_TYPES and (shape_type != "polygon" or not isinstance(shape, Polygon)):
        attributes["shape_type"] = shape_type
    return _Piece(label, shape_type, shape, group_id, score, attributes)


def _points(raw: Any) -> list[tuple[float, float]]:
    if not isinstance(raw, list) or not raw:
        raise FormatError("points must be a non-empty list of [x, y]")
    if not all(isinstance(p, list) and len(p) == 2 for p in raw):
        raise FormatError("points must be a list of [x, y] pairs")
    return [(number(x, "x"), number(y, "y")) for x, y in raw]


def _attributes(raw: dict[str, Any]) -> dict[str, Any]:
    attributes = raw.get("attributes") or {}
    flags, description = raw.get("flags") or {}, raw.get("description") or ""
    if not isinstance(attributes, dict) or not isinstance(flags, dict) or not isinstance(description, str):
        raise FormatError("attributes and flags must be objects, description a string")
    attributes = dict(attributes)
    if flags:
        attributes["flags"] = flags
    if description:
        attributes["description"] = description
    return attributes


def _shape(shape_type: str, points: list[tuple[float, float]], mask: Any, size: tuple[int, int] | None) -> Shape:
    """The Studio shape of one labelme shape (InvalidShapeError/FormatError when malformed)."""
    _need_points(shape_type, len(points))
    if shape_type == "rectangle":
        xs, ys = zip(*points, strict=True)
        return Box(min(xs), min(ys), max(xs), max(ys))  # labelme accepts corners in any order
    if shape_type == "polygon":
        # labelme opens the 1- and 2-point polygons vertex edits leave behind; Studio's have 3 or more
        return Polygon([points]) if len(points) >= 3 else Polyline(points) if len(points) == 2 else Points(points)
    if shape_type == "oriented_rectangle":
        return _oriented_rectangle(points)
    if shape_type == "circle":
        return Polygon([_circle(*points)])
    if shape_type in ("line", "linestrip"):
        return Polyline(points)
    if shape_type in ("point", "points"):
        return Points(points)
    return _mask(points, mask, size)


def _oriented_rectangle(corners: list[tuple[float, float]]) -> RotatedBox | Polygon:
    """labelme's oriented_rectangle (4 corners in drawing order) as a RotatedBox whose corners() are the
    same points; corners that do not form a rectangle (edited by hand) stay a Polygon."""
    p = np.asarray(corners, dtype=np.float64)
    (ax, ay), (bx, by) = p[1] - p[0], p[2] - p[1]
    if ax * by - ay * bx < 0:  # counter-clockwise on screen: walk it the other way
        p = p[[0, 3, 2, 1]]
    width, height = np.linalg.norm(p[1] - p[0]), np.linalg.norm(p[2] - p[1])
    angle = float(np.degrees(np.arctan2(*(p[1] - p[0])[::-1])))
    centre = p.mean(axis=0)
    box = RotatedBox(float(centre[0]), float(centre[1]), float(width), float(height), angle)
    if np.allclose(box.corners(), p, atol=1e-6 * max(width, height, 1.0)):
        return box
    return Polygon([corners])


def _need_points(shape_type: str, count: int) -> None:
    low, high = _POINT_COUNTS[shape_type]
    if count < low or (high is not None and count > high):
        wanted = f"{low}" if low == high else f"at least {low}"
        raise FormatError(f"a {shape_type} needs {wanted} point(s), got {count}")


def _circle(centre: tuple[float, float], on_circle: tuple[float, float]) -> list[tuple[float, float]]:
    """ELLIPSE_VERTICES vertices of the circle, starting at (exactly) the point labelme stored on it."""
    (cx, cy), (px, py) = centre, on_circle
    radius, start = math.hypot(px - cx, py - cy), math.atan2(py - cy, px - cx)
    if radius == 0:
        raise FormatError("a circle has zero radius")
    return [on_circle, *ellipse_vertices(centre, (radius, radius), start=start)[1:]]


def _mask(corners: list[tuple[float, float]], encoded: Any, size: tuple[int, int] | None) -> Mask:
    """labelme's mask: a PNG placed from its first corner -> full-image Mask, as shapes_to_label does it:
    corners rounded (half to even, numpy's round), integer corners crop the PNG to them inclusive,
    fractional ones keep the PNG's own size, and what lies outside the image is cut off."""
    import cv2

    if size is None:
        raise FormatError("a mask shape needs the file's imageHeight and imageWidth")
    png = _base64(encoded)
    crop = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED) if png else None
    if crop is None:
        raise FormatError("a mask shape needs its 'mask': a base64-encoded PNG")
    crop = crop.any(axis=2) if crop.ndim == 3 else crop.astype(bool)
    given = np.asarray(corners, dtype=np.float64)
    (x1, y1), (x2, y2) = np.round(given).astype(int).tolist()
    patch_height, patch_width = crop.shape
    if np.array_equal(given, np.trunc(given)):
        patch_height, patch_width = min(y2 - y1 + 1, patch_height), min(x2 - x1 + 1, patch_width)
    height, width = size
    top, bottom = max(y1, 0), min(y1 + patch_height, height)
    left, right = max(x1, 0), min(x1 + patch_width, width)
    full = np.zeros(size, dtype=bool)
    if top < bottom and left < right:
        full[top:bottom, left:right] = crop[top - y1 : bottom - y1, left - x1 : right - x1]
    return geometry.encode_mask(full)


def _instances(pieces: list[_Piece]) -> list[list[_Piece]]:
    """Pieces grouped into objects: area shapes sharing (label, group_id) together, others alone."""
    groups: dict[tuple[str, int], list[_Piece]] = defaultdict(list)
    result: list[list[_Piece]] = []
    for piece in pieces:
        if piece.group_id is None or piece.shape_type not in _AREA_TYPES or isinstance(piece.shape, (Polyline, Points)):
            if piece.group_id is not None:
                piece.attributes["group_id"] = piece.group_id
            result.append([piece])
            continue
        key = (piece.label, piece.group_id)
        if key not in groups:
            result.append(groups[key])
        groups[key].append(piece)
    return result


def _merge(group: list[_Piece], size: tuple[int, int] | None) -> DatasetAnnotation:
    first = group[0]
    if len(group) == 1:
        return DatasetAnnotation(first.label, first.shape, first.score, first.attributes)
    attributes: dict[str, Any] = {}
    for piece in reversed(group):
        attributes.update(piece.attributes)
    attributes.pop("shape_type", None)  # a merged object is no longer one circle or line
    score = next((p.score for p in group if p.score is not None), None)
    if all(isinstance(p.shape, Polygon) for p in group):
        return DatasetAnnotation(first.label, Polygon([part for p in group for part in p.shape.parts]), score, attributes)
    if size is None:
        raise FormatError("merging shapes of different kinds into one mask needs imageHeight and imageWidth")
    union = np.zeros(size, dtype=bool)
    for piece in group:
        union |= geometry.rasterize(piece.shape, size)
    return DatasetAnnotation(first.label, geometry.encode_mask(union), score, attributes)


def write(dataset: Dataset, out: Path, *, copy_images: bool = True) -> list[Path]:
    """One labelme .json per image (imagePath beside it, imageData null); images copied next to them."""
    out = Path(out)
    written: list[Path] = []
    taken: set[str] = set()
    for image in dataset.images:
        json_path = out / f"{unique_stem(image.file_name, taken)}.json"
        document = {
            "version": LABELME_VERSION,
            "flags": {},
            "shapes": _shapes(image.annotations),
            "imagePath": PurePosixPath(image.file_name).name,
            "imageData": None,
            "imageHeight": image.height,
            "imageWidth": image.width,
        }
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(document, ensure_ascii=False, indent=2), encoding="utf-8")
        written.append(json_path)
        if copy_images:
            write_image(image, json_path.parent / PurePosixPath(image.file_name).name)
            written.append(json_path.parent / PurePosixPath(image.file_name).name)
    return written


def _shapes(annotations: list[DatasetAnnotation]) -> list[dict[str, Any]]:
    used = [a.attributes["group_id"] for a in annotations if isinstance(a.attributes.get("group_id"), int)]
    next_group = max(used, default=0) + 1
    shapes = []
    for ann in annotations:
        pieces = _labelme_pieces(ann)
        group_id = ann.attributes.get("group_id")
        if not isinstance(group_id, int) or isinstance(group_id, bool):
            group_id = None
        if len(pieces) > 1:
            group_id, next_group = next_group, next_group + 1
        for shape_type, points, mask in pieces:
            shapes.append(_shape_dict(ann, shape_type, points, mask, group_id))
    return shapes


def _shape_dict(
    ann: DatasetAnnotation, shape_type: str, points: list[list[float]], mask: str | None, group_id: int | None
) -> dict[str, Any]:
    shape: dict[str, Any] = {
        "label": ann.label,
        "points": points,
        "group_id": group_id,
        "description": str(ann.attributes.get("description", "")),
        "shape_type": shape_type,
        "flags": flags if isinstance(flags := ann.attributes.get("flags"), dict) else {},
        "mask": mask,
    }
    if ann.score is not None:
        shape["score"] = ann.score  # labelme keeps unknown keys of a shape; other tools ignore them
    extra = {k: v for k, v in ann.attributes.items() if k not in _OWN_KEYS}
    if extra:
        shape["attributes"] = extra
    return shape


def _labelme_pieces(ann: DatasetAnnotation) -> list[tuple[str, list[list[float]], str | None]]:
    """(shape_type, points, mask) of the labelme shapes one annotation is written as."""
    shape = ann.shape
    if isinstance(shape, Box):
        return [("rectangle", [[shape.x1, shape.y1], [shape.x2, shape.y2]], None)]
    if isinstance(shape, RotatedBox):
        kind = "oriented_rectangle" if ann.attributes.get("shape_type") == "oriented_rectangle" else "polygon"
        return [(kind, [list(p) for p in shape.corners()], None)]
    if isinstance(shape, Polygon):
        if ann.attributes.get("shape_type") == "circle" and _is_circle(shape):
            centre = np.mean(shape.parts[0], axis=0).tolist()
            return [("circle", [centre, list(shape.parts[0][0])], None)]
        return [("polygon", [list(p) for p in part], None) for part in shape.parts]
    kept = ann.attributes.get("shape_type")
    if isinstance(shape, Polyline):
        line = kept == "line" and len(shape.points) == 2
        kind = "polygon" if kept == "polygon" and len(shape.points) == 2 else "line" if line else "linestrip"
        return [(kind, [list(p) for p in shape.points], None)]
    if isinstance(shape, Points):
        kind = "polygon" if kept == "polygon" and len(shape.points) == 1 else "point" if len(shape.points) == 1 else "points"
        return [(kind, [list(p) for p in shape.points], None)]
    return [_mask_piece(shape)]


def _is_circle(polygon: Polygon) -> bool:
    """Whether a polygon is still the regular ELLIPSE_VERTICES-gon a circle was read as (not edited since)."""
    if len(polygon.parts) != 1 or len(polygon.parts[0]) != ELLIPSE_VERTICES:
        return False
    vertices = np.asarray(polygon.parts[0])
    radii = np.hypot(*(vertices - vertices.mean(axis=0)).T)
    return bool(np.ptp(radii) <= 1e-6 * max(radii.max(), 1.0))


def _mask_piece(mask: Mask) -> tuple[str, list[list[float]], str]:
    """labelme's mask shape: the PNG of the mask's bounding pixels, corners as inclusive pixel indices."""
    import cv2

    pixels = geometry.decode_mask(mask)
    ys, xs = np.nonzero(pixels)
    x1, y1, x2, y2 = (int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())) if len(xs) else (0, 0, 0, 0)
    ok, png = cv2.imencode(".png", pixels[y1 : y2 + 1, x1 : x2 + 1].astype(np.uint8))
    if not ok:
        raise FormatError("cannot encode a mask as PNG")
    return "mask", [[float(x1), float(y1)], [float(x2), float(y2)]], base64.b64encode(png.tobytes()).decode("ascii")
